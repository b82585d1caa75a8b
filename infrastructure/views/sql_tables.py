"""The SQL read tables in SQLite (a file in the data directory) or PostgreSQL.

Every identifier in the SQL built here comes from this module's constants and
``projections.sql_tables.TABLES``; values are always bound parameters.

Rows, the projection's state and its position are written in one transaction: a batch is
applied exactly once, and a crash between batches resumes from the stored position. A
rebuild drops and refills every table in one transaction, so readers see the old tables
until the new ones are complete.

Several engines on one PostgreSQL each run a worker over the same tables. A batch is
committed only if the stored position is still the one it was computed from (the state row
locked for the transaction); otherwise another worker got there first, the batch is
dropped (``Superseded``) and the worker reloads. So no batch is applied twice, which
matters for the columns a batch adds to.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import psycopg
from psycopg import sql

from projections.engine import BatchSource, EventSource
from projections.sql_tables import (
    NAME,
    TABLE_BY_NAME,
    TABLES,
    Row,
    SqlTablesProjector,
    SqlTablesState,
    Table,
    as_text,
    decode_state,
    encode_state,
)

log = logging.getLogger("nof0.projections")

STATE_TABLE = "nof0_projection"
#: Errors a view store may raise; the worker logs them and retries later.
#: The advisory lock (PostgreSQL) held while the tables are made: "nof0sqlt".
DDL_LOCK = int.from_bytes(b"nof0sqlt", "big") >> 1

STORE_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error, psycopg.Error, OSError)

_SQLITE_TYPES = {
    "text": "TEXT",
    "integer": "INTEGER",
    "numeric": "NUMERIC",
    "timestamp": "TEXT",
    "boolean": "INTEGER",
    "json": "TEXT",
}
_PG_TYPES = {
    "text": "text",
    "integer": "bigint",
    "numeric": "numeric",
    "timestamp": "timestamptz",
    "boolean": "boolean",
    "json": "jsonb",
}


class Cursor(Protocol):
    def execute(self, query: Any, params: Any = ...) -> Any: ...

    def executemany(self, query: Any, params_seq: Any) -> Any: ...

    def fetchone(self) -> Any: ...


def _create(table: Table, types: dict[str, str]) -> str:
    columns = ", ".join(f"{name} {types[kind]}" for name, kind in table.columns)
    return (
        f"CREATE TABLE IF NOT EXISTS {table.name} ({columns}, PRIMARY KEY ({', '.join(table.key)}))"
    )


def _upsert(table: Table, columns: Sequence[str], added: Sequence[str], marker: str) -> str:
    every = [*columns, *added]
    updates = [f"{c} = excluded.{c}" for c in columns if c not in table.key]
    updates += [f"{c} = COALESCE({table.name}.{c}, 0) + excluded.{c}" for c in added]
    values = ", ".join(marker for _ in every)
    action = f"DO UPDATE SET {', '.join(updates)}" if updates else "DO NOTHING"
    insert = f"INSERT INTO {table.name} ({', '.join(every)}) VALUES ({values}) "  # noqa: S608
    return insert + f"ON CONFLICT ({', '.join(table.key)}) {action}"


class SqlTablesStore:
    """One database's read tables. ``dialect`` is ``sqlite`` or ``postgresql``."""

    def __init__(
        self,
        dialect: str,
        connect: Callable[[], AbstractContextManager[Cursor]],
        *,
        label: str,
    ) -> None:
        self.dialect = dialect
        self._connect = connect
        self.label = label
        self._types = _SQLITE_TYPES if dialect == "sqlite" else _PG_TYPES
        self._marker = "?" if dialect == "sqlite" else "%s"
        self._statements: dict[tuple[str, tuple[str, ...], tuple[str, ...]], str] = {}
        self._ready = False  # the tables exist (made by this store or found)

    # -- schema ------------------------------------------------------------------------

    def _prepare(self) -> None:
        """Make the tables once per store, in a transaction of their own (a rebuild, which
        drops them, makes them again in its own transaction)."""
        if self._ready:
            return
        with self._connect() as cur:
            self._ensure(cur)
        self._ready = True

    def _ensure(self, cur: Cursor) -> None:
        if self.dialect != "sqlite":
            # Several engines start together: CREATE TABLE IF NOT EXISTS races on the
            # catalogue (a unique violation on pg_type), so the DDL goes one at a time.
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (DDL_LOCK,))
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {STATE_TABLE} "
            "(name TEXT PRIMARY KEY, position BIGINT NOT NULL, state TEXT NOT NULL)"
        )
        for table in TABLES:
            cur.execute(_create(table, self._types))

    def _drop(self, cur: Cursor) -> None:
        for table in TABLES:
            cur.execute(f"DROP TABLE IF EXISTS {table.name}")
        cur.execute(f"DELETE FROM {STATE_TABLE} WHERE name = {self._marker}", (NAME,))  # noqa: S608

    # -- reading -----------------------------------------------------------------------

    def load(self) -> SqlTablesState | None:
        self._prepare()
        with self._connect() as cur:
            query = f"SELECT state FROM {STATE_TABLE} WHERE name = {self._marker}"  # noqa: S608
            cur.execute(query, (NAME,))
            found = cur.fetchone()
        return None if found is None else decode_state(str(found[0]).encode())

    def position(self) -> int | None:
        state = self.load()
        return None if state is None else state.position

    # -- writing -----------------------------------------------------------------------

    def commit(self, rows: Sequence[Row], state: SqlTablesState, *, since: int) -> None:
        """Write a batch computed from position ``since``; ``Superseded`` (nothing written)
        when the stored position has moved on meanwhile."""
        self._prepare()
        with self._connect() as cur:
            stored = self._claim(cur)
            if stored != since:
                raise Superseded(f"the tables are at {stored}, this batch starts at {since}")
            self._write(cur, rows, state)

    def _claim(self, cur: Cursor) -> int:
        """The stored position, its row locked until the transaction ends (0: none yet)."""
        m = self._marker
        # A placeholder row first, so that two first batches also queue on one row lock.
        cur.execute(
            f"INSERT INTO {STATE_TABLE} (name, position, state) VALUES ({m}, 0, '') "  # noqa: S608
            "ON CONFLICT (name) DO NOTHING",
            (NAME,),
        )
        lock = "" if self.dialect == "sqlite" else " FOR UPDATE"  # SQLite: BEGIN IMMEDIATE
        cur.execute(f"SELECT position FROM {STATE_TABLE} WHERE name = {m}{lock}", (NAME,))  # noqa: S608
        found = cur.fetchone()
        return 0 if found is None else int(found[0])

    def replace(self, batches: Iterator[tuple[Sequence[Row], SqlTablesState]]) -> None:
        """Drop the tables and write every batch, all in one transaction."""
        self._prepare()
        with self._connect() as cur:
            self._drop(cur)
            self._ensure(cur)
            state = SqlTablesState()
            for rows, state in batches:
                self._write(cur, rows, state, save=False)
            self._save(cur, state)

    def _write(
        self, cur: Cursor, rows: Sequence[Row], state: SqlTablesState, *, save: bool = True
    ) -> None:
        group_sql = ""
        group: list[tuple[Any, ...]] = []
        for row in rows:
            table = TABLE_BY_NAME[row.table]
            columns = tuple(row.values)
            added = tuple(row.add)
            key = (row.table, columns, added)
            statement = self._statements.get(key)
            if statement is None:
                statement = _upsert(table, columns, added, self._marker)
                self._statements[key] = statement
            if statement != group_sql and group:
                cur.executemany(group_sql, group)
                group = []
            group_sql = statement
            values = [*row.values.values(), *row.add.values()]
            group.append(tuple(self._value(v) for v in values))
        if group:
            cur.executemany(group_sql, group)
        if save:
            self._save(cur, state)

    def _save(self, cur: Cursor, state: SqlTablesState) -> None:
        m = self._marker
        cur.execute(
            f"INSERT INTO {STATE_TABLE} (name, position, state) VALUES ({m}, {m}, {m}) "  # noqa: S608
            "ON CONFLICT (name) DO UPDATE SET position = excluded.position, "
            "state = excluded.state",
            (NAME, state.position, encode_state(state).decode()),
        )

    def _value(self, value: Any) -> Any:
        if self.dialect != "sqlite":
            return value
        if isinstance(value, Decimal):
            return str(value)
        if isinstance(value, datetime):
            return as_text(value)
        if isinstance(value, bool):
            return int(value)
        return value


def sqlite_tables(path: Path) -> SqlTablesStore:
    @contextmanager
    def connect() -> Iterator[Cursor]:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=10, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn.cursor()
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()

    return SqlTablesStore("sqlite", connect, label=f"sqlite:{path.name}")


def postgres_tables(data_source: str, schema: str) -> SqlTablesStore:
    @contextmanager
    def connect() -> Iterator[Cursor]:
        with psycopg.connect(data_source, connect_timeout=10) as conn, conn.transaction():
            cur = conn.cursor()
            cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
            cur.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
            yield cur

    return SqlTablesStore("postgresql", connect, label=f"postgresql:{schema}")


class Superseded(Exception):
    """Another worker committed from this position first; reload and go on from there."""


class SqlTablesWorker:
    """Keeps the tables at the head of the log (bounded work per call), or rebuilds them."""

    def __init__(self, source: EventSource, store: SqlTablesStore, *, batch_size: int = 500):
        self.source = source
        self.store = store
        self.batch_size = batch_size
        self.projector = SqlTablesProjector()
        self._state: SqlTablesState | None = None
        self.error = ""

    def pump(self, max_batches: int = 20) -> int:
        if self._state is None:
            self._state = self.store.load() or self.projector.initial()
        processed = 0
        for _ in range(max_batches):
            state = self._state
            since = state.position
            events = self.source.read_events(since, self.batch_size)
            if not events:
                break
            rows: list[Row] = []
            for position, event in events:
                rows.extend(self.projector.apply(state, position, event))
            try:
                self.store.commit(rows, state, since=since)
            except Superseded as exc:
                log.debug("SQL tables: %s; reloading", exc)
                self._state = None  # another engine's worker is ahead: go on from there
                return processed
            except BaseException:
                self._state = None  # reload what was committed
                raise
            processed += len(events)
            if len(events) < self.batch_size:
                break
        return processed

    def rebuild(self, head: int, bulk: BatchSource | None = None) -> int:
        """Drop the tables and write them again from the first event up to ``head``, in
        one transaction. ``bulk``: read the log through it (large batches, only the events
        and fields the rows are made of) instead of event by event."""
        state = self.projector.initial()
        count = 0

        def bulk_batches(log: BatchSource) -> Iterator[tuple[Sequence[Row], SqlTablesState]]:
            nonlocal count
            apply = self.projector.apply
            wanted = {kind: (None, frozenset[str]()) for kind in self.projector.handles()}
            for read, events in log.batches(0, head, wanted):
                rows: list[Row] = []
                for position, kind, event in events:
                    rows.extend(apply(state, position, event, kind))
                count += read
                yield rows, state
            if count:
                state.position = head  # every event up to the head was read
            yield [], state

        def batches() -> Iterator[tuple[Sequence[Row], SqlTablesState]]:
            nonlocal count
            if bulk is not None:
                yield from bulk_batches(bulk)
                return
            while state.position < head:
                events = self.source.read_events(state.position, self.batch_size)
                events = [(p, e) for p, e in events if p <= head]
                if not events:
                    break
                rows: list[Row] = []
                for position, event in events:
                    rows.extend(self.projector.apply(state, position, event))
                count += len(events)
                yield rows, state

        self.store.replace(batches())
        self._state = None
        return count


__all__ = [
    "STORE_ERRORS",
    "SqlTablesStore",
    "SqlTablesWorker",
    "Superseded",
    "postgres_tables",
    "sqlite_tables",
]
