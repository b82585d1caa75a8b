"""The typed JSON mapper: every event reads back equal; old shapes still read."""

from __future__ import annotations

import asyncio
import json
import uuid
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from eventsourcing.persistence import (
    JSONTranscoder,
    Mapper,
    MapperDeserialisationError,
    StoredEvent,
)
from eventsourcing.utils import get_topic

from application.mapper import BatchDecoder, TypedJSONMapper
from application.trading import TradingApp
from domain.trader import Trader
from domain.values import SkipReason
from tests.support.fakes import T0, Harness, entry


def every_event_kind(env: dict[str, str]) -> tuple[TradingApp, list[Any]]:
    async def scenario() -> Harness:
        h = await Harness.create(env, answers=[{"BTC": entry("BTC", quantity=0.02)}])
        await h.run_cycle()
        await h.run_cycle({"BTC": {"signal": "close"}, "SOL": {"signal": "maybe"}})
        await h.run_cycle("garbage")
        trader = h.trader()
        trader.settle_funding(
            coin="BTC",
            amount=Decimal("-0.12"),
            rate=Decimal("0.0000125"),
            price=Decimal(100000),
            at=h.clock.now(),
        )
        trader.skip_cycle(reason=SkipReason.BUDGET, detail="over the cap", as_of=h.clock.now())
        trader.pause("operator", "lunch", h.clock.now())
        trader.resume("back", h.clock.now())
        trader.allocate(Decimal(12000), h.clock.now())
        trader.switch_model("other", "failures", h.clock.now())
        trader.record_trigger(
            as_of=h.clock.now(),
            fired=["atr_move:BTC"],
            since=h.clock.now(),
            ticks_gated=42,
            quiet={"atr_move": 40},
            unavailable={"rsi": 2},
            timer_calls=3,
        )
        h.app.save_trader(trader)
        return h

    h = asyncio.run(scenario())
    return h.app, h.events()


def test_every_event_type_reads_back_equal(sqlite_env: dict[str, str]) -> None:
    app, events = every_event_kind(sqlite_env)
    kinds = {type(e).__name__ for e in events}
    assert kinds >= {
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
        "CapitalAllocated",
        "ModelSwitched",
        "DecisionTriggered",
    }
    mapper = app.mapper
    for event in events:
        stored = mapper.to_stored_event(event)
        again = mapper.to_domain_event(stored)
        assert type(again) is type(event)
        assert vars(again) == vars(event), type(event).__name__
        # Plain JSON: no library type tags, Decimals as exact strings.
        assert b"_type_" not in stored.state


def test_events_in_the_librarys_tagged_format_still_read() -> None:
    app = TradingApp(env={"NOF0_PERSISTENCE_MODULE": "eventsourcing.popo"})
    trader = Trader.register(
        config_id="old", name="old", model="m", allocation=Decimal(5), coins=["BTC"], at=T0
    )
    (event,) = trader.collect_events()
    transcoder = JSONTranscoder()
    app.register_transcodings(transcoder)
    legacy = Mapper(transcoder=transcoder).to_stored_event(event)
    assert b"decimal_str" in legacy.state
    mapper = app.mapper
    assert isinstance(mapper, TypedJSONMapper)
    again = mapper.to_domain_event(legacy)
    assert vars(again) == vars(event)


def test_an_older_class_version_is_upcast() -> None:
    app = TradingApp(env={"NOF0_PERSISTENCE_MODULE": "eventsourcing.popo"})
    mapper = app.mapper

    class Versioned(Trader.Event):  # a stand-in for a future v2 of an event
        TOPIC = "tests/Versioned"
        class_version = 2
        amount: Decimal
        note: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["note"] = "added in v2"

    stored = StoredEvent(
        originator_id=uuid.uuid4(),
        originator_version=2,
        topic=get_topic(Versioned),
        state=json.dumps({"timestamp": "2025-10-17T00:00:00Z", "amount": "1.50"}).encode(),
    )
    event = mapper.to_domain_event(stored)
    assert event.amount == Decimal("1.50")  # type: ignore[attr-defined]
    assert event.note == "added in v2"  # type: ignore[attr-defined]


def test_snapshots_are_taken_from_memory_and_reload_to_the_same_state(
    sqlite_env: dict[str, str],
) -> None:
    from application.trading import TradingApp as App

    async def scenario() -> Harness:
        h = await Harness.create(sqlite_env)
        for i in range(70):
            answer = (
                {"BTC": entry("BTC", quantity=0.02)} if i % 2 == 0 else {"BTC": {"signal": "close"}}
            )
            await h.run_cycle(answer)
        return h

    h = asyncio.run(scenario())
    trader = h.trader()
    assert trader.version > App.snapshot_every
    assert h.app.snapshots is not None
    snapshots = list(h.app.snapshots.get(trader.id))
    assert snapshots, "a snapshot was taken when the version crossed the interval"
    assert all(s.originator_version <= trader.version for s in snapshots)
    other_process = App(env=sqlite_env)
    fresh = other_process.repository.get(trader.id)
    assert vars(fresh) == vars(trader)


def _row(position: int, stored: StoredEvent) -> tuple[int, str, Any, int, bytes]:
    return (
        position,
        stored.topic,
        str(stored.originator_id),  # as SQLite returns it
        stored.originator_version,
        stored.state,
    )


def test_the_batch_decoder_reads_every_event_as_the_mapper_does(
    sqlite_env: dict[str, str],
) -> None:
    app, events = every_event_kind(sqlite_env)
    mapper = app.mapper
    rows = [_row(i, mapper.to_stored_event(e)) for i, e in enumerate(events, 1)]
    decoded = BatchDecoder(mapper, None).decode(rows)
    assert [(p, k) for p, k, _ in decoded] == [(i, type(e)) for i, e in enumerate(events, 1)]
    for (_, _, got), event in zip(decoded, events, strict=True):
        for name, value in vars(event).items():
            assert getattr(got, name) == value, (type(event).__qualname__, name)
            assert type(getattr(got, name)) is type(value), (type(event).__qualname__, name)


def test_the_batch_decoder_keeps_only_the_classes_and_fields_asked_for() -> None:
    app, events = every_event_kind({"NOF0_PERSISTENCE_MODULE": "eventsourcing.popo"})
    mapper = app.mapper
    rows = [_row(i, mapper.to_stored_event(e)) for i, e in enumerate(events, 1)]
    wanted: dict[type[Any], tuple[frozenset[str] | None, frozenset[str]]] = {
        Trader.DecisionRequested: (
            frozenset({"cycle_id", "marks", "user_prompt"}),
            frozenset({"user_prompt"}),
        )
    }
    decoded = BatchDecoder(mapper, wanted).decode(rows)
    asked = [e for e in events if type(e) is Trader.DecisionRequested]
    assert len(decoded) == len(asked) > 0
    for (_, kind, got), event in zip(decoded, asked, strict=True):
        assert kind is Trader.DecisionRequested
        assert (got.cycle_id, got.marks, got.timestamp) == (
            event.cycle_id,
            event.marks,
            event.timestamp,
        )
        assert got.originator_id == event.originator_id
        assert not hasattr(got, "snapshot")
        assert isinstance(got.user_prompt, msgspec.Raw)
        assert msgspec.json.decode(got.user_prompt) == event.user_prompt


def test_the_batch_decoder_hands_old_shapes_to_the_mapper() -> None:
    """The library's tagged format and an older class version come out as domain events,
    read (and upcast) by the mapper."""
    app = TradingApp(env={"NOF0_PERSISTENCE_MODULE": "eventsourcing.popo"})
    trader = Trader.register(
        config_id="old", name="old", model="m", allocation=Decimal(5), coins=["BTC"], at=T0
    )
    (registered,) = trader.collect_events()
    transcoder = JSONTranscoder()
    app.register_transcodings(transcoder)
    legacy = Mapper(transcoder=transcoder).to_stored_event(registered)

    class Versioned(Trader.Event):
        TOPIC = "tests/BatchVersioned"
        class_version = 2
        amount: Decimal
        note: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["note"] = "added in v2"

    old = StoredEvent(
        originator_id=uuid.uuid4(),
        originator_version=2,
        topic=get_topic(Versioned),
        state=json.dumps({"timestamp": "2025-10-17T00:00:00Z", "amount": "1.50"}).encode(),
    )
    broken = StoredEvent(
        originator_id=uuid.uuid4(), originator_version=3, topic=old.topic, state=b"{not json"
    )
    decoder = BatchDecoder(app.mapper, None)
    (first, second) = decoder.decode([_row(1, legacy), _row(2, old)])
    assert first[1] is Trader.Registered
    assert type(first[2]) is Trader.Registered
    assert vars(first[2]) == vars(registered)
    assert type(second[2]) is Versioned
    assert (second[2].amount, second[2].note) == (Decimal("1.50"), "added in v2")
    with pytest.raises(MapperDeserialisationError):
        decoder.decode([_row(3, broken)])
