"""The event log read in bulk for a rebuild (``projections.engine.BatchSource``).

Rows come straight from the store, without the library's ``Notification`` objects:
SQLite in pages by rowid, PostgreSQL through one server-side cursor in large fetches
(binary results, so ``bytea`` is not hex-decoded). Each fetch is decoded in bulk by the
application's ``BatchDecoder``, which keeps only the classes and fields the views read.
Other stores (the in-memory one) are paged through ``select_notifications``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from queue import Full, Queue
from typing import Any, TypeVar

from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder
from psycopg import sql
from psycopg.rows import tuple_row

from application.mapper import BatchDecoder, StoredRow
from application.trading import TradingApp
from projections.engine import Batch, Wanted

T = TypeVar("T")

#: Rows per fetch: large enough that the per-fetch costs vanish, small enough to keep a
#: fetch's states (events can be tens of kB) to tens of MB.
FETCH = 5000


def connects(app: TradingApp) -> bool:
    """Whether ``app`` reads its log through a connection (SQLite, PostgreSQL): a forked
    reader must open its own. An in-memory log is the fork's copy."""
    return isinstance(app.recorder, PostgresApplicationRecorder | SQLiteApplicationRecorder)


class StoredLog:
    def __init__(self, app: TradingApp, *, fetch: int = FETCH) -> None:
        if fetch < 1:
            raise ValueError("fetch must be at least 1")
        self.app = app
        self.fetch = fetch

    def max_position(self) -> int:
        return self.app.max_position()

    def batches(self, after: int, head: int, wanted: Wanted) -> Iterator[Batch]:
        decoder = BatchDecoder(self.app.mapper, wanted)
        for rows in read_ahead(self.rows(after, head)):
            yield len(rows), decoder.decode(rows)

    def rows(self, after: int, head: int) -> Iterator[Sequence[StoredRow]]:
        """The stored rows with ``after`` < position <= ``head``, undecoded, in fetches."""
        recorder = self.app.recorder
        if isinstance(recorder, PostgresApplicationRecorder):
            yield from self._postgres(recorder, after, head)
        elif isinstance(recorder, SQLiteApplicationRecorder):
            yield from self._sqlite(recorder, after, head)
        else:
            yield from self._paged(after, head)

    def _sqlite(
        self, recorder: SQLiteApplicationRecorder, after: int, head: int
    ) -> Iterator[Sequence[StoredRow]]:
        table = recorder.events_table_name  # the library's own table name, not input
        statement = (
            "SELECT rowid, topic, originator_id, originator_version, state "  # noqa: S608
            f"FROM {table} WHERE rowid > ? AND rowid <= ? ORDER BY rowid LIMIT ?"
        )
        while after < head:
            # One short read transaction per page: the library's reader lock is not held
            # while the views reduce the page.
            with recorder.datastore.transaction(commit=False) as wrapped:
                cursor = wrapped.sqlite_cursor
                cursor.row_factory = None  # plain tuples, not the library's sqlite3.Row
                cursor.execute(statement, (after, head, self.fetch))
                rows: list[Any] = cursor.fetchall()
            if not rows:
                return
            yield rows
            after = rows[-1][0]

    def _postgres(
        self, recorder: PostgresApplicationRecorder, after: int, head: int
    ) -> Iterator[Sequence[StoredRow]]:
        statement = sql.SQL(
            "SELECT notification_id, topic, originator_id, originator_version, state "
            "FROM {schema}.{table} WHERE notification_id > %s AND notification_id <= %s "
            "ORDER BY notification_id"
        ).format(
            schema=sql.Identifier(recorder.datastore.schema),
            table=sql.Identifier(recorder.events_table_name),
        )
        with recorder.datastore.get_connection() as conn, conn.transaction():
            cursor = conn.cursor("nof0_rebuild", row_factory=tuple_row)
            with cursor:
                cursor.itersize = self.fetch
                cursor.execute(statement, (after, head), binary=True)
                while rows := cursor.fetchmany(self.fetch):
                    yield rows

    def _paged(self, after: int, head: int) -> Iterator[Sequence[StoredRow]]:
        recorder = self.app.recorder
        while after < head:
            page = recorder.select_notifications(
                start=after, limit=self.fetch, stop=head, inclusive_of_start=False
            )
            if not page:
                return
            yield [(n.id, n.topic, n.originator_id, n.originator_version, n.state) for n in page]
            after = page[-1].id


@dataclass(frozen=True)
class _Failed:
    error: Exception


_END = object()


def read_ahead(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """``items`` produced on a thread, up to ``depth`` ahead: the store fetches the next rows
    (sqlite3 and psycopg release the GIL while they wait, PostgreSQL works in its own
    process) while the views reduce these. An error on the thread is raised here; stopping
    early stops the thread and closes ``items`` there."""
    queue: Queue[Any] = Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                queue.put(item, timeout=0.1)
            except Full:
                continue
            return True
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    break
            else:
                put(_END)
        except Exception as exc:  # noqa: BLE001 - handed over and raised by the reader
            put(_Failed(exc))
        finally:
            close = getattr(items, "close", None)  # a generator's transaction ends here
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="nof0-rebuild-read", daemon=True)
    thread.start()
    try:
        while True:
            item = queue.get()
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        stop.set()
        thread.join()
