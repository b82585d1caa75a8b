"""Candle and funding-rate CSV files in and out of the history store.

:func:`import_file` loads a file (idempotent); :func:`export_candles` writes a stored series
in the same format (what ``nof0 backtest --candles COIN=PATH`` reads), so an export imports
back unchanged.

The format (the project's shared test data): a header row, then one row per candle,
``timestamp_ms,date,open,high,low,close,volume`` (open time, UTC), or per funding stamp,
``timestamp_ms,date,funding_rate``. The series is named after the file unless given:
``BTC-PERP_FTX_1m_2021-12-31_2022-02-01.csv`` is coin ``BTC-PERP_FTX``, interval ``1m``; for
a funding file the words ``funding_rate`` before the interval are dropped (``XRP_USDT_USDT``).
Imported series keep their foreign names on purpose: FTX's BTC is not Hyperliquid's BTC.

Every row is checked (decimal numbers, low ≤ open, close ≤ high, open times on the interval
grid, in order) before anything is written; a file with a bad row is refused whole. Numbers
are stored as plain decimal strings (an exponent form such as ``1e-05`` is written out).
Funding rates are stored as the file gives them, per the file's funding interval.
"""

from __future__ import annotations

import csv
import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Final

from infrastructure.market.history import INTERVAL_MS, CandleRow, FundingRow, HistoryStore

CANDLE_HEADER: Final = ("timestamp_ms", "date", "open", "high", "low", "close", "volume")
FUNDING_HEADER: Final = ("timestamp_ms", "date", "funding_rate")


class CandleFileError(ValueError):
    """A file that cannot be imported; the message names the file, line and field."""


@dataclass(frozen=True)
class ImportResult:
    path: Path
    kind: str  # "candles" or "funding"
    coin: str
    interval: str | None
    rows: int
    added: int


def _name(path: Path) -> tuple[str, str]:
    """(coin, interval) from a file name: the words before the first interval word."""
    words = path.stem.split("_")
    for index, word in enumerate(words):
        if word in INTERVAL_MS and index > 0:
            coin_words = words[:index]
            if coin_words[-2:] == ["funding", "rate"]:
                coin_words = coin_words[:-2]
            if coin_words:
                return "_".join(coin_words), word
    raise CandleFileError(
        f"{path.name}: cannot tell the coin and interval from the file name"
        " (expected COIN_<interval>_..., e.g. BTC_1m_2026-01.csv); give --coin and --interval"
    )


def _number(text: str, where: str, field: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise CandleFileError(f"{where}: {field} {text!r} is not a number") from None
    if not value.is_finite():
        raise CandleFileError(f"{where}: {field} {text!r} is not a finite number")
    return value


def _plain(value: Decimal) -> str:
    return format(value, "f")


def import_file(
    store: HistoryStore, path: Path, *, coin: str | None = None, interval: str | None = None
) -> ImportResult:
    try:
        with path.open(newline="") as handle:
            lines = list(csv.reader(handle))
    except OSError as exc:
        raise CandleFileError(f"{path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise CandleFileError(f"{path}: not a text (CSV) file") from None
    if not lines:
        raise CandleFileError(f"{path}: empty file")
    header = tuple(cell.strip() for cell in lines[0])
    named_coin, named_interval = (coin, interval) if coin and interval else _name(path)
    coin = coin or named_coin
    interval = interval or named_interval
    if interval not in INTERVAL_MS:
        raise CandleFileError(f"{path.name}: unknown interval {interval!r}")
    if header == CANDLE_HEADER:
        return _candles(store, path, lines[1:], coin, interval)
    if header == FUNDING_HEADER:
        return _funding(store, path, lines[1:], coin, interval)
    raise CandleFileError(
        f"{path.name}: unexpected header {','.join(header)!r} (expected"
        f" {','.join(CANDLE_HEADER)!r} or {','.join(FUNDING_HEADER)!r})"
    )


def _stamp(cells: list[str], where: str) -> int:
    try:
        return int(cells[0])
    except ValueError:
        raise CandleFileError(f"{where}: timestamp_ms {cells[0]!r} is not an integer") from None


def _candles(
    store: HistoryStore, path: Path, lines: list[list[str]], coin: str, interval: str
) -> ImportResult:
    step = INTERVAL_MS[interval]
    rows: list[CandleRow] = []
    previous: int | None = None
    for number, cells in enumerate(lines, start=2):
        where = f"{path.name} line {number}"
        if len(cells) != len(CANDLE_HEADER):
            raise CandleFileError(
                f"{where}: expected {len(CANDLE_HEADER)} fields, got {len(cells)}"
            )
        t = _stamp(cells, where)
        if t % step:
            raise CandleFileError(f"{where}: {t} is not on the {interval} grid")
        if previous is not None and t <= previous:
            raise CandleFileError(f"{where}: {t} is not after the previous row's {previous}")
        o, h, lo, c, v = (
            _number(cells[i], where, name) for i, name in enumerate(CANDLE_HEADER[2:], start=2)
        )
        if not (lo <= min(o, c) and max(o, c) <= h) or lo <= 0 or v < 0:
            raise CandleFileError(
                f"{where}: prices do not make a candle (o {o} h {h} l {lo} c {c})"
            )
        rows.append(CandleRow(t, _plain(o), _plain(h), _plain(lo), _plain(c), _plain(v)))
        previous = t
    added = store.add_candles(coin, interval, rows)
    return ImportResult(path, "candles", coin, interval, len(rows), added)


def _funding(
    store: HistoryStore, path: Path, lines: list[list[str]], coin: str, interval: str
) -> ImportResult:
    rows: list[FundingRow] = []
    for number, cells in enumerate(lines, start=2):
        where = f"{path.name} line {number}"
        if len(cells) != len(FUNDING_HEADER):
            raise CandleFileError(
                f"{where}: expected {len(FUNDING_HEADER)} fields, got {len(cells)}"
            )
        rows.append(
            FundingRow(_stamp(cells, where), _plain(_number(cells[2], where, "rate")), None)
        )
    added = store.add_funding(coin, rows)
    return ImportResult(path, "funding", coin, interval, len(rows), added)


def _iso(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return (
        moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{ms % 1000:03d}000" if ms % 1000 else "") + "Z"
    )


def export_candles(
    store: HistoryStore,
    coin: str,
    interval: str,
    out: Path | None,
    *,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> int:
    """Write the stored candles opening in ``[start_ms, end_ms)`` as CSV, the venue's strings
    exactly, to ``out`` (atomically: a temp file then a rename) or stdout; the rows written.
    :class:`CandleFileError` when there are none."""
    rows = [
        r
        for r in store.raw_candles(coin, interval)
        if (start_ms is None or r.open_time_ms >= start_ms)
        and (end_ms is None or r.open_time_ms < end_ms)
    ]
    if not rows:
        raise CandleFileError(
            f"no {coin} {interval} candles stored in that range ('nof0 data list' shows what is)"
        )
    lines = [",".join(CANDLE_HEADER)]
    lines.extend(
        f"{r.open_time_ms},{_iso(r.open_time_ms)},{r.open},{r.high},{r.low},{r.close},{r.volume}"
        for r in rows
    )
    text = "\n".join(lines) + "\n"
    if out is None:
        sys.stdout.write(text)
        return len(rows)
    tmp = out.with_name(out.name + ".tmp")
    try:
        with tmp.open("w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise CandleFileError(f"{out}: {exc.strerror or exc}") from None
    return len(rows)
