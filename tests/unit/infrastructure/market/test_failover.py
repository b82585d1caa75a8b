"""FailoverMarket: hot standby across market providers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from application.ports import (
    CoinSnapshot,
    FundingFeed,
    IntradaySeries,
    LongTermContext,
    LookAheadError,
    MarketData,
    MarketDataError,
    MarketSnapshot,
    MissingData,
    StaleData,
)
from infrastructure.clock import ManualClock
from infrastructure.hyperliquid.market import HyperliquidMarket
from infrastructure.hyperliquid.transport import InProcessTransport
from infrastructure.market.failover import FailoverMarket
from infrastructure.market.replay import ReplayMarket
from infrastructure.market.synthetic import SyntheticTape
from tests.support.fake_hl_info import FakeInfo

AT = datetime(2025, 10, 27, 12, 0, 10, tzinfo=UTC)


def coin_snapshot(coin: str, price: Decimal, at: datetime) -> CoinSnapshot:
    p = float(price)
    flat = [p] * 10
    return CoinSnapshot(
        coin=coin,
        price=price,
        data_time=at,
        ema20=p,
        macd=0.0,
        rsi7=50.0,
        rsi14=50.0,
        open_interest_latest=1000.0,
        open_interest_average=1000.0,
        funding_rate=0.0000125,
        intraday=IntradaySeries(flat, flat, [0.0] * 10, [50.0] * 10, [50.0] * 10),
        long_term=LongTermContext(p, p, 1.0, 1.0, 10.0, 10.0, [0.0] * 10, [50.0] * 10),
    )


class Scripted:
    """A provider whose next answers are scripted: an error to raise, or None to answer."""

    def __init__(self, name: str, price: str, *, bound: float = 3.0) -> None:
        self.name = name
        self.price = Decimal(price)
        self.max_staleness_s = bound
        self.age_s = 0.0
        self.error: MarketDataError | Exception | None = None
        self.calls: list[str] = []

    def _answer(self, kind: str) -> None:
        self.calls.append(kind)
        if self.error is not None:
            raise self.error

    async def snapshot(self, coins: Sequence[str], as_of: datetime) -> MarketSnapshot:
        self._answer("snapshot")
        at = as_of - timedelta(seconds=self.age_s)
        return MarketSnapshot(as_of, {c: coin_snapshot(c, self.price, at) for c in coins})

    async def mids(self, coins: Sequence[str], as_of: datetime) -> dict[str, Decimal]:
        self._answer("mids")
        return dict.fromkeys(coins, self.price)


class WithFunding(Scripted):
    async def funding_rates(self, coins: Sequence[str], as_of: datetime) -> dict[str, Decimal]:
        self._answer("funding")
        return {c: Decimal("0.0000125") for c in coins}


def _pair() -> tuple[Scripted, Scripted, FailoverMarket]:
    primary = Scripted("hl", "100")
    standby = Scripted("hl-backup", "101", bound=90.0)
    return primary, standby, FailoverMarket([primary, standby], name="arena")


def test_the_primary_answers_when_it_can() -> None:
    _, standby, market = _pair()
    snap = asyncio.run(market.snapshot(["BTC"], AT))
    assert snap.coins["BTC"].price == Decimal("100")
    assert standby.calls == []
    assert market.active == "hl"
    assert market.max_staleness_s == 3.0
    assert isinstance(market, FundingFeed)


def test_fails_over_and_back_logging_each_switch(caplog: pytest.LogCaptureFixture) -> None:
    primary, _, market = _pair()
    primary.error = StaleData("BTC: quotes 5.0s old")
    with caplog.at_level(logging.INFO, logger="nof0.market"):
        snap = asyncio.run(market.snapshot(["BTC"], AT))
        assert snap.coins["BTC"].price == Decimal("101")
        assert market.active == "hl-backup"
        assert market.max_staleness_s == 90.0  # the cycle judges this snapshot by its bound
        asyncio.run(market.snapshot(["BTC"], AT))  # still down: tried first again, no new log
        assert primary.calls == ["snapshot", "snapshot"]
        primary.error = None
        assert asyncio.run(market.snapshot(["BTC"], AT)).coins["BTC"].price == Decimal("100")
    assert market.active == "hl"
    assert market.max_staleness_s == 3.0
    records = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "nof0.market"]
    assert records == [
        (
            "WARNING",
            "market arena: snapshot now from hl-backup (hl: StaleData: BTC: quotes 5.0s old)",
        ),
        ("INFO", "market arena: snapshot back on hl (was hl-backup)"),
    ]


def test_each_kind_of_call_remembers_its_own_provider() -> None:
    primary, _, market = _pair()
    primary.error = MissingData("no candles")
    asyncio.run(market.snapshot(["BTC"], AT))
    primary.error = None
    assert asyncio.run(market.mids(["BTC"], AT)) == {"BTC": Decimal("100")}
    assert market.serving("mids") == "hl"
    assert market.serving("snapshot") == market.active == "hl-backup"


def test_a_look_ahead_error_is_a_bug_and_is_never_hidden() -> None:
    primary, standby, market = _pair()
    primary.error = LookAheadError("3m candle stamped 60s after the as-of time")
    with pytest.raises(LookAheadError, match="stamped 60s after"):
        asyncio.run(market.snapshot(["BTC"], AT))
    assert standby.calls == []
    # From the standby too: the primary's failure does not make it acceptable.
    primary.error = MissingData("down")
    standby.error = LookAheadError("minute stamped after the as-of time")
    with pytest.raises(LookAheadError):
        asyncio.run(market.mids(["BTC"], AT))


def test_other_exceptions_are_bugs_and_propagate() -> None:
    primary, standby, market = _pair()
    primary.error = RuntimeError("boom")
    with pytest.raises(RuntimeError, match="boom"):
        asyncio.run(market.snapshot(["BTC"], AT))
    assert standby.calls == []


@pytest.mark.parametrize(
    ("errors", "raised"),
    [
        ((MissingData("a"), StaleData("b")), StaleData),
        ((StaleData("a"), MissingData("b")), StaleData),
        ((MissingData("a"), MissingData("b")), MissingData),
        ((MarketDataError("a"), MissingData("b")), MissingData),
        ((MarketDataError("a"), MarketDataError("b")), MarketDataError),
    ],
)
def test_when_all_fail_the_most_informative_error_lists_every_failure(
    errors: tuple[MarketDataError, MarketDataError], raised: type[MarketDataError]
) -> None:
    primary, standby, market = _pair()
    primary.error, standby.error = errors
    with pytest.raises(MarketDataError) as caught:
        asyncio.run(market.snapshot(["BTC"], AT))
    assert type(caught.value) is raised
    assert str(caught.value) == (
        "market arena: every provider failed the snapshot call: "
        f"hl: {type(errors[0]).__name__}: a; hl-backup: {type(errors[1]).__name__}: b"
    )
    assert market.active == "hl"  # nothing served: unchanged


def test_a_stale_or_incomplete_snapshot_hands_over() -> None:
    primary, standby, market = _pair()
    primary.age_s = 3.5  # older than its own 3 s bound
    snap = asyncio.run(market.snapshot(["BTC"], AT))
    assert snap.coins["BTC"].price == Decimal("101")
    primary.age_s = 3.0  # exactly the bound: acceptable
    assert asyncio.run(market.snapshot(["BTC"], AT)).coins["BTC"].price == Decimal("100")
    standby.age_s = 100.0
    primary.age_s = 4.0
    with pytest.raises(StaleData, match=r"hl: StaleData: BTC data is 4\.000s old \(bound 3s\)"):
        asyncio.run(market.snapshot(["BTC"], AT))


def test_funding_skips_providers_without_a_feed() -> None:
    primary = Scripted("replay", "100")
    standby = WithFunding("hl", "101")
    assert not isinstance(primary, FundingFeed)
    market = FailoverMarket([primary, standby])
    assert asyncio.run(market.funding_rates(["BTC"], AT)) == {"BTC": Decimal("0.0000125")}
    assert market.serving("funding") == "hl"
    standby.error = MissingData("down")
    with pytest.raises(MissingData, match="replay: MissingData: has no funding feed; hl: "):
        asyncio.run(market.funding_rates(["BTC"], AT))


def test_names_and_validation() -> None:
    with pytest.raises(ValueError, match="at least one provider"):
        FailoverMarket([])
    tape = SyntheticTape(("BTC",), AT, 10, seed=1)
    providers: list[MarketData] = [ReplayMarket(tape), ReplayMarket(tape), Scripted("hl", "1")]
    market = FailoverMarket(providers)
    assert market.names == ("ReplayMarket", "ReplayMarket#1", "hl")
    assert market.active == "ReplayMarket"
    assert market.max_staleness_s == 90.0


# -- with the real providers --------------------------------------------------------------


def test_hyperliquid_down_replay_takes_over_then_hyperliquid_is_back() -> None:
    start = datetime(2025, 10, 17, tzinfo=UTC)
    tape = SyntheticTape(("BTC", "ETH"), start, 61 * 240 + 600, seed=5)
    as_of = start + timedelta(minutes=61 * 240 + 120, seconds=10)
    clock = ManualClock(as_of)
    fake = FakeInfo.from_tape(tape, clock)
    live = HyperliquidMarket(InProcessTransport(fake), clock=clock, name="hyperliquid")
    replay = ReplayMarket(tape)
    market = FailoverMarket([live, replay])
    fake.fail(500)
    snap = asyncio.run(market.snapshot(["BTC", "ETH"], as_of))
    assert snap == asyncio.run(replay.snapshot(["BTC", "ETH"], as_of))
    assert (market.active, market.max_staleness_s) == ("ReplayMarket", 90.0)
    fake.heal()
    clock.advance(1)
    snap = asyncio.run(market.snapshot(["BTC", "ETH"], clock.now()))
    assert snap.coins["BTC"].mark_price is not None  # only the venue has a mark
    assert (market.active, market.max_staleness_s) == ("hyperliquid", 3.0)
