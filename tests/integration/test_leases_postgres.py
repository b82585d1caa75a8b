"""Leases in a real PostgreSQL: one winner under contention, expiry on the server's clock,
fencing tokens that refuse a stale holder, and two keepers sharing traders."""

from __future__ import annotations

import threading
import time

import pytest

from application.leases import LeaseKeeper, trader_lease
from infrastructure.leases import PostgresLeaseStore
from tests.conftest import POSTGRES_DSN

pytestmark = pytest.mark.postgres


@pytest.fixture
def stores(postgres_schema: str) -> list[PostgresLeaseStore]:
    # Each call opens its own connection: nothing to close afterwards.
    return [PostgresLeaseStore(POSTGRES_DSN, postgres_schema) for _ in range(4)]


def test_only_one_of_several_engines_racing_for_a_lease_gets_it(
    stores: list[PostgresLeaseStore],
) -> None:
    barrier = threading.Barrier(len(stores))
    won: list[str] = []

    def race(index: int) -> None:
        barrier.wait()
        lease = stores[index].acquire("trader:a", f"engine-{index}", 30)
        if lease is not None:
            won.append(lease.owner)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1
    assert [lease.owner for lease in stores[0].live("trader:")] == won


def test_an_expired_lease_passes_to_another_owner_with_a_higher_token(
    stores: list[PostgresLeaseStore],
) -> None:
    one, two = stores[0], stores[1]
    first = one.acquire("trader:a", "one", 0.5)
    assert first is not None
    assert first.token == 1
    assert first.previous_owner == ""
    assert two.acquire("trader:a", "two", 30) is None
    assert one.current([first], margin=0)
    time.sleep(0.7)
    assert not one.current([first], margin=0)
    assert one.renew(first, 30) is None  # expired: not silently revived
    second = two.acquire("trader:a", "two", 30)
    assert second is not None
    assert second.token == 2
    assert second.previous_owner == "one"
    assert two.current([second], margin=1)
    assert not two.current([first, second], margin=0)
    # The old holder's hand-back touches nothing it no longer holds.
    one.release(first)
    assert two.current([second], margin=1)


def test_renew_extends_and_release_frees_at_once(stores: list[PostgresLeaseStore]) -> None:
    one, two = stores[0], stores[1]
    lease = one.acquire("venue:sim", "one", 5)
    assert lease is not None
    renewed = one.renew(lease, 60)
    assert renewed is not None
    assert renewed.remaining > 30
    assert renewed.token == lease.token
    assert not one.current([renewed], margin=90)
    one.release(renewed)
    assert one.live("venue:") == []
    taken = two.acquire("venue:sim", "two", 5)
    assert taken is not None
    assert taken.token == lease.token + 1


def test_two_keepers_split_the_traders_and_one_takes_all_when_the_other_stops(
    stores: list[PostgresLeaseStore],
) -> None:
    traders = ("a", "b", "c", "d")
    one = LeaseKeeper(stores[0], "one", traders, ttl=30)
    two = LeaseKeeper(stores[1], "two", traders, ttl=30)
    one.tick()
    two.tick()
    one.tick()
    two.tick()
    assert one.traders() == {"a", "b"}
    assert two.traders() == {"c", "d"}
    two.release_all()  # a graceful stop hands its traders back, engine lease included
    one.tick()
    assert one.traders() == set(traders)
    assert {lease.name for lease in one.drain_takeovers()} == {trader_lease("c"), trader_lease("d")}
