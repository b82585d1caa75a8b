"""The event-sourced application: stores traders and reads the event log in order."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import DomainEventProtocol, MutableOrImmutableAggregate
from eventsourcing.persistence import JSONTranscoder, Mapper, Recording

from application.mapper import TypedJSONMapper
from application.transcodings import ALL_TRANSCODINGS
from domain.trader import Trader, trader_id


class TradingApp(Application[UUID]):
    """Commands return ids or plain data; queries never hand out aggregates to callers
    outside the application layer."""

    name = "nof0"
    snapshotting_intervals: ClassVar[dict[type[MutableOrImmutableAggregate[Any]], int]] = {
        Trader: 200
    }

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

    def find_trader(self, config_id: str) -> Trader | None:
        try:
            trader: Trader = self.repository.get(trader_id(config_id))
        except AggregateNotFoundError:
            return None
        return trader

    def get_trader(self, config_id: str) -> Trader:
        trader = self.find_trader(config_id)
        if trader is None:
            raise LookupError(f"trader {config_id!r} is not registered")
        return trader

    def save_trader(self, trader: Trader) -> int | None:
        """Save pending events; return the last notification id (None if nothing new)."""
        recordings: list[Recording[UUID]] = self.save(trader)
        return recordings[-1].notification.id if recordings else None

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

    def trader_events(self, config_id: str) -> Iterable[DomainEventProtocol[UUID]]:
        return self.events.get(trader_id(config_id))
