"""Leases in PostgreSQL (``application/leases.py``), on the database's clock.

Every expiry is computed and compared with the server's ``now()``, never a host's clock,
so engines on machines whose clocks disagree still agree on who holds what. One table in
the arena's schema; a lease taken afresh gets ``token + 1`` (the fence).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError
from psycopg import sql

from application.leases import Lease

TABLE = "nof0_leases"


def create_table(schema: str) -> sql.Composed:
    """The lease table's DDL (also run by the fenced recorder, which checks against it)."""
    return sql.SQL(
        "CREATE TABLE IF NOT EXISTS {} (name text PRIMARY KEY, owner text NOT NULL,"
        " token bigint NOT NULL, expires_at timestamptz NOT NULL)"
    ).format(sql.Identifier(schema, TABLE))


class PostgresLeaseStore:
    def __init__(self, data_source: str, schema: str) -> None:
        self._dsn = data_source
        self._table = sql.Identifier(schema, TABLE)
        self._execute(create_table(schema), {})

    def _execute(self, query: sql.Composed, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """One autocommit statement (each is its own atomic step) on a connection of its
        own, so an engine dropped without a stop leaks nothing; a lost database raises the
        event store's outage errors, which the engine's store guard handles."""
        try:
            with psycopg.connect(self._dsn, autocommit=True, connect_timeout=5) as conn:
                cursor = conn.execute(query, params)
                return cursor.fetchall() if cursor.description is not None else []
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            if isinstance(exc, psycopg.OperationalError):
                raise OperationalError(f"lease store: {exc}") from exc
            raise InterfaceError(f"lease store: {exc}") from exc

    def acquire(self, name: str, owner: str, ttl: float) -> Lease | None:
        # The CTE reads the row as it was before this statement: the previous owner.
        rows = self._execute(
            sql.SQL(
                "WITH before AS (SELECT owner FROM {t} WHERE name = %(name)s) "
                "INSERT INTO {t} AS l (name, owner, token, expires_at) "
                "VALUES (%(name)s, %(owner)s, 1, now() + make_interval(secs => %(ttl)s)) "
                "ON CONFLICT (name) DO UPDATE SET owner = EXCLUDED.owner,"
                " token = l.token + 1, expires_at = EXCLUDED.expires_at "
                "WHERE l.expires_at <= now() OR l.owner = EXCLUDED.owner "
                "RETURNING l.token, extract(epoch FROM l.expires_at - now()),"
                " coalesce((SELECT owner FROM before), '')"
            ).format(t=self._table),
            {"name": name, "owner": owner, "ttl": ttl},
        )
        row = rows[0] if rows else None
        if row is None:
            return None
        return Lease(name, owner, int(row[0]), float(row[1]), previous_owner=str(row[2]))

    def renew(self, lease: Lease, ttl: float) -> Lease | None:
        rows = self._execute(
            sql.SQL(
                "UPDATE {t} SET expires_at = now() + make_interval(secs => %(ttl)s) "
                "WHERE name = %(name)s AND owner = %(owner)s AND token = %(token)s"
                " AND expires_at > now() "
                "RETURNING extract(epoch FROM expires_at - now())"
            ).format(t=self._table),
            {"name": lease.name, "owner": lease.owner, "token": lease.token, "ttl": ttl},
        )
        row = rows[0] if rows else None
        if row is None:
            return None
        return Lease(lease.name, lease.owner, lease.token, float(row[0]), lease.previous_owner)

    def release(self, lease: Lease) -> None:
        self._execute(
            sql.SQL(
                "UPDATE {t} SET expires_at = now() "
                "WHERE name = %(name)s AND owner = %(owner)s AND token = %(token)s"
            ).format(t=self._table),
            {"name": lease.name, "owner": lease.owner, "token": lease.token},
        )

    def live(self, prefix: str) -> list[Lease]:
        rows = self._execute(
            sql.SQL(
                "SELECT name, owner, token, extract(epoch FROM expires_at - now()) FROM {t} "
                "WHERE starts_with(name, %(prefix)s) AND expires_at > now() ORDER BY name"
            ).format(t=self._table),
            {"prefix": prefix},
        )
        return [Lease(str(n), str(o), int(k), float(r)) for n, o, k, r in rows]

    def current(self, leases: Iterable[Lease], margin: float) -> bool:
        wanted = list(leases)
        if not wanted:
            return True
        rows = self._execute(
            sql.SQL(
                "SELECT count(*) FROM {t} JOIN unnest(%(names)s::text[], %(owners)s::text[],"
                " %(tokens)s::bigint[]) AS w(name, owner, token)"
                " USING (name, owner, token) "
                "WHERE expires_at > now() + make_interval(secs => %(margin)s)"
            ).format(t=self._table),
            {
                "names": [lease.name for lease in wanted],
                "owners": [lease.owner for lease in wanted],
                "tokens": [lease.token for lease in wanted],
                "margin": margin,
            },
        )
        return bool(rows) and int(rows[0][0]) == len(wanted)
