"""The trigger gates (domain.triggers): each fires on its condition and only on it, and a
gate that cannot be evaluated hands the trader back to its decision interval."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from domain.triggers import (
    Gate,
    HeldPosition,
    IndicatorKind,
    IndicatorRule,
    TraderFacts,
    TriggerRules,
    TriggerState,
    Verdict,
    invalidation_level,
    timer_calls,
)

T0 = datetime(2025, 10, 17, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def feed(state: TriggerState, prices: list[float], coin: str = "BTC", start: datetime = T0):
    """One price a minute; returns the time of the last one."""
    at = start
    for i, price in enumerate(prices):
        at = start + i * MINUTE
        state.observe(at, {coin: Decimal(str(price))})
    return at


def check(
    state: TriggerState,
    now: datetime,
    price: float | None,
    *,
    last: datetime = T0,
    interval_s: float = 180.0,
    facts: TraderFacts | None = None,
    coin: str = "BTC",
) -> Verdict:
    prices = {} if price is None else {coin: Decimal(str(price))}
    return state.check(
        now,
        coins=(coin,),
        prices=prices,
        last_call_at=last,
        interval_s=interval_s,
        facts=facts or TraderFacts(),
    )


def atr_state(k: float = 1.5, period: int = 3) -> TriggerState:
    return TriggerState(TriggerRules(max_interval_s=86400, atr_move=k, atr_period=period, bar_s=60))


def test_atr_of_a_steady_zigzag_is_its_range() -> None:
    state = atr_state(period=3)
    # One price per one-minute bar: the true range is the step from the previous close.
    feed(state, [100, 102, 100, 102, 100])
    assert state.coins["BTC"].atr == pytest.approx(2.0)


def test_a_move_of_k_atr_since_the_call_fires_and_a_smaller_one_does_not() -> None:
    state = atr_state(k=1.5, period=3)
    at = feed(state, [100, 102, 100, 102, 100])  # ATR 2 once warmed up
    state.called(at, {"BTC": Decimal(100)}, ("first_call",), None, 180)
    later = at + MINUTE
    assert check(state, later, 102.9, last=at).fired == ()  # 1.45 ATR
    assert check(state, later, 102.9, last=at).quiet == (Gate.ATR_MOVE,)
    assert check(state, later, 103.0, last=at).fired == ("atr_move:BTC",)  # 1.5 ATR
    assert check(state, later, 97.0, last=at).fired == ("atr_move:BTC",)  # either way


def test_the_reference_is_the_price_at_the_last_call() -> None:
    state = atr_state(k=1.0, period=3)
    at = feed(state, [100, 102, 100, 102, 100])
    state.called(at, {"BTC": Decimal(104)}, ("max_interval",), None, 180)
    assert check(state, at + MINUTE, 103.0, last=at).fired == ()
    assert check(state, at + MINUTE, 106.5, last=at).fired == ("atr_move:BTC",)


def test_atr_warming_up_is_unavailable_and_the_timer_applies() -> None:
    state = atr_state(period=14)
    at = feed(state, [100, 101, 100])  # far fewer bars than the period
    state.called(at, {"BTC": Decimal(100)}, ("first_call",), None, 180)
    soon = check(state, at + MINUTE, 150.0, last=at)
    assert soon.fired == ()
    assert soon.unavailable == (Gate.ATR_MOVE,)
    due = check(state, at + 3 * MINUTE, 100.0, last=at, interval_s=180)
    assert due.fired == ("timer_fallback:atr_move",)


def test_a_missing_price_is_unavailable_not_quiet() -> None:
    state = atr_state(period=3)
    at = feed(state, [100, 102, 100, 102, 100])
    state.called(at, {"BTC": Decimal(100)}, ("first_call",), None, 180)
    verdict = check(state, at + MINUTE, None, last=at)
    assert verdict.unavailable == (Gate.ATR_MOVE,)
    assert check(state, at + 4 * MINUTE, None, last=at).fired == ("timer_fallback:atr_move",)


def test_max_interval_fires_when_nothing_else_does() -> None:
    state = TriggerState(TriggerRules(max_interval_s=3600, on_fill=True))
    facts = TraderFacts()
    state.settle(facts)
    assert check(state, T0 + timedelta(minutes=59), 100, facts=facts).fired == ()
    assert check(state, T0 + timedelta(minutes=60), 100, facts=facts).fired == ("max_interval",)


def test_min_interval_holds_every_gate_back() -> None:
    state = TriggerState(TriggerRules(max_interval_s=3600, min_interval_s=300, on_fill=True))
    state.settle(TraderFacts())
    filled = TraderFacts(last_fill_at=T0 + MINUTE)
    assert check(state, T0 + 2 * MINUTE, 100, facts=filled).fired == ()
    assert check(state, T0 + 5 * MINUTE, 100, facts=filled).fired == ("fill",)


def test_a_fill_after_the_call_fires_and_the_calls_own_fills_do_not() -> None:
    state = TriggerState(TriggerRules(max_interval_s=3600, on_fill=True, on_stop_or_target=True))
    own = TraderFacts(last_fill_at=T0, closed_trades=2)
    state.settle(own)  # what the call itself did
    assert check(state, T0 + MINUTE, 100, facts=own).fired == ()
    later = TraderFacts(last_fill_at=T0 + MINUTE, closed_trades=2)
    assert check(state, T0 + 2 * MINUTE, 100, facts=later).fired == ("fill",)
    stopped = TraderFacts(last_fill_at=T0 + MINUTE, closed_trades=3)
    assert check(state, T0 + 2 * MINUTE, 100, facts=stopped).fired == ("fill", "stop_or_target")


def test_a_fresh_state_takes_what_happened_before_as_known() -> None:
    """After a restart the gate state is new: old fills are not news."""
    state = TriggerState(TriggerRules(max_interval_s=3600, on_fill=True))
    old = TraderFacts(last_fill_at=T0 - timedelta(hours=3), closed_trades=5)
    assert check(state, T0 + MINUTE, 100, facts=old).fired == ()


def test_the_funding_window_fires_once_per_hour_while_holding() -> None:
    state = TriggerState(TriggerRules(max_interval_s=7200, funding_window_s=600))
    holding = TraderFacts(positions=(HeldPosition("BTC", ""),))
    before = T0 + timedelta(minutes=49)  # 11 minutes to the settlement at 01:00
    inside = T0 + timedelta(minutes=51)
    assert check(state, before, 100, facts=holding).fired == ()
    assert check(state, inside, 100, facts=TraderFacts()).fired == ()  # nothing held
    assert check(state, inside, 100, facts=holding).fired == ("funding_window",)
    state.called(inside, {"BTC": Decimal(100)}, ("funding_window",), T0, 180)
    assert check(state, inside + MINUTE, 100, last=inside, facts=holding).fired == ()
    next_window = T0 + timedelta(minutes=111)
    assert check(state, next_window, 100, last=inside, facts=holding).fired == ("funding_window",)


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("If the price closes below 3800 on the 3-minute chart", ("below", 3800.0)),
        ("4h close above $104,500.5", ("above", 104500.5)),
        ("BTC < 98000", ("below", 98000.0)),
        ("3-minute close below EMA20 with MACD turning negative", None),
        ("below 3800 or above 4200", None),  # two levels: not one condition
        ("drops below 5% of entry", None),
        ("", None),
    ],
)
def test_invalidation_levels_are_read_only_when_unambiguous(
    text: str, level: tuple[str, float] | None
) -> None:
    assert invalidation_level(text) == level


def test_invalidation_fires_when_the_level_is_crossed() -> None:
    state = TriggerState(TriggerRules(max_interval_s=3600, invalidation=True))
    facts = TraderFacts(positions=(HeldPosition("BTC", "a close below 99000"),))
    assert check(state, T0 + MINUTE, 99500, facts=facts).fired == ()
    assert check(state, T0 + MINUTE, 98900, facts=facts).fired == ("invalidation:BTC",)


def test_an_invalidation_in_words_cannot_be_checked_and_the_timer_applies() -> None:
    state = TriggerState(TriggerRules(max_interval_s=3600, invalidation=True))
    facts = TraderFacts(positions=(HeldPosition("BTC", "the trend turns"),))
    verdict = check(state, T0 + MINUTE, 100, facts=facts)
    assert verdict.unavailable == (Gate.INVALIDATION,)
    assert check(state, T0 + 3 * MINUTE, 100, facts=facts).fired == ("timer_fallback:invalidation",)


def test_an_ema_cross_fires_once_until_the_next_call() -> None:
    rule = IndicatorRule(IndicatorKind.EMA_CROSS, fast=2, slow=4)
    state = TriggerState(TriggerRules(max_interval_s=86400, bar_s=60, indicators=(rule,)))
    at = feed(state, [100, 99, 98, 97, 96, 95])
    state.called(at, {"BTC": Decimal(95)}, ("first_call",), None, 180)
    assert check(state, at, 95, last=at).fired == ()
    # A sharp rise: the fast EMA crosses over the slow one (bars close a minute later).
    at = feed(state, [100, 106, 112, 118], start=at + MINUTE)
    assert check(state, at, 118, last=T0).fired == ("indicator:ema_cross(2,4):BTC",)
    state.called(at, {"BTC": Decimal(118)}, ("indicator:ema_cross(2,4):BTC",), T0, 180)
    assert check(state, at, 118, last=at).fired == ()


def test_an_rsi_crossing_its_level_fires() -> None:
    rule = IndicatorRule(IndicatorKind.RSI, period=3, above=70)
    state = TriggerState(TriggerRules(max_interval_s=86400, bar_s=60, indicators=(rule,)))
    at = feed(state, [100, 99, 100, 99, 100, 99])  # around 50
    state.called(at, {"BTC": Decimal(99)}, ("first_call",), None, 180)
    assert check(state, at, 99, last=at).fired == ()
    at = feed(state, [102, 105, 108, 111], start=at + MINUTE)
    assert check(state, at, 111, last=T0).fired == ("indicator:rsi(3):above70:BTC",)


def test_an_indicator_warming_up_is_unavailable() -> None:
    rule = IndicatorRule(IndicatorKind.EMA_CROSS, fast=5, slow=50)
    state = TriggerState(TriggerRules(max_interval_s=86400, bar_s=60, indicators=(rule,)))
    at = feed(state, [100, 101, 102])
    assert check(state, at, 102, last=at).unavailable == (Gate.INDICATOR,)


def test_skipped_ticks_are_counted_per_gate_and_reset_by_a_call() -> None:
    rules = TriggerRules(max_interval_s=3600, on_fill=True, atr_move=1.0, atr_period=14)
    state = TriggerState(rules)
    facts = TraderFacts()
    for i in range(1, 4):
        now = T0 + i * MINUTE
        state.observe(now, {"BTC": Decimal(100)})
        state.skipped(check(state, now, 100, facts=facts, interval_s=3600))
    now = T0 + timedelta(minutes=30)
    record = state.called(now, {"BTC": Decimal(100)}, ("fill",), T0, 180)
    assert record.ticks_gated == 3
    assert record.quiet == {"fill": 3}
    assert record.unavailable == {"atr_move": 3}  # the ATR was warming up
    assert record.timer_calls == 10  # a 3-minute timer would have called 10 times in 30 min
    assert record.since == T0
    again = state.called(now + MINUTE, {}, ("fill",), now, 180)
    assert (again.ticks_gated, again.quiet, again.unavailable) == (0, {}, {})


def test_timer_calls() -> None:
    assert timer_calls(None, T0, 180) == 1
    assert timer_calls(T0, T0 + timedelta(minutes=10), 180) == 3
    assert timer_calls(T0, T0 + timedelta(minutes=1), 180) == 0


def test_gates_and_price_following() -> None:
    assert TriggerRules(max_interval_s=60, on_fill=True).gates == (Gate.FILL,)
    assert not TriggerRules(max_interval_s=60, on_fill=True).price_based
    assert TriggerRules(max_interval_s=60, atr_move=1.0).price_based
