"""The pieces of ``backtest --workers``: the partition of the traders, and the merge of the
workers' event stores (its order, its fresh notification ids, its refusal of an aggregate
two workers wrote)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from eventsourcing.persistence import StoredEvent

from application.trading import TradingApp
from infrastructure.backtest import BacktestError
from infrastructure.backtest_workers import SharedAggregate, check_workers, merge_stores, partition
from infrastructure.event_log import StoredLog
from infrastructure.eventstore import open_trading_app, sqlite_env


@pytest.mark.parametrize(
    ("traders", "workers", "groups"),
    [
        (["a", "b", "c"], 1, [["a", "b", "c"]]),
        (["a", "b", "c"], 2, [["a", "b"], ["c"]]),
        (["a", "b", "c"], 3, [["a"], ["b"], ["c"]]),
        (["a", "b", "c"], 8, [["a"], ["b"], ["c"]]),
        (["a", "b", "c", "d", "e"], 2, [["a", "b", "c"], ["d", "e"]]),
        ([], 2, []),
    ],
)
def test_the_traders_are_cut_into_contiguous_groups_in_order(
    traders: list[str], workers: int, groups: list[list[str]]
) -> None:
    assert partition(traders, workers) == groups


def test_fewer_than_one_worker_is_refused() -> None:
    with pytest.raises(BacktestError, match="--workers must be at least 1, not 0"):
        check_workers(0)
    with pytest.raises(BacktestError, match="not -1"):
        partition(["a"], -1)


def store(path: Path, events: list[tuple[uuid.UUID, int, str]]) -> TradingApp:
    """A store holding ``events``: (aggregate, version, timestamp) each."""
    app = open_trading_app(sqlite_env(path))
    for originator, version, stamp in events:
        state = json.dumps({"timestamp": stamp, "n": f"{originator.hex[:4]}-{version}"})
        app.recorder.insert_events(
            [StoredEvent(originator, version, "nof0/Test.Happened", state.encode())]
        )
    return app


A, B, C = (uuid.UUID(int=n) for n in (1, 2, 3))


def rows(app: TradingApp) -> list[tuple[int, str, int]]:
    return [
        (row[0], str(row[2]), row[3])
        for batch in StoredLog(app).rows(0, app.max_position())
        for row in batch
    ]


def test_the_merge_orders_by_time_then_worker_and_numbers_afresh(tmp_path: Path) -> None:
    first = store(
        tmp_path / "0.sqlite3",
        [(A, 1, "2022-01-13T00:00:00Z"), (A, 2, "2022-01-13T00:02:00Z")],
    )
    second = store(
        tmp_path / "1.sqlite3",
        [
            (B, 1, "2022-01-13T00:00:00Z"),
            (C, 1, "2022-01-13T00:01:00Z"),
            (B, 2, "2022-01-13T00:02:00Z"),
            # Stamped before its predecessor: a merge keeps the worker's own order.
            (B, 3, "2022-01-13T00:01:30Z"),
        ],
    )
    target = open_trading_app(sqlite_env(tmp_path / "out.sqlite3"))
    report = merge_stores([first, second], target, batch=2)
    assert report.events == 6
    assert report.per_source == [2, 4]
    assert rows(target) == [
        (1, str(A.hex), 1),
        (2, str(B.hex), 1),
        (3, str(C.hex), 1),
        (4, str(A.hex), 2),
        (5, str(B.hex), 2),
        (6, str(B.hex), 3),
    ]


def test_an_aggregate_written_by_two_workers_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    first = store(tmp_path / "0.sqlite3", [(A, 1, "2022-01-13T00:00:00Z")])
    second = store(
        tmp_path / "1.sqlite3", [(B, 1, "2022-01-13T00:00:00Z"), (A, 2, "2022-01-13T00:01:00Z")]
    )
    target = open_trading_app(sqlite_env(tmp_path / "out.sqlite3"))
    with pytest.raises(SharedAggregate, match=f"aggregate {A.hex} was written by worker 0 and"):
        merge_stores([first, second], target)
    assert target.max_position() == 0


def test_the_merge_needs_an_empty_store(tmp_path: Path) -> None:
    first = store(tmp_path / "0.sqlite3", [(A, 1, "2022-01-13T00:00:00Z")])
    target = store(tmp_path / "out.sqlite3", [(B, 1, "2022-01-13T00:00:00Z")])
    with pytest.raises(BacktestError, match="not empty"):
        merge_stores([first], target)


def test_the_aggregates_snapshots_are_copied(tmp_path: Path) -> None:
    first = store(tmp_path / "0.sqlite3", [(A, 1, "2022-01-13T00:00:00Z")])
    second = store(tmp_path / "1.sqlite3", [(B, 1, "2022-01-13T00:00:00Z")])
    snapshots = {
        A: StoredEvent(A, 1, "eventsourcing.domain:Snapshot", b'{"state":"a"}'),
        B: StoredEvent(B, 1, "eventsourcing.domain:Snapshot", b'{"state":"b"}'),
    }
    for app, originator in ((first, A), (second, B)):
        assert app.snapshots is not None
        app.snapshots.recorder.insert_events([snapshots[originator]])
    target = open_trading_app(sqlite_env(tmp_path / "out.sqlite3"))
    report = merge_stores([first, second], target)
    assert report.snapshots == 2
    assert target.snapshots is not None
    for originator, snapshot in snapshots.items():
        assert target.snapshots.recorder.select_events(originator) == [snapshot]
