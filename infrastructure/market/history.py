"""The local market-history store: candles and funding rates in one SQLite file.

``<data>/history/market.sqlite`` holds three tables:

* ``candles(coin, interval, open_time_ms, open, high, low, close, volume)``, primary key
  ``(coin, interval, open_time_ms)``, ``WITHOUT ROWID`` (the key is the clustering order, so a
  range read is one ordered scan). Only closed candles are stored.
* ``funding(coin, time_ms, rate, premium)``, primary key ``(coin, time_ms)``; ``premium`` is
  NULL for imported rows that have none.
* ``fetched(coin, series, start_ms, end_ms)``: the half-open ranges ``[start, end)`` of open
  times (candles, ``series`` = the interval) or stamps (funding, ``series`` = ``funding``) for
  which the venue has been asked and gave its final answer. This is what makes a download
  resumable: the next run asks only for what is not fetched yet, and a range the venue had
  nothing for (older than its retention, a coin that did not trade) is not asked again.

Prices are the venue's decimal strings, stored as TEXT exactly as received: money is Decimal
in this project. Two readers: :meth:`HistoryStore.candles` returns numpy float arrays (a
backtest reads millions of candles; SQLite's ``CAST(... AS REAL)`` is the fast path) and
:meth:`HistoryStore.decimal_candles` returns exact Decimals.

Why SQLite and not Parquet: the standard library has it, it is already the embedded default,
a write of one answer (≤ 5,000 rows) and its coverage is one transaction (so an interrupted
download leaves a consistent store), and upserts make it idempotent. A month of 1-minute
candles for one coin is ~45,000 rows, which SQLite reads in well under a second.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Final

import numpy as np
from numpy.typing import NDArray

# The store knows the intervals the venue adapter parses: Hyperliquid's fixed-length ones (3d,
# 1w and 1M are left out: they do not start on multiples of their length since the epoch).
from infrastructure.hyperliquid.market import INTERVAL_MS as INTERVAL_MS

FUNDING: Final = "funding"
HISTORY_DIR: Final = "history"
STORE_FILE: Final = "market.sqlite"

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS candles (
    coin TEXT NOT NULL,
    interval TEXT NOT NULL,
    open_time_ms INTEGER NOT NULL,
    open TEXT NOT NULL,
    high TEXT NOT NULL,
    low TEXT NOT NULL,
    close TEXT NOT NULL,
    volume TEXT NOT NULL,
    PRIMARY KEY (coin, interval, open_time_ms)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS funding (
    coin TEXT NOT NULL,
    time_ms INTEGER NOT NULL,
    rate TEXT NOT NULL,
    premium TEXT,
    PRIMARY KEY (coin, time_ms)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS fetched (
    coin TEXT NOT NULL,
    series TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    end_ms INTEGER NOT NULL,
    PRIMARY KEY (coin, series, start_ms)
) WITHOUT ROWID;
"""

Range = tuple[int, int]  # [start, end) in ms


class UnknownInterval(ValueError):
    def __init__(self, interval: str) -> None:
        super().__init__(f"unknown candle interval {interval!r} (known: {', '.join(INTERVAL_MS)})")
        self.interval = interval


def interval_ms(interval: str) -> int:
    try:
        return INTERVAL_MS[interval]
    except KeyError:
        raise UnknownInterval(interval) from None


@dataclass(frozen=True)
class CandleRow:
    """One closed candle as stored: the venue's decimal strings."""

    open_time_ms: int
    open: str
    high: str
    low: str
    close: str
    volume: str


@dataclass(frozen=True)
class DecimalCandle:
    open_time_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


@dataclass(frozen=True)
class FundingRow:
    time_ms: int
    rate: str
    premium: str | None


@dataclass(frozen=True)
class CandleArrays:
    """Columns of candles, oldest first: open times (int64 ms) and float64 prices."""

    open_time_ms: NDArray[np.int64]
    open: NDArray[np.float64]
    high: NDArray[np.float64]
    low: NDArray[np.float64]
    close: NDArray[np.float64]
    volume: NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.open_time_ms)


@dataclass(frozen=True)
class Coverage:
    """What the store holds of one series. ``ranges``: maximal runs of consecutive candles,
    ``[first open, last open + interval)``; ``gaps``: the missing open times between them,
    ``[start, end)``; ``fetched``: the ranges the venue has answered for."""

    coin: str
    interval: str
    count: int
    first_ms: int | None
    last_ms: int | None
    ranges: tuple[Range, ...]
    gaps: tuple[Range, ...]
    fetched: tuple[Range, ...]

    def missing_candles(self) -> int:
        step = interval_ms(self.interval)
        return sum((end - start) // step for start, end in self.gaps)


@dataclass(frozen=True)
class FundingCoverage:
    coin: str
    count: int
    first_ms: int | None
    last_ms: int | None
    fetched: tuple[Range, ...]


def merge_ranges(ranges: Iterable[Range]) -> list[Range]:
    """Sorted, with touching or overlapping ranges joined; empty ranges dropped."""
    out: list[list[int]] = []
    for start, end in sorted(r for r in ranges if r[1] > r[0]):
        if out and start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return [(a, b) for a, b in out]


def subtract_ranges(whole: Range, taken: Sequence[Range]) -> list[Range]:
    """The parts of ``whole`` that no range of ``taken`` (merged, sorted) covers."""
    start, end = whole
    out: list[Range] = []
    cursor = start
    for a, b in taken:
        if b <= cursor:
            continue
        if a >= end:
            break
        if a > cursor:
            out.append((cursor, a))
        cursor = max(cursor, b)
    if cursor < end:
        out.append((cursor, end))
    return out


def store_path(data_dir: Path) -> Path:
    return data_dir / HISTORY_DIR / STORE_FILE


class HistoryStore:
    """One SQLite file; each method commits its own transaction. Not shared across threads."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None)  # explicit transactions
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    @classmethod
    def open(cls, data_dir: Path) -> HistoryStore:
        return cls(store_path(data_dir))

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- writing ------------------------------------------------------------------------------

    def add_candles(
        self,
        coin: str,
        interval: str,
        rows: Sequence[CandleRow],
        fetched: Range | None = None,
    ) -> int:
        """Store closed candles (a row already stored is kept: a closed candle is final) and,
        in the same transaction, mark ``fetched`` as answered. Returns the rows added."""
        interval_ms(interval)
        with self._transaction() as db:
            before = db.total_changes
            db.executemany(
                # Only a key conflict is ignored (OR IGNORE would also drop NOT NULL violations).
                "INSERT INTO candles VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (coin, interval, open_time_ms) DO NOTHING",
                (
                    (coin, interval, r.open_time_ms, r.open, r.high, r.low, r.close, r.volume)
                    for r in rows
                ),
            )
            added = db.total_changes - before
            if fetched is not None:
                self._mark(db, coin, interval, fetched)
        return added

    def add_funding(
        self, coin: str, rows: Sequence[FundingRow], fetched: Range | None = None
    ) -> int:
        with self._transaction() as db:
            before = db.total_changes
            db.executemany(
                "INSERT INTO funding VALUES (?, ?, ?, ?) ON CONFLICT (coin, time_ms) DO NOTHING",
                ((coin, r.time_ms, r.rate, r.premium) for r in rows),
            )
            added = db.total_changes - before
            if fetched is not None:
                self._mark(db, coin, FUNDING, fetched)
        return added

    @staticmethod
    def _mark(db: sqlite3.Connection, coin: str, series: str, fetched: Range) -> None:
        start, end = fetched
        if end <= start:
            return
        # Replace every range touching the new one by their union (the table stays merged).
        touching = db.execute(
            "SELECT start_ms, end_ms FROM fetched WHERE coin = ? AND series = ?"
            " AND start_ms <= ? AND end_ms >= ?",
            (coin, series, end, start),
        ).fetchall()
        lo = min([start, *(a for a, _ in touching)])
        hi = max([end, *(b for _, b in touching)])
        db.execute(
            "DELETE FROM fetched WHERE coin = ? AND series = ? AND start_ms <= ? AND end_ms >= ?",
            (coin, series, end, start),
        )
        db.execute("INSERT INTO fetched VALUES (?, ?, ?, ?)", (coin, series, lo, hi))

    # -- coverage -----------------------------------------------------------------------------

    def fetched(self, coin: str, series: str) -> list[Range]:
        rows = self._db.execute(
            "SELECT start_ms, end_ms FROM fetched WHERE coin = ? AND series = ? ORDER BY start_ms",
            (coin, series),
        ).fetchall()
        return [(int(a), int(b)) for a, b in rows]

    def missing(self, coin: str, series: str, start_ms: int, end_ms: int) -> list[Range]:
        """The parts of ``[start_ms, end_ms)`` the venue has not answered for yet."""
        return subtract_ranges((start_ms, end_ms), self.fetched(coin, series))

    def coverage(self, coin: str, interval: str) -> Coverage:
        step = interval_ms(interval)
        count, first, last = self._db.execute(
            "SELECT count(*), min(open_time_ms), max(open_time_ms) FROM candles"
            " WHERE coin = ? AND interval = ?",
            (coin, interval),
        ).fetchone()
        # A gap is where the next stored candle opens more than one interval later.
        holes = self._db.execute(
            "SELECT prev + ?, open_time_ms FROM ("
            " SELECT open_time_ms, lag(open_time_ms) OVER (ORDER BY open_time_ms) AS prev"
            " FROM candles WHERE coin = ? AND interval = ?)"
            " WHERE prev IS NOT NULL AND open_time_ms - prev > ? ORDER BY open_time_ms",
            (step, coin, interval, step),
        ).fetchall()
        gaps = tuple((int(a), int(b)) for a, b in holes)
        ranges: list[Range] = []
        if count:
            cursor = int(first)
            for a, b in gaps:
                ranges.append((cursor, a))
                cursor = b
            ranges.append((cursor, int(last) + step))
        return Coverage(
            coin=coin,
            interval=interval,
            count=int(count),
            first_ms=None if first is None else int(first),
            last_ms=None if last is None else int(last),
            ranges=tuple(ranges),
            gaps=gaps,
            fetched=tuple(self.fetched(coin, interval)),
        )

    def funding_coverage(self, coin: str) -> FundingCoverage:
        count, first, last = self._db.execute(
            "SELECT count(*), min(time_ms), max(time_ms) FROM funding WHERE coin = ?", (coin,)
        ).fetchone()
        return FundingCoverage(
            coin=coin,
            count=int(count),
            first_ms=None if first is None else int(first),
            last_ms=None if last is None else int(last),
            fetched=tuple(self.fetched(coin, FUNDING)),
        )

    def series(self) -> list[tuple[str, str]]:
        """Every (coin, interval) with candles, sorted by coin then interval length."""
        rows = self._db.execute("SELECT DISTINCT coin, interval FROM candles").fetchall()
        return sorted(
            ((str(c), str(i)) for c, i in rows), key=lambda r: (r[0], INTERVAL_MS.get(r[1], 0))
        )

    def funding_coins(self) -> list[str]:
        rows = self._db.execute("SELECT DISTINCT coin FROM funding ORDER BY coin").fetchall()
        return [str(c) for (c,) in rows]

    def last_open_ms(self, coin: str, interval: str) -> int | None:
        (last,) = self._db.execute(
            "SELECT max(open_time_ms) FROM candles WHERE coin = ? AND interval = ?",
            (coin, interval),
        ).fetchone()
        return None if last is None else int(last)

    # -- reading ------------------------------------------------------------------------------

    @staticmethod
    def _range(
        coin: str, interval: str, start_ms: int | None, end_ms: int | None
    ) -> tuple[object, ...]:
        interval_ms(interval)
        lo = -(2**62) if start_ms is None else start_ms
        hi = 2**62 if end_ms is None else end_ms
        return (coin, interval, lo, hi)

    def candles(
        self, coin: str, interval: str, start_ms: int | None = None, end_ms: int | None = None
    ) -> CandleArrays:
        """Candles opening in ``[start_ms, end_ms)`` as float arrays, oldest first."""
        params = self._range(coin, interval, start_ms, end_ms)
        with closing(
            self._db.execute(
                "SELECT open_time_ms, CAST(open AS REAL), CAST(high AS REAL), CAST(low AS REAL),"
                " CAST(close AS REAL), CAST(volume AS REAL) FROM candles WHERE coin = ?"
                " AND interval = ? AND open_time_ms >= ? AND open_time_ms < ?"
                " ORDER BY open_time_ms",
                params,
            )
        ) as cursor:
            # Straight from the cursor into one float block: no list of a million tuples.
            # Open times are below 2**53, so they survive the float64 round trip exactly.
            flat = np.fromiter(itertools.chain.from_iterable(cursor), dtype=np.float64)
        table = flat.reshape(-1, 6).T
        return CandleArrays(
            open_time_ms=table[0].astype(np.int64),
            open=np.ascontiguousarray(table[1]),
            high=np.ascontiguousarray(table[2]),
            low=np.ascontiguousarray(table[3]),
            close=np.ascontiguousarray(table[4]),
            volume=np.ascontiguousarray(table[5]),
        )

    def decimal_candles(
        self, coin: str, interval: str, start_ms: int | None = None, end_ms: int | None = None
    ) -> list[DecimalCandle]:
        """Candles opening in ``[start_ms, end_ms)`` with exact Decimal values."""
        params = self._range(coin, interval, start_ms, end_ms)
        rows = self._db.execute(
            "SELECT open_time_ms, open, high, low, close, volume FROM candles WHERE coin = ?"
            " AND interval = ? AND open_time_ms >= ? AND open_time_ms < ? ORDER BY open_time_ms",
            params,
        ).fetchall()
        return [
            DecimalCandle(int(t), Decimal(o), Decimal(h), Decimal(lo), Decimal(c), Decimal(v))
            for t, o, h, lo, c, v in rows
        ]

    def raw_candles(self, coin: str, interval: str) -> list[CandleRow]:
        rows = self._db.execute(
            "SELECT open_time_ms, open, high, low, close, volume FROM candles"
            " WHERE coin = ? AND interval = ? ORDER BY open_time_ms",
            (coin, interval),
        ).fetchall()
        return [CandleRow(int(t), o, h, lo, c, v) for t, o, h, lo, c, v in rows]

    def funding(
        self, coin: str, start_ms: int | None = None, end_ms: int | None = None
    ) -> list[FundingRow]:
        lo = -(2**62) if start_ms is None else start_ms
        hi = 2**62 if end_ms is None else end_ms
        rows = self._db.execute(
            "SELECT time_ms, rate, premium FROM funding WHERE coin = ? AND time_ms >= ?"
            " AND time_ms < ? ORDER BY time_ms",
            (coin, lo, hi),
        ).fetchall()
        return [FundingRow(int(t), r, p) for t, r, p in rows]
