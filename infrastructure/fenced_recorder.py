"""The write fence: an engine's events for a trader are stored only under its lease.

The engine's recorder checks, inside the very transaction that inserts the events, that
this engine still holds the lease (name, owner, token) of every trader and venue account
the events belong to. An engine that lost a lease while paused (a long stop of the world,
a frozen VM) therefore cannot write a stale cycle over the new owner's history: the
insert fails with ``nof0 lease lost`` and nothing of it is stored. Operators' commands
(a batch with ``Trader.OperatorActed``) are recorded from anywhere, as from the CLI.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg import Cursor, sql

from application.leases import LeaseKeeper, trader_lease, venue_lease
from application.venue_health import paper_twin_id
from domain.trader import trader_id
from domain.venue_account import venue_account_id
from infrastructure.leases import TABLE, create_table

OPERATOR_TOPIC = "Trader.OperatorActed"
NOT_HELD = -1  # a token no lease has: the check fails for a lease this engine lacks

#: The leases a batch of stored events needs: (name, owner, token) each.
Fence = Callable[[Sequence[StoredEvent]], list[tuple[str, str, int]]]


class FencedPostgresRecorder(PostgresApplicationRecorder):
    #: Set by the composition root once the leases are known; None: no check.
    fence: Fence | None = None

    def create_table(self) -> None:
        super().create_table()
        schema = self.datastore.schema or "public"
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(create_table(schema))
            curs.execute(
                sql.SQL(
                    "CREATE OR REPLACE FUNCTION {f}(names text[], owners text[], tokens bigint[])"
                    " RETURNS void LANGUAGE plpgsql AS $$ BEGIN"
                    " IF (SELECT count(*) FROM {t} l JOIN unnest(names, owners, tokens)"
                    " AS w(name, owner, token) USING (name, owner, token)"
                    " WHERE l.expires_at > now()) <> cardinality(names) THEN"
                    " RAISE EXCEPTION 'nof0 lease lost: this engine no longer holds %', names;"
                    " END IF; END $$"
                ).format(
                    f=sql.Identifier(schema, "nof0_check_leases"),
                    t=sql.Identifier(schema, TABLE),
                )
            )

    def _insert_events(
        self, curs: Cursor[Any], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        super()._insert_events(curs, stored_events, **kwargs)
        fence = self.fence
        needed = [] if fence is None else fence(stored_events)
        if not needed:
            return
        # Runs in the insert's transaction: the events are stored only if this passes.
        curs.execute(
            sql.SQL("SELECT {f}(%s, %s, %s)").format(
                f=sql.Identifier(self.datastore.schema or "public", "nof0_check_leases")
            ),
            ([n for n, _, _ in needed], [o for _, o, _ in needed], [t for _, _, t in needed]),
        )


def lease_fence(
    keeper: LeaseKeeper, traders: Sequence[str], venues: Sequence[tuple[str, str]]
) -> Fence:
    """The fence for an engine: events of a configured trader (or its paper twin) need the
    trader's lease; events of a venue account (provider, address) need the venue's."""
    names: dict[UUID | str, str] = {}
    for config_id in traders:
        names[trader_id(config_id)] = trader_lease(config_id)
        names[trader_id(paper_twin_id(config_id))] = trader_lease(config_id)
    for provider, address in venues:
        names[venue_account_id(provider, address)] = venue_lease(provider)

    def needed(stored_events: Sequence[StoredEvent]) -> list[tuple[str, str, int]]:
        operator = {e.originator_id for e in stored_events if e.topic.endswith(OPERATOR_TOPIC)}
        wanted = sorted(
            {
                names[e.originator_id]
                for e in stored_events
                if e.originator_id in names and e.originator_id not in operator
            }
        )
        held = keeper.held
        return [
            (name, keeper.owner, held[name].token if name in held else NOT_HELD) for name in wanted
        ]

    return needed
