"""Compare a run with its counterfactual: the same cycles decided under a change.

Pure: two event streams of one trader in, the cycles whose decisions differ out. A cycle
is matched by its as-of time (both runs step the same clock over the same market path);
its decision is the set of (coin, signal) the model answered, so a change that only moves
a quantity or a stop does not count as a different decision, and one that opens, closes
or turns a position does.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.trader import Trader

Decision = frozenset[tuple[str, str]]


@dataclass(frozen=True)
class CycleDecisions:
    """Per as-of time, what the model answered (None: no answer, e.g. the model failed)."""

    by_time: dict[datetime, Decision | None] = field(default_factory=dict)
    cost_usd: float = 0.0
    cached: int = 0  # answers served from the prompt digest cache (no model call)


def cycle_decisions(events: Iterable[Any]) -> CycleDecisions:
    asked: dict[str, datetime] = {}
    by_time: dict[datetime, Decision | None] = {}
    cost = 0.0
    cached = 0
    for event in events:
        if isinstance(event, Trader.DecisionRequested):
            asked[event.cycle_id] = event.as_of
            by_time[event.as_of] = None
        elif isinstance(event, Trader.LLMResponded) and event.cycle_id in asked:
            by_time[asked[event.cycle_id]] = frozenset(
                (str(item.get("coin", "")), str(item.get("signal", ""))) for item in event.decisions
            )
            cost += float(event.cost_usd)
            cached += int(event.cached)
    return CycleDecisions(by_time, cost, cached)


@dataclass(frozen=True)
class DecisionDiff:
    compared: int  # cycles at the same time in both runs
    differing: list[tuple[datetime, Decision | None, Decision | None]]
    only_original: int
    only_changed: int


def compare(original: CycleDecisions, changed: CycleDecisions) -> DecisionDiff:
    common = sorted(original.by_time.keys() & changed.by_time.keys())
    differing = [
        (at, original.by_time[at], changed.by_time[at])
        for at in common
        if original.by_time[at] != changed.by_time[at]
    ]
    return DecisionDiff(
        compared=len(common),
        differing=differing,
        only_original=len(original.by_time.keys() - changed.by_time.keys()),
        only_changed=len(changed.by_time.keys() - original.by_time.keys()),
    )


def align(original: CycleDecisions, changed: CycleDecisions, within_s: float) -> CycleDecisions:
    """``changed`` with each cycle moved to the time of the original cycle it re-decided:
    the nearest original cycle at or before it, within ``within_s`` (a recorded arena's
    cycles fell at any second; the counterfactual's clock steps whole minutes after them).
    A cycle with no such original, or one whose original another cycle already took, keeps
    its own time (it counts as the counterfactual's only)."""
    times = sorted(original.by_time)
    taken: set[datetime] = set()
    by_time: dict[datetime, Decision | None] = {}
    for at in sorted(changed.by_time):
        match = bisect.bisect_right(times, at) - 1
        target = at
        if match >= 0:
            candidate = times[match]
            if (at - candidate).total_seconds() <= within_s and candidate not in taken:
                target = candidate
                taken.add(candidate)
        by_time[target] = changed.by_time[at]
    return CycleDecisions(by_time, changed.cost_usd, changed.cached)


def describe(decision: Decision | None) -> str:
    if decision is None:
        return "no answer"
    moves = sorted(f"{signal} {coin}" for coin, signal in decision if signal != "hold")
    return ", ".join(moves) or "hold"
