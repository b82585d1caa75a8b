"""The event-sourced application: stores traders and reads the event log in order."""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import DomainEventProtocol, Snapshot
from eventsourcing.persistence import JSONTranscoder, Mapper, Recording

from application.mapper import TypedJSONMapper
from application.transcodings import ALL_TRANSCODINGS
from domain.trader import Trader, trader_id
from domain.venue_account import VenueAccount, venue_account_id


class Watcher(Protocol):
    """Kept in step with the store through this application (``TradingApp.watch``)."""

    def saved(self, aggregate: object) -> None:
        """``aggregate`` was saved by this application: the store holds its state now."""

    def reset(self) -> None:
        """The store may hold writes this application has not seen (another writer's, or a
        save whose outcome is unknown): what was learnt from saves must be read again."""


class TradingApp(Application[UUID]):
    """Commands return ids or plain data; queries never hand out aggregates to callers
    outside the application layer."""

    name = "nof0"
    is_snapshotting_enabled = True
    #: A trader is snapshotted every this many versions, from its in-memory state (the
    #: library's interval snapshots re-read the aggregate from the store inside save()).
    snapshot_every = 200

    def construct_mapper(self) -> Mapper[UUID]:
        return TypedJSONMapper(
            transcoder=self.construct_transcoder(),
            compressor=self.factory.compressor(),
            cipher=self.factory.cipher(),
        )

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        for transcoding in ALL_TRANSCODINGS:
            transcoder.register(transcoding())

    # -- aggregates ------------------------------------------------------------------------

    def __init__(self, env: Any = None) -> None:
        super().__init__(env)
        # Working copies of traders between cycles: loading (and deep-copying) an aggregate
        # on every cycle was the engine's largest cost. A copy is dropped when its save
        # fails, when it holds unsaved events, or when anyone else has written to the log.
        self._live: dict[UUID, Trader | VenueAccount] = {}
        self._seen = 0
        #: Nobody else writes this log (a backtest's own store): the working copies need
        #: no look at its head before each read.
        self.sole_writer = False
        self._looking = False  # inside one_look()
        self._looked = False  # ... and the head has been looked at
        #: Indexes kept from this application's saves (weakly: a dropped index goes at once).
        self._watchers: weakref.WeakSet[Any] = weakref.WeakSet()

    def watch(self, watcher: Watcher) -> None:
        """Tell ``watcher`` of every save, and of every time the working copies are dropped."""
        self._watchers.add(watcher)

    def _drop_live(self) -> None:
        self._live.clear()
        for watcher in list(self._watchers):
            watcher.reset()

    def look(self) -> None:
        """Look at the log's head (once inside ``one_look``): another writer's events drop
        the working copies and reset the watchers."""
        self._drop_if_others_wrote()

    @contextmanager
    def one_look(self) -> Iterator[None]:
        """Reads inside look at the log's head once, not once each. Only around code with
        no ``await``: no task of this process can write in between, and this process's
        own writes keep the working copies current anyway (another process's write is
        seen by the next look, as it would be microseconds later)."""
        outer = self._looking
        self._looking = True
        self._looked = outer and self._looked
        try:
            yield
        finally:
            self._looking = outer
            if not outer:
                self._looked = False

    def _drop_if_others_wrote(self) -> None:
        if self.sole_writer:
            return
        if self._looking:
            if self._looked:
                return
            self._looked = True
        head = self.recorder.max_notification_id() or 0
        if head != self._seen:
            self._drop_live()
            self._seen = head

    def find_trader(self, config_id: str) -> Trader | None:
        self._drop_if_others_wrote()
        return self._find_trader(config_id)

    def find_traders(self, config_ids: Iterable[str]) -> list[Trader]:
        """The registered ones of ``config_ids``, in order, with one look at the log's head
        (a pass over every trader asked the store once per trader)."""
        self._drop_if_others_wrote()
        return [t for t in map(self._find_trader, config_ids) if t is not None]

    def _find_trader(self, config_id: str) -> Trader | None:
        aggregate_id = trader_id(config_id)
        live = self._live.get(aggregate_id)
        if isinstance(live, Trader) and not live.pending_events:
            return live
        try:
            trader: Trader = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        if live is None or not live.pending_events:
            # A copy with unsaved events belongs to whoever is changing it: it stays the
            # working copy, and this reader gets the stored state.
            self._live[aggregate_id] = trader
        return trader

    def get_trader(self, config_id: str, *, look: bool = True) -> Trader:
        """``look=False``: no look at the log's head, for reading back what this process has
        just written (its working copy, current as of its save); a write by another process
        is seen at the next look."""
        trader = self.find_trader(config_id) if look else self._find_trader(config_id)
        if trader is None:
            raise LookupError(f"trader {config_id!r} is not registered")
        return trader

    def save_trader(self, trader: Trader) -> int | None:
        """Save pending events; return the last notification id (None if nothing new)."""
        return self._save_live(trader)

    def find_venue_account(self, provider: str, address: str) -> VenueAccount | None:
        aggregate_id = venue_account_id(provider, address)
        self._drop_if_others_wrote()
        live = self._live.get(aggregate_id)
        if isinstance(live, VenueAccount) and not live.pending_events:
            return live
        try:
            account: VenueAccount = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        self._live[aggregate_id] = account
        return account

    def save_venue_account(self, account: VenueAccount) -> int | None:
        return self._save_live(account)

    def _save_live(self, aggregate: Trader | VenueAccount) -> int | None:
        if not aggregate.pending_events:
            return None  # nothing new: no transaction (a reconciliation pass often books nothing)
        try:
            recordings: list[Recording[UUID]] = self.save(aggregate)
        except BaseException:
            self._live.pop(aggregate.id, None)
            for watcher in list(self._watchers):
                watcher.reset()  # the write may have happened (a commit's outcome unknown)
            raise
        if not recordings:
            return None
        for watcher in list(self._watchers):
            watcher.saved(aggregate)
        first_version = recordings[0].domain_event.originator_version
        if (first_version - 1) // self.snapshot_every != aggregate.version // self.snapshot_every:
            self._snapshot(aggregate)
        last = recordings[-1].notification.id
        # Our own write: the working copy stays valid (unless someone else wrote too).
        if self._seen == recordings[0].notification.id - 1 or self._seen >= last:
            self._seen = max(self._seen, last)
            self._live[aggregate.id] = aggregate
        else:
            self._drop_live()
            self._seen = last
        return last

    def _snapshot(self, aggregate: Trader | VenueAccount) -> None:
        assert self.snapshots is not None
        self.snapshots.put([Snapshot.take(aggregate)])

    # -- the log ---------------------------------------------------------------------------

    def max_position(self) -> int:
        return self.recorder.max_notification_id() or 0

    def read_events(
        self, after: int, limit: int, topics: Sequence[str] = ()
    ) -> list[tuple[int, DomainEventProtocol[UUID]]]:
        """Events with notification id > ``after``, in commit order."""
        notifications = self.recorder.select_notifications(
            start=after, limit=limit, topics=topics, inclusive_of_start=False
        )
        to_event = self.mapper.to_domain_event
        return [(n.id, to_event(n)) for n in notifications]

    def registered_trader_ids(self) -> list[str]:
        """The config ids of every trader ever registered, in registration order."""
        ids: list[str] = []
        after = 0
        while batch := self.read_events(after, 1000, topics=(Trader.Registered.TOPIC,)):
            ids += [event.config_id for _, event in batch]  # type: ignore[attr-defined]
            after = batch[-1][0]
        return ids

    def trader_events(self, config_id: str) -> Iterable[DomainEventProtocol[UUID]]:
        return self.events.get(trader_id(config_id))
