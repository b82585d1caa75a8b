"""SharedSnapshots: one snapshot per coin set and instant, shared by the traders of a tick;
failures are shared too; a new instant asks the provider again."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from application.ports import FundingFeed, IntrabarFeed, MarketSnapshot, MinutePath, MissingData
from application.shared_market import SharedSnapshots
from tests.support.fakes import T0, FixedMarket


class Counting(FixedMarket):
    def __init__(self) -> None:
        super().__init__({"BTC": "100000", "ETH": "4000"})
        self.asked: list[tuple[tuple[str, ...], datetime]] = []

    async def snapshot(self, coins: Sequence[str], as_of: datetime) -> MarketSnapshot:
        self.asked.append((tuple(coins), as_of))
        await asyncio.sleep(0)  # let the other traders ask meanwhile
        return await super().snapshot(coins, as_of)


def test_traders_of_one_tick_share_a_snapshot() -> None:
    inner = Counting()
    market = SharedSnapshots(inner)

    async def tick(as_of: datetime) -> list[MarketSnapshot]:
        return await asyncio.gather(
            market.snapshot(["BTC", "ETH"], as_of),
            market.snapshot(["BTC", "ETH"], as_of),
            market.snapshot(["BTC"], as_of),
        )

    first = asyncio.run(tick(T0))
    assert first[0] is first[1]
    assert set(first[2].coins) == {"BTC"}
    assert inner.asked == [(("BTC", "ETH"), T0), (("BTC",), T0)]
    later = T0 + timedelta(minutes=3)
    second = asyncio.run(tick(later))
    assert second[0] is not first[0]
    assert second[0].as_of == later
    assert len(inner.asked) == 4


def test_a_failure_is_every_askers_failure() -> None:
    inner = Counting()
    inner.missing.add("ETH")
    market = SharedSnapshots(inner)

    async def ask() -> list[BaseException | MarketSnapshot]:
        return await asyncio.gather(
            market.snapshot(["BTC", "ETH"], T0),
            market.snapshot(["BTC", "ETH"], T0),
            return_exceptions=True,
        )

    results = asyncio.run(ask())
    assert all(isinstance(r, MissingData) for r in results)
    assert len(inner.asked) == 1


def test_mids_and_staleness_are_the_providers() -> None:
    inner = Counting()
    market = SharedSnapshots(inner)
    assert asyncio.run(market.mids(["BTC"], T0)) == {"BTC": Decimal("100000")}
    market.max_staleness_s = 30
    assert inner.max_staleness_s == 30
    assert not isinstance(inner, FundingFeed)
    with pytest.raises(MissingData, match="no funding rates"):
        asyncio.run(market.funding_rates(["BTC"], T0))


class WithCandles(Counting):
    """A provider that knows the minute candles (as a replay does)."""

    async def minute_path(self, coins: Sequence[str], as_of: datetime) -> MinutePath | None:
        return MinutePath(as_of, ({c: Decimal(1) for c in coins}, await self.mids(coins, as_of)))


def test_a_minute_path_is_the_providers_and_none_without_candles() -> None:
    # None: the venues are marked with the mids (a live feed has no candles to walk).
    assert asyncio.run(SharedSnapshots(Counting()).minute_path(["BTC"], T0)) is None
    inner = WithCandles()
    assert isinstance(inner, IntrabarFeed)
    path = asyncio.run(SharedSnapshots(inner).minute_path(["BTC"], T0))
    assert path == MinutePath(T0, ({"BTC": Decimal(1)}, {"BTC": Decimal("100000")}))


def test_a_prefetched_snapshot_is_the_one_the_traders_get() -> None:
    inner = Counting()
    market = SharedSnapshots(inner)

    async def tick() -> tuple[MarketSnapshot, MarketSnapshot]:
        market.prefetch(["BTC", "ETH"], T0)  # the tick, as it spawns the cycles
        market.prefetch(["BTC", "ETH"], T0)
        await asyncio.sleep(0)
        await asyncio.sleep(0)  # assembled before any trader asks
        assert inner.asked == [(("BTC", "ETH"), T0)]
        return await market.snapshot(["BTC", "ETH"], T0), await market.snapshot(["BTC", "ETH"], T0)

    first, second = asyncio.run(tick())
    assert first is second
    assert inner.asked == [(("BTC", "ETH"), T0)]


def test_a_prefetched_failure_is_each_askers_and_no_one_elses() -> None:
    inner = Counting()
    inner.missing.add("ETH")
    market = SharedSnapshots(inner)
    unretrieved: list[object] = []

    async def tick() -> BaseException | MarketSnapshot:
        asyncio.get_running_loop().set_exception_handler(lambda _, ctx: unretrieved.append(ctx))
        market.prefetch(["BTC", "ETH"], T0)
        market.prefetch(["ETH"], T0)  # nobody asks for this one
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        result = await asyncio.gather(market.snapshot(["BTC", "ETH"], T0), return_exceptions=True)
        market.prefetch(["BTC"], T0 + timedelta(minutes=3))  # the next tick drops the last
        await asyncio.sleep(0)
        return result[0]

    assert isinstance(asyncio.run(tick()), MissingData)
    import gc

    gc.collect()
    assert unretrieved == []  # no "exception was never retrieved" for the unasked one
