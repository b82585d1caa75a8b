"""Which leases a batch of events needs before it may be stored."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.persistence import StoredEvent

from application.leases import LeaseKeeper, trader_lease, venue_lease
from domain.trader import trader_id
from domain.venue_account import venue_account_id
from infrastructure.fenced_recorder import NOT_HELD, lease_fence
from tests.support.leases import MemoryLeaseStore


def event(originator: UUID, topic: str = "nof0/Trader.OrderPlaced") -> StoredEvent:
    return StoredEvent(originator, 2, topic, b"{}")


def test_events_need_their_traders_and_venues_leases_with_this_engines_tokens() -> None:
    store = MemoryLeaseStore()
    keeper = LeaseKeeper(store, "one", ("a",), extra=(venue_lease("hl"),), monotonic=store.clock)
    keeper.tick()
    fence = lease_fence(keeper, ["a", "b"], [("hl", "0xABC")])
    token = keeper.held[trader_lease("a")].token
    assert fence([event(trader_id("a")), event(trader_id("a.paper"))]) == [
        (trader_lease("a"), "one", token)
    ]
    # A trader this engine does not hold: a token no lease has, so the insert fails.
    assert fence([event(trader_id("b"))]) == [(trader_lease("b"), "one", NOT_HELD)]
    venue = keeper.held[venue_lease("hl")].token
    assert fence([event(venue_account_id("hl", "0xabc"))]) == [(venue_lease("hl"), "one", venue)]
    # Operators' commands and aggregates outside the arena need none.
    assert fence([event(trader_id("b")), event(trader_id("b"), "nof0/Trader.OperatorActed")]) == []
    assert fence([event(trader_id("unconfigured"))]) == []
