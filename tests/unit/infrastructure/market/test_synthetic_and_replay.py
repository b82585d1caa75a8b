"""The seeded synthetic tape, candle aggregation, and point-in-time replay (no look-ahead)."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest

from application.ports import LookAheadError, MarketSnapshot, MissingData
from infrastructure.market import indicators as ta
from infrastructure.market.replay import ReplayMarket
from infrastructure.market.synthetic import (
    DEFAULT_PROFILE,
    PROFILES,
    Candles,
    CoinTape,
    SyntheticTape,
    aggregate,
)

START = datetime(2025, 10, 17, tzinfo=UTC)
COINS = ("BTC", "ETH", "DOGE")
# The replay needs 61 closed 4-hour candles (50 for EMA50 + 10 series points + 1).
WARM_MINUTES = 61 * 240
TAPE_MINUTES = WARM_MINUTES + 120
SPLIT = WARM_MINUTES + 40  # the last minute index two tapes below share


def _arrays(candles: Candles) -> list[np.ndarray]:
    return [
        candles.open_time,
        candles.open,
        candles.high,
        candles.low,
        candles.close,
        candles.volume,
    ]


def _tape_arrays(tape: SyntheticTape) -> list[np.ndarray]:
    out: list[np.ndarray] = []
    for coin in sorted(tape.coins):
        t = tape.coins[coin]
        out += [*_arrays(t.minutes), t.open_interest, t.funding_hourly]
    return out


# -- the synthetic tape ---------------------------------------------------------------------


def test_same_seed_gives_the_same_tape_bit_for_bit() -> None:
    a = SyntheticTape(COINS, START, 3000, seed=11, anchor_minute=100)
    b = SyntheticTape(COINS, START, 3000, seed=11, anchor_minute=100)
    assert list(a.coins) == list(b.coins) == list(COINS)
    for x, y in zip(_tape_arrays(a), _tape_arrays(b), strict=True):
        assert x.dtype == y.dtype
        assert x.tobytes() == y.tobytes()


def test_another_seed_gives_another_tape() -> None:
    a = SyntheticTape(COINS, START, 3000, seed=11)
    b = SyntheticTape(COINS, START, 3000, seed=12)
    for coin in COINS:
        assert not np.array_equal(a.coins[coin].minutes.close, b.coins[coin].minutes.close)
        assert not np.array_equal(a.coins[coin].minutes.volume, b.coins[coin].minutes.volume)


def test_coins_in_one_tape_have_independent_paths() -> None:
    tape = SyntheticTape(("ETH", "SOL"), START, 500, seed=3)
    eth = np.diff(np.log(tape.coins["ETH"].minutes.close))
    sol = np.diff(np.log(tape.coins["SOL"].minutes.close))
    assert not np.allclose(eth / eth.std(), sol / sol.std())


@pytest.mark.parametrize("anchor", [0, 1, 777, 1999])
@pytest.mark.parametrize("coin", ["BTC", "ETH", "SOL", "DOGE", "XRP", "BNB", "ZZZ"])
def test_anchor_minute_closes_at_the_profile_start_price(coin: str, anchor: int) -> None:
    tape = SyntheticTape((coin,), START, 2000, seed=5, anchor_minute=anchor)
    expected = PROFILES.get(coin, DEFAULT_PROFILE).start_price
    close = tape.coins[coin].minutes.close
    assert float(close[anchor]) == pytest.approx(expected, rel=1e-12)
    # Only the anchor minute is pinned: its neighbours moved.
    neighbour = anchor + 1 if anchor + 1 < len(close) else anchor - 1
    assert float(close[neighbour]) != pytest.approx(expected, rel=1e-9)


def test_anchor_beyond_the_tape_is_clamped_to_the_last_minute() -> None:
    tape = SyntheticTape(("BTC",), START, 300, seed=5, anchor_minute=10_000)
    assert float(tape.coins["BTC"].minutes.close[-1]) == pytest.approx(107_000.0, rel=1e-12)


def test_ohlc_is_consistent() -> None:
    tape = SyntheticTape(("BTC", "ETH", "SOL", "DOGE", "XRP", "BNB"), START, 5000, seed=9)
    for coin, t in tape.coins.items():
        m = t.minutes
        assert m.interval_s == 60
        assert len(m) == 5000
        assert np.array_equal(m.open_time, np.arange(5000) * 60)
        assert (m.low <= m.open).all(), coin
        assert (m.low <= m.close).all(), coin
        assert (m.open <= m.high).all(), coin
        assert (m.close <= m.high).all(), coin
        assert (m.low > 0).all(), coin
        assert (m.volume > 0).all(), coin
        # Each bar opens at the previous close.
        assert np.array_equal(m.open[1:], m.close[:-1]), coin
        assert (t.open_interest > 0).all()
        assert len(t.open_interest) == len(t.funding_hourly) == 5000
        # Funding changes on the hour only.
        f = t.funding_hourly
        assert all((f[h * 60 : (h + 1) * 60] == f[h * 60]).all() for h in range(5000 // 60))


def test_tape_validation_and_end() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        SyntheticTape(("BTC",), datetime(2025, 1, 1), 10, seed=1)
    with pytest.raises(ValueError, match="at least one minute"):
        SyntheticTape(("BTC",), START, 0, seed=1)
    tape = SyntheticTape(("BTC",), START, 90, seed=1)
    assert tape.end == START + timedelta(minutes=90)


# -- aggregation ----------------------------------------------------------------------------


def _minutes(rows: list[tuple[float, float, float, float, float]]) -> Candles:
    cols = list(zip(*rows, strict=True))
    return Candles(
        interval_s=60,
        open_time=np.arange(len(rows), dtype=np.int64) * 60,
        open=np.array(cols[0]),
        high=np.array(cols[1]),
        low=np.array(cols[2]),
        close=np.array(cols[3]),
        volume=np.array(cols[4]),
    )


def test_aggregate_to_3_minutes_by_hand() -> None:
    minutes = _minutes(
        [
            # open, high, low, close, volume
            (10.0, 12.0, 9.0, 11.0, 1.0),
            (11.0, 15.0, 10.5, 14.0, 2.0),
            (14.0, 14.5, 8.0, 9.0, 3.0),
            (9.0, 9.5, 7.0, 7.5, 4.0),
            (7.5, 20.0, 7.4, 19.0, 5.0),
            (19.0, 19.5, 18.0, 18.5, 6.0),
            (18.5, 30.0, 1.0, 2.0, 7.0),  # a partial tail: dropped
        ]
    )
    out = aggregate(minutes, 180)
    assert out.interval_s == 180
    assert len(out) == 2
    assert out.open_time.tolist() == [0, 180]
    assert out.open.tolist() == [10.0, 9.0]
    assert out.high.tolist() == [15.0, 20.0]
    assert out.low.tolist() == [8.0, 7.0]
    assert out.close.tolist() == [9.0, 18.5]
    assert out.volume.tolist() == [6.0, 15.0]


def test_aggregate_fewer_minutes_than_one_candle_is_empty() -> None:
    minutes = _minutes([(1.0, 2.0, 0.5, 1.5, 1.0), (1.5, 1.6, 1.4, 1.5, 1.0)])
    out = aggregate(minutes, 180)
    assert len(out) == 0
    assert out.open_time.dtype == np.int64


@pytest.mark.parametrize("interval_s", [180, 4 * 3600])
def test_aggregate_matches_a_hand_computation_on_a_tape(interval_s: int) -> None:
    tape = SyntheticTape(("ETH",), START, 1000, seed=21)
    m = tape.coins["ETH"].minutes
    per = interval_s // 60
    count = 1000 // per
    out = aggregate(m, interval_s)
    assert len(out) == count
    for j in range(count):
        lo, hi = j * per, (j + 1) * per
        assert int(out.open_time[j]) == lo * 60
        assert out.open[j] == m.open[lo]
        assert out.close[j] == m.close[hi - 1]
        assert out.high[j] == max(m.high[lo:hi].tolist())
        assert out.low[j] == min(m.low[lo:hi].tolist())
        assert out.volume[j] == pytest.approx(sum(m.volume[lo:hi].tolist()), rel=1e-12)


def test_last_closed() -> None:
    c = aggregate(SyntheticTape(("BTC",), START, 30, seed=1).coins["BTC"].minutes, 180)
    assert c.last_closed(0) == -1
    assert c.last_closed(179.9) == -1
    assert c.last_closed(180) == 0
    assert c.last_closed(539) == 1


# -- point-in-time replay -------------------------------------------------------------------


@pytest.fixture(scope="module")
def tape() -> SyntheticTape:
    return SyntheticTape(COINS, START, TAPE_MINUTES, seed=77, anchor_minute=WARM_MINUTES)


def _splice(a: np.ndarray, b: np.ndarray, upto: int) -> np.ndarray:
    return np.concatenate([a[: upto + 1], b[upto + 1 :]])


@pytest.fixture(scope="module")
def forked(tape: SyntheticTape) -> SyntheticTape:
    """Equal to ``tape`` up to minute ``SPLIT`` (inclusive), a different future after it."""
    other = SyntheticTape(COINS, START, TAPE_MINUTES, seed=78, anchor_minute=WARM_MINUTES)
    result = copy.copy(tape)
    coins: dict[str, CoinTape] = {}
    for coin, mine in tape.coins.items():
        theirs = other.coins[coin]
        m, o = mine.minutes, theirs.minutes
        minutes = dataclasses.replace(
            m,
            open=_splice(m.open, o.open, SPLIT),
            high=_splice(m.high, o.high, SPLIT),
            low=_splice(m.low, o.low, SPLIT),
            close=_splice(m.close, o.close, SPLIT),
            volume=_splice(m.volume, o.volume, SPLIT),
        )
        coins[coin] = CoinTape(
            coin=coin,
            minutes=minutes,
            open_interest=_splice(mine.open_interest, theirs.open_interest, SPLIT),
            funding_hourly=_splice(mine.funding_hourly, theirs.funding_hourly, SPLIT),
        )
    result.coins = coins
    return result


def _snapshot(
    market: ReplayMarket, as_of: datetime, coins: tuple[str, ...] = COINS
) -> MarketSnapshot:
    return asyncio.run(market.snapshot(coins, as_of))


def _mids(
    market: ReplayMarket, as_of: datetime, coins: tuple[str, ...] = COINS
) -> dict[str, Decimal]:
    return asyncio.run(market.mids(coins, as_of))


def at_minute(minute_end: int, seconds: float = 0) -> datetime:
    """The as-of time at the end of minute index ``minute_end − 1`` plus ``seconds``."""
    return START + timedelta(minutes=minute_end, seconds=seconds)


@pytest.mark.parametrize(
    "as_of",
    [
        at_minute(WARM_MINUTES),  # first as-of with enough history
        at_minute(WARM_MINUTES, 59.999),
        at_minute(SPLIT - 7, 1),
        at_minute(SPLIT),
        at_minute(SPLIT + 1),  # minute SPLIT has just closed: still the shared past
        at_minute(SPLIT + 1, 59.9),  # minute SPLIT + 1 is not over yet
    ],
)
def test_snapshot_uses_only_data_stamped_at_or_before_as_of(
    tape: SyntheticTape, forked: SyntheticTape, as_of: datetime
) -> None:
    a, b = ReplayMarket(tape), ReplayMarket(forked)
    assert _snapshot(a, as_of) == _snapshot(b, as_of)
    assert _mids(a, as_of) == _mids(b, as_of)


def test_the_forked_futures_really_differ(tape: SyntheticTape, forked: SyntheticTape) -> None:
    # The control for the test above: once minute SPLIT + 1 has closed, the tapes disagree.
    a, b = ReplayMarket(tape), ReplayMarket(forked)
    as_of = at_minute(SPLIT + 2)
    assert _mids(a, as_of) != _mids(b, as_of)
    assert _snapshot(a, as_of) != _snapshot(b, as_of)


def test_snapshot_fields_match_the_tape_and_the_indicators(tape: SyntheticTape) -> None:
    market = ReplayMarket(tape)
    as_of = at_minute(WARM_MINUTES + 100, 42)
    elapsed = (as_of - START).total_seconds()
    snap = _snapshot(market, as_of)
    assert snap.as_of == as_of
    assert list(snap.coins) == list(COINS)
    minute = WARM_MINUTES + 100 - 1
    for coin in COINS:
        c = snap.coins[coin]
        t = tape.coins[coin]
        # data_time: the end of the newest whole minute.
        assert c.data_time == START + timedelta(minutes=WARM_MINUTES + 100)
        assert c.data_time <= as_of
        assert c.price == Decimal(f"{t.minutes.close[minute]:.6g}")
        intraday = aggregate(t.minutes, 180)
        i = int(elapsed // 180) - 1
        assert (i + 1) * 180 <= elapsed < (i + 2) * 180
        closes = intraday.close
        ema20 = ta.ema(closes, 20)
        macd = ta.macd(closes)[0]
        rsi7 = ta.rsi(closes, 7)
        rsi14 = ta.rsi(closes, 14)

        def window(values: np.ndarray, last: int) -> list[float]:
            return [round(float(v), 6) for v in values[last - 9 : last + 1]]

        assert len(c.intraday.mid_prices) == 10
        assert c.intraday.mid_prices == window(closes, i)  # oldest → newest
        assert c.intraday.ema20 == window(ema20, i)
        assert c.intraday.macd == window(macd, i)
        assert c.intraday.rsi7 == window(rsi7, i)
        assert c.intraday.rsi14 == window(rsi14, i)
        assert c.ema20 == round(float(ema20[i]), 6) == c.intraday.ema20[-1]
        assert c.macd == round(float(macd[i]), 6)
        assert c.rsi7 == round(float(rsi7[i]), 3)
        assert c.rsi14 == round(float(rsi14[i]), 3)
        assert c.open_interest_latest == round(float(t.open_interest[minute]), 2)
        oi_from = max(0, minute - 1440 + 1)
        assert c.open_interest_average == round(
            float(np.mean(t.open_interest[oi_from : minute + 1])), 2
        )

        long_term = aggregate(t.minutes, 4 * 3600)
        k = int(elapsed // (4 * 3600)) - 1
        lc = long_term.close
        lt = c.long_term
        assert lt.ema20 == round(float(ta.ema(lc, 20)[k]), 6)
        assert lt.ema50 == round(float(ta.ema(lc, 50)[k]), 6)
        assert lt.atr3 == round(float(ta.atr(long_term.high, long_term.low, lc, 3)[k]), 6)
        assert lt.atr14 == round(float(ta.atr(long_term.high, long_term.low, lc, 14)[k]), 6)
        assert lt.macd == window(ta.macd(lc)[0], k)
        assert lt.rsi14 == window(ta.rsi(lc, 14), k)
        assert lt.volume_current == round(float(long_term.volume[k]), 3)
        assert lt.volume_average == round(float(np.mean(long_term.volume[k - 19 : k + 1])), 3)
        assert not any(np.isnan(v) for v in c.intraday.macd + lt.macd + lt.rsi14)


def test_mids_are_the_close_of_the_newest_whole_minute(tape: SyntheticTape) -> None:
    market = ReplayMarket(tape)
    mids = _mids(market, at_minute(1, 30), ("BTC",))  # mids need no indicator warm-up
    assert mids == {"BTC": Decimal(f"{tape.coins['BTC'].minutes.close[0]:.6g}")}
    mids = _mids(market, at_minute(TAPE_MINUTES), COINS)  # the tape's very end
    assert mids == {
        c: Decimal(f"{tape.coins[c].minutes.close[TAPE_MINUTES - 1]:.6g}") for c in COINS
    }


def test_missing_data_before_warm_up_names_the_coin(tape: SyntheticTape) -> None:
    market = ReplayMarket(tape)
    with pytest.raises(MissingData, match=r"ETH: not enough history"):
        _snapshot(market, at_minute(WARM_MINUTES, -1), ("ETH",))


def test_missing_data_before_the_tape_names_the_coin(tape: SyntheticTape) -> None:
    market = ReplayMarket(tape)
    with pytest.raises(MissingData, match=r"BTC: as-of time .* is before the tape"):
        _mids(market, at_minute(0, 59), ("BTC",))
    with pytest.raises(MissingData, match=r"BTC: as-of time .* is before the tape"):
        _snapshot(market, START - timedelta(hours=1), ("BTC",))


def test_missing_data_after_the_end_names_the_coin(tape: SyntheticTape) -> None:
    market = ReplayMarket(tape)
    with pytest.raises(MissingData, match=r"DOGE: the replay tape ends at"):
        _snapshot(market, at_minute(TAPE_MINUTES + 1), ("DOGE",))
    with pytest.raises(MissingData, match=r"DOGE: the replay tape ends at"):
        _mids(market, tape.end + timedelta(days=1), ("DOGE",))


def test_missing_data_for_an_unknown_coin(tape: SyntheticTape) -> None:
    market = ReplayMarket(tape)
    with pytest.raises(MissingData, match=r"the replay tape has no SOL"):
        _snapshot(market, at_minute(WARM_MINUTES + 5), ("BTC", "SOL"))
    with pytest.raises(MissingData, match=r"the replay tape has no SOL"):
        _mids(market, at_minute(WARM_MINUTES + 5), ("SOL",))


def test_guard_refuses_data_stamped_after_as_of(tape: SyntheticTape) -> None:
    market = ReplayMarket(tape)
    market._guard(600.0, 600.0, "BTC minute 9")  # stamped exactly at the as-of time: fine
    market._guard(540.0, 600.0, "BTC minute 8")
    with pytest.raises(LookAheadError, match=r"BTC minute 10 is stamped 60s after the as-of"):
        market._guard(660.0, 600.0, "BTC minute 10")
    with pytest.raises(LookAheadError):
        market._guard(600.5, 600.0, "BTC minute 9")


def test_funding_rates_are_the_snapshots_and_never_from_the_future(
    tape: SyntheticTape, forked: SyntheticTape
) -> None:
    as_of = at_minute(SPLIT + 1)
    a, b = ReplayMarket(tape), ReplayMarket(forked)
    rates = asyncio.run(a.funding_rates(COINS, as_of))
    assert rates == asyncio.run(b.funding_rates(COINS, as_of))
    snapshot = _snapshot(a, as_of)
    for coin in COINS:
        assert float(rates[coin]) == snapshot.coins[coin].funding_rate
        assert rates[coin] == Decimal(f"{tape.coins[coin].funding_hourly[SPLIT]:.6g}")
    with pytest.raises(MissingData):
        asyncio.run(a.funding_rates(("BTC",), START))
