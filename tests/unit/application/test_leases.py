"""Lease keeping among several engines: fair shares, hand-over, takeover after a death."""

from __future__ import annotations

from application.leases import LeaseKeeper, fair_share, trader_lease, venue_lease
from tests.support.leases import MemoryLeaseStore

TRADERS = ("a", "b", "c", "d", "e")


def keeper(store: MemoryLeaseStore, owner: str, ttl: float = 15.0) -> LeaseKeeper:
    return LeaseKeeper(
        store,
        owner,
        TRADERS,
        extra=(venue_lease("hyperliquid"),),
        ttl=ttl,
        monotonic=store.clock,
    )


def test_fair_share_rounds_up() -> None:
    assert fair_share(5, 2) == 3
    assert fair_share(5, 0) == 5
    assert fair_share(0, 3) == 0


def test_a_lone_engine_holds_every_trader_and_the_venue() -> None:
    store = MemoryLeaseStore()
    one = keeper(store, "one")
    one.tick()
    assert one.traders() == frozenset(TRADERS)
    assert one.holds(venue_lease("hyperliquid"))


def test_a_second_engine_gets_a_share_handed_over_and_no_trader_has_two_owners() -> None:
    store = MemoryLeaseStore()
    one, two = keeper(store, "one"), keeper(store, "two")
    one.tick()
    two.tick()  # announces itself; everything is still held by one
    assert two.traders() == frozenset()
    one.tick()  # sees two engines: hands back its surplus (highest names first)
    two.tick()
    assert one.traders() == {"a", "b", "c"}
    assert two.traders() == {"d", "e"}
    assert one.traders().isdisjoint(two.traders())
    # Only one of them writes the venue account.
    assert one.holds(venue_lease("hyperliquid")) != two.holds(venue_lease("hyperliquid"))


def test_a_dead_engines_traders_are_taken_over_after_expiry_with_new_tokens() -> None:
    store = MemoryLeaseStore()
    one, two = keeper(store, "one"), keeper(store, "two")
    for _ in range(2):
        one.tick()
        two.tick()
    old_tokens = {n: lease.token for n, lease in two.held.items()}
    # "two" dies: no more ticks. Before its leases expire, "one" cannot take them.
    store.now += 10
    one.tick()
    assert one.traders() == {"a", "b", "c"}
    store.now += 6  # past two's expiry (15 s)
    one.tick()
    assert one.traders() == frozenset(TRADERS)
    taken = {lease.name: lease for lease in one.drain_takeovers()}
    assert set(taken) >= {trader_lease("d"), trader_lease("e")}
    for name in (trader_lease("d"), trader_lease("e")):
        assert taken[name].previous_owner == "two"
        assert taken[name].token == old_tokens[name] + 1
    # The dead engine's stale leases are no longer current: its fence refuses.
    stale = [two.held[trader_lease("d")]]
    assert not store.current(stale, margin=0)
    assert store.current([one.held[trader_lease("d")]], margin=0)


def test_a_paused_engine_finds_its_leases_lost_and_acts_for_no_one() -> None:
    store = MemoryLeaseStore()
    one, two = keeper(store, "one"), keeper(store, "two")
    one.tick()
    store.now += 20  # one stalls past its ttl (a long GC pause, a frozen VM)
    two.tick()
    assert two.traders() == frozenset(TRADERS)
    # Its local deadline has passed too, so it does not act before it learns the loss.
    assert one.traders() == frozenset()
    one.tick()
    assert set(one.drain_lost()) >= {trader_lease(t) for t in TRADERS}
    assert one.traders().isdisjoint(two.traders())


def test_release_all_lets_another_engine_take_over_at_once() -> None:
    store = MemoryLeaseStore()
    one, two = keeper(store, "one"), keeper(store, "two")
    one.tick()
    one.release_all()
    two.tick()
    assert two.traders() == frozenset(TRADERS)
    assert two.holds(venue_lease("hyperliquid"))


def test_a_restarted_engine_with_the_same_owner_gets_a_new_token() -> None:
    store = MemoryLeaseStore()
    first = keeper(store, "one")
    first.tick()
    before = first.held[trader_lease("a")].token
    again = keeper(store, "one")  # same host and data directory after a crash
    again.tick()
    assert again.traders() == frozenset(TRADERS)
    assert again.held[trader_lease("a")].token == before + 1
    assert not store.current([first.held[trader_lease("a")]], margin=0)


def test_engines_on_one_host_are_counted_for_its_request_budget() -> None:
    store = MemoryLeaseStore()
    here = [keeper(store, f"box-1:{where}") for where in ("aa", "bb")]
    there = keeper(store, "box-2:aa")
    for engine in (*here, there):
        engine.tick()
    assert here[0].engines_on_host() == 1  # it ticked before the others announced themselves
    here[0].tick()
    assert here[0].engines_on_host() == 2
    assert there.engines_on_host() == 1
    store.now += 16  # the other engine on box-1 died: its share comes back
    here[0].tick()
    assert here[0].engines_on_host() == 1
    assert keeper(store, "named-by-hand").engines_on_host() == 1
