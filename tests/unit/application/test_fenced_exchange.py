"""The order fence: an engine sends nothing for a trader whose lease it does not hold."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest

from application.fenced_exchange import FencedExchange, acting_for, acting_trader
from application.leases import LeaseKeeper, venue_lease
from application.ports import (
    ExchangeError,
    OrderReport,
    OrderState,
    OrderTicket,
    VenueRefused,
    VenueRejection,
)
from domain.values import OrderSide
from tests.support.leases import MemoryLeaseStore


def synchronously(test: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], None]:
    @functools.wraps(test)
    def run() -> None:
        asyncio.run(test())

    return run


@dataclass
class RecordingVenue:
    """Accepts everything and records what reached it."""

    name: str = "sim"
    account_id: str = "0xabc"
    fee_taker: Decimal = Decimal("0.00045")
    supports_triggers: bool = True
    sent: list[tuple[str, Any]] = field(default_factory=list)

    async def place(self, ticket: OrderTicket) -> OrderReport:
        self.sent.append(("place", ticket.cloid))
        return OrderReport(ticket.cloid, OrderState.FILLED, oid=1)

    async def modify(self, cloid: str, ticket: OrderTicket) -> OrderReport:
        self.sent.append(("modify", ticket.cloid))
        return OrderReport(ticket.cloid, OrderState.OPEN, oid=2)

    async def cancel(self, coin: str, cloid: str) -> bool:
        self.sent.append(("cancel", cloid))
        return True

    async def set_leverage(self, coin: str, leverage: int) -> None:
        self.sent.append(("leverage", coin))


def ticket(cloid: str = "0x01") -> OrderTicket:
    return OrderTicket(cloid, "BTC", OrderSide.BUY, Decimal("0.01"), Decimal(100_000))


def fenced(store: MemoryLeaseStore, *, traders: tuple[str, ...] = ("a", "b")) -> FencedExchange:
    keeper = LeaseKeeper(
        store, "one", traders, extra=(venue_lease("sim"),), ttl=15, monotonic=store.clock
    )
    keeper.tick()
    # The fake has only the requests the fence guards; the reads pass through unchecked.
    return FencedExchange(RecordingVenue(), keeper, margin=5)  # type: ignore[arg-type]


def sent(exchange: FencedExchange) -> list[tuple[str, Any]]:
    inner = exchange.inner
    assert isinstance(inner, RecordingVenue)
    return inner.sent


@synchronously
async def test_orders_for_a_held_trader_go_through() -> None:
    exchange = fenced(MemoryLeaseStore())
    with acting_for("a"):
        report = await exchange.place(ticket())
        await exchange.set_leverage("BTC", 3)
        assert await exchange.cancel("BTC", "0x01")
    assert report.state is OrderState.FILLED
    assert sent(exchange) == [("place", "0x01"), ("leverage", "BTC"), ("cancel", "0x01")]


@synchronously
async def test_orders_for_a_trader_held_elsewhere_are_refused_and_never_sent() -> None:
    store = MemoryLeaseStore()
    exchange = fenced(store, traders=("a",))
    with acting_for("z"):  # not a trader this engine holds
        report = await exchange.place(ticket())
        modified = await exchange.modify("0x01", ticket("0x02"))
        with pytest.raises(VenueRefused) as refused:
            await exchange.set_leverage("BTC", 3)
        with pytest.raises(ExchangeError) as failed:
            await exchange.cancel("BTC", "0x01")
    assert report.state is OrderState.REJECTED
    assert report.reason == VenueRejection.LEASE_LOST.value
    assert "trader z" in report.detail
    assert modified.reason == VenueRejection.LEASE_LOST.value
    assert refused.value.reason == VenueRejection.LEASE_LOST.value
    assert not failed.value.ambiguous  # nothing was sent: nothing to look up
    assert sent(exchange) == []


@synchronously
async def test_a_lease_with_less_than_the_margin_left_counts_as_lost() -> None:
    store = MemoryLeaseStore()
    exchange = fenced(store)
    store.now += 11  # 4 s left of 15, under the 5 s margin
    with acting_for("a"):
        report = await exchange.place(ticket())
    assert report.reason == VenueRejection.LEASE_LOST.value
    exchange.keeper.tick()  # renewed: time left again
    with acting_for("a"):
        report = await exchange.place(ticket())
    assert report.state is OrderState.FILLED


@synchronously
async def test_without_an_acting_trader_the_venue_lease_is_needed() -> None:
    store = MemoryLeaseStore()
    exchange = fenced(store)
    assert await exchange.cancel("BTC", "0x09")  # the reconciler holds the venue lease
    other = MemoryLeaseStore()
    other.acquire(venue_lease("sim"), "two", 60)
    exchange = fenced(other)
    with pytest.raises(ExchangeError):
        await exchange.cancel("BTC", "0x09")


@synchronously
async def test_the_acting_trader_is_task_local() -> None:
    seen: dict[str, str | None] = {}

    async def work(trader: str) -> None:
        with acting_for(trader):
            await asyncio.sleep(0)
            seen[trader] = acting_trader()

    await asyncio.gather(work("a"), work("b"))
    assert seen == {"a": "a", "b": "b"}
    assert acting_trader() is None
