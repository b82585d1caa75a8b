"""Stored events name their class by an explicit topic (``nof0/Trader.<Event>``): the
event classes may move between modules, and stores written before still load."""

from __future__ import annotations

import json
import uuid

from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic, resolve_topic

from application.trading import TradingApp
from domain.trader import Trader

#: Every event a Trader has ever stored; a stored event's topic is one of these for good.
EVENTS = (
    "Registered",
    "CapitalAllocated",
    "CapitalReallocated",
    "DecisionRequested",
    "LLMResponded",
    "ModelAttemptFailed",
    "LLMFailed",
    "RiskRejected",
    "OrderPlaced",
    "OrderFilled",
    "OrderRejected",
    "OrderCanceled",
    "PositionClosed",
    "FundingSettled",
    "ProtectionPlaced",
    "ProtectionConfirmed",
    "ProtectionCanceled",
    "CycleSkipped",
    "DecisionTriggered",
    "Paused",
    "Resumed",
    "VenueSwitched",
    "OperatorActed",
    "Flattened",
    "BreakerTripped",
    "BreakerCleared",
    "ModelSwitched",
)


def test_every_event_keeps_its_topic_and_its_name_on_the_trader() -> None:
    assert get_topic(Trader) == "nof0/Trader"
    defined = {
        name
        for name, value in vars(Trader).items()
        if isinstance(value, type) and issubclass(value, Trader.Event)
    }
    assert defined - {"Event", "Created"} == set(EVENTS)
    for name in (*EVENTS, "Created"):
        cls = getattr(Trader, name)
        assert get_topic(cls) == f"nof0/Trader.{name}"
        assert resolve_topic(f"nof0/Trader.{name}") is cls
        assert (cls.__module__, cls.__qualname__) == ("domain.trader", f"Trader.{name}")
        assert issubclass(cls, Trader.Event)


def test_an_event_stored_under_its_topic_loads() -> None:
    # As a store written before the event classes moved holds it (state as stored then).
    app = TradingApp(env={"NOF0_PERSISTENCE_MODULE": "eventsourcing.popo"})
    stored = StoredEvent(
        originator_id=uuid.uuid4(),
        originator_version=3,
        topic="nof0/Trader.Paused",
        state=json.dumps(
            {"timestamp": "2025-10-17T00:00:00+00:00", "reason": "operator", "detail": "lunch"}
        ).encode(),
    )
    event = app.mapper.to_domain_event(stored)
    assert type(event) is Trader.Paused
    assert (event.reason, event.detail) == ("operator", "lunch")
