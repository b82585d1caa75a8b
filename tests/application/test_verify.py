"""``nof0 replay verify``: passes on a run's events, fails on any altered record or drift."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from infrastructure import bootstrap
from interfaces.cli import main
from tests.support.arena import OfflineArena
from tests.support.workspace import Workspace


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, Path]:
    root = tmp_path_factory.mktemp("verify")
    ws = Workspace(root / "arena")
    data = root / "data"
    OfflineArena.open(data, config_path=ws.main).run_sync(minutes=150)
    return ws, data


def copy_run(run: tuple[Workspace, Path], tmp_path: Path) -> tuple[Workspace, Path]:
    import shutil

    _, data = run
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    fresh = Workspace(tmp_path / "arena")
    return fresh, copy


def tamper(data: Path, topic: str, change: Callable[[dict[str, Any]], bool]) -> None:
    """Rewrite the first stored event of ``topic`` that ``change`` alters."""
    db = sqlite3.connect(data / "events.sqlite3")
    try:
        rows = db.execute(
            "SELECT rowid, state FROM stored_events WHERE topic = ? ORDER BY rowid", (topic,)
        ).fetchall()
        for rowid, state in rows:
            document = json.loads(state)
            if change(document):
                db.execute(
                    "UPDATE stored_events SET state = ? WHERE rowid = ?",
                    (json.dumps(document).encode(), rowid),
                )
                db.commit()
                return
    finally:
        db.close()
    raise AssertionError(f"no {topic} event could be changed")


def verify(ws: Workspace, data: Path) -> Any:
    config = bootstrap.load_config(ws.main, data_dir=data, env={})
    return bootstrap.verify_replay(config)


def test_a_runs_events_verify(
    run: tuple[Workspace, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    ws, data = run
    report = verify(ws, data)
    assert report.ok, "\n".join(map(str, report.divergences))
    assert report.cycles > 60
    assert report.traders == ["ema-cross", "random-walk", "btc-hold"]
    code = main(["replay", "verify", "--config", str(ws.main), "--data-dir", str(data)])
    assert code == 0
    assert "replay verify: OK" in capsys.readouterr().out


def test_altered_decisions_are_a_divergence(
    run: tuple[Workspace, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws, data = copy_run(run, tmp_path)

    def hold_to_close(state: dict[str, Any]) -> bool:
        for decision in state["decisions"]:
            if decision["signal"] == "hold":
                decision["signal"] = "close"
                return True
        return False

    tamper(data, "nof0/Trader.LLMResponded", hold_to_close)
    report = verify(ws, data)
    assert [d.kind for d in report.divergences] == ["parse"]
    code = main(["replay", "verify", "--config", str(ws.main), "--data-dir", str(data)])
    assert code == 1
    out = capsys.readouterr().out
    assert "[parse]" in out
    assert "1 divergence(s)" in out


def test_an_altered_raw_answer_is_a_divergence(run: tuple[Workspace, Path], tmp_path: Path) -> None:
    ws, data = copy_run(run, tmp_path)

    def rewrite(state: dict[str, Any]) -> bool:
        if '"signal":"hold"' not in state["raw_text"]:
            return False
        state["raw_text"] = state["raw_text"].replace('"signal":"hold"', '"signal":"close"', 1)
        return True

    tamper(data, "nof0/Trader.LLMResponded", rewrite)
    assert {d.kind for d in verify(ws, data).divergences} >= {"parse"}


def test_an_altered_order_is_a_divergence(run: tuple[Workspace, Path], tmp_path: Path) -> None:
    ws, data = copy_run(run, tmp_path)

    def double(state: dict[str, Any]) -> bool:
        if state["reason"] is not None:
            return False  # a protective exit, not a decision cycle's order
        state["size"] = str(2 * float(state["size"]))
        return True

    tamper(data, "nof0/Trader.OrderPlaced", double)
    kinds = [d.kind for d in verify(ws, data).divergences]
    assert kinds == ["orders"]


def test_changed_risk_limits_are_reported(run: tuple[Workspace, Path], tmp_path: Path) -> None:
    """Verification before resuming: today's configuration would decide differently."""
    ws, data = copy_run(run, tmp_path)
    ws.replace(
        "manager.yaml",
        "      max_positions: 3\n      max_position_size_usd: 2000",
        "      max_positions: 1\n      max_position_size_usd: 2000",
    )
    kinds = {d.kind for d in verify(ws, data).divergences}
    assert "risk" in kinds or "orders" in kinds
    assert "prompt" in kinds  # the prompt states the limit, so it changed too


def test_a_changed_template_is_reported(run: tuple[Workspace, Path], tmp_path: Path) -> None:
    ws, data = copy_run(run, tmp_path)
    user = ws.prompts / "user.j2"
    user.write_text(user.read_text().replace("Sharpe ratio:", "Sharpe:"))
    divergences = verify(ws, data).divergences
    assert divergences
    assert {d.kind for d in divergences} == {"prompt"}


def test_last_n_and_one_trader(run: tuple[Workspace, Path]) -> None:
    ws, data = run
    config = bootstrap.load_config(ws.main, data_dir=data, env={})
    report = bootstrap.verify_replay(config, traders=["ema-cross"], last=5)
    assert report.ok
    assert report.traders == ["ema-cross"]
    assert report.cycles == 5
    with pytest.raises(LookupError):
        bootstrap.verify_replay(config, traders=["nobody"])


def test_a_trader_on_the_compact_layout_trades_and_verifies(tmp_path: Path) -> None:
    """The compact templates are configuration only: a trader on them decides, records its
    prompts, and replay verify reproduces every one of them."""
    ws = Workspace(tmp_path / "arena")
    ws.set(
        "manager.yaml", ("traders", 0, "prompt_template"), "../prompts/decision/system_compact.j2"
    )
    ws.set(
        "manager.yaml",
        ("traders", 0, "executor_prompt_template"),
        "../prompts/decision/user_compact.j2",
    )
    data = tmp_path / "data"
    arena = OfflineArena.open(data, config_path=ws.main)
    arena.run_sync(minutes=60)
    trader = arena.engine.app.get_trader("ema-cross")
    assert trader.cycle_no >= 10
    report = verify(ws, data)
    assert report.ok, "\n".join(map(str, report.divergences))
    recorded = [
        e
        for e in arena.engine.app.trader_events("ema-cross")
        if type(e).__name__ == "DecisionRequested"
    ]
    assert recorded
    assert all("user_compact.j2" in e.prompt_template for e in recorded)
    assert all("3m mid" in e.user_prompt for e in recorded)

    # The same arena on nof1's layout: the baseline decides the same, cycle by cycle (the
    # baselines read the snapshot, not the text; a model reading the text is compared by
    # the counterfactual replay).
    default = OfflineArena.open(tmp_path / "nof1", config_path=Workspace(tmp_path / "ws2").main)
    default.run_sync(minutes=60)

    def decisions(app: Any) -> list[tuple[str, str]]:
        return [
            (type(e).__name__, repr(getattr(e, "decisions", getattr(e, "cloid", ""))))
            for e in app.trader_events("ema-cross")
            if type(e).__name__ in ("LLMResponded", "OrderPlaced")
        ]

    assert decisions(arena.engine.app) == decisions(default.engine.app)
    assert any(kind == "OrderPlaced" for kind, _ in decisions(default.engine.app))
