"""Matching a run's cycles with its counterfactual's and naming those that differ."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from application.counterfactual import compare, cycle_decisions, describe
from domain.trader import Trader

T0 = datetime(2022, 1, 13, tzinfo=UTC)


def asked(cycle: str, minute: int) -> Any:
    event = object.__new__(Trader.DecisionRequested)
    event.__dict__.update(cycle_id=cycle, as_of=T0 + timedelta(minutes=minute))
    return event


def answered(cycle: str, *moves: tuple[str, str], cost: str = "0", cached: bool = False) -> Any:
    event = object.__new__(Trader.LLMResponded)
    event.__dict__.update(
        cycle_id=cycle,
        decisions=[{"coin": coin, "signal": signal, "quantity": 1} for coin, signal in moves],
        cost_usd=Decimal(cost),
        cached=cached,
    )
    return event


def run(*cycles: tuple[int, tuple[tuple[str, str], ...] | None]) -> list[Any]:
    events: list[Any] = [SimpleNamespace()]  # an event of another kind is ignored
    for minute, moves in cycles:
        events.append(asked(f"c{minute}", minute))
        if moves is not None:
            events.append(answered(f"c{minute}", *moves, cost="0.01", cached=minute % 2 == 0))
    return events


def test_cycles_match_by_time_and_differ_by_coin_and_signal() -> None:
    hold, buy, sell = (("BTC", "hold"),), (("BTC", "buy_to_enter"),), (("BTC", "sell_to_enter"),)
    original = cycle_decisions(run((0, hold), (3, buy), (6, hold), (9, None)))
    changed = cycle_decisions(run((0, hold), (3, sell), (6, hold), (12, hold)))
    diff = compare(original, changed)
    assert diff.compared == 3
    assert [(at, describe(a), describe(b)) for at, a, b in diff.differing] == [
        (T0 + timedelta(minutes=3), "buy_to_enter BTC", "sell_to_enter BTC")
    ]
    assert (diff.only_original, diff.only_changed) == (1, 1)
    assert original.cost_usd == 0.03
    assert original.cached == 2  # minutes 0 and 6 answered from the cache


def test_a_cycle_without_an_answer_is_no_answer() -> None:
    original = cycle_decisions(run((0, None)))
    changed = cycle_decisions(run((0, (("ETH", "close"),))))
    (difference,) = compare(original, changed).differing
    assert describe(difference[1]) == "no answer"
    assert describe(difference[2]) == "close ETH"


def test_a_recorded_arenas_cycles_are_matched_to_the_nearest_earlier_original() -> None:
    from application.counterfactual import CycleDecisions, align

    at = lambda seconds: T0 + timedelta(seconds=seconds)  # noqa: E731
    hold: frozenset[tuple[str, str]] = frozenset({("BTC", "hold")})
    buy: frozenset[tuple[str, str]] = frozenset({("BTC", "buy_to_enter")})
    original = CycleDecisions({at(7): hold, at(187): hold, at(371): buy})
    # The counterfactual's minute steps fall 0-60 s after each recorded cycle; one cycle at
    # 600 s has no original near it, and two cycles after one original take it only once.
    changed = CycleDecisions(
        {at(60): hold, at(240): buy, at(420): buy, at(425): hold, at(600): hold}
    )
    aligned = align(original, changed, 60)
    assert aligned.by_time == {
        at(7): hold,
        at(187): buy,
        at(371): buy,
        at(425): hold,
        at(600): hold,
    }
    diff = compare(original, aligned)
    assert (diff.compared, [t for t, _, _ in diff.differing]) == (3, [at(187)])
    assert (diff.only_original, diff.only_changed) == (0, 2)
