"""The event store's availability as the arena sees it: an outage stops the arena's work
instead of stalling it.

Every store call is synchronous and runs on the event loop that also serves the API. While
PostgreSQL is unreachable each call waits for the pool's timeout, so an arena that kept
cycling would freeze the loop (and the API with it) for one timeout per trader per tick.
With the guard, the first call that fails marks the store down: ticks, cycles,
reconciliations and flattens are skipped without touching the store (nothing can be
recorded, so nothing may be sent), and the store is probed off the loop, with backoff,
until it answers; then ticks resume as before. Both transitions are logged and alerted
once. (The projection worker already reads the store in a thread of its own.)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from eventsourcing.persistence import InterfaceError, OperationalError

from application.ports import Alerts

log = logging.getLogger(__name__)

#: Seconds between probes while the store is down (the last one repeats).
BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)


def is_outage(exc: BaseException) -> bool:
    """A failure of the store itself (connection refused, lost, timed out), as opposed to a
    refused write (an integrity conflict) or a bug."""
    return isinstance(exc, OperationalError | InterfaceError)


class StoreGuard:
    def __init__(
        self,
        probe: Callable[[], object],
        *,
        alerts: Alerts,
        probe_timeout_s: float = 15.0,
        backoff_s: Sequence[float] = BACKOFF_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``probe``: a cheap read of the store (run in a thread, never on the loop)."""
        self.probe = probe
        self.alerts = alerts
        self.probe_timeout_s = probe_timeout_s
        self.backoff_s = tuple(backoff_s)
        self.monotonic = monotonic
        self.down = False
        self.reason = ""
        self.outages = 0
        self._failed_probes = 0
        self._next_probe = 0.0
        self._probing = False

    def failed(self, exc: BaseException) -> bool:
        """Note a failure of a store call; True when it was an outage (the store is down)."""
        if not is_outage(exc):
            return False
        if not self.down:
            self.down = True
            self.outages += 1
            self.reason = str(exc)[:300] or type(exc).__name__
            self._failed_probes = 0
            self._next_probe = self.monotonic() + self.backoff_s[0]
            log.error("event store down: %s; the arena stops until it answers", self.reason)
            self.alerts.alert("engine", "store_down", f"event store unreachable: {self.reason}")
        return True

    async def ready(self) -> bool:
        """Whether the arena may use the store now (probing it, off the loop, when due)."""
        if not self.down:
            return True
        if self._probing or self.monotonic() < self._next_probe:
            return False
        self._probing = True
        try:
            await asyncio.wait_for(asyncio.to_thread(self.probe), self.probe_timeout_s)
        except (TimeoutError, OperationalError, InterfaceError) as exc:
            self._failed_probes += 1
            wait = self.backoff_s[min(self._failed_probes, len(self.backoff_s) - 1)]
            self._next_probe = self.monotonic() + wait
            log.warning("event store still down (%r); next probe in %.0f s", exc, wait)
            return False
        finally:
            self._probing = False
        self.down = False
        log.warning("event store answers again after: %s", self.reason)
        self.alerts.alert("engine", "store_recovered", f"event store answers again ({self.reason})")
        return True
