"""``/api/statistics``: the arena's KPIs with bootstrap intervals, computed from the views
(``projections.live_statistics``) and kept for a while: resampling every trader's returns
takes tens of milliseconds, and hourly statistics barely move within a minute."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Hashable
from dataclasses import dataclass, field

from projections.documents import AccountTotalsDocument, AnalyticsDocument, TradesDocument
from projections.live_statistics import StatisticsDocument, live_statistics

#: The statistics are recomputed at most this often (and only when a view has changed).
REFRESH_S = 60.0


class StatisticsResponse(StatisticsDocument, kw_only=True):
    #: When these statistics were computed (unix ms); they are at most a minute behind.
    computedAt: int = 0
    serverTime: int = 0


@dataclass
class StatisticsCache:
    markers: tuple[Hashable, ...] | None = None
    computed_at: float = 0.0  # time.monotonic()
    computed_ms: int = 0
    document: StatisticsDocument | None = None
    computes: int = 0  # how many times the statistics were computed (for tests)
    #: One computation at a time: requests meeting a stale cache wait for it, not add more.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def get(
        self,
        markers: tuple[Hashable, ...],
        account_totals: AccountTotalsDocument,
        trades: TradesDocument,
        analytics: AnalyticsDocument | None,
    ) -> tuple[StatisticsDocument, int]:
        async with self.lock:
            fresh = time.monotonic() - self.computed_at < REFRESH_S
            if self.document is not None and (markers == self.markers or fresh):
                return self.document, self.computed_ms
            # Off the event loop: the other routes keep answering while it resamples.
            document = await asyncio.to_thread(live_statistics, account_totals, trades, analytics)
            self.markers, self.document = markers, document
            self.computed_at, self.computed_ms = time.monotonic(), int(time.time() * 1000)
            self.computes += 1
            return document, self.computed_ms
