"""The rebuild's bulk read (``StoredLog``): the views it rebuilds are byte for byte the ones
the event-by-event catch-up builds (the path views are projected live by), on every store,
for any fetch size; and each view reads only the events and fields it declares."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from application.trading import TradingApp
from infrastructure.event_log import StoredLog
from projections.engine import CatchUp, EventSourceBatches, Projector, wanted_by
from projections.rebuild import rebuild_views
from tests.property.test_projection_rebuild import (
    KINDS,
    SIGNALS,
    MemoryStore,
    all_projectors,
    build_history,
    step,
)

COINS = ("BTC", "ETH")


class Generations:
    def __init__(self) -> None:
        self.names: list[str] = []
        self.now: str | None = None

    @contextmanager
    def rebuild_lock(self) -> Iterator[None]:
        yield

    def create(self) -> str:
        self.names.append(f"gen{len(self.names) + 1}")
        return self.names[-1]

    def current(self) -> str | None:
        return self.now

    def flip(self, name: str) -> None:
        self.now = name

    def all(self) -> list[str]:
        return list(self.names)

    def remove(self, name: str) -> None:
        self.names.remove(name)


def varied_steps(count: int, seed: int) -> list[tuple[str, int, str, str, bool, int]]:
    """Cycles (answers, failures, refusals, orders), fills (partial, closing, external),
    funding, skips, pauses and venue findings, over hours of trading."""
    rng = random.Random(seed)
    return [
        (
            rng.choice(KINDS),
            rng.randint(1, 150),
            rng.choice(COINS),
            rng.choice(SIGNALS),
            rng.random() < 0.5,
            rng.randint(-300, 300),
        )
        for _ in range(count)
    ]


def live_views(app: TradingApp, batch_size: int) -> dict[str, bytes]:
    """The views as the live catch-up builds them: domain events, one at a time, a commit
    after every batch."""
    store = MemoryStore()
    CatchUp(app, store, all_projectors(), batch_size=batch_size).run_until()
    return store.files


def rebuilt_views(source: Any) -> dict[str, bytes]:
    stores: dict[str, MemoryStore] = {}
    report = rebuild_views(
        source, Generations(), lambda name: stores.setdefault(name, MemoryStore()), all_projectors()
    )
    return stores[report.namespace].files


def kinds_in(app: TradingApp) -> set[str]:
    return {type(e).__name__ for _, e in app.read_events(0, 10**6)}


@pytest.mark.parametrize("fetch", [1, 7, 5000])
def test_a_rebuild_from_the_store_writes_the_live_views_byte_for_byte(
    store_env: dict[str, str], fetch: int
) -> None:
    app = build_history(3, varied_steps(400, seed=11), env=store_env)
    assert kinds_in(app) >= {
        "Registered",
        "DecisionRequested",
        "LLMResponded",
        "LLMFailed",
        "RiskRejected",
        "OrderPlaced",
        "OrderFilled",
        "PositionClosed",
        "FundingSettled",
        "CycleSkipped",
        "Paused",
        "Resumed",
        "DriftDetected",
        "TransferObserved",
        "ForeignOrderObserved",
    }
    expected = live_views(app, batch_size=13)
    got = rebuilt_views(StoredLog(app, fetch=fetch))
    assert got.keys() == expected.keys()
    for name, data in expected.items():
        assert got[name] == data, name


@settings(max_examples=30, deadline=None)
@given(
    traders=st.integers(1, 3),
    steps=st.lists(step, min_size=1, max_size=60),
    fetch=st.integers(1, 40),
)
def test_any_history_rebuilds_to_the_live_views(
    traders: int, steps: list[tuple[str, int, str, str, bool, int]], fetch: int
) -> None:
    app = build_history(traders, steps)
    assert rebuilt_views(StoredLog(app, fetch=fetch)) == live_views(app, batch_size=fetch)


def test_a_plain_event_source_rebuilds_the_same_views() -> None:
    app = build_history(2, varied_steps(150, seed=3))
    assert rebuilt_views(EventSourceBatches(app, 11)) == live_views(app, batch_size=1000)


def test_an_empty_log_rebuilds_the_empty_views_as_before(store_env: dict[str, str]) -> None:
    app = TradingApp(env=store_env)
    before = MemoryStore()  # the rebuild before bulk reads: the catch-up, written at the end
    CatchUp(app, before, all_projectors()).run_until(commit_each_batch=False)
    assert len(before.files) == 9
    assert rebuilt_views(StoredLog(app)) == before.files


class Reads:
    """A domain event that notes which of its attributes a reducer reads."""

    def __init__(self, event: Any, seen: set[str]) -> None:
        self._event = event
        self._seen = seen

    def __getattr__(self, name: str) -> Any:
        self._seen.add(name)
        return getattr(self._event, name)


def test_each_view_reads_only_the_events_and_fields_it_declares() -> None:
    """A rebuild decodes only what ``handles`` and ``ignores`` allow: a reducer that read
    anything else would see a missing attribute, or an event it was never given."""
    app = build_history(3, varied_steps(400, seed=11))
    events = app.read_events(0, 10**6)
    for projector in all_projectors():
        assert projector.handles is not None, projector.name
        handlers = getattr(projector, "_handlers", None)
        if handlers is not None:
            assert set(handlers) == projector.handles, projector.name
        state = projector.initial()
        for _, event in events:
            kind = type(event)
            seen: set[str] = set()
            projector.reduce(state, kind, Reads(event, seen))
            if kind not in projector.handles:
                assert not seen, (projector.name, kind.__qualname__, seen)
                continue
            ignored = projector.ignores.get(kind, frozenset())
            assert not seen & ignored, (projector.name, kind.__qualname__, seen & ignored)


def test_what_the_views_read_is_what_a_rebuild_decodes() -> None:
    projectors: list[Projector[Any]] = all_projectors()
    wanted = wanted_by(projectors)
    assert wanted is not None
    from domain.trader import Trader

    requested, raw = wanted[Trader.DecisionRequested]
    assert requested is not None
    assert "snapshot" not in requested  # the market snapshot: tens of kB no view reads
    assert {"user_prompt", "marks", "cycle_id", "as_of", "timestamp"} <= requested
    assert raw == {"user_prompt"}  # only the conversations read it, and only a few
    assert wanted[Trader.LLMResponded][1] == {"raw_text"}
    assert Trader.ModelAttemptFailed not in wanted  # no view reads it: never decoded


def test_reading_ahead_raises_the_stores_error_in_the_reader() -> None:
    from infrastructure.event_log import read_ahead

    def failing() -> Iterator[int]:
        yield 1
        raise OSError("the disk went away")

    reader = read_ahead(failing())
    assert next(reader) == 1
    with pytest.raises(OSError, match="disk went away"):
        next(reader)


def test_stopping_early_closes_the_read_on_its_thread() -> None:
    from infrastructure.event_log import read_ahead

    closed = []

    def endless() -> Iterator[int]:
        try:
            n = 0
            while True:
                n += 1
                yield n
        finally:
            closed.append(True)

    reader = read_ahead(endless())
    assert [next(reader), next(reader)] == [1, 2]
    reader.close()
    assert closed == [True]
