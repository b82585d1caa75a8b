"""The market-history store: exact strings in, floats or Decimals out, coverage and gaps;
the CSV importer over the shared candle files."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from infrastructure.market.history import (
    FUNDING,
    CandleRow,
    FundingRow,
    HistoryStore,
    UnknownInterval,
    merge_ranges,
    store_path,
    subtract_ranges,
)
from infrastructure.market.history_csv import CandleFileError, export_candles, import_file
from infrastructure.market.history_tape import read_minute_candles

MINUTE = 60_000
T0 = 1_767_225_600_000


def row(t: int, close: str = "100.5") -> CandleRow:
    return CandleRow(t, "100.1", "101.123456789", "99.000000001", close, "12.5")


@pytest.fixture
def store(tmp_path: Path) -> HistoryStore:
    with HistoryStore.open(tmp_path) as opened:
        yield opened  # type: ignore[misc]


def test_the_store_lives_under_the_data_directory(tmp_path: Path) -> None:
    assert store_path(tmp_path) == tmp_path / "history" / "market.sqlite"
    with HistoryStore.open(tmp_path) as opened:
        assert opened.path.is_file()


def test_ranges_merge_and_subtract() -> None:
    assert merge_ranges([(5, 9), (0, 3), (3, 4), (8, 12), (20, 20)]) == [(0, 4), (5, 12)]
    assert subtract_ranges((0, 20), [(0, 4), (5, 12)]) == [(4, 5), (12, 20)]
    assert subtract_ranges((6, 10), [(0, 4), (5, 12)]) == []
    assert subtract_ranges((0, 3), []) == [(0, 3)]


def test_decimal_strings_are_kept_exactly(store: HistoryStore) -> None:
    assert store.add_candles("BTC", "1m", [row(T0), row(T0 + MINUTE, "100.0")]) == 2
    exact = store.decimal_candles("BTC", "1m")
    assert exact[0].high == Decimal("101.123456789")
    assert exact[0].low == Decimal("99.000000001")
    assert str(exact[1].close) == "100.0"  # the venue's string, trailing zero kept
    arrays = store.candles("BTC", "1m")
    assert arrays.open_time_ms.dtype == np.int64
    assert arrays.close.dtype == np.float64
    assert arrays.open_time_ms.tolist() == [T0, T0 + MINUTE]
    assert arrays.close.tolist() == [100.5, 100.0]
    assert arrays.high[0] == pytest.approx(101.123456789)
    window = store.candles("BTC", "1m", T0 + MINUTE, T0 + 2 * MINUTE)
    assert window.open_time_ms.tolist() == [T0 + MINUTE]
    assert len(store.candles("ETH", "1m")) == 0


def test_a_stored_candle_is_kept_and_written_once(store: HistoryStore) -> None:
    store.add_candles("BTC", "1m", [row(T0)])
    assert store.add_candles("BTC", "1m", [row(T0, "1.0"), row(T0 + MINUTE)]) == 1
    assert [c.close for c in store.raw_candles("BTC", "1m")] == ["100.5", "100.5"]


def test_coverage_reports_runs_and_gaps(store: HistoryStore) -> None:
    times = [T0 + n * MINUTE for n in (0, 1, 2, 5, 6, 9)]
    store.add_candles("ETH", "1m", [row(t) for t in times], fetched=(T0, T0 + 10 * MINUTE))
    coverage = store.coverage("ETH", "1m")
    assert (coverage.count, coverage.first_ms, coverage.last_ms) == (6, T0, T0 + 9 * MINUTE)
    assert coverage.gaps == ((T0 + 3 * MINUTE, T0 + 5 * MINUTE), (T0 + 7 * MINUTE, T0 + 9 * MINUTE))
    assert coverage.ranges == (
        (T0, T0 + 3 * MINUTE),
        (T0 + 5 * MINUTE, T0 + 7 * MINUTE),
        (T0 + 9 * MINUTE, T0 + 10 * MINUTE),
    )
    assert coverage.missing_candles() == 4
    assert coverage.fetched == ((T0, T0 + 10 * MINUTE),)
    empty = store.coverage("ETH", "1h")
    assert (empty.count, empty.first_ms, empty.ranges, empty.gaps) == (0, None, (), ())
    with pytest.raises(UnknownInterval, match="'7m'"):
        store.coverage("ETH", "7m")


def test_fetched_ranges_stay_merged(store: HistoryStore) -> None:
    store.add_candles("BTC", "1h", [], fetched=(10, 20))
    store.add_candles("BTC", "1h", [], fetched=(30, 40))
    store.add_funding("BTC", [], fetched=(0, 5))
    assert store.fetched("BTC", "1h") == [(10, 20), (30, 40)]
    store.add_candles("BTC", "1h", [], fetched=(20, 30))
    assert store.fetched("BTC", "1h") == [(10, 40)]
    store.add_candles("BTC", "1h", [], fetched=(5, 50))
    assert store.fetched("BTC", "1h") == [(5, 50)]
    assert store.missing("BTC", "1h", 0, 60) == [(0, 5), (50, 60)]
    assert store.fetched("BTC", FUNDING) == [(0, 5)]


def test_funding_rows(store: HistoryStore) -> None:
    rows = [FundingRow(T0 + 7, "0.0000125", "-0.0001875303"), FundingRow(T0 + 3_600_009, "0", None)]
    assert store.add_funding("BTC", rows) == 2
    assert store.add_funding("BTC", rows) == 0
    assert store.funding("BTC") == rows
    coverage = store.funding_coverage("BTC")
    assert (coverage.count, coverage.first_ms, coverage.last_ms) == (2, T0 + 7, T0 + 3_600_009)
    assert store.funding_coins() == ["BTC"]


def test_a_failed_write_leaves_nothing(store: HistoryStore) -> None:
    bad = [row(T0), CandleRow(T0 + MINUTE, None, "1", "1", "1", "1")]  # type: ignore[arg-type]
    with pytest.raises(sqlite3.IntegrityError, match="NOT NULL"):
        store.add_candles("BTC", "1m", bad, fetched=(T0, T0 + 2 * MINUTE))
    assert store.raw_candles("BTC", "1m") == []
    assert store.fetched("BTC", "1m") == []


# -- import -------------------------------------------------------------------------------


def test_import_of_the_shared_candle_files_is_idempotent(
    shared_dir: Path, store: HistoryStore
) -> None:
    folder = shared_dir / "data" / "candles"
    files = sorted(folder.glob("*.csv"))
    assert len(files) >= 4
    first = {result.coin: result for result in (import_file(store, f) for f in files)}
    btc = first["BTC-PERP_FTX"]
    assert (btc.kind, btc.interval, btc.rows, btc.added) == ("candles", "1m", 45_031, 45_031)
    assert store.coverage("BTC-PERP_FTX", "1m").count == 45_031
    assert store.coverage("BTC-PERP_FTX", "1m").gaps == ()
    funding = first["XRP_USDT_USDT"]
    assert (funding.kind, funding.interval, funding.rows) == ("funding", "8h", 91)
    assert store.funding("XRP_USDT_USDT")[0].time_ms == 1_637_193_600_017  # jitter kept
    eth = store.decimal_candles("ETH_BTC_bittrex", "5m")
    assert (len(eth), eth[0].high) == (5760, Decimal("0.0994766"))
    assert [import_file(store, f).added for f in files] == [0] * len(files)


def write(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


HEADER = "timestamp_ms,date,open,high,low,close,volume"


def test_import_names_the_series_from_the_file_or_the_options(
    tmp_path: Path, store: HistoryStore
) -> None:
    path = write(tmp_path / "SOL_5m_2026.csv", HEADER, f"{T0},x,1,2,0.5,1.5,1e-05")
    result = import_file(store, path)
    assert (result.coin, result.interval, result.added) == ("SOL", "5m", 1)
    assert store.raw_candles("SOL", "5m")[0].volume == "0.00001"  # exponents written out
    other = import_file(store, path, coin="SOL-X", interval="1m")
    assert (other.coin, other.interval) == ("SOL-X", "1m")


@pytest.mark.parametrize(
    ("name", "lines", "message"),
    [
        ("noname.csv", [HEADER], "cannot tell the coin and interval"),
        ("BTC_1m.csv", ["a,b,c"], "unexpected header"),
        ("BTC_1m.csv", [HEADER, f"{T0},x,1,2,0.5"], "line 2: expected 7 fields"),
        ("BTC_1m.csv", [HEADER, f"{T0},x,1,2,0.5,abc,1"], "line 2: close 'abc' is not a number"),
        ("BTC_1m.csv", [HEADER, f"{T0},x,1,2,1.5,1,1"], "line 2: prices do not make a candle"),
        ("BTC_1m.csv", [HEADER, f"{T0 + 1},x,1,2,0.5,1,1"], "not on the 1m grid"),
        (
            "BTC_1m.csv",
            [HEADER, f"{T0 + MINUTE},x,1,2,0.5,1,1", f"{T0},x,1,2,0.5,1,1"],
            "line 3: 1767225600000 is not after",
        ),
    ],
)
def test_a_bad_file_is_refused_whole_and_named(
    tmp_path: Path, store: HistoryStore, name: str, lines: list[str], message: str
) -> None:
    path = write(tmp_path / name, *lines)
    with pytest.raises(CandleFileError, match=message):
        import_file(store, path)
    assert store.series() == []


def test_a_missing_file_is_named(tmp_path: Path, store: HistoryStore) -> None:
    with pytest.raises(CandleFileError, match=r"BTC_1m\.csv: No such file"):
        import_file(store, tmp_path / "BTC_1m.csv")


# -- export -------------------------------------------------------------------------------


def test_an_export_is_the_shared_file_byte_for_byte(shared_dir: Path, store: HistoryStore) -> None:
    source = shared_dir / "data" / "candles" / "BTC-PERP_FTX_1m_2021-12-31_2022-02-01.csv"
    import_file(store, source)
    out = store.path.parent / "btc.csv"
    assert export_candles(store, "BTC-PERP_FTX", "1m", out) == 45_031
    assert out.read_bytes() == source.read_bytes()


def test_an_export_imports_back_and_feeds_a_backtest(tmp_path: Path, store: HistoryStore) -> None:
    rows = [row(T0 + n * MINUTE, f"100.{n}") for n in range(5)]
    store.add_candles("BTC", "1m", rows)
    out = tmp_path / "BTC_1m.csv"
    assert (
        export_candles(store, "BTC", "1m", out, start_ms=T0 + MINUTE, end_ms=T0 + 4 * MINUTE) == 3
    )
    assert not (tmp_path / "BTC_1m.csv.tmp").exists()
    with HistoryStore(tmp_path / "other.sqlite") as other:
        assert import_file(other, out).added == 3
        assert other.raw_candles("BTC", "1m") == rows[1:4]
    minutes = read_minute_candles(out)  # what ``nof0 backtest --candles BTC=PATH`` reads
    assert (minutes.start_ms, minutes.close.tolist()) == (T0 + MINUTE, [100.1, 100.2, 100.3])
    with pytest.raises(CandleFileError, match="no ETH 1m candles stored"):
        export_candles(store, "ETH", "1m", tmp_path / "eth.csv")
    assert not (tmp_path / "eth.csv").exists()
