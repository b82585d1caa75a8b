"""``nof0 backtest --workers N`` over the shared BTC candles: the traders (or the replicas)
in processes, and the same results as one process: the same fingerprint, the same events
per aggregate in OUT's own store, a run every other command works on."""

from __future__ import annotations

import collections
import json
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from infrastructure import bootstrap
from infrastructure.backtest_workers import INCOMPLETE, run_split
from interfaces.cli import main
from tests.support import failing_backtest
from tests.support.archive import SERVER_VARIABLES
from tests.support.arena import DEFAULT_CONFIG, api_client

BTC = "data/candles/BTC-PERP_FTX_1m_2021-12-31_2022-02-01.csv"
WINDOW = ("--from", "2022-01-13T00:00Z", "--to", "2022-01-13T03:00Z")
CONFIG = ("--config", str(DEFAULT_CONFIG))


def cli(*args: str) -> int:
    return main([args[0], *CONFIG, *args[1:]])


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SERVER_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def candles(shared_dir: Path) -> str:
    return f"BTC={shared_dir / BTC}"


@pytest.fixture(scope="module")
def runs(candles: str, tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """The same backtest in one process and with its three traders in two."""
    root = tmp_path_factory.mktemp("workers")
    out = {}
    for workers in (1, 2):
        out[workers] = root / f"w{workers}"
        args = ("--candles", candles, "--out", str(out[workers]), "--workers", str(workers))
        assert cli("backtest", *WINDOW, *args) == 0
    return out


def summary(run: Path) -> dict[str, object]:
    loaded: dict[str, object] = json.loads((run / "backtest.json").read_text())
    return loaded


def events(run: Path) -> tuple[list[int], dict[str, list[tuple[int, str, bytes]]]]:
    """The store's notification ids, and each aggregate's events in order (its version,
    topic and stored state)."""
    by_aggregate: dict[str, list[tuple[int, str, bytes]]] = collections.defaultdict(list)
    with sqlite3.connect(run / "events.sqlite3") as db:
        rows = db.execute(
            "SELECT rowid, originator_id, originator_version, topic, state FROM stored_events "
            "ORDER BY rowid"
        ).fetchall()
    for _, originator, version, topic, state in rows:
        by_aggregate[originator].append((version, topic, bytes(state)))
    return [row[0] for row in rows], dict(by_aggregate)


def views(run: Path) -> dict[str, object]:
    current = (run / "views" / "CURRENT").read_text().strip()
    return {
        path.name: json.loads(path.read_text())
        for path in sorted((run / "views" / current).glob("*.json"))
    }


def test_two_workers_give_the_fingerprint_and_the_events_of_one_process(
    runs: dict[int, Path],
) -> None:
    one, two = summary(runs[1]), summary(runs[2])
    assert one["trades"] == two["trades"]
    assert isinstance(one["trades"], int)
    assert one["trades"] > 0
    assert one["fingerprint"] == two["fingerprint"]
    assert one["cycles"] == two["cycles"]
    assert two["workers"] == 2
    processes = two["processes"]
    assert isinstance(processes, list)
    # Three traders in two contiguous groups, in their configured order.
    assert [p["traders"] for p in processes] == [["ema-cross", "random-walk"], ["btc-hold"]]
    assert all(p["seconds"] > 0 and p["out"].startswith("workers/") for p in processes)
    assert not (runs[2] / INCOMPLETE).exists()
    ids_one, one_events = events(runs[1])
    ids_two, two_events = events(runs[2])
    # Every event of every aggregate (three traders, their three venue accounts), in the
    # same order with the same state; OUT's notification ids fresh and consecutive.
    assert len(one_events) == 6
    assert two_events == one_events
    assert ids_two == list(range(1, len(ids_one) + 1))


def test_the_merged_run_is_served_verified_and_rebuilt_to_the_same_views(
    runs: dict[int, Path],
) -> None:
    run = runs[2]
    before = views(run)
    assert before["trades.json"] == views(runs[1])["trades.json"]
    config = bootstrap.load_config(DEFAULT_CONFIG, data_dir=run, env={})
    with api_client(config) as client:
        trades = client.get("/api/trades").json()["trades"]
        board = client.get("/api/leaderboard").json()["leaderboard"]
    assert len(trades) == summary(run)["trades"]
    assert {row["id"] for row in board} == {"ema-cross", "random-walk", "btc-hold"}
    assert main(["replay", "verify", *CONFIG, "--data-dir", str(run)]) == 0
    assert main(["projections", "rebuild", *CONFIG, "--data-dir", str(run)]) == 0
    assert views(run) == before


def test_replicas_in_two_processes_give_the_same_table(candles: str, tmp_path: Path) -> None:
    tables = {}
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        args = ("--candles", candles, "--out", str(out), "--seeds", "2")
        assert cli("backtest", *WINDOW, *args, "--workers", str(workers)) == 0
        tables[workers] = json.loads((out / "replicas.json").read_text())
        assert sorted(p.name for p in out.iterdir()) == ["replicas.json", "seed-0", "seed-1"]
    assert tables[2] == tables[1]
    assert len(set(tables[1]["fingerprints"])) == 2


def test_workers_below_one_are_refused(
    candles: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("--candles", candles, "--out", str(tmp_path / "r"), "--workers", "0")
    assert cli("backtest", *WINDOW, *args) == 2
    err = capsys.readouterr().err
    assert "backtest refused: --workers must be at least 1, not 0" in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("job", "error"),
    [
        (failing_backtest.fail_for_one_trader, "RuntimeError: the venue of btc-hold is on fire"),
        (failing_backtest.die_for_one_trader, "its process exited with code 3 and no result"),
    ],
)
def test_a_failing_worker_fails_the_run_by_name_and_stops_the_others(
    candles: str, tmp_path: Path, job: object, error: str
) -> None:
    out = tmp_path / "failed"
    plan = bootstrap.BacktestPlan(
        start=datetime(2022, 1, 13, tzinfo=UTC),
        end=datetime(2022, 1, 13, 3, tzinfo=UTC),
        candles={"BTC": Path(candles.partition("=")[2])},
        out=out,
    )
    config = bootstrap.load_config(DEFAULT_CONFIG, env={})
    began = time.monotonic()
    with pytest.raises(bootstrap.WorkerFailed) as failed:
        run_split(
            config,
            plan,
            2,
            store=bootstrap.SPLIT_STORE,
            run=job,  # type: ignore[arg-type]
        )
    # The other worker sleeps for ten minutes: it was stopped, not waited for.
    assert time.monotonic() - began < 240
    assert str(failed.value) == f"worker 1 (btc-hold) failed: {error}"
    assert not (out / "backtest.json").exists()
    assert not (out / "events.sqlite3").exists()
    marker = json.loads((out / INCOMPLETE).read_text())
    assert marker["state"] == "failed"
    assert marker["error"] == str(failed.value)
    assert marker["workers"] == {"0": ["ema-cross", "random-walk"], "1": ["btc-hold"]}
