"""A replayed minute marks the simulator along its OHLC path (open, the extreme nearer the
open, the other extreme, close), so a stop, a target, a resting limit or a liquidation the
candle reached sets off inside the minute, at the price the path reached, even when the
minute closes back on the other side (a close-only mark would never see it)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest

from application.ports import MinutePath
from infrastructure.hyperliquid.simulated import SimulatedHyperliquid, path_updates
from infrastructure.market.replay import ReplayMarket, ohlc_path
from infrastructure.market.synthetic import Candles, CoinTape
from infrastructure.simulator.engine import SimVenue
from infrastructure.simulator.gateway import SimGateway
from tests.unit.infrastructure.simulator.simkit import (
    ETH,
    HOUR0,
    T0,
    fills,
    limit,
    one,
    position,
    status_of,
    trigger,
    venue,
)

START = datetime.fromtimestamp(T0 / 1000, UTC)  # the venue's time: the tape starts there
MINUTE = timedelta(minutes=1)

#: (open, high, low, close) per minute; quiet minutes around 2000 otherwise.
Bar = tuple[float, float, float, float]
QUIET: Bar = (2000.0, 2000.5, 1999.5, 2000.0)


@dataclass(frozen=True)
class BarsTape:
    """A replay tape of hand-written ETH minutes from ``START``."""

    start: datetime
    coins: dict[str, CoinTape]

    @property
    def end(self) -> datetime:
        return self.start + len(self.coins["ETH"].minutes) * MINUTE


def market(*bars: Bar, start: datetime = START) -> ReplayMarket:
    rows = np.array(list(bars) + [QUIET] * 10, dtype=np.float64)
    n = len(rows)
    minutes = Candles(
        interval_s=60,
        open_time=np.arange(n, dtype=np.int64) * 60,
        open=rows[:, 0],
        high=rows[:, 1],
        low=rows[:, 2],
        close=rows[:, 3],
        volume=np.full(n, 10.0),
    )
    tape = CoinTape("ETH", minutes, np.full(n, 1e6), np.full(n, 1e-5))
    return ReplayMarket(BarsTape(start, {"ETH": tape}))


def simulated(sim: SimVenue) -> SimulatedHyperliquid:
    """The Hyperliquid adapter over ``sim`` (only its marks are used here)."""
    return SimulatedHyperliquid(
        "intrabar",
        SimGateway(sim),
        fund_usdc=Decimal(0),
        clock_ms=lambda: sim.now_ms,
        fee_taker=Decimal("0.00045"),
    )


def path_at(replay: ReplayMarket, at: datetime) -> MinutePath:
    path = asyncio.run(replay.minute_path(["ETH"], at))
    assert path is not None
    return path


def walk(sim: SimVenue, replay: ReplayMarket, minute: int) -> None:
    """What ``Arena._mark`` does at the close of ``minute`` (0 = the tape's first)."""
    at = START + (minute + 1) * MINUTE
    rates = asyncio.run(replay.funding_rates(["ETH"], at))
    simulated(sim).mark_path(path_at(replay, at), at, rates)


def long_eth() -> SimVenue:
    sim = venue()  # ETH mid 2000 at T0, a flat book 10 bps wide
    assert one(sim, limit(ETH, True, "2010", "1", "Ioc")) == {
        "filled": {"totalSz": "1.0", "avgPx": "2001.0", "oid": 1}
    }
    return sim


def last_fill(sim: SimVenue) -> tuple[int, Decimal, str]:
    row = fills(sim)[-1]
    return row["oid"], Decimal(row["px"]), row["dir"]


def test_a_stop_pierced_by_the_low_fires_near_the_stop_though_the_minute_closes_above() -> None:
    sim = long_eth()
    assert one(sim, trigger(ETH, False, "1900", "1", "1988", "sl")) == "waitingForTrigger"
    # Opens at 2000, up to 2003 (nearer), down to 1985 (through the stop), closes at 1999.
    walk(sim, market((2000.0, 2003.0, 1985.0, 1999.0)), 0)
    assert status_of(sim, 2) == "filled"
    oid, px, direction = last_fill(sim)
    assert (oid, direction) == (2, "Close Long")
    # The best bid around the path's 1985 (half the 10 bps spread below), not the close.
    assert px == Decimal("1984.0")
    assert position(sim, "ETH") is None


def test_a_target_touched_by_the_high_fires_there_though_the_minute_closes_below() -> None:
    sim = long_eth()
    assert one(sim, trigger(ETH, False, "1900", "1", "2012", "tp")) == "waitingForTrigger"
    walk(sim, market((2000.0, 2015.0, 1998.0, 2004.0)), 0)
    assert status_of(sim, 2) == "filled"
    oid, px, _ = last_fill(sim)
    assert oid == 2
    assert px == Decimal("2013.9")  # the bid around the high (on the tick), above the target
    assert position(sim, "ETH") is None


def test_a_resting_limit_the_low_crosses_fills_at_its_price() -> None:
    sim = venue()
    assert one(sim, limit(ETH, True, "1990", "1")) == {"resting": {"oid": 1}}
    walk(sim, market((2000.0, 2001.0, 1988.0, 1996.0)), 0)
    assert status_of(sim, 1) == "filled"
    row = fills(sim)[-1]
    assert (row["oid"], row["px"], row["crossed"]) == (1, "1990.0", False)


def test_a_limit_the_minute_does_not_cross_keeps_resting() -> None:
    sim = venue()
    assert one(sim, limit(ETH, True, "1990", "1")) == {"resting": {"oid": 1}}
    walk(sim, market((2000.0, 2001.0, 1990.0, 1996.0)), 0)  # touches, never below
    assert status_of(sim, 1) == "open"


@pytest.mark.parametrize(
    ("bar", "fired", "left"),
    [
        # Opens 5 below the high, 23 above the low: the high (the target) comes first.
        ((2008.0, 2013.0, 1985.0, 2000.0), 3, 2),
        # Opens 7 above the low, 21 below the high: the low (the stop) comes first.
        ((1992.0, 2013.0, 1985.0, 2000.0), 2, 3),
    ],
)
def test_a_minute_reaching_stop_and_target_fires_the_one_its_path_reaches_first(
    bar: Bar, fired: int, left: int
) -> None:
    sim = long_eth()
    assert one(sim, trigger(ETH, False, "1900", "1", "1988", "sl")) == "waitingForTrigger"
    assert one(sim, trigger(ETH, False, "1900", "1", "2012", "tp")) == "waitingForTrigger"
    walk(sim, market(bar), 0)
    assert status_of(sim, fired) == "filled"
    assert status_of(sim, left) != "filled"
    assert [row["oid"] for row in fills(sim)] == [1, fired]
    assert position(sim, "ETH") is None


def test_the_path_goes_to_the_nearer_extreme_first_and_a_tie_by_the_candle_direction() -> None:
    assert ohlc_path(100.0, 103.0, 95.0, 99.0) == (100.0, 103.0, 95.0, 99.0)
    assert ohlc_path(100.0, 108.0, 97.0, 105.0) == (100.0, 97.0, 108.0, 105.0)
    # Equally far from both: a rising minute dips first, a falling one rises first.
    assert ohlc_path(100.0, 104.0, 96.0, 101.0) == (100.0, 96.0, 104.0, 101.0)
    assert ohlc_path(100.0, 104.0, 96.0, 99.0) == (100.0, 104.0, 96.0, 99.0)
    assert ohlc_path(100.0, 104.0, 96.0, 100.0) == (100.0, 96.0, 104.0, 100.0)


def test_the_path_is_the_closed_minute_only_and_its_close_is_the_mid() -> None:
    replay = market((2000.0, 2003.0, 1985.0, 1999.0), (1999.0, 2010.0, 1998.0, 2009.0))
    at = START + 2 * MINUTE + timedelta(seconds=30)  # half-way through minute 2
    path = path_at(replay, at)
    assert path.closes_at == START + 2 * MINUTE  # minute 1, closed before ``at``
    assert [p["ETH"] for p in path.points] == [
        Decimal("1999"),
        Decimal("1998"),
        Decimal("2010"),
        Decimal("2009"),
    ]
    assert dict(path.points[-1]) == asyncio.run(replay.mids(["ETH"], at))
    assert replay.minute_paths(["ETH"], START + 2 * MINUTE, 1) == [path]


def test_path_points_lie_strictly_inside_the_minute_after_the_venue_time() -> None:
    close = START + MINUTE
    close_ms = T0 + 60_000
    path = MinutePath(close, tuple({"ETH": Decimal(px)} for px in ("1", "2", "3", "4")))
    rates = {"ETH": Decimal("0.0001")}
    stamps = [ms for ms, _, _ in path_updates(T0, path, close_ms, rates)]
    assert stamps == [T0 + 15_000, T0 + 30_000, T0 + 45_000, close_ms]
    # A venue updated late in the minute (a paper engine's previous second): after it.
    stamps = [ms for ms, _, _ in path_updates(close_ms - 800, path, close_ms + 200, rates)]
    assert stamps == [close_ms - 600, close_ms - 400, close_ms - 200, close_ms + 200]
    # A venue already past the close (the minute walked at an earlier tick): the close only.
    assert path_updates(close_ms + 200, path, close_ms + 1200, rates) == [
        (close_ms + 1200, path.points[-1], rates)
    ]


def test_a_minute_is_walked_once_however_often_the_venue_is_marked_in_it() -> None:
    sim = venue()
    replay = market((2000.0, 2001.0, 1988.0, 1996.0), QUIET)
    adapter = simulated(sim)
    at = START + MINUTE
    path = path_at(replay, at)
    adapter.mark_path(path, at)
    # Placed after the minute's low: the next second's mark must not fill it from that low.
    assert one(sim, limit(ETH, True, "1990", "1")) == {"resting": {"oid": 1}}
    later = at + timedelta(seconds=1)
    again = path_at(replay, later)
    assert again == path
    adapter.mark_path(again, later)
    assert status_of(sim, 1) == "open"
    assert sim.now_ms == T0 + 61_000


def test_funding_is_settled_once_at_the_hour_with_the_close_as_the_oracle() -> None:
    hour_close = datetime.fromtimestamp((HOUR0 + 3_600_000) / 1000, UTC)
    start = hour_close - MINUTE  # the tape's first minute closes at the hour
    sim = long_eth()
    replay = market((2000.0, 2030.0, 1960.0, 2010.0), start=start)
    path = path_at(replay, hour_close)
    simulated(sim).mark_path(path, hour_close, {"ETH": Decimal("0.0001")})
    history = sim.info(
        {"type": "userFunding", "user": "0x" + "a1" * 20, "startTime": 0, "endTime": 2**62}
    )
    assert [row["time"] for row in history] == [HOUR0 + 3_600_000]
    # −szi × oracle × rate with the close (2010) as the oracle: −1 × 2010 × 0.0001.
    assert [row["delta"]["usdc"] for row in history] == ["-0.201"]


def test_a_low_below_the_liquidation_price_liquidates_though_the_minute_closes_above() -> None:
    sim = venue(cash="100")
    one(sim, limit(ETH, True, "2010", "0.9", "Ioc"))  # liquidated below 1929.37687642
    assert position(sim, "ETH")["liquidationPx"] == "1929.37687642"  # type: ignore[index]
    # Opens 2000, up to 2005 (nearer), down to 1925 (below it), closes back at 1995.
    walk(sim, market((2000.0, 2005.0, 1925.0, 1995.0)), 0)
    assert position(sim, "ETH") is None
    row = fills(sim)[-1]
    assert (row["px"], row["dir"], row.get("liquidation") is not None) == (
        "1925.0",
        "Close Long",
        True,
    )
