"""Times every venue request and keeps the venue's recent failure rate.

The wrapper sits between an exchange adapter and its transport, so it sees each HTTP round
trip (retries included) exactly once, whatever adapter method sent it. It never changes a
request or an answer, and re-raises every failure unchanged.
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from infrastructure.hyperliquid.transport import Transport, TransportError
from infrastructure.metrics.families import EngineMetrics
from infrastructure.metrics.tap import BoundedLabel

_ENDPOINT = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,39}$")
#: Distinct endpoint names a venue may show before the rest are folded into ``other``.
ENDPOINT_CAP = 32


class FailureWindow:
    """Outcomes of a venue's requests over the last ``window_s`` seconds.

    The failures in the window are counted as outcomes come and go: a backtest sends
    thousands of requests a second, and the ratio is read after each one."""

    def __init__(self, window_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self._clock = clock
        self._outcomes: deque[tuple[float, bool]] = deque()
        self._failed = 0

    def record(self, ok: bool) -> None:
        now = self._clock()
        self._outcomes.append((now, ok))
        if not ok:
            self._failed += 1
        self._trim(now)

    def _trim(self, now: float) -> None:
        edge = now - self.window_s
        outcomes = self._outcomes
        while outcomes and outcomes[0][0] < edge:
            if not outcomes.popleft()[1]:
                self._failed -= 1

    @property
    def requests(self) -> int:
        self._trim(self._clock())
        return len(self._outcomes)

    @property
    def failures(self) -> int:
        self._trim(self._clock())
        return self._failed

    def ratio(self) -> float:
        """Failed over all requests in the window; 0 with no requests."""
        self._trim(self._clock())
        total = len(self._outcomes)
        return self._failed / total if total else 0.0


def endpoint_of(path: str, payload: Mapping[str, Any]) -> str:
    """``info.allMids``, ``exchange.order``: the request kind, never a value from it."""
    base = "exchange" if path.rstrip("/").endswith("exchange") else "info"
    kind: Any = payload.get("type")
    if base == "exchange":
        action = payload.get("action")
        kind = action.get("type") if isinstance(action, Mapping) else None
    if isinstance(kind, str) and _ENDPOINT.match(kind):
        return f"{base}.{kind}"
    return f"{base}.other"


class MeteredTransport:
    """A ``Transport`` that records latency, failures and the failure window of ``venue``."""

    def __init__(
        self,
        inner: Transport,
        *,
        venue: str,
        metrics: EngineMetrics,
        window: FailureWindow,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.inner = inner
        self.venue = venue
        self.metrics = metrics
        self.window = window
        self._clock = clock
        self._endpoint = BoundedLabel(cap=ENDPOINT_CAP)
        self._latency: dict[str, Any] = {}  # the histogram's child per endpoint, looked up once
        self._ratio = metrics.exchange_failure_ratio.labels(venue)
        # The adapter reads these off its transport (thread or not; where it talks to).
        self.blocking = getattr(inner, "blocking", True)
        self.base_url = getattr(inner, "base_url", "")

    def post(self, path: str, payload: Mapping[str, Any]) -> Any:
        endpoint = self._endpoint(endpoint_of(path, payload))
        started = self._clock()
        try:
            answer = self.inner.post(path, payload)
        except TransportError as exc:
            self._observe(endpoint, started)
            error = type(exc).__name__
            self.metrics.exchange_failures.labels(self.venue, endpoint, error).inc()
            # A refusal for rate limiting or a bad request is the caller's doing, not the
            # venue being unhealthy; only the ambiguous failures count against the venue.
            self.window.record(not exc.ambiguous)
            self._ratio.set(self.window.ratio())
            raise
        self._observe(endpoint, started)
        self.window.record(True)
        self._ratio.set(self.window.ratio())
        return answer

    def _observe(self, endpoint: str, started: float) -> None:
        seconds = self._clock() - started
        child = self._latency.get(endpoint)
        if child is None:
            child = self._latency[endpoint] = self.metrics.exchange_latency.labels(
                self.venue, endpoint
            )
        child.observe(seconds)
