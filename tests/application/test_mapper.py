"""The typed JSON mapper: every event reads back equal; old shapes still read."""

from __future__ import annotations

import asyncio
import json
import uuid
from decimal import Decimal
from typing import Any

from eventsourcing.persistence import JSONTranscoder, Mapper, StoredEvent
from eventsourcing.utils import get_topic

from application.mapper import TypedJSONMapper
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
