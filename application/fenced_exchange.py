"""The order fence: no engine sends an order for a trader whose lease it does not hold.

Several engines share one venue account; each acts only for the traders it holds leases
for (``application/leases.py``). The venue knows nothing of leases, so the check is made
here, just before each request that can change positions or orders, with a margin: a lease
with less than ``margin`` seconds left counts as lost, so a pause between the check and the
send cannot outlive it. What is refused is never sent: an order comes back rejected with
``lease_lost`` and a cancel or a leverage change raises, which the callers already treat as
"nothing happened". A cycle that a new owner runs again makes the same client order ids
(``make_cloid``), so the venue refuses a second copy of an order that did get out.

Who is acting is set by the arena around each trader's work (``acting_for``); a request
with no acting trader needs the venue lease (the reconciler's own cancels).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime

from application.leases import LeaseKeeper, trader_lease, venue_lease
from application.ports import (
    Exchange,
    ExchangeError,
    OrderReport,
    OrderState,
    OrderTicket,
    VenueAccountState,
    VenueFill,
    VenueFunding,
    VenueOrder,
    VenueRefused,
    VenueRejection,
    VenueTransfer,
)
from domain.risk import AssetRules

_acting: ContextVar[str | None] = ContextVar("nof0_acting_trader", default=None)


@contextmanager
def acting_for(trader_id: str) -> Iterator[None]:
    """Requests made inside this block are made for ``trader_id`` (task-local)."""
    token = _acting.set(trader_id)
    try:
        yield
    finally:
        _acting.reset(token)


def acting_trader() -> str | None:
    return _acting.get()


@dataclass
class FencedExchange:
    inner: Exchange
    keeper: LeaseKeeper
    #: Seconds of lease that must be left to send (ttl / 3 by default in bootstrap).
    margin: float

    def __post_init__(self) -> None:
        # The venue's identity, as the Exchange protocol has it (fixed for a venue).
        self.name = self.inner.name
        self.account_id = self.inner.account_id
        self.fee_taker = self.inner.fee_taker
        self.supports_triggers = self.inner.supports_triggers

    def refusal(self) -> str | None:
        """Why a request may not be sent now, or None when it may."""
        trader = acting_trader()
        name = venue_lease(self.inner.name) if trader is None else trader_lease(trader)
        if self.keeper.holds(name, self.margin):
            return None
        who = "the venue account" if trader is None else f"trader {trader}"
        return f"this engine ({self.keeper.owner}) does not hold the lease for {who}"

    async def start(self) -> list[str]:
        return await self.inner.start()

    async def assets(self) -> Mapping[str, AssetRules]:
        return await self.inner.assets()

    async def set_leverage(self, coin: str, leverage: int) -> None:
        if (why := self.refusal()) is not None:
            raise VenueRefused(VenueRejection.LEASE_LOST.value, why)
        await self.inner.set_leverage(coin, leverage)

    async def place(self, ticket: OrderTicket) -> OrderReport:
        if (why := self.refusal()) is not None:
            return self._refused(ticket.cloid, why)
        return await self.inner.place(ticket)

    async def modify(self, cloid: str, ticket: OrderTicket) -> OrderReport:
        if (why := self.refusal()) is not None:
            return self._refused(ticket.cloid, why)
        return await self.inner.modify(cloid, ticket)

    async def cancel(self, coin: str, cloid: str) -> bool:
        if (why := self.refusal()) is not None:
            raise ExchangeError(f"cancel of {cloid} not sent: {why}", ambiguous=False)
        return await self.inner.cancel(coin, cloid)

    async def order_status(self, cloid: str) -> OrderReport:
        return await self.inner.order_status(cloid)

    async def open_orders(self) -> list[VenueOrder]:
        return await self.inner.open_orders()

    async def fills_since(self, since: datetime) -> list[VenueFill]:
        return await self.inner.fills_since(since)

    async def funding_since(self, since: datetime) -> list[VenueFunding]:
        return await self.inner.funding_since(since)

    async def transfers_since(self, since: datetime) -> list[VenueTransfer]:
        return await self.inner.transfers_since(since)

    async def account_state(self) -> VenueAccountState:
        return await self.inner.account_state()

    @staticmethod
    def _refused(cloid: str, why: str) -> OrderReport:
        return OrderReport(
            cloid, OrderState.REJECTED, reason=VenueRejection.LEASE_LOST.value, detail=why
        )
