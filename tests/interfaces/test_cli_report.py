"""``nof0 report``: an arena's run as HTML with charts, PNGs and JSON KPIs with intervals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from interfaces.cli import main
from tests.support.archive import SERVER_VARIABLES
from tests.support.arena import DEFAULT_CONFIG, OfflineArena

PNG = b"\x89PNG\r\n\x1a\n"


def cli(*args: str) -> int:
    return main([args[0], "--config", str(DEFAULT_CONFIG), *args[1:]])


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SERVER_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("report") / "data"
    OfflineArena.open(data).run_sync(minutes=300)
    return data


def test_report_writes_html_json_and_pngs(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report"
    assert cli("report", str(run), "--out", str(out)) == 0
    printed = capsys.readouterr().out
    document = json.loads((out / "report.json").read_text())
    traders = {t["model_id"]: t for t in document["traders"]}
    assert set(traders) == {"btc-hold", "ema-cross", "random-walk"}
    assert document["baseline"]["model_id"] == "buynhold_btc"
    rows = json.loads((run / "views" / "r1" / "account-totals.json").read_text())["accountTotals"]
    for trader in traders.values():
        hours = sum(1 for r in rows if r["model_id"] == trader["model_id"])
        assert hours >= 4
        assert trader["hourly_returns"] == hours - 2  # the newest, unfinished hour left out
        sharpe = trader["sharpe"]
        assert sharpe["low"] <= sharpe["estimate"] <= sharpe["high"]
        assert f"{trader['model_id']}: return" in printed
    assert traders["random-walk"]["num_trades"] > 0
    assert len(document["trades"]) == sum(t["num_trades"] for t in traders.values())
    assert document["fingerprint"] in printed
    html = (out / "report.html").read_text()
    assert html.count("<svg") == 3  # equity, drawdown, exposure inline
    assert "BTC buy-and-hold" in html
    assert document["fingerprint"] in html
    for name in ("equity", "drawdown", "exposure"):
        assert (out / f"{name}.png").read_bytes().startswith(PNG)


def test_report_twice_gives_the_same_files(run: Path, tmp_path: Path) -> None:
    assert cli("report", str(run), "--out", str(tmp_path / "one")) == 0
    assert cli("report", str(run), "--out", str(tmp_path / "two")) == 0
    for name in ("report.json", "report.html", "equity.png", "drawdown.png", "exposure.png"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()


def test_report_defaults_to_the_data_dir_and_writes_beside_it(run: Path) -> None:
    assert cli("report", "--data-dir", str(run)) == 0
    assert (run / "report" / "report.html").is_file()


def test_a_directory_without_views_gets_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli("report", str(tmp_path)) == 1
    err = capsys.readouterr().err
    assert err.startswith("no report: ")
    assert "has no views" in err
    assert "Traceback" not in err
    assert cli("report", str(tmp_path / "nowhere")) == 1
    assert "is not a directory" in capsys.readouterr().err
