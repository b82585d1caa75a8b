"""The VenueAccount aggregate: one exchange account that several traders share.

Traders are virtual sub-accounts; the venue only knows the account. What happens on the
account that no trader caused — an order someone placed by hand, a fill or a funding
payment on a coin no trader holds — is recorded here as *observed*, never attributed to a
trader. So are findings that the books and the venue disagree.

The account's ``baseline_equity`` makes the shared-account invariant checkable:

    Σ trader equity + unallocated = account equity,  unallocated = baseline − Σ allocations

Money that enters or leaves the account without trading (a deposit, a withdrawal, a
transfer) moves the baseline, so it lands in the unallocated part and never in a trader's
equity. Transfers count from ``transfers_after`` on (the venue time the baseline was read
at, or first tracked): the baseline already holds the earlier ones.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

#: Foreign fill and funding ids remembered to observe each exactly once.
SEEN_IDS = 2000


def venue_account_id(provider: str, address: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"nof0/venue/{provider}/{address.lower()}")


class VenueAccount(Aggregate):
    TOPIC = "nof0/VenueAccount"
    class_version = 2  # v2: deposits, withdrawals and transfers tracked

    provider: str
    address: str
    baseline_equity: Decimal
    foreign_orders: dict[int, str]  # open orders that are not ours: oid → coin
    seen_ids: list[str]  # foreign fills and funding payments observed lately
    drift: dict[str, str]  # open findings: key → detail
    transfers_after: datetime | None  # venue time after which transfers move the baseline

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["transfers_after"] = None

    class Event(Aggregate.Event):
        TOPIC = "nof0/VenueAccount.Event"

    class Created(Aggregate.Created):
        TOPIC = "nof0/VenueAccount.Created"

    class Registered(Aggregate.Created):
        TOPIC = "nof0/VenueAccount.Registered"
        provider: str
        address: str
        baseline_equity: Decimal

        def apply(self, aggregate: Any) -> None:
            account: VenueAccount = aggregate
            account.provider = self.provider
            account.address = self.address
            account.baseline_equity = self.baseline_equity
            account.foreign_orders = {}
            account.seen_ids = []
            account.drift = {}
            account.transfers_after = None

    class ForeignOrderObserved(Aggregate.Event):
        """An open order on the account that no trader placed (kept out of every book)."""

        TOPIC = "nof0/VenueAccount.ForeignOrderObserved"
        oid: int
        cloid: str | None
        coin: str
        side: str
        size: Decimal
        price: Decimal
        trigger_price: Decimal | None
        reduce_only: bool

        def apply(self, aggregate: Any) -> None:
            aggregate.foreign_orders[self.oid] = self.coin

    class ForeignOrderGone(Aggregate.Event):
        TOPIC = "nof0/VenueAccount.ForeignOrderGone"
        oid: int
        coin: str

        def apply(self, aggregate: Any) -> None:
            aggregate.foreign_orders.pop(self.oid, None)

    class ForeignFillObserved(Aggregate.Event):
        """A fill on a coin no trader holds (a manual trade, an order from elsewhere)."""

        TOPIC = "nof0/VenueAccount.ForeignFillObserved"
        fill_id: str
        oid: int
        cloid: str | None
        coin: str
        side: str
        size: Decimal
        price: Decimal
        fee: Decimal
        liquidation: bool

        def apply(self, aggregate: Any) -> None:
            _seen(aggregate, self.fill_id)

    class ForeignFundingObserved(Aggregate.Event):
        TOPIC = "nof0/VenueAccount.ForeignFundingObserved"
        funding_id: str
        coin: str
        amount: Decimal
        rate: Decimal
        size: Decimal

        def apply(self, aggregate: Any) -> None:
            _seen(aggregate, self.funding_id)

    class TransfersTracked(Aggregate.Event):
        """From ``after`` (venue time) on, deposits and withdrawals move the baseline."""

        TOPIC = "nof0/VenueAccount.TransfersTracked"
        after: datetime

        def apply(self, aggregate: Any) -> None:
            aggregate.transfers_after = self.after

    class TransferObserved(Aggregate.Event):
        """Money in (+) or out (−) of the account without trading: it is unallocated."""

        TOPIC = "nof0/VenueAccount.TransferObserved"
        transfer_id: str
        kind: str
        amount: Decimal
        venue_time: datetime

        def apply(self, aggregate: Any) -> None:
            aggregate.baseline_equity += self.amount
            _seen(aggregate, self.transfer_id)

    class DriftDetected(Aggregate.Event):
        """The books and the venue disagree beyond tolerance (``key`` names what)."""

        TOPIC = "nof0/VenueAccount.DriftDetected"
        key: str
        detail: str
        traders: list[str]  # the traders paused for it

        def apply(self, aggregate: Any) -> None:
            aggregate.drift[self.key] = self.detail

    class DriftCleared(Aggregate.Event):
        TOPIC = "nof0/VenueAccount.DriftCleared"
        key: str

        def apply(self, aggregate: Any) -> None:
            aggregate.drift.pop(self.key, None)

    def __init__(self) -> None:
        """State is set by :class:`Registered`."""

    @classmethod
    def register(
        cls, *, provider: str, address: str, baseline_equity: Decimal, at: datetime
    ) -> VenueAccount:
        return cls._create(
            cls.Registered,
            id=venue_account_id(provider, address),
            provider=provider,
            address=address,
            baseline_equity=baseline_equity,
            timestamp=at,
        )

    def observe_order(
        self,
        *,
        oid: int,
        cloid: str | None,
        coin: str,
        side: str,
        size: Decimal,
        price: Decimal,
        trigger_price: Decimal | None,
        reduce_only: bool,
        at: datetime,
    ) -> bool:
        if oid in self.foreign_orders:
            return False
        self.trigger_event(
            self.ForeignOrderObserved,
            oid=oid,
            cloid=cloid,
            coin=coin,
            side=side,
            size=size,
            price=price,
            trigger_price=trigger_price,
            reduce_only=reduce_only,
            timestamp=at,
        )
        return True

    def order_gone(self, oid: int, at: datetime) -> None:
        coin = self.foreign_orders.get(oid)
        if coin is not None:
            self.trigger_event(self.ForeignOrderGone, oid=oid, coin=coin, timestamp=at)

    def observe_fill(
        self,
        *,
        fill_id: str,
        oid: int,
        cloid: str | None,
        coin: str,
        side: str,
        size: Decimal,
        price: Decimal,
        fee: Decimal,
        liquidation: bool,
        at: datetime,
    ) -> bool:
        if fill_id in self.seen_ids:
            return False
        self.trigger_event(
            self.ForeignFillObserved,
            fill_id=fill_id,
            oid=oid,
            cloid=cloid,
            coin=coin,
            side=side,
            size=size,
            price=price,
            fee=fee,
            liquidation=liquidation,
            timestamp=at,
        )
        return True

    def observe_funding(
        self,
        *,
        funding_id: str,
        coin: str,
        amount: Decimal,
        rate: Decimal,
        size: Decimal,
        at: datetime,
    ) -> bool:
        if funding_id in self.seen_ids:
            return False
        self.trigger_event(
            self.ForeignFundingObserved,
            funding_id=funding_id,
            coin=coin,
            amount=amount,
            rate=rate,
            size=size,
            timestamp=at,
        )
        return True

    def track_transfers(self, after: datetime, at: datetime) -> None:
        if self.transfers_after is None:
            self.trigger_event(self.TransfersTracked, after=after, timestamp=at)

    def observe_transfer(
        self, *, transfer_id: str, kind: str, amount: Decimal, venue_time: datetime, at: datetime
    ) -> bool:
        """Record a transfer once; False for one seen already or the baseline holds."""
        after = self.transfers_after
        if after is None or venue_time <= after or transfer_id in self.seen_ids:
            return False
        self.trigger_event(
            self.TransferObserved,
            transfer_id=transfer_id,
            kind=kind,
            amount=amount,
            venue_time=venue_time,
            timestamp=at,
        )
        return True

    def detect_drift(self, key: str, detail: str, traders: list[str], at: datetime) -> bool:
        """Record a finding once while it lasts; True when it is new (alert then)."""
        if self.drift.get(key) == detail:
            return False
        self.trigger_event(
            self.DriftDetected, key=key, detail=detail, traders=list(traders), timestamp=at
        )
        return True

    def clear_drift(self, key: str, at: datetime) -> None:
        if key in self.drift:
            self.trigger_event(self.DriftCleared, key=key, timestamp=at)


def _seen(account: VenueAccount, key: str) -> None:
    account.seen_ids = [*account.seen_ids[-(SEEN_IDS - 1) :], key]
