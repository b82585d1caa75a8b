"""The views reduced in several processes (``ForkedReplay``): the same bytes as one
process, on every store; a process that fails fails the rebuild by the views it held,
nothing flipped, no process left behind."""

from __future__ import annotations

import os
import signal
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from application.trading import TradingApp
from infrastructure import forked_rebuild
from infrastructure.event_log import StoredLog
from infrastructure.forked_rebuild import ForkedReplay, RebuildProcessFailed, groups
from projections.conversations import ConversationsProjector
from projections.engine import Projector
from projections.rebuild import rebuild_views
from projections.trades import TradesProjector
from tests.property.test_projection_rebuild import MemoryStore, all_projectors, build_history
from tests.support.logs import log_opener
from tests.unit.infrastructure.test_event_log import Generations, rebuilt_views, varied_steps

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork on this platform")


def forked_views(
    app: TradingApp, env: dict[str, str], processes: int, projectors: Sequence[Projector[Any]]
) -> tuple[dict[str, bytes], Generations]:
    stores: dict[str, MemoryStore] = {}
    generations = Generations()
    report = rebuild_views(
        StoredLog(app, fetch=97),
        generations,
        lambda name: stores.setdefault(name, MemoryStore()),
        projectors,
        replayer=ForkedReplay(log_opener(app, env), processes),
    )
    return stores[report.namespace].files, generations


@pytest.fixture
def forked(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The pids the rebuild forks (its own fork, recorded as it happens)."""
    pids: list[int] = []
    fork = forked_rebuild._fork

    def recording() -> int:
        pid = fork()
        if pid:
            pids.append(pid)
        return pid

    monkeypatch.setattr(forked_rebuild, "_fork", recording)
    return pids


def reaped(pids: list[int]) -> bool:
    """Every one of ``pids`` waited for (none running, none a zombie)."""
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            continue
        return False
    return True


@pytest.mark.parametrize("processes", [2, 3, 6, 10])
def test_the_views_from_several_processes_are_the_views_from_one(
    store_env: dict[str, str], processes: int, forked: list[int]
) -> None:
    app = build_history(3, varied_steps(300, seed=5), env=store_env)
    expected = rebuilt_views(StoredLog(app))
    got, generations = forked_views(app, store_env, processes, all_projectors())
    assert got.keys() == expected.keys()
    for name, data in expected.items():
        assert got[name] == data, name
    assert generations.now is not None
    assert len(forked) == min(processes, 6) - 1
    assert reaped(forked)


class Broken(TradesProjector):
    """Fails at its first batch, in whichever process reduces it."""

    view_name = "broken_v1"

    def reduce_batch(self, state: Any, batch: Any) -> None:
        raise ValueError("a reducer bug at the first batch")


@pytest.mark.parametrize("broken_first", [False, True], ids=["in-a-child", "in-this-process"])
def test_a_failed_process_fails_the_rebuild_and_nothing_is_flipped(
    broken_first: bool, forked: list[int]
) -> None:
    env = {"NOF0_PERSISTENCE_MODULE": "eventsourcing.popo"}
    app = build_history(2, varied_steps(80, seed=2), env=env)
    projectors: list[Projector[Any]] = [ConversationsProjector(per_trader=3), Broken()]
    if broken_first:
        projectors.reverse()
    expected: type[Exception] = ValueError if broken_first else RebuildProcessFailed
    with pytest.raises(expected) as raised:
        forked_views(app, env, 2, projectors)
    if not broken_first:
        assert "broken_v1" in str(raised.value)
        assert "a reducer bug at the first batch" in str(raised.value)
        assert "conversations_v1" not in str(raised.value)
    assert len(forked) == 1
    assert reaped(forked)


def test_a_failed_rebuild_leaves_the_readers_where_they_were() -> None:
    env = {"NOF0_PERSISTENCE_MODULE": "eventsourcing.popo"}
    app = build_history(2, varied_steps(40, seed=4), env=env)
    generations = Generations()
    generations.now = "gen0"
    with pytest.raises(RebuildProcessFailed):
        rebuild_views(
            StoredLog(app),
            generations,
            lambda name: MemoryStore(),
            [ConversationsProjector(per_trader=3), Broken()],
            replayer=ForkedReplay(log_opener(app, env), 2),
        )
    assert generations.now == "gen0"


def test_one_process_replays_here() -> None:
    env = {"NOF0_PERSISTENCE_MODULE": "eventsourcing.popo"}
    app = build_history(2, varied_steps(60, seed=8), env=env)
    parent = os.getpid()

    @contextmanager
    def never() -> Iterator[StoredLog]:
        raise AssertionError(f"no reopen in {parent} for one process")
        yield  # pragma: no cover

    got = rebuild_views(
        StoredLog(app),
        Generations(),
        lambda name: MemoryStore(),
        all_projectors(),
        replayer=ForkedReplay(never, 1),
    )
    assert got.events > 0


def test_processes_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ForkedReplay(lambda: None, 0)  # type: ignore[arg-type, return-value]


@given(count=st.integers(1, 12), views=st.integers(1, 6))
def test_groups_hold_every_view_once_in_order_none_empty(count: int, views: int) -> None:
    projectors = all_projectors()
    chosen = [projectors[i % len(projectors)] for i in range(views)]
    split = groups(chosen, count)
    assert 1 <= len(split) <= min(count, views)
    assert all(split)
    assert sorted(id(p) for g in split for p in g) == sorted(id(p) for p in chosen)
    for group in split:
        positions = [next(i for i, p in enumerate(chosen) if p is q) for q in group]
        assert positions == sorted(positions)
    assert split[0][0] is chosen[0]


def test_the_costliest_views_go_to_different_groups() -> None:
    split = groups(all_projectors(), 2)
    names = [{p.view_name for p in g} for g in split]
    assert not any({"conversations_v1", "analytics_v1"} <= n for n in names)


class Slow(ConversationsProjector):
    """Takes seconds over its first batch, in whichever process reduces it, then leaves a
    mark in ``finished`` (a process stopped before then leaves none)."""

    view_name = "slow_v1"
    finished: Path | None = None

    def reduce_batch(self, state: Any, batch: Any) -> None:
        time.sleep(3)
        if self.finished is not None:
            self.finished.write_text("reduced")
        super().reduce_batch(state, batch)


class Failing(ConversationsProjector):
    view_name = "failing_v1"

    def reduce_batch(self, state: Any, batch: Any) -> None:
        raise OSError("FATAL:  sorry, too many clients already\n\tIs the server running?")


def popo_history(seed: int) -> tuple[TradingApp, dict[str, str]]:
    env = {"NOF0_PERSISTENCE_MODULE": "eventsourcing.popo"}
    return build_history(2, varied_steps(40, seed=seed), env=env), env


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_while_the_children_work_stops_them_all(
    signum: int, forked: list[int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the results would stay
    app, env = popo_history(4)
    slow = Slow(per_trader=3)
    slow.finished = tmp_path.parent / f"{tmp_path.name}-finished"
    projectors: list[Projector[Any]] = [TradesProjector(), slow]
    timer = threading.Timer(1.0, lambda: os.kill(os.getpid(), signum))
    timer.start()
    expected: type[BaseException] = KeyboardInterrupt if signum == signal.SIGINT else SystemExit
    with pytest.raises(expected) as raised:
        ForkedReplay(log_opener(app, env), 2)(StoredLog(app), projectors, app.max_position())
    timer.join()
    if signum == signal.SIGTERM:
        assert raised.value.code == 128 + signal.SIGTERM
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # put back
    assert len(forked) == 1
    assert reaped(forked)
    assert not slow.finished.exists()  # the child was stopped, not waited for
    assert list(tmp_path.iterdir()) == []  # the results' directory is gone


def test_a_child_error_of_several_lines_is_reported_whole(forked: list[int]) -> None:
    app, env = popo_history(6)
    with pytest.raises(RebuildProcessFailed) as raised:
        ForkedReplay(log_opener(app, env), 2)(
            StoredLog(app), [TradesProjector(), Failing(per_trader=3)], app.max_position()
        )
    message = str(raised.value)
    assert "failing_v1" in message
    assert "OSError: FATAL:  sorry, too many clients already" in message
    assert "Is the server running?" in message
    assert reaped(forked)


def test_the_first_child_to_fail_is_reported_while_another_still_works(
    forked: list[int], tmp_path: Path
) -> None:
    app, env = popo_history(7)
    slow = Slow(per_trader=3)
    slow.finished = tmp_path / "finished"
    projectors: list[Projector[Any]] = [TradesProjector(), slow, Failing(per_trader=3)]
    with pytest.raises(RebuildProcessFailed, match="failing_v1"):
        ForkedReplay(log_opener(app, env), 3)(StoredLog(app), projectors, app.max_position())
    assert len(forked) == 2
    assert reaped(forked)
    assert not slow.finished.exists()  # reported before the slow one finished, which stopped
