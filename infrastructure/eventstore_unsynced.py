"""An SQLite event store that does not wait for the disk: for backtests only.

A backtest's store is rebuilt from its inputs whenever wanted (same candles, same seed,
same fingerprint), so waiting for each commit to reach the platter buys nothing there,
and it was a sixth of a backtest's time. ``synchronous=OFF``: SQLite hands each commit to
the operating system and goes on; a crash of the process loses nothing, a power cut may
lose the run's last commits (run it again). The live engine never uses this.
"""

from __future__ import annotations

from eventsourcing.sqlite import SQLiteConnection, SQLiteFactory
from eventsourcing.utils import Environment, EnvType

#: ``PERSISTENCE_MODULE`` topic of this factory.
TOPIC = "infrastructure.eventstore_unsynced:UnsyncedSQLiteFactory"


class UnsyncedSQLiteFactory(SQLiteFactory):
    def __init__(self, env: Environment | EnvType | None):
        super().__init__(env)
        pool = self.datastore.pool
        create = pool._create_connection

        def unsynced() -> SQLiteConnection:
            connection = create()
            connection._sqlite_conn.execute("PRAGMA synchronous=OFF")
            return connection

        pool._create_connection = unsynced  # type: ignore[method-assign]
