"""The gates' memory (domain.trigger_memory): a restored state behaves exactly as the one
that was saved, through JSON; a memory of other rules, too old or damaged is not used."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from domain.trigger_memory import dump, restore
from domain.triggers import (
    IndicatorKind,
    IndicatorRule,
    TraderFacts,
    TriggerRules,
    TriggerState,
)

T0 = datetime(2025, 10, 17, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
RULES = TriggerRules(
    max_interval_s=86400,
    atr_move=1.5,
    atr_period=3,
    bar_s=120,
    on_fill=True,
    funding_window_s=600,
    indicators=(
        IndicatorRule(IndicatorKind.EMA_CROSS, fast=2, slow=4),
        IndicatorRule(IndicatorKind.RSI, period=3, above=70, below=30),
    ),
)
COINS = ("BTC", "ETH")


def _feed(state: TriggerState, path: list[tuple[float, float]], start: datetime) -> datetime:
    at = start
    for i, (btc, eth) in enumerate(path):
        at = start + i * MINUTE
        state.observe(at, {"BTC": Decimal(repr(btc)), "ETH": Decimal(repr(eth))})
    return at


def _verdict(state: TriggerState, now: datetime, price: tuple[float, float]) -> Any:
    prices = {"BTC": Decimal(repr(price[0])), "ETH": Decimal(repr(price[1]))}
    return state.check(
        now,
        coins=COINS,
        prices=prices,
        last_call_at=T0,
        interval_s=180,
        facts=TraderFacts(last_fill_at=T0, closed_trades=2),
    )


def _through_json(data: dict[str, Any]) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(json.dumps(data))
    return loaded


prices = st.tuples(
    st.floats(90_000, 110_000, allow_nan=False), st.floats(3_000, 4_000, allow_nan=False)
)


@settings(max_examples=60, deadline=None)
@given(before=st.lists(prices, min_size=0, max_size=40), after=st.lists(prices, max_size=20))
@example(before=[(100_000.0, 3_500.0)] * 12, after=[(100_500.0, 3_400.0)] * 3)
def test_a_restored_state_goes_on_exactly_as_the_saved_one(
    before: list[tuple[float, float]], after: list[tuple[float, float]]
) -> None:
    original = TriggerState(RULES)
    last = _feed(original, before, T0)
    if before:
        original.called(last, {"BTC": Decimal(repr(before[0][0]))}, ("first_call",), None, 180)
        original.skipped(_verdict(original, last, before[-1]))
    saved_at = last + timedelta(seconds=30)
    restored, why = restore(RULES, _through_json(dump(original, saved_at)), saved_at + MINUTE)
    assert restored is not None, why
    assert restored == original
    start = saved_at + MINUTE
    end_a, end_b = _feed(original, after, start), _feed(restored, after, start)
    assert end_a == end_b
    probe = after[-1] if after else (100_000.0, 3_500.0)
    assert _verdict(original, end_a, probe) == _verdict(restored, end_b, probe)
    assert dump(original, end_a) == dump(restored, end_b)


def _warm() -> tuple[TriggerState, datetime]:
    state = TriggerState(RULES)
    at = _feed(state, [(100_000.0 + 100 * (i % 2), 3_500.0) for i in range(20)], T0)
    return state, at


def test_a_memory_of_other_rules_is_not_used() -> None:
    state, at = _warm()
    other = TriggerRules(max_interval_s=86400, atr_move=1.5, atr_period=3, bar_s=300)
    restored, why = restore(other, dump(state, at), at)
    assert restored is None
    assert "changed" in why


def test_a_memory_older_than_the_atr_warm_up_is_not_used() -> None:
    state, at = _warm()
    data = dump(state, at)
    warm_up = RULES.atr_period * RULES.bar_s
    assert restore(RULES, data, at + timedelta(seconds=warm_up))[0] is not None
    restored, why = restore(RULES, data, at + timedelta(seconds=warm_up + 1))
    assert restored is None
    assert "ago" in why
    assert restore(RULES, data, at - MINUTE)[0] is None  # saved in the future: a wrong clock


def test_a_damaged_memory_is_not_used_and_says_why() -> None:
    state, at = _warm()
    good = _through_json(dump(state, at))
    damaged: list[dict[str, Any]] = []
    for key in ("coins", "reference", "ticks_gated", "saved_at"):
        broken = dict(good)
        del broken[key]
        damaged.append(broken)
    damaged.append({**good, "version": 99})
    damaged.append({**good, "ticks_gated": "many"})
    damaged.append({**good, "closes_seen": 1.5})
    coin = dict(good["coins"]["BTC"])
    coin["atr"] = "high"
    damaged.append({**good, "coins": {**good["coins"], "BTC": coin}})
    coin = dict(good["coins"]["BTC"])
    coin["indicators"] = coin["indicators"][:1]
    damaged.append({**good, "coins": {**good["coins"], "BTC": coin}})
    coin = dict(good["coins"]["BTC"])
    coin["bars"] = True
    damaged.append({**good, "coins": {**good["coins"], "BTC": coin}})
    for data in damaged:
        restored, why = restore(RULES, data, at)
        assert restored is None, data
        assert why
