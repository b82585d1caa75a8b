"""A fake Hyperliquid ``/info`` endpoint over a seeded synthetic tape, with failure switches.

:class:`FakeInfo` is a handler ``(path, body) -> (status, body)`` for
:class:`~infrastructure.hyperliquid.transport.InProcessTransport`; :class:`FakeInfoServer`
serves the same handler over HTTP on 127.0.0.1 so that
:class:`~infrastructure.hyperliquid.transport.HttpTransport` (the SDK's ``API``) is exercised.

The venue's time is the test clock's ``now()``. At that time the fake answers:

* ``candleSnapshot``: candles aggregated from the tape's one-minute bars, rows whose open time
  ``t`` is within ``[startTime, endTime]`` (at most 500), oldest first. The last row is still
  forming: it holds the minutes closed so far plus the minute in progress.
* ``metaAndAssetCtxs`` / ``allMids`` / ``meta``: every coin quoted at the close of the last closed
  minute (``mid``); ``markPx`` = mid × 1.0001, ``oraclePx`` = mid × 0.9998; open interest and
  funding are the tape's values for that minute.

Numbers are decimal strings as the venue prints them (no exponent, integral values end in
``.0``), written from the float's shortest repr, so a client parses back the tape's exact float.

Switches: :meth:`FakeInfo.fail` (HTTP 500, 429, a timeout, an answer that is not JSON; for one
request type or all, for a number of requests or until :meth:`FakeInfo.heal`),
``candle_lag_s`` (the candle feed lives that far in the past), ``honour_end_time`` (off: rows
after ``endTime`` are returned too), ``missing`` (coins the venue does not know), ``delisted``,
``null_mid`` (coins whose book is empty: ``midPx`` null, ``allMids`` then has the last trade),
and ``mutate`` (rewrite any answer, e.g. to corrupt one field).
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Protocol

import numpy as np

from infrastructure.hyperliquid.transport import TimedOut, request_weight
from infrastructure.market.synthetic import CoinTape, SyntheticTape

TIMEOUT = "timeout"
GARBAGE = "garbage"  # an answer that is not JSON
Failure = int | str  # an HTTP status (500, 429, ...), TIMEOUT or GARBAGE

MAX_CANDLES = 500
_NOT_JSON = "Could not parse JSON: "  # how the SDK reports a body that is not JSON
_INTERVAL_MS = {"1m": 60_000, "3m": 180_000, "15m": 900_000, "1h": 3_600_000, "4h": 14_400_000}


class _Clock(Protocol):
    def now(self) -> datetime: ...


def dec(value: float) -> str:
    """A float as the venue prints it: plain decimal, integral values with ``.0``."""
    text = format(Decimal(repr(float(value))), "f")
    return text if "." in text else text + ".0"


@dataclass
class _Rule:
    failure: Failure
    remaining: int | None


class FakeInfo:
    def __init__(self, start: datetime, coins: Mapping[str, CoinTape], clock: _Clock) -> None:
        self.start = start
        self.coins = dict(coins)
        self.clock = clock
        self.candle_lag_s = 0.0
        self.honour_end_time = True
        self.missing: set[str] = set()
        self.delisted: set[str] = set()
        self.null_mid: set[str] = set()
        #: ``mutate(type, request, answer) -> answer``: applied to every good answer.
        self.mutate: Callable[[str, Any, Any], Any] | None = None
        self.requests: list[Any] = []
        self._rules: dict[str, _Rule] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_tape(cls, tape: SyntheticTape, clock: _Clock) -> FakeInfo:
        return cls(tape.start, tape.coins, clock)

    # -- switches and records -------------------------------------------------------------

    def fail(self, failure: Failure, *, kind: str = "*", times: int | None = None) -> None:
        """Fail requests of ``kind`` (a request type, or ``*`` for all) ``times`` times."""
        self._rules[kind] = _Rule(failure, times)

    def heal(self) -> None:
        self._rules.clear()

    def kinds(self) -> list[str]:
        return [str(body.get("type")) if isinstance(body, dict) else "" for body in self.requests]

    def count(self, kind: str) -> int:
        return self.kinds().count(kind)

    @property
    def weight(self) -> int:
        return sum(request_weight("/info", body) for body in self.requests)

    def minute(self, at: datetime | None = None) -> int:
        """The index of the last closed minute at ``at`` (default: now): what quotes use."""
        elapsed = ((at or self.clock.now()) - self.start).total_seconds()
        return max(0, int(elapsed // 60) - 1)

    # -- the handler ----------------------------------------------------------------------

    def __call__(self, path: str, body: Any) -> tuple[int, Any]:
        with self._lock:
            self.requests.append(body)
            if path != "/info" or not isinstance(body, dict):
                return 422, "Failed to deserialize the JSON body into the target type"
            kind = body.get("type")
            rule = self._rules.get(str(kind)) or self._rules.get("*")
            if rule is not None and rule.remaining != 0:
                if rule.remaining is not None:
                    rule.remaining -= 1
                if rule.failure == TIMEOUT:
                    raise TimedOut("fake /info: no answer in time")
                if rule.failure == GARBAGE:
                    return 200, {"error": _NOT_JSON + "<html>502 Bad Gateway</html>"}
                assert isinstance(rule.failure, int)
                return rule.failure, None
            if kind == "candleSnapshot":
                answer: Any = self._candles(body.get("req"))
            elif kind == "metaAndAssetCtxs":
                answer = [self._meta(), self._contexts()]
            elif kind == "allMids":
                answer = self._mids()
            elif kind == "meta":
                answer = self._meta()
            else:
                return 422, "Failed to deserialize the JSON body into the target type"
            if self.mutate is not None:
                answer = self.mutate(str(kind), body, answer)
            return 200, answer

    # -- answers --------------------------------------------------------------------------

    def _listed(self) -> list[str]:
        return [coin for coin in self.coins if coin not in self.missing]

    def _meta(self) -> dict[str, Any]:
        universe: list[dict[str, Any]] = []
        for coin in self._listed():
            entry: dict[str, Any] = {"szDecimals": 2, "name": coin, "maxLeverage": 20}
            entry["marginTableId"] = 20
            if coin in self.delisted:
                entry["isDelisted"] = True
            universe.append(entry)
        return {"universe": universe, "marginTables": [], "collateralToken": 0}

    def _contexts(self) -> list[dict[str, Any]]:
        j = self.minute()
        out = []
        for coin in self._listed():
            tape = self.coins[coin]
            mid = float(tape.minutes.close[j])
            empty = coin in self.null_mid or coin in self.delisted
            out.append(
                {
                    "funding": dec(float(tape.funding_hourly[j])),
                    "openInterest": "0.0" if coin in self.delisted else dec(tape.open_interest[j]),
                    "prevDayPx": dec(float(tape.minutes.close[max(0, j - 1440)])),
                    "dayNtlVlm": dec(
                        float(tape.minutes.volume[max(0, j - 1439) : j + 1].sum()) * mid
                    ),
                    "premium": None if empty else "0.0",
                    "oraclePx": dec(mid * 0.9998),
                    "markPx": dec(mid * 1.0001),
                    "midPx": None if empty else dec(mid),
                    "impactPxs": None if empty else [dec(mid * 0.9999), dec(mid * 1.0001)],
                    "dayBaseVlm": dec(float(tape.minutes.volume[max(0, j - 1439) : j + 1].sum())),
                }
            )
        return out

    def _mids(self) -> dict[str, str]:
        j = self.minute()
        mids = {
            coin: dec(float(self.coins[coin].minutes.close[j]))
            for coin in self._listed()
            if coin not in self.delisted
        }
        # Mainnet's answer also holds spot pairs.
        mids["@107"] = "1.0"
        mids["PURR/USDC"] = "0.2"
        return mids

    def _candles(self, req: Any) -> list[dict[str, Any]] | None:
        if not isinstance(req, dict):
            return None
        coin, interval = req.get("coin"), req.get("interval")
        tape = self.coins.get(coin) if isinstance(coin, str) else None
        if tape is None or coin in self.missing or interval not in _INTERVAL_MS:
            return []
        step_ms = _INTERVAL_MS[interval]
        per = step_ms // 60_000
        start_ms = int(self.start.timestamp() * 1000)
        feed_s = (self.clock.now() - self.start).total_seconds() - self.candle_lag_s
        in_progress = math.floor(feed_s / 60)  # the minute being traded at the feed's time
        n = len(tape.minutes)
        if in_progress < 0:
            return []
        first = max(0, -(-(int(req["startTime"]) - start_ms) // step_ms))
        last = in_progress // per  # the forming candle
        if self.honour_end_time:
            last = min(last, (int(req["endTime"]) - start_ms) // step_ms)
        m = tape.minutes
        rows = []
        for k in range(first, last + 1):
            lo, hi = k * per, min((k + 1) * per, in_progress + 1, n)
            if lo >= hi:
                break
            t = start_ms + k * step_ms
            rows.append(
                {
                    "t": t,
                    "T": t + step_ms - 1,
                    "s": coin,
                    "i": interval,
                    "o": dec(float(m.open[lo])),
                    "c": dec(float(m.close[hi - 1])),
                    "h": dec(float(np.max(m.high[lo:hi]))),
                    "l": dec(float(np.min(m.low[lo:hi]))),
                    "v": dec(float(np.sum(m.volume[lo:hi]))),
                    "n": hi - lo,
                }
            )
            if len(rows) == MAX_CANDLES:
                break
        return rows


# -- over HTTP ----------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True

    def __init__(self, handler: Callable[[str, Any], tuple[int, Any]], stopping: threading.Event):
        self.handler = handler
        self.stopping = stopping
        self.hang_s = 30.0
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients give up on purpose here (timeouts): nothing to report."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        self.close_connection = True
        try:
            status, answer = self.server.handler(self.path, body)
        except TimedOut:
            # Say nothing until the client gives up (or the server stops).
            self.server.stopping.wait(self.server.hang_s)
            return
        if isinstance(answer, dict) and str(answer.get("error", "")).startswith(_NOT_JSON):
            payload = answer["error"][len(_NOT_JSON) :].encode()
            kind = "text/html"
        elif isinstance(answer, str) and status >= 400:
            payload, kind = answer.encode(), "text/plain"
        else:
            payload, kind = json.dumps(answer).encode(), "application/json"
        with contextlib.suppress(ConnectionError, TimeoutError):
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()


class FakeInfoServer:
    """Serves a handler on an ephemeral 127.0.0.1 port; a context manager (``url``)."""

    def __init__(self, handler: Callable[[str, Any], tuple[int, Any]], *, hang_s: float = 30.0):
        self._stopping = threading.Event()
        self._server = _Server(handler, self._stopping)
        self._server.hang_s = hang_s
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakeInfoServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stopping.set()  # ends hanging answers
        self._server.shutdown()
        self._thread.join()
        self._server.server_close()
