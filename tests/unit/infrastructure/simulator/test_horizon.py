"""The simulator's bound on quiet price updates (a backtest's bulk path): it stops at the
first update that may fire a trigger, fill a resting order, run a scheduled cancel or
liquidate, never later; and quiet updates are taken as ``advance`` takes prices."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from infrastructure.simulator import sweep
from infrastructure.simulator.config import SimConfig
from infrastructure.simulator.horizon import quiet_updates, take_quiet
from infrastructure.simulator.margin import maintenance, summarize
from infrastructure.simulator.rules import HOUR_MS
from infrastructure.simulator.state import Account, MarketPrices, Order, Position, Trigger
from infrastructure.simulator.trading import Venue

NOW = 1_700_000_000_000 - 1_700_000_000_000 % HOUR_MS
MIN = 60_000
TIMES = [NOW + (i + 1) * MIN for i in range(8)]
ZERO_RATE = Decimal(0)


def venue(account: Account, price: str = "40000") -> Venue:
    v = Venue(SimConfig())
    v.core.now_ms = NOW
    v.core.funding_hour = NOW
    px = Decimal(price)
    v.core.markets["BTC"] = MarketPrices(mid=px, mark=px, oracle=px)
    v.core.accounts["0xabc"] = account
    return v


def order(oid: int = 1, **fields: object) -> Order:
    base: dict[str, object] = {
        "oid": oid,
        "user": "0xabc",
        "asset": 0,
        "coin": "BTC",
        "is_buy": False,
        "limit_px": Decimal("39000"),
        "orig_sz": Decimal("0.1"),
        "sz": Decimal("0.1"),
        "reduce_only": True,
        "timestamp": NOW,
    }
    base.update(fields)
    return Order(**base)  # type: ignore[arg-type]


def prices(*values: float) -> dict[str, np.ndarray]:
    return {"BTC": np.asarray(values, dtype=np.float64)}


FLAT = prices(*[40_000.0] * 8)


def long(size: str = "0.1", entry: str = "40000", cash: str = "1000") -> Account:
    szi = Decimal(size)
    basis = szi * Decimal(entry)
    return Account(cash=Decimal(cash) - basis, funded=True, positions={"BTC": Position(szi, basis)})


def test_a_stop_below_the_price_stops_at_the_first_low_that_reaches_it() -> None:
    acct = long()
    stop = order(trigger=Trigger(is_market=True, px=Decimal("39000"), tpsl="sl"))
    acct.open_orders = {1: stop}
    lows = prices(39_900, 39_500, 39_100, 38_999, 38_000, 39_500, 40_000, 40_000)
    assert quiet_updates(venue(acct), TIMES, lows, FLAT, ZERO_RATE) == 3


def test_a_target_above_the_price_stops_at_the_first_high_that_reaches_it() -> None:
    acct = long()
    target = order(limit_px=Decimal("41000"), trigger=Trigger(True, Decimal("41000"), "tp"))
    acct.open_orders = {1: target}
    highs = prices(40_100, 40_500, 41_000, 41_500, 40_000, 40_000, 40_000, 40_000)
    assert quiet_updates(venue(acct), TIMES, FLAT, highs, ZERO_RATE) == 2


def test_the_rounding_of_the_mid_counts_as_reaching_the_trigger() -> None:
    acct = long()
    acct.open_orders = {1: order(trigger=Trigger(True, Decimal("39000"), "sl"))}
    lows = prices(39_000.2, 40_000, 40_000, 40_000, 40_000, 40_000, 40_000, 40_000)
    assert quiet_updates(venue(acct), TIMES, lows, FLAT, ZERO_RATE) == 0


def test_a_resting_buy_stops_where_a_low_crosses_its_limit() -> None:
    acct = Account(cash=Decimal(1000), funded=True)
    acct.open_orders = {1: order(is_buy=True, reduce_only=False, tif="Gtc")}
    lows = prices(39_900, 39_800, 39_700, 39_600, 39_001, 38_999, 40_000, 40_000)
    assert quiet_updates(venue(acct), TIMES, lows, FLAT, ZERO_RATE) == 5


def test_an_order_of_another_kind_stops_at_once() -> None:
    acct = Account(cash=Decimal(1000), funded=True)
    acct.open_orders = {1: order(tif="Ioc", reduce_only=False)}
    assert quiet_updates(venue(acct), TIMES, FLAT, FLAT, ZERO_RATE) == 0


def test_a_scheduled_cancel_stops_at_its_time() -> None:
    acct = Account(cash=Decimal(1000), funded=True, cancel_at=TIMES[4] - 1)
    assert quiet_updates(venue(acct), TIMES, FLAT, FLAT, ZERO_RATE) == 4


def test_nothing_open_is_quiet_throughout() -> None:
    acct = Account(cash=Decimal(1000), funded=True)
    assert quiet_updates(venue(acct), TIMES, FLAT, FLAT, ZERO_RATE) == len(TIMES)


@pytest.mark.parametrize("rate", [Decimal(0), Decimal("0.001")])
def test_liquidation_is_bounded_before_the_first_price_that_may_liquidate(
    rate: Decimal,
) -> None:
    # 1 BTC long at 40,000 with 1,500 of margin: liquidated near 38,980 (BTC 40x: mm 1.25 %).
    acct = long(size="1", cash="1500")
    v = venue(acct)
    path = [39_900.0, 39_600.0, 39_400.0, 39_200.0, 39_000.0, 38_900.0, 38_000.0, 37_000.0]
    k = quiet_updates(v, TIMES, prices(*path), prices(*path), rate)
    asset = v.by_coin["BTC"]

    def solvent(px: float) -> bool:
        marks = {"BTC": Decimal(repr(px))}
        summary = summarize(acct, marks, v.by_coin)
        room = summary.cross_value - abs(acct.positions["BTC"].szi) * marks["BTC"] * rate
        return room >= maintenance(acct.positions["BTC"], marks["BTC"], asset)

    assert all(solvent(px) for px in path[:k])  # never past a price that may liquidate
    assert not solvent(path[k] * (1 - 1e-5))  # and no earlier than needed
    assert 0 < k < len(path)


def test_quiet_updates_are_taken_as_advance_takes_prices() -> None:
    quiet, full = venue(Account()), venue(Account())
    updates = [
        (t, {"BTC": Decimal(40_000 + i)}, {"BTC": Decimal("0.00001")})
        for i, t in enumerate(TIMES[:5])
    ]
    take_quiet(quiet, updates)
    for t, mids, rates in updates:
        sweep.advance(full, t, mids, {}, {}, rates)
    assert quiet.core.epoch == full.core.epoch == 5
    assert quiet.core.now_ms == full.core.now_ms
    assert quiet.core.markets["BTC"].mid == full.core.markets["BTC"].mid
    assert quiet.core.markets["BTC"].funding_rate == full.core.markets["BTC"].funding_rate
    assert quiet.candles.snapshot("BTC", "1m", NOW, TIMES[-1]) == full.candles.snapshot(
        "BTC", "1m", NOW, TIMES[-1]
    )


def test_an_update_at_the_funding_hour_is_refused() -> None:
    v = venue(Account())
    with pytest.raises(ValueError, match="funding hour"):
        take_quiet(v, [(NOW + HOUR_MS, {"BTC": Decimal(40_000)}, {})])


def _walk(minutes: int) -> list[tuple[int, dict[str, Decimal], dict[str, Decimal]]]:
    """Minute paths as a backtest walks them: three points inside each minute, the close
    on the next minute's first millisecond; ties written differently (40000 and 40000.0),
    a zero price (not a price), a coin the venue does not list, rates now and then."""
    updates: list[tuple[int, dict[str, Decimal], dict[str, Decimal]]] = []
    for m in range(minutes):
        start = NOW + m * MIN
        base = 40_000 + (m * 37) % 101 - 50
        points = [Decimal(base), Decimal(f"{base - 3}.0"), Decimal(base + 3), Decimal(base)]
        for k, px in enumerate(points):
            stamp = start + (k + 1) * MIN // 4 if k < 3 else start + MIN
            mids = {"BTC": px, "ETH": Decimal(2_000 + k), "NOPE": Decimal(1)}
            if m == 5 and k == 1:
                mids["BTC"] = Decimal(0)
            rates = {"BTC": Decimal(f"0.0000{m % 9 + 1}")} if k == 3 and m % 3 == 0 else {}
            updates.append((stamp, mids, rates))
    return updates


def test_quiet_minutes_leave_the_candles_and_prices_an_update_at_a_time_leaves() -> None:
    # take_quiet folds each bar's prices into one change; the bars, at every interval,
    # and the prices must come out as update-by-update ``advance`` leaves them.
    quiet, full = venue(Account()), venue(Account())
    updates = _walk(59)  # within the hour: advance settles no funding
    take_quiet(quiet, updates)
    for t, mids, rates in updates:
        sweep.advance(full, t, mids, {}, {}, rates)
    assert quiet.core.epoch == full.core.epoch == len(updates)
    assert quiet.core.now_ms == full.core.now_ms
    for coin in ("BTC", "ETH"):
        q, f = quiet.core.markets[coin], full.core.markets[coin]
        assert (q.mid, q.mark, q.oracle, q.funding_rate) == (
            f.mid,
            f.mark,
            f.oracle,
            f.funding_rate,
        )
        for interval in ("1m", "3m", "15m", "1h", "4h"):
            end = NOW + 60 * MIN
            ours = quiet.candles.snapshot(coin, interval, NOW, end)
            assert ours == full.candles.snapshot(coin, interval, NOW, end)
            assert ours
        assert quiet.candles.day(coin, end) == full.candles.day(coin, end)


def test_folded_prices_keep_the_first_of_equal_extremes() -> None:
    from infrastructure.simulator.candles import CandleBars

    one_by_one, folded = CandleBars(), CandleBars()
    points = [
        (NOW + 1, Decimal("100")),
        (NOW + 2, Decimal("100.0")),
        (NOW + 3, Decimal("99.00")),
        (NOW + 4, Decimal("99")),
        (NOW + 5, Decimal("100.00")),
        (NOW + MIN + 1, Decimal("100.0")),  # the next minute: the hour's bar has both
        (NOW + MIN + 2, Decimal("99.0")),
        (NOW + MIN + 3, Decimal("99.5")),
    ]
    for t, px in points:
        one_by_one.on_price("BTC", t, px)
    folded.on_prices("BTC", points)

    def bars(candles: CandleBars) -> list[tuple[str, ...]]:
        return [
            (str(bar.t), str(bar.o), str(bar.h), str(bar.low), str(bar.c))
            for series in (candles._minutes, candles._hours)
            for bar in series["BTC"].values()
        ]

    # Equal prices written differently: the first of them stays (the wire form hides it).
    assert bars(folded) == bars(one_by_one)
    assert bars(folded) == [
        (str(NOW), "100", "100", "99.00", "100.00"),
        (str(NOW + MIN), "100.0", "100.0", "99.0", "99.5"),
        (str(NOW), "100", "100", "99.00", "99.5"),
    ]


def test_venues_given_the_same_updates_each_take_them_from_their_own_time() -> None:
    # One tuple of updates for several venues (a backtest's market): what is read from
    # the updates is shared, so a venue at another time must still get its own.
    updates = tuple(_walk(20))
    later = venue(Account())
    later.core.now_ms = NOW + 5 * MIN + 30_000  # ahead of the first points: they take its time
    venues = [venue(Account()), venue(Account()), later, venue(Account())]
    fulls = [venue(Account()), venue(Account()), venue(Account()), venue(Account())]
    fulls[2].core.now_ms = later.core.now_ms
    for quiet, full in zip(venues, fulls, strict=True):
        take_quiet(quiet, updates)
        for t, mids, rates in updates:
            sweep.advance(full, t, mids, {}, {}, rates)
        end = NOW + 60 * MIN
        assert quiet.candles.snapshot("BTC", "1m", NOW, end) == full.candles.snapshot(
            "BTC", "1m", NOW, end
        )
        assert quiet.core.now_ms == full.core.now_ms
        assert quiet.core.epoch == full.core.epoch
    early = venues[0].candles.snapshot("BTC", "1m", NOW, NOW + 60 * MIN)
    assert later.candles.snapshot("BTC", "1m", NOW, NOW + 60 * MIN) != early
