"""Many runs of one trader: each KPI's mean and interval over replicas, and the luck test.

``nof0 backtest --seeds N`` runs N replicas (different seeds); every KPI is reported as the
mean over replicas and the percentile interval (2.5 %, 97.5 % by default, linear
interpolation) of its replica values. A KPI undefined in a replica (None or NaN, say a
Sortino without a losing period) is left out of that KPI's summary, and ``count`` says how
many replicas it rests on.

The luck test compares a trader with a null, a matched random trader (same turnover,
leverage and holding time) run over the same replicas: when the two intervals of a KPI
overlap, the trader is **not distinguishable from luck** on that KPI. The same test applies
to the bootstrap intervals of a single run (``projections.statistics.Interval``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

NOT_DISTINGUISHABLE = "not distinguishable from luck"
DISTINGUISHABLE = "distinguishable from luck"


@dataclass(frozen=True)
class ReplicaSummary:
    mean: float | None
    low: float | None
    high: float | None
    count: int


class HasInterval(Protocol):
    @property
    def low(self) -> float | None: ...

    @property
    def high(self) -> float | None: ...


def summarise(values: Sequence[float | None], confidence: float = 0.95) -> ReplicaSummary:
    """Mean and percentile interval of one KPI over replicas (undefined values left out)."""
    if not 0 < confidence < 1:
        raise ValueError("confidence must be between 0 and 1")
    finite = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if len(finite) == 0:
        return ReplicaSummary(None, None, None, 0)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return ReplicaSummary(float(finite.mean()), float(low), float(high), len(finite))


def aggregate_replicas(
    replicas: Sequence[Mapping[str, float | None]], confidence: float = 0.95
) -> dict[str, ReplicaSummary]:
    """Every KPI named in any replica, summarised over the replicas (``Kpis.flat()`` rows)."""
    names: dict[str, None] = {}
    for replica in replicas:
        names.update(dict.fromkeys(replica))
    return {
        name: summarise([replica.get(name) for replica in replicas], confidence) for name in names
    }


def intervals_overlap(a: HasInterval, b: HasInterval) -> bool:
    """Whether two closed intervals share a point; an undefined interval overlaps anything
    (nothing undefined can tell a trader from luck)."""
    if a.low is None or a.high is None or b.low is None or b.high is None:
        return True
    return a.low <= b.high and b.low <= a.high


@dataclass(frozen=True)
class LuckVerdict:
    kpi: str
    distinguishable: bool

    @property
    def label(self) -> str:
        return DISTINGUISHABLE if self.distinguishable else NOT_DISTINGUISHABLE


def luck_test(
    trader: Mapping[str, HasInterval], null: Mapping[str, HasInterval], kpi: str = "sharpe"
) -> LuckVerdict:
    """The trader against its null on one KPI: distinguishable only if the intervals are
    disjoint."""
    return LuckVerdict(kpi, not intervals_overlap(trader[kpi], null[kpi]))
