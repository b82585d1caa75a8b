"""The prompt digest cache: answers keyed by model, sampling parameters and prompt digest.

Kept in a SQLite file under the data directory, so re-running recorded cycles (replay,
backtests) costs nothing across runs; live cycles render new prompts and never hit it.
Entries expire after ``ttl_s`` (0: never) and the oldest go once ``max_entries`` is
exceeded.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from application.ports import DecisionReply

SCHEMA = """
CREATE TABLE IF NOT EXISTS decision_cache (
    key TEXT PRIMARY KEY,
    created REAL NOT NULL,
    model TEXT NOT NULL,
    text TEXT NOT NULL,
    tokens_in INTEGER NOT NULL,
    tokens_out INTEGER NOT NULL,
    latency_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS decision_cache_created ON decision_cache (created);
"""


class SQLiteDecisionCache:
    def __init__(
        self,
        path: Path,
        *,
        ttl_s: float,
        max_entries: int,
        now: Callable[[], float] = time.time,
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._now = now
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
        self.hits = 0
        self.misses = 0

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def get(self, key: str) -> DecisionReply | None:
        with self._lock:
            row = self._db.execute(
                "SELECT created, model, text, tokens_in, tokens_out, latency_ms "
                "FROM decision_cache WHERE key = ?",
                (key,),
            ).fetchone()
        if row is None or (self.ttl_s and self._now() - row[0] > self.ttl_s):
            self.misses += 1
            return None
        self.hits += 1
        return DecisionReply(
            text=row[2],
            model=row[1],
            tokens_in=row[3],
            tokens_out=row[4],
            cost_usd=Decimal(0),
            latency_ms=row[5],
            cached=True,
        )

    def put(self, key: str, reply: DecisionReply) -> None:
        if self.max_entries <= 0:
            return
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO decision_cache VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    self._now(),
                    reply.model,
                    reply.text,
                    reply.tokens_in,
                    reply.tokens_out,
                    reply.latency_ms,
                ),
            )
            if self.ttl_s:
                self._db.execute(
                    "DELETE FROM decision_cache WHERE created < ?", (self._now() - self.ttl_s,)
                )
            (count,) = self._db.execute("SELECT count(*) FROM decision_cache").fetchone()
            if count > self.max_entries:
                self._db.execute(
                    "DELETE FROM decision_cache WHERE key IN (SELECT key FROM decision_cache "
                    "ORDER BY created, key LIMIT ?)",
                    (count - self.max_entries,),
                )

    def __len__(self) -> int:
        with self._lock:
            (count,) = self._db.execute("SELECT count(*) FROM decision_cache").fetchone()
        return int(count)
