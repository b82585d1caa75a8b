"""One market data provider shared by the traders of a tick: a snapshot of the same coins at
the same instant is assembled once and handed to every trader that asks for it.

Cycles spawned by one tick share its ``now``, so traders on the same coins ask for the same
snapshot; assembling it (candles, indicators, series) per trader was a sixth of a cycle with
many traders. Snapshots are immutable, so sharing one is safe; a failure (missing or stale
data) is shared too, and each trader records its own ``CycleSkipped``. Only the newest
instant is kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Protocol, runtime_checkable

from application.ports import (
    FundingFeed,
    IntrabarFeed,
    MarketData,
    MarketSnapshot,
    MinutePath,
    MissingData,
    PromptLimits,
)


@runtime_checkable
class PreparesPrompts(Protocol):
    """A prompt renderer that can render what the traders of a tick share (the market part,
    the limits) once, before their cycles (``JinjaPromptRenderer.prepare``)."""

    def prepare(
        self,
        *,
        system_template: str,
        user_template: str,
        snapshot: MarketSnapshot,
        limits: PromptLimits,
        as_of: datetime,
    ) -> None: ...


class SharedSnapshots:
    def __init__(self, inner: MarketData) -> None:
        self.inner = inner
        self._as_of: datetime | None = None
        self._pending: dict[tuple[str, ...], asyncio.Future[MarketSnapshot]] = {}

    @property
    def max_staleness_s(self) -> float:
        return self.inner.max_staleness_s

    @max_staleness_s.setter
    def max_staleness_s(self, value: float) -> None:
        self.inner.max_staleness_s = value

    def _shared(self, coins: Sequence[str], as_of: datetime) -> asyncio.Future[MarketSnapshot]:
        if as_of != self._as_of:
            self._as_of = as_of
            self._pending = {}
        key = tuple(coins)
        shared = self._pending.get(key)
        if shared is None:
            shared = asyncio.ensure_future(self.inner.snapshot(coins, as_of))
            # A failure is each asker's to record; one nobody asked for is not an error.
            shared.add_done_callback(_retrieved)
            self._pending[key] = shared
        return shared

    def prefetch(self, coins: Sequence[str], as_of: datetime) -> None:
        """Start assembling the snapshot now (the tick, as it spawns the cycles that will ask
        for it): it is then the tick's work, done once before the first of them runs, not
        a wait inside that trader's cycle."""
        self._shared(coins, as_of)

    async def snapshot(self, coins: Sequence[str], as_of: datetime) -> MarketSnapshot:
        # shield: one trader's cancelled cycle must not cancel the others' snapshot.
        return await asyncio.shield(self._shared(coins, as_of))

    async def mids(self, coins: Sequence[str], as_of: datetime) -> dict[str, Decimal]:
        return await self.inner.mids(coins, as_of)

    async def funding_rates(self, coins: Sequence[str], as_of: datetime) -> dict[str, Decimal]:
        if not isinstance(self.inner, FundingFeed):
            raise MissingData(f"{type(self.inner).__name__} has no funding rates")
        return await self.inner.funding_rates(coins, as_of)

    async def minute_path(self, coins: Sequence[str], as_of: datetime) -> MinutePath | None:
        if not isinstance(self.inner, IntrabarFeed):
            return None  # no candles (a live feed): the venue marks the mids
        return await self.inner.minute_path(coins, as_of)


def _retrieved(future: asyncio.Future[MarketSnapshot]) -> None:
    if not future.cancelled():
        future.exception()
