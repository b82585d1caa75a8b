"""A replay tape of recorded one-minute candles, for backtests over real history.

It has the shape of :class:`~infrastructure.market.synthetic.SyntheticTape` (a start, a
length in minutes, a :class:`CoinTape` per coin), so :class:`ReplayMarket` serves it with
the same point-in-time guard and the same snapshots as live data.

* Candle files are CSV with a header holding ``timestamp_ms`` (the candle's open, unix
  ms), ``open``, ``high``, ``low``, ``close`` and ``volume`` (the shared test candles and
  what ``nof0 data`` exports). One row per minute; a missing minute is filled flat at the
  previous close with zero volume (counted in ``filled``), as a venue's empty minute is.
* All coins are cut to the minutes every file covers, from a 4-hour UTC boundary (so the
  replay's 3-minute and 4-hour candles open when the venue's do).
* The files carry no open interest (0 in the prompt) and, unless a funding rate is given,
  Hyperliquid's base funding (0.01 % per 8 h) is charged on the hour.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from infrastructure.market.history import HistoryStore
from infrastructure.market.synthetic import Candles, CoinTape

MINUTE_MS = 60_000
FOUR_HOURS_MS = 4 * 60 * MINUTE_MS
#: Hyperliquid's base funding rate per hour (0.01 % per 8 hours).
BASE_FUNDING_HOURLY = 0.0001 / 8
COLUMNS = ("timestamp_ms", "open", "high", "low", "close", "volume")


class HistoryError(ValueError):
    """A candle file that cannot be replayed; the message names the file and the fault."""


@dataclass(frozen=True)
class MinuteCandles:
    start_ms: int
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    filled: int  # minutes missing from the file, filled flat

    @property
    def end_ms(self) -> int:
        return self.start_ms + len(self.close) * MINUTE_MS


def read_minute_candles(path: Path) -> MinuteCandles:
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise HistoryError(f"{path}: {exc.strerror or exc}") from exc
    with handle:
        reader = csv.reader(handle)
        header = next(reader, None) or []
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            raise HistoryError(f"{path}: no column {', '.join(missing)} (header {header or None})")
        t, o, h, lo, c, v = (header.index(name) for name in COLUMNS)
        lines = list(reader)

    def parsed(r: list[str]) -> tuple[int, float, float, float, float, float]:
        return int(r[t]), float(r[o]), float(r[h]), float(r[lo]), float(r[c]), float(r[v])

    try:  # by position, not a dict per row: a month of minutes reads in a third of the time
        rows = [parsed(r) for r in lines]
    except (IndexError, TypeError, ValueError):
        rows = []
        for line, row in enumerate(lines, start=2):
            try:
                rows.append(parsed(row))
            except IndexError:
                raise HistoryError(f"{path} line {line}: too few fields") from None
            except (TypeError, ValueError) as exc:
                raise HistoryError(f"{path} line {line}: {exc}") from exc
    rows.sort()
    times = np.asarray([r[0] for r in rows], dtype=np.int64)
    values = np.asarray([r[1:] for r in rows], dtype=np.float64).reshape(-1, 5)
    return minute_candles(times, values, str(path))


def minute_candles(times: np.ndarray, values: np.ndarray, source: str) -> MinuteCandles:
    """One-minute candles from open times (ms, ascending) and rows of open, high, low,
    close, volume; missing minutes filled flat. ``source`` names them in errors."""
    if len(times) < 2:
        raise HistoryError(f"{source}: fewer than two candles")
    steps = np.diff(times)
    if np.any(steps == 0):
        raise HistoryError(f"{source}: a minute appears twice")
    if np.any(steps % MINUTE_MS) or times[0] % MINUTE_MS:
        raise HistoryError(f"{source}: candles must be one minute apart, on whole minutes")
    if np.any(values[:, :4] <= 0) or np.any(values[:, 4] < 0):
        raise HistoryError(f"{source}: prices must be positive and volumes not negative")
    index = (times - times[0]) // MINUTE_MS
    n = int(index[-1]) + 1
    close = np.full(n, np.nan)
    close[index] = values[:, 3]
    present = ~np.isnan(close)
    # Carry the last close over the missing minutes (a flat, empty minute).
    last = np.maximum.accumulate(np.where(present, np.arange(n), 0))
    close = close[last]
    columns = {}
    for k, name in enumerate(("open", "high", "low")):
        column = close.copy()
        column[index] = values[:, k]
        columns[name] = column
    volume = np.zeros(n)
    volume[index] = values[:, 4]
    return MinuteCandles(
        start_ms=int(times[0]),
        open=columns["open"],
        high=columns["high"],
        low=columns["low"],
        close=close,
        volume=volume,
        filled=n - len(times),
    )


class HistoryTape:
    """Recorded minutes of several coins, cut to their common span."""

    def __init__(
        self,
        candles: dict[str, MinuteCandles],
        *,
        funding_hourly: float = BASE_FUNDING_HOURLY,
    ) -> None:
        if not candles:
            raise HistoryError("a history tape needs at least one coin's candles")
        # On a 4-hour UTC boundary, as the venue's candles are: the replay builds its 3-minute
        # and 4-hour candles from the tape's start.
        latest = max(c.start_ms for c in candles.values())
        start_ms = -(-latest // FOUR_HOURS_MS) * FOUR_HOURS_MS
        end_ms = min(c.end_ms for c in candles.values())
        if end_ms - start_ms < 2 * MINUTE_MS:
            raise HistoryError("the candle files do not overlap in time")
        self.start = datetime.fromtimestamp(start_ms / 1000, tz=UTC)
        self.minutes = (end_ms - start_ms) // MINUTE_MS
        self.filled = {coin: c.filled for coin, c in candles.items()}
        self.coins: dict[str, CoinTape] = {}
        for coin, c in candles.items():
            first = (start_ms - c.start_ms) // MINUTE_MS
            cut = slice(first, first + self.minutes)
            self.coins[coin] = CoinTape(
                coin=coin,
                minutes=Candles(
                    interval_s=60,
                    open_time=np.arange(self.minutes, dtype=np.int64) * 60,
                    open=c.open[cut],
                    high=c.high[cut],
                    low=c.low[cut],
                    close=c.close[cut],
                    volume=c.volume[cut],
                ),
                open_interest=np.zeros(self.minutes),
                funding_hourly=np.full(self.minutes, funding_hourly),
            )

    @classmethod
    def from_files(
        cls, files: dict[str, Path], *, funding_hourly: float = BASE_FUNDING_HOURLY
    ) -> HistoryTape:
        return cls(
            {coin: read_minute_candles(path) for coin, path in files.items()},
            funding_hourly=funding_hourly,
        )

    @classmethod
    def from_store(
        cls,
        path: Path,
        coins: Sequence[str],
        start: datetime,
        end: datetime | None,
        *,
        funding_hourly: float = BASE_FUNDING_HOURLY,
    ) -> HistoryTape:
        """The one-minute candles of ``coins`` in the market history store, from ``start``
        (the warm-up included) to ``end``."""
        if not path.is_file():
            raise HistoryError(
                f"{path}: no market history store (fill it with nof0 data download or import)"
            )
        store = HistoryStore(path)
        try:
            candles = {}
            for coin in coins:
                arrays = store.candles(
                    coin,
                    "1m",
                    int(start.timestamp() * 1000),
                    None if end is None else int(end.timestamp() * 1000),
                )
                values = np.column_stack(
                    (arrays.open, arrays.high, arrays.low, arrays.close, arrays.volume)
                )
                candles[coin] = minute_candles(
                    arrays.open_time_ms, values, f"{path}: {coin} 1m candles"
                )
        finally:
            store.close()
        return cls(candles, funding_hourly=funding_hourly)

    def digest(self) -> str:
        """SHA-256 of the prices and volumes replayed (the start and every column)."""
        digest = hashlib.sha256(self.start.isoformat().encode())
        for coin in sorted(self.coins):
            minutes = self.coins[coin].minutes
            digest.update(coin.encode())
            for column in (minutes.open, minutes.high, minutes.low, minutes.close, minutes.volume):
                digest.update(np.ascontiguousarray(column, dtype=np.float64).tobytes())
        return digest.hexdigest()

    @property
    def end(self) -> datetime:
        return self.start + timedelta(minutes=self.minutes)
