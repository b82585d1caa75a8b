"""``nof0 backtest --compare-triggers``: the same traders over the same candles on their
decision interval and on their triggers, calls and P&L side by side — with baseline
traders, and with an LLM trader on the OpenAI-compatible fake (its calls counted there)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from interfaces.cli import main
from tests.e2e.test_llm_arena import llm_workspace, model, strategy
from tests.support.archive import SERVER_VARIABLES
from tests.support.fake_llm import FakeLLMServer
from tests.support.workspace import Workspace

BTC = "data/candles/BTC-PERP_FTX_1m_2021-12-31_2022-02-01.csv"
WINDOW = ("--from", "2022-01-13T00:00Z", "--to", "2022-01-13T03:00Z")
TRIGGERS = {
    "max_interval": "1h",
    "atr_move": 2.0,
    "atr_period": 3,
    "bar": "5m",
    "on_fill": True,
    "on_stop_or_target": True,
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SERVER_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def compare(ws: Workspace, shared_dir: Path, out: Path, traders: str, *extra: str) -> int:
    return main(
        [
            "backtest",
            "--config",
            str(ws.main),
            *WINDOW,
            "--candles",
            f"BTC={shared_dir / BTC}",
            "--traders",
            traders,
            "--out",
            str(out),
            "--compare-triggers",
            *extra,
        ]
    )


def status(run: Path) -> dict[str, Any]:
    (path,) = (run / "views").glob("*/status.json")
    return {t["model_id"]: t for t in json.loads(path.read_text())["traders"]}


def test_baseline_traders_on_timer_and_triggers(
    shared_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = Workspace(tmp_path / "arena")
    ws.set("manager.yaml", ("traders", 0, "triggers"), TRIGGERS)  # ema-cross
    out = tmp_path / "cmp"
    assert compare(ws, shared_dir, out, "ema-cross") == 0
    printed = capsys.readouterr().out
    document = json.loads((out / "triggers-comparison.json").read_text())
    row = document["traders"]["ema-cross"]
    timer, triggers = row["timer"], row["triggers"]
    assert timer["calls"] == 60  # every 3 minutes for 3 hours
    assert 0 < triggers["calls"] <= timer["calls"] / 3
    assert row["calls_ratio"] == pytest.approx(timer["calls"] / triggers["calls"])
    for side in (timer, triggers):
        assert side["net_pnl"] is not None
        assert side["return_low"] is None or side["return_low"] <= side["total_return"]
    # The triggered side explains each of its calls; the timer side has no triggers.
    seen = status(out / "triggers")["ema-cross"]["triggers"]
    assert seen["calls"] == triggers["calls"]
    assert seen["timer_calls"] == triggers["timer_calls"]
    assert sum(seen["fired"].values()) >= seen["calls"]
    # Every minute was a call or a gated tick; those after the last call are recorded by
    # the next one (which this run does not reach).
    end = datetime(2022, 1, 13, 3, tzinfo=UTC).timestamp()
    after_last = int(end - seen["last_triggered_at"]) // 60
    assert seen["ticks_gated"] == 180 - seen["calls"] - after_last
    assert status(out / "timer")["ema-cross"]["triggers"] is None
    assert "ema-cross            timer" in printed
    assert f"{row['calls_ratio']:.1f}× fewer calls on triggers" in printed
    # The same run again gives the same figures (the gates are deterministic), with the
    # two sides in two processes too (--workers).
    again = tmp_path / "again"
    assert compare(ws, shared_dir, again, "ema-cross", "--workers", "2") == 0
    assert (
        json.loads((again / "triggers-comparison.json").read_text())["traders"]
        == (document["traders"])
    )


def test_a_comparison_without_triggers_is_refused(
    shared_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = Workspace(tmp_path / "arena")
    assert compare(ws, shared_dir, tmp_path / "cmp", "ema-cross") == 1
    assert "no trader with triggers among ema-cross" in capsys.readouterr().err


def test_an_llm_trader_is_asked_fewer_times_on_triggers(
    shared_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeLLMServer(responder=strategy) as server:
        ws = llm_workspace(tmp_path, {"fake-gpt": model(server.url_openai, 1)}, "fake-gpt", [])
        ws.set("manager.yaml", ("traders", 1, "triggers"), TRIGGERS)  # random-walk on the fake
        # Every call reaches the fake: no prompt cache between the two sides.
        ws.set("llm.yaml", ("cache",), {"enabled": False})
        # The estimate is an upper bound: with triggers a call on any minute, on both sides.
        assert compare(ws, shared_dir, tmp_path / "refused", "random-walk") == 1
        assert "random-walk (fake-gpt): up to 362 model calls" in capsys.readouterr().err
        assert server.request_count == 0
        out = tmp_path / "cmp"
        assert compare(ws, shared_dir, out, "random-walk", "--yes") == 0
        asked = server.request_count
    row = json.loads((out / "triggers-comparison.json").read_text())["traders"]["random-walk"]
    timer, triggers = row["timer"], row["triggers"]
    assert timer["calls"] == 60
    assert asked == timer["calls"] + triggers["calls"]  # the fake saw every call, no more
    assert triggers["calls"] <= timer["calls"] / 3
    assert "random-walk          triggers" in capsys.readouterr().out
