"""Alerts to a webhook: one JSON POST per alert, never in the way of trading.

``alert()`` only puts the alert on a bounded queue (a full queue drops the alert and counts
it; it never blocks a cycle). A worker thread sends them: repeats of the same alert (kind and
trader) within the de-duplication window are folded into one, whose ``count`` and
``last_seen`` say how often it happened; at most ``rate_per_minute`` are sent; a failed send
(connection error, timeout, 429 or 5xx) is retried with exponential backoff, then given up
and logged. The webhook URL usually embeds a secret (Slack, Discord, Telegram): it is
registered for redaction and never logged.

Payload formats: ``json`` (the alert's fields), ``slack`` (``text``), ``discord``
(``content``), ``telegram`` (``chat_id`` and ``text`` for ``sendMessage``).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import httpx

from application.redaction import redact, register_secrets

log = logging.getLogger("nof0.alerts")

Format = Literal["json", "slack", "discord", "telegram"]

#: How loud each alert kind is; anything else is a warning.
SEVERITY: dict[str, str] = {
    "paused": "critical",
    "underfunded": "critical",
    "equity_drift": "critical",
    "position_drift": "critical",
    "breaker": "critical",
    "exchange_switch": "critical",
    "store_down": "critical",
    "cycle_error": "error",
    "flatten_error": "error",
    "reconcile_error": "error",
    "failure_rate": "error",
    "projection_lag": "warning",
    "budget": "warning",
    "model_switched": "warning",
    "control": "info",
    "flattened": "info",
}


@dataclass
class Alert:
    kind: str
    trader: str
    venue: str
    severity: str
    message: str
    first_seen: datetime
    last_seen: datetime
    count: int = 1

    def payload(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "trader": self.trader,
            "venue": self.venue,
            "severity": self.severity,
            "message": self.message,
            "first_seen": self.first_seen.isoformat(),
            "last_seen": self.last_seen.isoformat(),
            "count": self.count,
        }

    def line(self) -> str:
        who = self.trader or self.venue or "arena"
        times = f" (×{self.count} since {self.first_seen:%H:%M:%S}Z)" if self.count > 1 else ""
        return f"[nof0 {self.severity}] {self.kind} {who}: {self.message}{times}"


def render(alert: Alert, fmt: Format, chat_id: str = "") -> dict[str, Any]:
    if fmt == "slack":
        return {"text": alert.line()}
    if fmt == "discord":
        return {"content": alert.line()[:2000]}
    if fmt == "telegram":
        return {"chat_id": chat_id, "text": alert.line()[:4096]}
    return alert.payload()


@dataclass
class WebhookStats:
    queued: int = 0
    sent: int = 0
    folded: int = 0  # repeats folded into an alert within the window
    dropped: int = 0  # the queue was full
    failed: int = 0  # given up after the retries
    rate_limited: int = 0  # held back by the rate limit, folded into the next


@dataclass
class _Pending:
    alert: Alert
    sent_at: float | None = None  # monotonic time it was last sent


class WebhookAlerts:
    """The :class:`application.ports.Alerts` port over a webhook."""

    def __init__(
        self,
        url: str,
        *,
        fmt: Format = "json",
        chat_id: str = "",
        dedup_window_s: float = 300.0,
        rate_per_minute: int = 30,
        max_queue: int = 1000,
        retries: int = 3,
        backoff_s: float = 0.5,
        timeout_s: float = 5.0,
        transport: httpx.BaseTransport | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        register_secrets([url])
        self.url = url
        self.fmt: Format = fmt
        self.chat_id = chat_id
        self.dedup_window_s = dedup_window_s
        self.rate_per_minute = rate_per_minute
        self.retries = retries
        self.backoff_s = backoff_s
        self.stats = WebhookStats()
        self._now = now
        self._monotonic = monotonic
        self._queue: queue.Queue[tuple[str, str, str, datetime] | None] = queue.Queue(max_queue)
        self._client = httpx.Client(timeout=timeout_s, transport=transport)
        self._seen: dict[tuple[str, str], _Pending] = {}
        self._sends: list[float] = []  # monotonic times of recent sends (rate limit)
        self._stopping = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._thread = threading.Thread(target=self._work, name="nof0-alerts", daemon=True)
        self._thread.start()

    # -- the port ---------------------------------------------------------------------------

    def alert(self, trader: str, kind: str, message: str) -> None:
        """Queue an alert; never blocks, never raises."""
        try:
            self._idle.clear()
            self._queue.put_nowait((trader, kind, redact(message), self._now()))
            self.stats.queued += 1
        except queue.Full:
            self.stats.dropped += 1
            if self.stats.dropped in (1, 10, 100) or self.stats.dropped % 1000 == 0:
                log.warning("alert queue full: %d alerts dropped so far", self.stats.dropped)

    # -- lifecycle --------------------------------------------------------------------------

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued alert has been handled (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._queue.empty() and self._idle.is_set():
                return True
            time.sleep(0.01)
        return False

    def close(self, timeout: float = 5.0) -> None:
        self.flush(timeout)
        self._stopping.set()
        with contextlib.suppress(queue.Full):  # the worker then sees _stopping on its own
            self._queue.put_nowait(None)
        self._thread.join(timeout)
        self._client.close()

    # -- the worker -------------------------------------------------------------------------

    def _work(self) -> None:
        while not self._stopping.is_set():
            try:
                item = self._queue.get(timeout=0.2)
            except queue.Empty:
                self._send_held()
                self._idle.set()
                continue
            if item is None:
                break
            try:
                self._handle(*item)
            except Exception:  # the worker must survive anything a receiver does
                log.exception("alert delivery failed")
            finally:
                if self._queue.empty():
                    self._idle.set()

    def _handle(self, trader: str, kind: str, message: str, at: datetime) -> None:
        key = (kind, trader)
        venue = trader if trader == "venue" else ""
        pending = self._seen.get(key)
        now = self._monotonic()
        if (
            pending is not None
            and pending.sent_at is not None
            and now - pending.sent_at < self.dedup_window_s
        ):
            pending.alert.count += 1
            pending.alert.last_seen = at
            pending.alert.message = message
            self.stats.folded += 1
            return
        if pending is None or pending.sent_at is not None:
            alert = Alert(
                kind=kind,
                trader="" if venue else trader,
                venue=venue,
                severity=SEVERITY.get(kind, "warning"),
                message=message,
                first_seen=at,
                last_seen=at,
            )
            pending = _Pending(alert)
            self._seen[key] = pending
        else:  # held back by the rate limit earlier: this occurrence joins it
            pending.alert.count += 1
            pending.alert.last_seen = at
            pending.alert.message = message
        if not self._allowed(now):
            self.stats.rate_limited += 1
            return
        if self._send(pending.alert):
            pending.sent_at = now
            self._sends.append(now)

    def _send_held(self) -> None:
        """Alerts the rate limit held back go out as soon as the limit allows."""
        for pending in self._seen.values():
            if pending.sent_at is not None:
                continue
            now = self._monotonic()
            if not self._allowed(now):
                return
            if self._send(pending.alert):
                pending.sent_at = now
                self._sends.append(now)
            else:
                pending.sent_at = now  # given up: not retried for ever

    def _allowed(self, now: float) -> bool:
        self._sends = [t for t in self._sends if now - t < 60.0]
        return len(self._sends) < self.rate_per_minute

    def _send(self, alert: Alert) -> bool:
        body = render(alert, self.fmt, self.chat_id)
        delay = self.backoff_s
        for attempt in range(self.retries + 1):
            if self._stopping.is_set() and attempt:
                break
            try:
                response = self._client.post(self.url, json=body)
            except httpx.HTTPError as exc:
                why = type(exc).__name__
            else:
                if response.status_code < 300:
                    self.stats.sent += 1
                    return True
                if response.status_code != 429 and response.status_code < 500:
                    why = f"HTTP {response.status_code}"
                    break  # the receiver refuses this alert: retrying changes nothing
                why = f"HTTP {response.status_code}"
            if attempt < self.retries:
                self._stopping.wait(delay)
                delay *= 2
        self.stats.failed += 1
        log.warning("alert %s for %s not delivered: %s", alert.kind, alert.trader, why)
        return False
