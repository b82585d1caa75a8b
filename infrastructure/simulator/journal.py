"""The bounded in-memory histories (fills, funding, finished orders) and what is not yet saved."""

from __future__ import annotations

from collections import OrderedDict, deque

from infrastructure.simulator.config import SimConfig
from infrastructure.simulator.state import (
    Fill,
    FundingRate,
    LedgerUpdate,
    Order,
    OrderDone,
    Record,
    UserFunding,
)


class Journal:
    def __init__(self, config: SimConfig) -> None:
        self._config = config
        self.fills: dict[str, deque[Fill]] = {}
        self.user_funding: dict[str, deque[UserFunding]] = {}
        self.ledger: dict[str, deque[LedgerUpdate]] = {}
        self.rates: dict[str, deque[FundingRate]] = {}
        self.done: dict[str, OrderedDict[int, Order]] = {}
        self._done_seq: dict[int, int] = {}  # oid -> seq of its record (for compaction)
        self._cloids: dict[tuple[str, str], int] = {}  # (user, cloid) -> latest finished oid
        self.pending: list[Record] = []
        #: user -> sequence of the latest record of that user's history (a fill, a funding
        #: payment, a ledger update, a finished order); market-wide records (a coin's
        #: funding rate) are no user's.
        self.user_seq: dict[str, int] = {}

    def add(self, record: Record) -> None:
        self._keep(record)
        self.pending.append(record)

    def replay(self, records: list[Record]) -> None:
        for record in records:
            self._keep(record)

    def _keep(self, record: Record) -> None:
        config = self._config
        user = record.order.user if isinstance(record, OrderDone) else getattr(record, "user", None)
        if user is not None and record.seq > self.user_seq.get(user, 0):
            self.user_seq[user] = record.seq
        if isinstance(record, Fill):
            self.fills.setdefault(record.user, deque(maxlen=config.fills_kept)).append(record)
        elif isinstance(record, UserFunding):
            kept = self.user_funding.setdefault(record.user, deque(maxlen=config.funding_kept))
            kept.append(record)
        elif isinstance(record, LedgerUpdate):
            kept_ledger = self.ledger.setdefault(record.user, deque(maxlen=config.funding_kept))
            kept_ledger.append(record)
        elif isinstance(record, FundingRate):
            kept_rates = self.rates.setdefault(record.coin, deque(maxlen=config.funding_kept))
            kept_rates.append(record)
        else:
            self._keep_order(record)

    def _keep_order(self, record: OrderDone) -> None:
        order = record.order
        done = self.done.setdefault(order.user, OrderedDict())
        done[order.oid] = order
        self._done_seq[order.oid] = record.seq
        if order.cloid is not None:
            self._cloids[(order.user, order.cloid)] = order.oid
        while len(done) > self._config.orders_kept:
            _, old = done.popitem(last=False)
            del self._done_seq[old.oid]
            if old.cloid is not None and self._cloids.get((old.user, old.cloid)) == old.oid:
                del self._cloids[(old.user, old.cloid)]

    def finished(self, user: str, oid: int) -> Order | None:
        return self.done.get(user, OrderedDict()).get(oid)

    def finished_by_cloid(self, user: str, cloid: str) -> Order | None:
        oid = self._cloids.get((user, cloid))
        return None if oid is None else self.finished(user, oid)

    def retained(self) -> list[Record]:
        """Every record memory still holds, in sequence order (what a compacted file keeps)."""
        records: list[Record] = []
        for fills in self.fills.values():
            records.extend(fills)
        for funding in self.user_funding.values():
            records.extend(funding)
        for ledger in self.ledger.values():
            records.extend(ledger)
        for rates in self.rates.values():
            records.extend(rates)
        for done in self.done.values():
            records.extend(OrderDone(self._done_seq[oid], order) for oid, order in done.items())
        records.sort(key=lambda record: record.seq)
        return records

    def size(self) -> int:
        return (
            sum(len(kept) for kept in self.fills.values())
            + sum(len(kept) for kept in self.user_funding.values())
            + sum(len(kept) for kept in self.ledger.values())
            + sum(len(kept) for kept in self.rates.values())
            + sum(len(kept) for kept in self.done.values())
        )
