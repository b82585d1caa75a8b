"""How a request reaches a Hyperliquid API, and what a failure means.

Two transports speak the same protocol: :class:`HttpTransport` posts through the official
SDK's ``API`` class (so requests are built exactly as the SDK builds them), and
:class:`InProcessTransport` hands the same JSON to the simulator's gateway in this process.
Both turn every failure into a :class:`TransportError` that says whether the request may
have been processed (``ambiguous``): an order whose answer was lost must be looked up by
its cloid, never simply sent again.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import msgspec
import requests
from hyperliquid.api import API
from hyperliquid.utils.error import ClientError, ServerError

log = logging.getLogger("nof0.hyperliquid")

#: Hyperliquid's IP budget: 1200 request weight per minute.
WEIGHT_PER_MINUTE = 1200
_LIGHT_INFO = frozenset(
    {"l2Book", "allMids", "clearinghouseState", "orderStatus", "spotClearinghouseState"}
)


class TransportError(Exception):
    """The request did not produce an answer.

    ``ambiguous``: the venue may have processed it (timeout, dropped connection, 5xx,
    unreadable body). ``retry_after_s``: a hint for rate limiting.
    """

    ambiguous = True

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class TimedOut(TransportError):
    pass


class ConnectionLost(TransportError):
    pass


class ServerFailed(TransportError):
    pass


class MalformedResponse(TransportError):
    pass


class RateLimited(TransportError):
    """HTTP 429: the request was refused before it was processed."""

    ambiguous = False


class ClientRejected(TransportError):
    """HTTP 4xx (not 429): the request itself was refused (e.g. a body the API cannot read)."""

    ambiguous = False


class Transport(Protocol):
    def post(self, path: str, payload: Mapping[str, Any]) -> Any:
        """POST ``payload`` to ``path`` (``/info`` or ``/exchange``); the parsed JSON answer."""
        ...


def request_weight(path: str, payload: Mapping[str, Any]) -> int:
    """Hyperliquid's weight of one request (the extra weight of long answers is not known
    in advance and is left out)."""
    if path == "/exchange":
        action = payload.get("action")
        batch = 1
        if isinstance(action, Mapping):
            for key in ("orders", "cancels", "modifies"):
                items = action.get(key)
                if isinstance(items, list):
                    batch = len(items)
        return 1 + batch // 40
    kind = payload.get("type")
    if kind in _LIGHT_INFO:
        return 2
    if kind == "userRole":
        return 60
    return 20


class WeightBudget:
    """A client-side sliding window that keeps us under the venue's weight budget, so we
    wait a little instead of being answered 429."""

    def __init__(
        self,
        per_minute: int = WEIGHT_PER_MINUTE,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        sharers: Callable[[], int] = lambda: 1,
    ) -> None:
        """``sharers``: how many engines spend the same IP's budget now (several engines on
        one host); each keeps to its part so that together they stay under the venue's."""
        self.per_minute = per_minute
        self._sharers = sharers
        self._clock = clock
        self._sleep = sleep
        self._spent: deque[tuple[float, int]] = deque()
        self._total = 0
        self._lock = threading.Lock()

    def limit(self) -> int:
        """This engine's part of the budget per minute."""
        return self.per_minute // max(1, self._sharers())

    def spend(self, weight: int) -> float:
        """Take ``weight``, waiting while the last minute is full; return the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                while self._spent and now - self._spent[0][0] >= 60.0:
                    self._total -= self._spent.popleft()[1]
                if self._total + weight <= self.limit() or not self._spent:
                    self._spent.append((now, weight))
                    self._total += weight
                    return waited
                pause = 60.0 - (now - self._spent[0][0])
            self._sleep(pause)
            waited += pause


class HttpTransport:
    """Over HTTP with the SDK's ``API`` (requests, keep-alive, a timeout on every call)."""

    def __init__(
        self, base_url: str, *, timeout_s: float, budget: WeightBudget | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api = API(base_url=self.base_url, timeout=timeout_s)
        self._budget = budget
        self._lock = threading.Lock()  # requests.Session is not documented as thread-safe

    def close(self) -> None:
        self._api.session.close()

    def post(self, path: str, payload: Mapping[str, Any]) -> Any:
        if self._budget is not None:
            waited = self._budget.spend(request_weight(path, payload))
            if waited:
                log.info("waited %.1fs for the request-weight budget", waited)
        try:
            with self._lock:
                body = self._api.post(path, dict(payload))
        except ClientError as exc:
            if exc.status_code == 429:
                raise RateLimited(
                    f"{self.base_url}{path}: rate limited (HTTP 429)", status=429
                ) from None
            raise ClientRejected(
                f"{self.base_url}{path}: HTTP {exc.status_code}: {_clip(exc.error_message)}",
                status=exc.status_code,
            ) from None
        except ServerError as exc:
            raise ServerFailed(
                f"{self.base_url}{path}: HTTP {exc.status_code}: {_clip(exc.message)}",
                status=exc.status_code,
            ) from None
        except requests.Timeout:
            raise TimedOut(f"{self.base_url}{path}: no answer in time") from None
        except requests.ConnectionError as exc:
            raise ConnectionLost(
                f"{self.base_url}{path}: connection failed ({_reason(exc)})"
            ) from None
        except (KeyError, AttributeError, TypeError):
            # The SDK reads code/msg from a JSON 4xx body; any other shape breaks it.
            raise MalformedResponse(f"{self.base_url}{path}: unreadable error body") from None
        return _checked(body, f"{self.base_url}{path}")


Handler = Callable[[str, Any], tuple[int, Any]]
"""The simulator gateway's entry point: (path, parsed JSON body) → (HTTP status, JSON body)."""


class InProcessTransport:
    """Straight into the simulator's gateway, through a JSON round trip so that the venue
    sees exactly what it would see over HTTP."""

    def __init__(
        self, handler: Handler, *, name: str = "in-process", blocking: bool = True
    ) -> None:
        """``blocking``: the exchange adapter calls it on a worker thread (False: inline)."""
        self._handler = handler
        self.base_url = name
        self.blocking = blocking

    def post(self, path: str, payload: Mapping[str, Any]) -> Any:
        # The request as ``requests`` would send it (strict JSON: no NaN, no Decimal, no
        # bytes: a payload the live venue would never get fails here too); the answer,
        # the simulator's own and often large, through msgspec.
        body = _decode(json.dumps(payload, allow_nan=False).encode())
        status, answer = self._handler(path, body)
        answer = _round_trip(answer) if answer is not None else None
        where = f"{self.base_url}{path}"
        if status == 429:
            raise RateLimited(f"{where}: rate limited (HTTP 429)", status=429)
        if 400 <= status < 500:
            raise ClientRejected(f"{where}: HTTP {status}: {_clip(str(answer))}", status=status)
        if status >= 500:
            raise ServerFailed(f"{where}: HTTP {status}", status=status)
        return _checked(answer, where)


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


def _round_trip(value: Any) -> Any:
    """Through JSON text and back with msgspec (several times the standard library's
    speed; a backtest reads thousands of answers)."""
    return _decode(_encode(value))


def _checked(body: Any, where: str) -> Any:
    if isinstance(body, dict) and set(body) == {"error"}:
        text = body["error"]
        if isinstance(text, str) and text.startswith("Could not parse JSON"):
            raise MalformedResponse(f"{where}: the answer is not JSON ({_clip(text)})")
    return body


def _clip(text: object, limit: int = 200) -> str:
    value = str(text)
    return value if len(value) <= limit else value[:limit] + "…"


def _reason(exc: Exception) -> str:
    # requests' messages repeat the URL and pool details; the innermost cause is enough.
    cause: BaseException = exc
    while cause.__cause__ is not None or cause.__context__ is not None:
        nxt = cause.__cause__ or cause.__context__
        assert nxt is not None
        cause = nxt
    return type(cause).__name__
