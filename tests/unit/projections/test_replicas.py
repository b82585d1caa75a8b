"""Replica aggregation and the luck test."""

from __future__ import annotations

import math

import pytest

from projections.replicas import (
    NOT_DISTINGUISHABLE,
    ReplicaSummary,
    aggregate_replicas,
    intervals_overlap,
    luck_test,
    summarise,
)
from projections.statistics import Interval


def test_summary_of_five_replicas_by_hand() -> None:
    summary = summarise([1.0, 2.0, 3.0, 4.0, 5.0])
    # linear interpolation: the 2.5th percentile is 1 + 0.025 · 4 = 1.1
    assert summary == ReplicaSummary(mean=3.0, low=pytest.approx(1.1), high=4.9, count=5)


def test_undefined_replica_values_are_left_out() -> None:
    summary = summarise([None, 2.0, math.nan, 4.0])
    assert summary.count == 2
    assert summary.mean == 3.0
    assert summarise([None]) == ReplicaSummary(None, None, None, 0)


def test_every_kpi_is_aggregated() -> None:
    replicas = [{"sharpe": 1.0, "win_rate": 0.5}, {"sharpe": 3.0, "win_rate": None}]
    result = aggregate_replicas(replicas)
    assert set(result) == {"sharpe", "win_rate"}
    assert result["sharpe"].mean == 2.0
    assert result["win_rate"].count == 1


def test_overlapping_intervals_are_luck() -> None:
    trader = {"sharpe": ReplicaSummary(2.0, 0.5, 3.5, 10)}
    null = {"sharpe": ReplicaSummary(0.0, -1.5, 1.0, 10)}
    verdict = luck_test(trader, null)
    assert not verdict.distinguishable
    assert verdict.label == NOT_DISTINGUISHABLE


def test_disjoint_intervals_are_distinguishable() -> None:
    trader = {"sharpe": ReplicaSummary(4.0, 2.0, 6.0, 10)}
    null = {"sharpe": ReplicaSummary(0.0, -1.5, 1.0, 10)}
    verdict = luck_test(trader, null)
    assert verdict.distinguishable
    assert verdict.label == "distinguishable from luck"


def test_bootstrap_intervals_take_the_same_test() -> None:
    assert intervals_overlap(Interval(1.0, 0.0, 2.0), Interval(3.0, 2.0, 4.0))  # touching
    assert not intervals_overlap(Interval(1.0, 0.0, 1.9), Interval(3.0, 2.0, 4.0))
    assert intervals_overlap(Interval(None, None, None), Interval(3.0, 2.0, 4.0))
