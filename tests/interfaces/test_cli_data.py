"""``nof0 data``: bad input named with exit ≠ 0 and no traceback; import and list (no server)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infrastructure.market.history import CandleRow, HistoryStore
from interfaces.cli import main

T0 = 1_767_225_600_000
MINUTE = 60_000


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse refusing the command line
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def download(tmp_path: Path, *extra: str) -> list[str]:
    base = ["data", "download", "--data-dir", str(tmp_path), "--url", "http://127.0.0.1:9"]
    return [*base, "--coins", "BTC", "--interval", "1m", "--from", "2026-01-01", *extra]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--interval", "1m,7m"], "argument --interval: unknown interval '7m' (known: 1m, 3m"),
        (["--to", "2025-12-01"], "--from 2026-01-01T00:00:00Z is not before --to 2025-12-01"),
        (["--to", "2026-01-01"], "is not before --to 2026-01-01T00:00:00Z"),
        (["--to", "yesterday"], "argument --to: 'yesterday' is not a date or time"),
        (["--coins", " , "], "argument --coins: expected one coin or more"),
    ],
)
def test_bad_arguments_are_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, extra: list[str], message: str
) -> None:
    code, _, err = run(capsys, *download(tmp_path, *extra))
    assert code == 2
    assert message in err


def test_an_unreachable_venue_is_named_and_the_run_can_resume(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(capsys, *download(tmp_path, "--to", "2026-01-02"))
    assert code == 1
    assert "nof0 data download: listing the venue's coins (meta): http://127.0.0.1:9" in err
    assert "connection failed" in err
    assert "run the same command to resume" in err


def test_the_data_directory_comes_from_the_config_or_is_asked_for(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = str(tmp_path / "none.yaml")
    code, _, err = run(capsys, "data", "list", "--config", missing)
    assert code == 2
    assert f"cannot read the data directory from {missing}; give --data-dir" in err
    assert "file not found" in err


def test_a_store_that_is_not_a_database_is_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    store = tmp_path / "history" / "market.sqlite"
    store.parent.mkdir()
    store.write_bytes(b"not sqlite at all" * 100)
    code, _, err = run(capsys, "data", "list", "--data-dir", str(tmp_path))
    assert code == 1
    assert f"nof0 data list: the history store {store}: file is not a database" in err


def test_list_without_a_store(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, "data", "list", "--data-dir", str(tmp_path))
    assert (code, "no market history in") == (0, out[: len("no market history in")])
    code, out, _ = run(capsys, "data", "list", "--data-dir", str(tmp_path), "--json")
    assert json.loads(out)["candles"] == []
    assert not (tmp_path / "history").exists()  # listing creates nothing


def test_list_shows_counts_and_gaps(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with HistoryStore.open(tmp_path) as store:
        times = [T0 + n * MINUTE for n in (0, 1, 2, 6, 7)]
        store.add_candles("BTC", "1m", [CandleRow(t, "1", "2", "0.5", "1.5", "3") for t in times])
    code, out, _ = run(capsys, "data", "list", "--data-dir", str(tmp_path))
    assert code == 0
    line = next(x for x in out.splitlines() if x.startswith("BTC "))
    assert line.split() == ["BTC", "1m", "2026-01-01T00:00:00Z", "2026-01-01T00:07:00Z", "5", "1"]
    assert "gap 2026-01-01T00:03:00Z .. 2026-01-01T00:06:00Z (3 missing)" in out
    code, out, _ = run(capsys, "data", "list", "--data-dir", str(tmp_path), "--json")
    (series,) = json.loads(out)["candles"]
    assert series["count"] == 5
    assert series["missing"] == 3
    assert series["gaps"] == [
        {
            "from": "2026-01-01T00:03:00Z",
            "to": "2026-01-01T00:06:00Z",
            "from_ms": T0 + 3 * MINUTE,
            "to_ms": T0 + 6 * MINUTE,
            "missing": 3,
        }
    ]


def test_import_the_shared_files_twice(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, shared_dir: Path
) -> None:
    folder = str(shared_dir / "data" / "candles")
    code, out, _ = run(capsys, "data", "import", "--data-dir", str(tmp_path), folder)
    assert code == 0
    assert "BTC-PERP_FTX 1m: 45031 new of 45031 rows" in out
    assert "XRP_USDT_USDT 8h funding: 91 new of 91 rows" in out
    code, out, _ = run(capsys, "data", "import", "--data-dir", str(tmp_path), folder)
    assert code == 0
    assert "BTC-PERP_FTX 1m: 0 new of 45031 rows" in out
    code, out, _ = run(capsys, "data", "list", "--data-dir", str(tmp_path), "--json")
    listed = {(s["coin"], s["interval"]): s for s in json.loads(out)["candles"]}
    assert listed["BTC-PERP_FTX", "1m"]["count"] == 45_031
    assert listed["BTC-PERP_FTX", "1m"]["gaps"] == []
    assert [f["coin"] for f in json.loads(out)["funding"]] == ["XRP_USDT_USDT"]


def test_import_refuses_a_bad_file_and_goes_on(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    good = tmp_path / "ETH_1h_x.csv"
    good.write_text(f"timestamp_ms,date,open,high,low,close,volume\n{T0},d,1,2,0.5,1.5,3\n")
    bad = tmp_path / "BTC_1h_x.csv"
    bad.write_text(f"timestamp_ms,date,open,high,low,close,volume\n{T0},d,1,2,0.5,oops,3\n")
    data = str(tmp_path / "data")
    code, out, err = run(capsys, "data", "import", "--data-dir", data, str(bad), str(good))
    assert code == 1
    assert "nof0 data import: BTC_1h_x.csv line 2: close 'oops' is not a number" in err
    assert "ETH_1h_x.csv: ETH 1h: 1 new of 1 rows" in out
    code, _, err = run(capsys, "data", "import", "--data-dir", data, str(tmp_path / "none.csv"))
    assert code == 1
    assert "none.csv" in err
    code, _, err = run(
        capsys, "data", "import", "--data-dir", data, "--coin", "X", str(good), str(bad)
    )
    assert code == 2
    assert "--coin and --interval name one file's series" in err


def test_export_to_stdout_and_its_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = str(tmp_path)
    code, _, err = run(
        capsys, "data", "export", "--data-dir", data, "--coin", "BTC", "--interval", "1m"
    )
    assert code == 1
    assert "no market history in" in err
    with HistoryStore.open(tmp_path) as store:
        store.add_candles("BTC", "1m", [CandleRow(T0, "1", "2", "0.5", "1.5", "3")])
    code, out, _ = run(
        capsys, "data", "export", "--data-dir", data, "--coin", "BTC", "--interval", "1m"
    )
    assert code == 0
    assert out.splitlines() == [
        "timestamp_ms,date,open,high,low,close,volume",
        "1767225600000,2026-01-01T00:00:00Z,1,2,0.5,1.5,3",
    ]
    code, _, err = run(
        capsys, "data", "export", "--data-dir", data, "--coin", "BTC", "--interval", "1m,3m"
    )
    assert code == 2
    assert "one --interval at a time" in err
    code, _, err = run(
        capsys,
        "data",
        "export",
        "--data-dir",
        data,
        "--coin",
        "BTC",
        "--interval",
        "1m",
        "--out",
        str(tmp_path / "missing-dir" / "x.csv"),
    )
    assert code == 1
    assert "missing-dir/x.csv" in err
