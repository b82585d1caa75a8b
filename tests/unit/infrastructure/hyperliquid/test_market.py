"""HyperliquidMarket over a fake /info (in process and over HTTP through the SDK)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from application.ports import FundingFeed, MarketSnapshot, MissingData, StaleData
from infrastructure.clock import ManualClock
from infrastructure.hyperliquid.market import HyperliquidMarket, parse_candles
from infrastructure.hyperliquid.transport import (
    WEIGHT_PER_MINUTE,
    HttpTransport,
    InProcessTransport,
)
from infrastructure.market.replay import ReplayMarket
from infrastructure.market.synthetic import Candles, CoinTape, SyntheticTape
from tests.support.fake_hl_info import GARBAGE, TIMEOUT, FakeInfo, FakeInfoServer

START = datetime(2025, 10, 17, tzinfo=UTC)  # on a 4-hour boundary, like the venue's candles
WARM = 61 * 240  # minutes: 61 closed 4-hour candles, the indicators' warm-up
TAPE_MINUTES = WARM + 2400
COINS = ("BTC", "ETH", "DOGE")
B = START + timedelta(minutes=WARM + 120)  # a 3-minute boundary, half-way through a 4h candle
AS_OF = B + timedelta(seconds=10)
THREE_M = 180_000
FOUR_H = 14_400_000
B_MS = int(B.timestamp() * 1000)


@pytest.fixture(scope="module")
def tape() -> SyntheticTape:
    return SyntheticTape(COINS, START, TAPE_MINUTES, seed=7)


def _setup(
    coins: dict[str, CoinTape], at: datetime, **kwargs: Any
) -> tuple[FakeInfo, HyperliquidMarket, ManualClock]:
    clock = ManualClock(at)
    fake = FakeInfo(START, coins, clock)
    market = HyperliquidMarket(InProcessTransport(fake, name="fake"), clock=clock, **kwargs)
    return fake, market, clock


def _ramp(minutes: int) -> CoinTape:
    """Every minute closes 0.25 higher; highs 0.5 above the close, lows 0.5 below the open."""
    i = np.arange(minutes, dtype=np.float64)
    open_ = 1000.0 + 0.25 * i
    close = open_ + 0.25
    bars = Candles(
        interval_s=60,
        open_time=np.arange(minutes, dtype=np.int64) * 60,
        open=open_,
        high=close + 0.5,
        low=open_ - 0.5,
        close=close,
        volume=np.full(minutes, 2.0),
    )
    return CoinTape("RAMP", bars, np.full(minutes, 5000.0), np.full(minutes, 0.0000125))


def snap(market: HyperliquidMarket, coins: tuple[str, ...], at: datetime) -> MarketSnapshot:
    return asyncio.run(market.snapshot(coins, at))


# -- what a snapshot holds ----------------------------------------------------------------


def test_indicators_on_a_price_ramp_match_a_hand_computation() -> None:
    # On a straight line an EMA(n) seeded with the SMA sits exactly (n−1)/2 steps behind the
    # price, so MACD(12, 26) = 7 steps; RSI is 100 (no losses); each 4h true range is the
    # candle's 60 rise plus the two 0.5 wicks.
    _, market, _ = _setup({"RAMP": _ramp(TAPE_MINUTES)}, AS_OF)
    s = snap(market, ("RAMP",), AS_OF).coins["RAMP"]
    close_3m = 1000.0 + 0.25 * (WARM + 120)  # the 3m candle that closed at B
    assert close_3m == 4690.0
    assert s.intraday.mid_prices == [close_3m - 0.75 * n for n in range(9, -1, -1)]
    assert s.ema20 == pytest.approx(close_3m - 9.5 * 0.75, abs=1e-9)
    assert s.intraday.ema20 == pytest.approx([p - 7.125 for p in s.intraday.mid_prices], abs=1e-9)
    assert s.macd == pytest.approx(5.25, abs=1e-9)
    assert s.intraday.macd == pytest.approx([5.25] * 10, abs=1e-9)
    assert s.rsi7 == s.rsi14 == 100.0
    close_4h = 1000.0 + 0.25 * WARM  # the last closed 4h candle (B is half-way into the next)
    lt = s.long_term
    assert lt.ema20 == pytest.approx(close_4h - 9.5 * 60, abs=1e-9)
    assert lt.ema50 == pytest.approx(close_4h - 24.5 * 60, abs=1e-9)
    assert lt.atr3 == pytest.approx(61.0, abs=1e-9)
    assert lt.atr14 == pytest.approx(61.0, abs=1e-9)
    assert lt.macd == pytest.approx([420.0] * 10, abs=1e-9)
    assert lt.rsi14 == [100.0] * 10
    assert lt.volume_current == lt.volume_average == 480.0
    assert s.open_interest_latest == s.open_interest_average == 5000.0
    assert s.funding_rate == 0.0000125


def test_snapshot_matches_the_replay_of_the_same_tape(tape: SyntheticTape) -> None:
    fake, market, _ = _setup(tape.coins, AS_OF)
    live = snap(market, COINS, AS_OF)
    replay = asyncio.run(ReplayMarket(tape).snapshot(COINS, AS_OF))
    j = fake.minute()  # the last closed minute: what the quotes show
    for coin in COINS:
        a, b = live.coins[coin], replay.coins[coin]
        # 61 4h candles fit in the 200-candle window: the same inputs, the same numbers.
        assert a.long_term == b.long_term
        assert a.intraday.mid_prices == b.intraday.mid_prices
        # The 3m window starts 200 candles back, not at the tape start: EMAs agree closely.
        assert a.ema20 == pytest.approx(b.ema20, rel=1e-6)
        assert a.intraday.ema20 == pytest.approx(b.intraday.ema20, rel=1e-6)
        assert a.rsi14 == pytest.approx(b.rsi14, abs=1e-2)
        assert a.funding_rate == b.funding_rate
        assert a.open_interest_latest == b.open_interest_latest
        minutes = tape.coins[coin].minutes
        assert float(a.price) == float(minutes.close[j])
        assert float(a.price) == pytest.approx(float(b.price), rel=1e-5)
        assert a.mark_price == Decimal(repr(float(minutes.close[j]) * 1.0001))
        assert a.oracle_price == Decimal(repr(float(minutes.close[j]) * 0.9998))
        assert a.data_time == AS_OF  # received at the (manual) clock's time
    assert live.marks() == {c: live.coins[c].mark_price for c in COINS}


def test_only_final_candles_at_or_before_as_of_are_used() -> None:
    ramp = {"RAMP": _ramp(TAPE_MINUTES)}
    close_at_b = 4690.0  # the 3m candle [B − 3m, B)
    # At B exactly that candle is closed (T = B − 1 ms) and the next one is forming.
    fake, market, _ = _setup(ramp, B)
    assert snap(market, ("RAMP",), B).coins["RAMP"].intraday.mid_prices[-1] == close_at_b
    req = [b["req"] for b in fake.requests if b["type"] == "candleSnapshot"]
    assert req[0] == {
        "coin": "RAMP",
        "interval": "3m",
        "startTime": B_MS - THREE_M - 199 * THREE_M,  # the 200-candle window
        "endTime": B_MS,
    }
    # 1 ms earlier its T is at as-of but it is the answer's last row (still forming, as far
    # as we can tell): not used.
    early = B - timedelta(milliseconds=1)
    _, market, _ = _setup(ramp, early)
    assert snap(market, ("RAMP",), early).coins["RAMP"].intraday.mid_prices[-1] == close_at_b - 0.75


def test_rows_stamped_after_as_of_are_never_used_and_are_cached_for_later() -> None:
    later = B + timedelta(minutes=10)
    fake, market, _ = _setup({"RAMP": _ramp(TAPE_MINUTES)}, later)
    fake.honour_end_time = False  # the venue sends rows past endTime
    s = snap(market, ("RAMP",), B).coins["RAMP"]
    assert s.intraday.mid_prices[-1] == 4690.0  # not B + 3m's or B + 6m's candle
    assert s.data_time == later  # the live quotes are the latest (a live venue has no past)
    # Those later rows were final when fetched: the cache answers B + 6m without a request.
    before = fake.count("candleSnapshot")
    six = B + timedelta(minutes=6, seconds=1)
    assert snap(market, ("RAMP",), six).coins["RAMP"].intraday.mid_prices[-1] == 4690.0 + 1.5
    assert fake.count("candleSnapshot") == before


def test_funding_rates_and_mids(tape: SyntheticTape) -> None:
    fake, market, _ = _setup(tape.coins, AS_OF)
    assert isinstance(market, FundingFeed)
    j = fake.minute()
    rates = asyncio.run(market.funding_rates(["BTC", "DOGE"], AS_OF))
    assert rates == {
        "BTC": Decimal(repr(float(tape.coins["BTC"].funding_hourly[j]))),
        "DOGE": Decimal(repr(float(tape.coins["DOGE"].funding_hourly[j]))),
    }
    mids = asyncio.run(market.mids(["ETH"], AS_OF))
    assert mids == {"ETH": Decimal(repr(float(tape.coins["ETH"].minutes.close[j])))}
    assert fake.requests == [{"type": "metaAndAssetCtxs"}, {"type": "allMids", "dex": ""}]


def test_an_empty_book_takes_its_mid_from_all_mids(tape: SyntheticTape) -> None:
    fake, market, clock = _setup(tape.coins, AS_OF)
    asyncio.run(market.mids(["ETH"], AS_OF))  # mids cached at AS_OF
    clock.advance(0.5)
    fake.null_mid = {"ETH"}
    s = snap(market, ("BTC", "ETH"), clock.now())
    assert s.coins["ETH"].price == Decimal(
        repr(float(tape.coins["ETH"].minutes.close[fake.minute()]))
    )
    assert s.coins["ETH"].data_time == AS_OF  # the older of the two answers
    assert fake.count("allMids") == 1  # the cached mids were young enough


# -- open interest average ----------------------------------------------------------------


def _set_oi(value: str) -> Callable[[str, Any, Any], Any]:
    def mutate(kind: str, request: Any, answer: Any) -> Any:
        if kind == "metaAndAssetCtxs":
            for ctx in answer[1]:
                ctx["openInterest"] = value
        return answer

    return mutate


def test_open_interest_average_keeps_the_last_observation_per_minute(tape: SyntheticTape) -> None:
    minute0 = AS_OF.replace(second=0)
    fake, market, clock = _setup(tape.coins, minute0 + timedelta(seconds=10), live_cache_s=0)
    for at_s, value in ((10, "100.0"), (40, "200.0")):  # one minute: 200 replaces 100
        clock.resume_at(minute0 + timedelta(seconds=at_s))
        fake.mutate = _set_oi(value)
        asyncio.run(market.funding_rates(["BTC"], clock.now()))
    clock.resume_at(minute0 + timedelta(seconds=70))
    fake.mutate = _set_oi("400.0")
    s = snap(market, ("BTC",), clock.now()).coins["BTC"]
    assert s.open_interest_latest == 400.0
    assert s.open_interest_average == 300.0


def test_open_interest_average_covers_24_hours(tape: SyntheticTape) -> None:
    first = AS_OF - timedelta(hours=30)
    fake, market, clock = _setup(tape.coins, first)
    for hour, value in zip(
        (-30, -24, -18, -12, -6), ("1.0", "2.0", "3.0", "4.0", "5.0"), strict=True
    ):
        clock.resume_at(AS_OF + timedelta(hours=hour))
        fake.mutate = _set_oi(value)
        asyncio.run(market.funding_rates(["BTC"], clock.now()))
    clock.resume_at(AS_OF)
    fake.mutate = _set_oi("6.0")
    s = snap(market, ("BTC",), AS_OF).coins["BTC"]
    # The window is (as-of − 24 h, as-of]: −30 h and exactly −24 h are out.
    assert s.open_interest_average == (3.0 + 4.0 + 5.0 + 6.0) / 4


# -- cache and request weight -------------------------------------------------------------


def test_candles_are_fetched_only_when_new(tape: SyntheticTape) -> None:
    fake, market, clock = _setup(tape.coins, AS_OF)
    snap(market, COINS, AS_OF)
    assert fake.count("metaAndAssetCtxs") == 1
    assert fake.count("candleSnapshot") == 6
    assert fake.weight == 7 * 20
    snap(market, COINS, AS_OF)  # the same instant: everything cached
    assert len(fake.requests) == 7
    clock.advance(180)
    snap(market, COINS, clock.now())  # one new 3m candle per coin, no 4h request
    new = fake.requests[7:]
    assert [b["type"] for b in new] == ["metaAndAssetCtxs"] + ["candleSnapshot"] * 3
    assert {b["req"]["interval"] for b in new[1:]} == {"3m"}
    # Only what is new: from the newest cached candle (the one closed at B) on.
    assert {b["req"]["startTime"] for b in new[1:]} == {B_MS}
    assert {b["req"]["endTime"] for b in new[1:]} == {B_MS + THREE_M + 10_000}
    clock.resume_at(START + timedelta(minutes=62 * 240, seconds=1))  # a 4h boundary
    snap(market, COINS, clock.now())
    lt = [b["req"] for b in fake.requests[11:] if b["type"] == "candleSnapshot"]
    lt = [r for r in lt if r["interval"] == "4h"]
    assert len(lt) == 3
    assert {r["startTime"] for r in lt} == {int(START.timestamp() * 1000) + 61 * FOUR_H}


def test_a_long_run_of_incremental_fetches_equals_a_fresh_fetch(tape: SyntheticTape) -> None:
    fake, market, clock = _setup(tape.coins, AS_OF, candle_history=61)
    for _ in range(80):  # 4 hours of cycles: the cache is trimmed on the way
        snap(market, ("BTC",), clock.now())
        clock.advance(180)
    at = clock.now()
    last = snap(market, ("BTC",), at)
    starts = [
        b["req"]["startTime"]
        for b in fake.requests
        if b["type"] == "candleSnapshot" and b["req"]["interval"] == "3m"
    ]
    # One whole window, then each cycle asks only from the candle that just closed.
    assert starts[0] == B_MS - 61 * THREE_M
    assert [b - a for a, b in pairwise(starts[1:])] == [THREE_M] * 79
    assert starts[1] == B_MS
    assert len(market._candles[("BTC", "3m")].rows) <= 2 * 61  # memory stays bounded
    _, fresh, _ = _setup(tape.coins, at, candle_history=61)
    again = snap(fresh, ("BTC",), at).coins["BTC"]
    # The same candle windows (the open-interest average differs: it has history).
    assert again.intraday == last.coins["BTC"].intraday
    assert again.long_term == last.coins["BTC"].long_term
    assert (again.ema20, again.macd, again.rsi7, again.rsi14) == (
        last.coins["BTC"].ema20,
        last.coins["BTC"].macd,
        last.coins["BTC"].rsi7,
        last.coins["BTC"].rsi14,
    )


def test_concurrent_snapshots_share_requests(tape: SyntheticTape) -> None:
    fake, market, _ = _setup(tape.coins, AS_OF)

    async def both() -> tuple[MarketSnapshot, MarketSnapshot]:
        a, b = await asyncio.gather(market.snapshot(COINS, AS_OF), market.snapshot(COINS, AS_OF))
        return a, b

    a, b = asyncio.run(both())
    assert a == b
    assert len(fake.requests) == 7


def test_request_weight_of_a_six_coin_arena_stays_far_below_the_budget() -> None:
    coins = ("BTC", "ETH", "SOL", "BNB", "DOGE", "XRP")
    tape6 = SyntheticTape(coins, START, TAPE_MINUTES, seed=3)
    fake, market, clock = _setup(tape6.coins, AS_OF)
    snap(market, coins, AS_OF)
    assert fake.weight == 13 * 20  # warm-up: contexts + 2 intervals × 6 coins
    warm = len(fake.requests)

    async def two_hours() -> None:
        for second in range(1, 2 * 3600 + 1):
            at = clock.advance(1)
            if second % 180 == 0:  # one trader's cycle
                await market.snapshot(coins, at)
            await market.mids(coins, at)  # the every-second tick

    asyncio.run(two_hours())
    kinds = fake.kinds()[warm:]
    assert kinds.count("metaAndAssetCtxs") == 40
    assert kinds.count("candleSnapshot") == 40 * 6 + 6  # 3m each cycle; one 4h boundary
    assert kinds.count("allMids") == 3600  # reused for 1 s: one request every 2 s
    weight = sum(20 if k != "allMids" else 2 for k in kinds)
    per_minute = weight / 120
    assert per_minute == pytest.approx((40 * 20 + 246 * 20 + 3600 * 2) / 120)  # ≈ 108
    assert per_minute < WEIGHT_PER_MINUTE / 10


def test_mids_are_cached_for_a_third_of_the_bound(tape: SyntheticTape) -> None:
    fake, market, clock = _setup(tape.coins, AS_OF)
    assert market.live_cache_s == 1.0
    asyncio.run(market.mids(["BTC"], AS_OF))
    clock.advance(1.0)
    asyncio.run(market.mids(["BTC"], clock.now()))
    assert fake.count("allMids") == 1
    clock.advance(0.001)
    asyncio.run(market.mids(["BTC"], clock.now()))
    assert fake.count("allMids") == 2


# -- staleness and failures ---------------------------------------------------------------


def test_cached_quotes_serve_up_to_the_bound_then_stale(tape: SyntheticTape) -> None:
    fake, market, clock = _setup(tape.coins, AS_OF)
    snap(market, COINS, AS_OF)
    asyncio.run(market.mids(["BTC"], AS_OF))
    fake.fail(500)
    at_bound = AS_OF + timedelta(seconds=3)
    clock.resume_at(at_bound)
    s = snap(market, COINS, at_bound)  # candles cached, quotes exactly 3 s old: still served
    assert {c.data_time for c in s.coins.values()} == {AS_OF}
    assert asyncio.run(market.mids(["BTC"], at_bound))["BTC"] == s.coins["BTC"].price
    past = at_bound + timedelta(milliseconds=1)
    clock.resume_at(past)
    with pytest.raises(StaleData, match=r"BTC, ETH, DOGE: .*3\.001s old.*HTTP 500"):
        snap(market, COINS, past)
    with pytest.raises(StaleData, match=r"BTC: .*mids.*3\.001s old"):
        asyncio.run(market.mids(["BTC"], past))
    fake.heal()
    assert snap(market, COINS, past).coins["BTC"].data_time == past


@pytest.mark.parametrize(
    ("failure", "message"),
    [
        (500, "HTTP 500"),
        (429, "rate limited"),
        (TIMEOUT, "no answer in time"),
        (GARBAGE, "not JSON"),
    ],
)
def test_failures_with_nothing_cached_are_missing_data(
    tape: SyntheticTape, failure: int | str, message: str
) -> None:
    fake, market, _ = _setup(tape.coins, AS_OF)
    fake.fail(failure)
    with pytest.raises(
        MissingData, match=f"BTC, ETH: no asset contexts from hyperliquid: .*{message}"
    ):
        snap(market, ("BTC", "ETH"), AS_OF)
    with pytest.raises(MissingData, match=f"BTC: no mids .*{message}"):
        asyncio.run(market.mids(["BTC"], AS_OF))


def test_candle_request_failures_fall_back_on_the_cache_within_one_interval(
    tape: SyntheticTape,
) -> None:
    before = B - timedelta(seconds=60)
    fake, market, clock = _setup(tape.coins, before)
    snap(market, ("BTC",), before)  # newest closed 3m candle: the one closing at B − 3m
    fake.fail(500, kind="candleSnapshot")
    clock.resume_at(B + timedelta(seconds=3))  # 183 s after that close: one interval + 3 s
    s = snap(market, ("BTC",), clock.now())
    assert s.coins["BTC"].data_time == clock.now()  # quotes fresh, candles from the cache
    clock.advance(0.001)
    with pytest.raises(StaleData, match=r"BTC: .*3m candle .*183\.001s .*request failed.*HTTP 500"):
        snap(market, ("BTC",), clock.now())


def test_nothing_cached_and_candles_failing_is_missing_data(tape: SyntheticTape) -> None:
    fake, market, _ = _setup(tape.coins, AS_OF)
    fake.fail(TIMEOUT, kind="candleSnapshot")
    with pytest.raises(MissingData, match=r"ETH: no closed 3m candles .*no answer in time"):
        snap(market, ("ETH",), AS_OF)


@pytest.mark.parametrize(
    ("after_b_s", "lag_s", "stale"),
    [
        (3.0, 0.0, False),
        (3.001, 0.0, False),
        # The feed's clock 2 s before B: its newest final 3m candle closed at B − 3m, which
        # is 183 s (one interval + the 3 s bound) before as-of: still acceptable...
        (3.0, 5.0, False),
        # ...but not 1 ms more.
        (3.001, 5.001, True),
    ],
)
def test_a_lagging_candle_feed_is_stale_past_one_interval_plus_the_bound(
    tape: SyntheticTape, after_b_s: float, lag_s: float, stale: bool
) -> None:
    at = B + timedelta(seconds=after_b_s)
    fake, market, _ = _setup(tape.coins, at)
    fake.candle_lag_s = lag_s
    if stale:
        with pytest.raises(StaleData, match=r"BTC: the newest closed 3m candle .*183\.001s"):
            snap(market, ("BTC",), at)
    else:
        expected = "B" if lag_s == 0 else "B - 3m"
        closes = tape.coins["BTC"].minutes.close
        last = WARM + 120 - 1 if expected == "B" else WARM + 120 - 4
        assert snap(market, ("BTC",), at).coins["BTC"].intraday.mid_prices[-1] == round(
            float(closes[last]), 6
        )


def test_unknown_and_delisted_coins_are_missing_data(tape: SyntheticTape) -> None:
    fake, market, _ = _setup(tape.coins, AS_OF)
    fake.missing = {"DOGE"}
    fake.delisted = {"ETH"}
    with pytest.raises(MissingData, match="DOGE: hyperliquid does not list this coin"):
        snap(market, ("BTC", "DOGE"), AS_OF)
    assert fake.count("candleSnapshot") == 0  # refused before any candle request
    with pytest.raises(MissingData, match="ETH: delisted"):
        snap(market, ("ETH",), AS_OF)
    with pytest.raises(MissingData, match=r"ZZZ: .*does not list"):
        asyncio.run(market.funding_rates(["ZZZ"], AS_OF))
    with pytest.raises(MissingData, match="DOGE: no mid in hyperliquid's allMids"):
        asyncio.run(market.mids(["DOGE"], AS_OF))


# -- malformed answers --------------------------------------------------------------------


def _candle_field(field: str, value: Any, *, row: int = -2) -> Callable[[str, Any, Any], Any]:
    def mutate(kind: str, request: Any, answer: Any) -> Any:
        if kind == "candleSnapshot" and request["req"]["coin"] == "ETH" and answer:
            if value is _DELETE:
                del answer[row][field]
            else:
                answer[row][field] = value(answer[row]) if callable(value) else value
        return answer

    return mutate


_DELETE = object()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("h", "1.0", "field 'h' .* below 'l'"),
        ("c", lambda r: str(float(r["h"]) * 2), "field 'c' .* outside"),
        ("o", lambda r: str(float(r["l"]) / 2), "field 'o' .* outside"),
        ("o", "abc", "field 'o' is not a decimal string"),
        ("o", 1.5, "field 'o' is not a decimal string"),
        ("c", "1e5", "field 'c' is not a decimal string"),
        ("c", "NaN", "field 'c' is not a decimal string"),
        ("l", "0.0", "field 'l' is not positive"),
        ("v", "-1.0", "field 'v' is negative"),
        ("v", _DELETE, "field 'v' is not a decimal string"),
        ("t", "1760659200000", "field 't' is not an integer"),
        ("T", lambda r: r["T"] + 1, "field 'T'"),
        ("s", "BTC", "field 's'"),
        ("i", "1h", "field 'i'"),
    ],
)
def test_malformed_candle_rows_are_missing_data_naming_coin_and_field(
    tape: SyntheticTape, field: str, value: Any, message: str
) -> None:
    fake, market, _ = _setup(tape.coins, AS_OF)
    fake.mutate = _candle_field(field, value)
    with pytest.raises(MissingData, match=f"ETH 3m candle .*{message}"):
        snap(market, ("BTC", "ETH"), AS_OF)


def test_a_malformed_forming_row_is_refused_too(tape: SyntheticTape) -> None:
    fake, market, _ = _setup(tape.coins, AS_OF)
    fake.mutate = _candle_field("h", "0.5", row=-1)
    with pytest.raises(MissingData, match=r"ETH 3m candle .*field 'h'"):
        snap(market, ("ETH",), AS_OF)


def _replace(kind: str, make: Callable[[Any], Any]) -> Callable[[str, Any, Any], Any]:
    def mutate(k: str, request: Any, answer: Any) -> Any:
        return make(answer) if k == kind else answer

    return mutate


def _ctx(coin_index: int, field: str, value: Any) -> Callable[[Any], Any]:
    def make(answer: Any) -> Any:
        answer[1][coin_index][field] = value
        return answer

    return make


@pytest.mark.parametrize(
    ("kind", "make", "message"),
    [
        ("candleSnapshot", lambda a: {"rows": a}, "ETH 3m candles: expected a list"),
        ("candleSnapshot", lambda a: [*a[:-1], "row"], "ETH 3m candle #.*expected an object"),
        ("metaAndAssetCtxs", lambda a: {}, r"metaAndAssetCtxs: expected \[meta, contexts\]"),
        ("metaAndAssetCtxs", lambda a: [a[0], a[1][:-1]], "3 assets but 2 contexts"),
        ("metaAndAssetCtxs", lambda a: [{"universe": [{}, {}, {}]}, a[1]], "has no name"),
        ("metaAndAssetCtxs", _ctx(1, "markPx", None), "ETH asset context: field 'markPx'"),
        ("metaAndAssetCtxs", _ctx(1, "funding", 0.00001), "ETH asset context: field 'funding'"),
        ("metaAndAssetCtxs", _ctx(1, "openInterest", "-5.0"), "'openInterest' is negative"),
        ("metaAndAssetCtxs", _ctx(1, "midPx", "0"), "ETH asset context: field 'midPx'"),
        ("metaAndAssetCtxs", _ctx(1, "oraclePx", "x"), "ETH asset context: field 'oraclePx'"),
    ],
)
def test_malformed_answers_are_missing_data(
    tape: SyntheticTape, kind: str, make: Callable[[Any], Any], message: str
) -> None:
    fake, market, _ = _setup(tape.coins, AS_OF)
    fake.mutate = _replace(kind, make)
    with pytest.raises(MissingData, match=message):
        snap(market, ("ETH",), AS_OF)


def test_malformed_mids_are_missing_data(tape: SyntheticTape) -> None:
    fake, market, _ = _setup(tape.coins, AS_OF)
    fake.mutate = _replace("allMids", lambda a: {**a, "BTC": 5})
    with pytest.raises(MissingData, match="BTC mid: field 'BTC' is not a decimal string"):
        asyncio.run(market.mids(["BTC"], AS_OF))
    fake.mutate = _replace("allMids", lambda a: [a])
    with pytest.raises(MissingData, match="allMids: expected an object"):
        asyncio.run(market.mids(["ETH"], AS_OF + timedelta(seconds=2)))


def test_a_malformed_answer_is_not_cached_and_not_fallen_back_from(tape: SyntheticTape) -> None:
    fake, market, clock = _setup(tape.coins, AS_OF)
    asyncio.run(market.mids(["BTC"], AS_OF))
    clock.advance(2)
    fake.mutate = _replace("allMids", lambda a: "oops")
    with pytest.raises(MissingData, match="expected an object, got str"):
        asyncio.run(market.mids(["BTC"], clock.now()))
    fake.mutate = None
    assert asyncio.run(market.mids(["BTC"], clock.now()))["BTC"] > 0


def test_constructor_and_time_validation(tape: SyntheticTape) -> None:
    fake = FakeInfo(START, tape.coins, ManualClock(AS_OF))
    transport = InProcessTransport(fake)
    clock = ManualClock(AS_OF)
    with pytest.raises(ValueError, match="max_staleness_s"):
        HyperliquidMarket(transport, clock=clock, max_staleness_s=0)
    with pytest.raises(ValueError, match="candle_history"):
        HyperliquidMarket(transport, clock=clock, candle_history=60)
    with pytest.raises(ValueError, match="candle_history"):
        HyperliquidMarket(transport, clock=clock, candle_history=500)
    with pytest.raises(ValueError, match="live_cache_s"):
        HyperliquidMarket(transport, clock=clock, live_cache_s=4.0)
    market = HyperliquidMarket(transport, clock=clock, candle_history=61)
    with pytest.raises(ValueError, match="timezone-aware"):
        asyncio.run(market.mids(["BTC"], AS_OF.replace(tzinfo=None)))
    # 61 closed 4h candles is exactly the warm-up; 60 is not enough.
    assert snap(market, ("BTC",), AS_OF).coins["BTC"].long_term.ema50 > 0
    short = START + timedelta(minutes=WARM - 1)
    clock.resume_at(short)
    with pytest.raises(MissingData, match=r"BTC: not enough history \(.* 60 closed 4h"):
        snap(HyperliquidMarket(transport, clock=ManualClock(short)), ("BTC",), short)


# -- over HTTP, through the SDK -----------------------------------------------------------


def test_over_http_the_snapshot_equals_the_in_process_one(tape: SyntheticTape) -> None:
    _, market, clock = _setup(tape.coins, AS_OF)
    expected = snap(market, COINS, AS_OF)
    served = FakeInfo.from_tape(tape, clock)
    with FakeInfoServer(served) as server:
        transport = HttpTransport(server.url, timeout_s=5.0)
        over_http = HyperliquidMarket(transport, clock=clock)
        assert snap(over_http, COINS, AS_OF) == expected
        assert asyncio.run(over_http.mids(["BTC"], AS_OF)) == asyncio.run(
            market.mids(["BTC"], AS_OF)
        )
    # The SDK sent the bodies the venue expects.
    assert served.requests[0] == {"type": "metaAndAssetCtxs"}
    assert served.requests[1] == {
        "type": "candleSnapshot",
        "req": {
            "coin": "BTC",
            "interval": "3m",
            "startTime": B_MS - 200 * THREE_M,
            "endTime": B_MS + 10_000,
        },
    }
    assert served.requests[-1] == {"type": "allMids", "dex": ""}


@pytest.mark.parametrize(
    ("failure", "message"),
    [
        (500, "HTTP 500"),
        (429, r"rate limited \(HTTP 429\)"),
        (GARBAGE, "the answer is not JSON"),
        (TIMEOUT, "no answer in time"),
    ],
)
def test_over_http_failures_are_missing_data(
    tape: SyntheticTape, failure: int | str, message: str
) -> None:
    clock = ManualClock(AS_OF)
    fake = FakeInfo.from_tape(tape, clock)
    fake.fail(failure)
    with FakeInfoServer(fake) as server:
        market = HyperliquidMarket(HttpTransport(server.url, timeout_s=0.3), clock=clock)
        with pytest.raises(MissingData, match=f"BTC: no mids from hyperliquid: .*{message}"):
            asyncio.run(market.mids(["BTC"], AS_OF))


# -- the recorded venue answers in ../shared ----------------------------------------------


def _response(shared_dir: Path, name: str) -> Any:
    path = shared_dir / "contracts" / "hyperliquid" / name
    if not path.is_file():
        pytest.skip(f"{name} is not in ../shared")
    return json.loads(path.read_text())["response"]


def test_recorded_contexts_and_mids_parse(shared_dir: Path) -> None:
    contexts = _response(shared_dir, "info_metaAndAssetCtxs_mainnet_prefix_capture.json")
    mids = _response(shared_dir, "info_allMids_composed.json")

    def handler(path: str, body: Any) -> tuple[int, Any]:
        return 200, contexts if body["type"] == "metaAndAssetCtxs" else mids

    market = HyperliquidMarket(InProcessTransport(handler), clock=ManualClock(AS_OF))
    rates = asyncio.run(market.funding_rates(["BTC", "ETH", "ATOM"], AS_OF))
    assert rates == {
        "BTC": Decimal("0.0000052764"),
        "ETH": Decimal("0.0000125"),
        "ATOM": Decimal("-0.0000604394"),
    }
    with pytest.raises(MissingData, match="MATIC: delisted"):
        asyncio.run(market.funding_rates(["MATIC"], AS_OF))
    assert asyncio.run(market.mids(["BTC", "XRP"], AS_OF)) == {
        "BTC": Decimal("80639.5"),
        "XRP": Decimal("2.34605"),
    }


@pytest.mark.parametrize(
    ("name", "coin", "rows"),
    [
        ("info_candleSnapshot_BTC_1h_capture.json", "BTC", 5),
        ("info_candleSnapshot_kPEPE_1h_sdk_cassette_2023.json", "kPEPE", 24),
    ],
)
def test_recorded_candles_parse(shared_dir: Path, name: str, coin: str, rows: int) -> None:
    response = _response(shared_dir, name)
    candles = parse_candles(coin, "1h", response)
    assert len(candles) == rows
    first = response[0]
    assert candles[0].open_ms == first["t"]
    assert candles[0].close_ms == first["T"]
    assert (candles[0].open, candles[0].high, candles[0].low, candles[0].close) == (
        float(first["o"]),
        float(first["h"]),
        float(first["l"]),
        float(first["c"]),
    )
    assert candles[0].volume == float(first["v"])
    assert [c.open_ms for c in candles] == sorted(c.open_ms for c in candles)
