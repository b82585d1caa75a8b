"""``nof0 replay run DATA_DIR``: a recorded arena's cycles decided again under a change, from
the snapshots its DecisionRequested events stored, compared side by side with what it did."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from application.ports import MarketSnapshot
from infrastructure.eventstore import open_trading_app, sqlite_env
from infrastructure.market.recorded import read_frames
from interfaces.cli import main
from tests.support.arena import DEFAULT_CONFIG, OfflineArena


@pytest.fixture(scope="module")
def arena(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("arena") / "data"
    OfflineArena.open(data).run_sync(90)  # the shipped arena, 90 simulated minutes
    return data


def replay(data: Path, *args: str) -> int:
    flags = ["--config", str(DEFAULT_CONFIG), "--data-dir", str(data)]
    return main(["replay", "run", str(data), *flags, *args])


def test_a_recorded_arena_is_decided_again_and_compared(
    arena: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = arena / "counterfactuals" / "lev2"
    assert (
        replay(arena, "--risk", "major_coin_leverage=2", "--trader", "ema-cross", "--out", str(out))
        == 0
    )
    printed = capsys.readouterr().out
    assert f"counterfactual of {arena}" in printed
    assert "the original is the recorded arena" in printed
    rows = {line.split()[0]: line.split() for line in printed.splitlines()[2:5]}
    assert set(rows) == {"ema-cross*", "random-walk", "btc-hold"}
    # Every recorded cycle is matched with its counterfactual (30 in 90 minutes at 3 m).
    original = open_trading_app(sqlite_env(arena / "events.sqlite3"))
    for trader, row in rows.items():
        asked = [
            e
            for e in original.trader_events(trader.rstrip("*"))
            if type(e).__name__ == "DecisionRequested"
        ]
        assert int(row[1]) >= len(asked) - 1, (trader, row, len(asked))
    # The counterfactual's market is what the arena's cycles saw, written beside it.
    frames = read_frames(out.parent / "lev2-snapshots.jsonl")
    first = next(
        e for e in original.trader_events("ema-cross") if type(e).__name__ == "DecisionRequested"
    )
    assert frames[0].as_of == first.as_of
    assert str(frames[0].coins["BTC"].price) == json.loads(first.snapshot)["coins"]["BTC"]["price"]
    summary = json.loads((out / "backtest.json").read_text())
    assert summary["candles"]["snapshots"].endswith("lev2-snapshots.jsonl")


def test_an_unchanged_deterministic_trader_decides_the_same(
    arena: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = arena / "counterfactuals" / "same"
    # A change to another trader only: btc-hold re-decides its own snapshots unchanged.
    assert (
        replay(arena, "--model", "baseline:random", "--trader", "ema-cross", "--out", str(out)) == 0
    )
    printed = capsys.readouterr().out
    hold = next(line.split() for line in printed.splitlines() if line.startswith("btc-hold "))
    assert int(hold[1]) > 0
    assert hold[2] == "0", printed  # no cycle of the unchanged trader differs


def test_a_directory_with_neither_a_backtest_nor_an_arena_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert replay(tmp_path / "nothing", "--model", "baseline:random") == 1
    assert "replay run refused" in capsys.readouterr().err


def test_a_blindfolded_replay_masks_the_prompts_it_sends(
    arena: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = arena / "counterfactuals" / "blind"
    assert replay(arena, "--blindfold", "--trader", "btc-hold", "--out", str(out)) == 0
    assert "with blindfold" in capsys.readouterr().out
    shown = open_trading_app(sqlite_env(out / "events.sqlite3"))
    asked = [e for e in shown.trader_events("btc-hold") if type(e).__name__ == "DecisionRequested"]
    assert asked
    for event in asked:
        assert "BTC" not in event.user_prompt
        assert "2025-" not in event.user_prompt
        assert event.prompt_template.endswith("+blindfold")


def test_cycles_recorded_at_drifting_seconds_are_each_decided_on_their_own_snapshot(
    arena: Path, tmp_path: Path
) -> None:
    """A live arena's cycles fall a little after each interval, and the drift adds up; the
    replay goes to each recorded instant, so none is decided on the snapshot before it."""
    import dataclasses
    from datetime import timedelta

    from infrastructure import bootstrap
    from infrastructure.counterfactual import recorded_arena_plan
    from infrastructure.market.recorded import write_frames

    config = bootstrap.load_config(DEFAULT_CONFIG, data_dir=arena)
    original = open_trading_app(sqlite_env(arena / "events.sqlite3"))
    plan = recorded_arena_plan(config, original, tmp_path / "plain")
    frames = read_frames(plan.snapshots)  # type: ignore[arg-type]
    drifted = []
    for n, frame in enumerate(frames):
        shift = timedelta(seconds=0.4 * n)  # each cycle 0.4 s later than the last
        coins = {
            c: msgspec.structs.replace(s, data_time=s.data_time + shift)
            for c, s in frame.coins.items()
        }
        drifted.append(MarketSnapshot(as_of=frame.as_of + shift, coins=coins))
    path = tmp_path / "drifted.jsonl"
    write_frames(drifted, path)
    shifted = dataclasses.replace(
        plan,
        snapshots=path,
        out=tmp_path / "drifted",
        end=drifted[-1].as_of + timedelta(minutes=1),
        traders=["ema-cross"],
    )
    bootstrap.run_backtest(config, shifted, lambda _: None)
    replayed = open_trading_app(sqlite_env(tmp_path / "drifted" / "events.sqlite3"))
    events = list(replayed.trader_events("ema-cross"))
    asked = [e for e in events if type(e).__name__ == "DecisionRequested"]
    stale = [e for e in events if type(e).__name__ == "CycleSkipped"]
    recorded = [
        e for e in original.trader_events("ema-cross") if type(e).__name__ == "DecisionRequested"
    ]
    assert stale == []
    assert len(asked) == len(recorded)


def test_a_recorded_arena_replayed_in_two_processes_compares_the_same(
    arena: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    change = ("--risk", "major_coin_leverage=2", "--trader", "ema-cross")
    one, two = arena / "counterfactuals" / "w1", arena / "counterfactuals" / "w2"
    capsys.readouterr()
    assert replay(arena, *change, "--out", str(one)) == 0
    first = capsys.readouterr().out
    assert replay(arena, *change, "--out", str(two), "--workers", "2") == 0
    second = capsys.readouterr().out
    assert first.splitlines()[1:] == second.splitlines()[1:]
    summaries = [json.loads((d / "backtest.json").read_text()) for d in (one, two)]
    assert summaries[1]["workers"] == 2
    assert summaries[0]["fingerprint"] == summaries[1]["fingerprint"]
