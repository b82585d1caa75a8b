"""``nof0 backtest`` over the shared BTC candles: the engine itself, deterministic, and a
run directory every other command works on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infrastructure import bootstrap
from interfaces.cli import main
from tests.support.archive import SERVER_VARIABLES
from tests.support.arena import DEFAULT_CONFIG, api_client

BTC = "data/candles/BTC-PERP_FTX_1m_2021-12-31_2022-02-01.csv"
WINDOW = ("--from", "2022-01-13T00:00Z", "--to", "2022-01-13T04:00Z")


def cli(*args: str) -> int:
    return main([args[0], "--config", str(DEFAULT_CONFIG), *args[1:]])


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SERVER_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def candles(shared_dir: Path) -> str:
    return f"BTC={shared_dir / BTC}"


@pytest.fixture(scope="module")
def runs(candles: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("backtest")
    for name in ("one", "two"):
        assert cli("backtest", *WINDOW, "--candles", candles, "--out", str(root / name)) == 0
    return root / "one", root / "two"


def summary(run: Path) -> dict[str, object]:
    loaded: dict[str, object] = json.loads((run / "backtest.json").read_text())
    return loaded


def test_the_three_baseline_traders_trade_and_twice_gives_the_same_fingerprint(
    runs: tuple[Path, Path],
) -> None:
    one, two = map(summary, runs)
    assert one["traders"] == {
        "ema-cross": "baseline:ema_cross",
        "random-walk": "baseline:random",
        "btc-hold": "baseline:btc_hold",
    }
    assert one["minutes"] == 240
    assert isinstance(one["trades"], int)
    assert one["trades"] > 0
    assert one["fingerprint"] == two["fingerprint"]
    candles = one["candles"]
    assert isinstance(candles, dict)
    assert len(candles["BTC"]["sha256"]) == 64


def test_the_run_is_served_reported_verified_and_rebuilt(
    runs: tuple[Path, Path], tmp_path: Path
) -> None:
    run = runs[0]
    config = bootstrap.load_config(DEFAULT_CONFIG, data_dir=run, env={})
    with api_client(config) as client:
        trades = client.get("/api/trades").json()["trades"]
        board = client.get("/api/leaderboard").json()["leaderboard"]
    assert len(trades) == summary(run)["trades"]
    assert {row["id"] for row in board} == {"ema-cross", "random-walk", "btc-hold"}
    config_flag = ("--config", str(DEFAULT_CONFIG))
    assert main(["replay", "verify", *config_flag, "--data-dir", str(run)]) == 0
    assert cli("report", str(run), "--out", str(tmp_path / "report")) == 0
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["fingerprint"] == summary(run)["fingerprint"]
    assert main(["projections", "rebuild", *config_flag, "--data-dir", str(run)]) == 0
    with api_client(config) as client:
        assert len(client.get("/api/trades").json()["trades"]) == len(trades)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--from", "2022-01-02T00:00Z", "--to", "2022-01-03T00:00Z"), "need 12 days before"),
        (("--from", "2022-01-13T04:00Z", "--to", "2022-01-13T00:00Z"), "is not after --from"),
        ((*WINDOW, "--traders", "nobody"), "no trader nobody"),
        (("--from", "yesterday", "--to", "2022-01-13T00:00Z"), "is not an ISO 8601 time"),
        (("--from", "2022-02-01T00:00Z", "--to", "2022-02-01T09:00Z"), "is after the candles end"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(
    candles: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    message: str,
) -> None:
    code = cli("backtest", *args, "--candles", candles, "--out", str(tmp_path / "run"))
    assert code in {1, 2}
    err = capsys.readouterr().err
    assert err.startswith("backtest refused: ")
    assert message in err
    assert "Traceback" not in err


def test_candles_must_be_given_as_coin_equals_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli("backtest", *WINDOW, "--candles", "BTC", "--out", str(tmp_path / "r")) == 2
    assert "is not COIN=PATH" in capsys.readouterr().err
    assert cli("backtest", *WINDOW, "--out", str(tmp_path / "r")) == 1
    assert "no candles" in capsys.readouterr().err


def test_a_used_run_directory_is_refused(
    runs: tuple[Path, Path], candles: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli("backtest", *WINDOW, "--candles", candles, "--out", str(runs[0])) == 1
    assert "is not empty" in capsys.readouterr().err


def test_seeds_run_replicas_with_kpi_intervals_and_a_luck_verdict(
    candles: str, runs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "replicas"
    assert cli("backtest", *WINDOW, "--candles", candles, "--out", str(out), "--seeds", "3") == 0
    printed = capsys.readouterr().out
    table = json.loads((out / "replicas.json").read_text())
    assert table["seeds"] == 3
    assert table["null"] == "random-walk"
    assert sorted(p.name for p in out.iterdir()) == ["replicas.json", "seed-0", "seed-1", "seed-2"]
    # Replica 0 is the plain run; the random trader draws differently in the others.
    assert table["fingerprints"][0] == summary(runs[0])["fingerprint"]
    assert len(set(table["fingerprints"])) == 3
    # Fill randomness is on in replicas 1, 2 (``spread_jitter`` below); whether it moves
    # the deterministic ema-cross's single fill of these four hours by a tick is the luck of
    # the draw (each price update draws afresh), so only the interval's shape is checked
    # here; the jitter itself: tests/unit/infrastructure/simulator/test_book.py.
    ema = table["traders"]["ema-cross"]["total_return"]
    assert ema["count"] == 3
    assert ema["low"] <= ema["mean"] <= ema["high"], ema
    replica = json.loads((out / "seed-1" / "backtest.json").read_text())
    assert replica["spread_jitter"] == 0.5
    walk = table["traders"]["random-walk"]["total_return"]
    assert walk["count"] == 3
    assert walk["low"] <= walk["mean"] <= walk["high"]
    assert walk["low"] < walk["high"]
    assert set(table["luck"]) == {"ema-cross", "btc-hold"}
    for verdicts in table["luck"].values():
        assert set(verdicts.values()) <= {
            "distinguishable from luck",
            "not distinguishable from luck",
        }
    assert "random-walk: return" in printed


def test_matched_null_tests_each_trader_against_a_random_trader_like_it(
    candles: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "matched"
    args = ("--candles", candles, "--out", str(out), "--seeds", "2", "--matched-null")
    assert cli("backtest", *WINDOW, *args) == 0
    printed = capsys.readouterr().out
    table = json.loads((out / "replicas.json").read_text())
    matched = table["matched_null"]
    assert set(matched) == {"ema-cross", "btc-hold"}  # the random trader is its own null
    for trader, row in matched.items():
        assert row["null"] == f"null-{trader}"
        assert row["model"].startswith("baseline:random@entry=")
        assert set(row["luck"]) == {"total_return", "sharpe"}
        assert f"{trader} against its matched null (null-{trader})" in printed
        assert row["null_kpis"]["total_return"]["count"] == 2
    assert sorted(p.name for p in (out / "null").iterdir()) == ["seed-0", "seed-1"]
    summary = json.loads((out / "null" / "seed-0" / "backtest.json").read_text())
    assert sorted(summary["traders"]) == ["null-btc-hold", "null-ema-cross"]
    # A trader holding a position (closed or still open) gets a null that trades, at its
    # leverage and entry size; btc-hold, in from the start, gets one that enters at once.
    assert matched["ema-cross"]["match"]["num_trades"]["null"] > 0
    assert ",leverage=5,notional=" in matched["ema-cross"]["model"]
    assert matched["btc-hold"]["model"].startswith("baseline:random@entry=1,")


def test_matched_null_needs_replicas(
    candles: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("--candles", candles, "--out", str(tmp_path / "x"), "--matched-null")
    assert cli("backtest", *WINDOW, *args) == 1
    assert "--matched-null needs --seeds 2" in capsys.readouterr().err


def test_seeds_below_one_are_refused(
    candles: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("--candles", candles, "--out", str(tmp_path / "r"), "--seeds", "0")
    assert cli("backtest", *WINDOW, *args) == 1
    assert "--seeds must be at least 1, not 0" in capsys.readouterr().err


# -- nof0 replay run: counterfactuals -----------------------------------------------------


def replay_run(*args: str) -> int:
    return main(["replay", "run", *args, "--config", str(DEFAULT_CONFIG)])


def test_replay_run_compares_a_changed_trader_side_by_side(
    runs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cf"
    change = ("--model", "baseline:ema_cross", "--trader", "random-walk")
    assert replay_run(str(runs[0]), *change, "--out", str(out)) == 0
    printed = capsys.readouterr().out
    lines = {line.split()[0]: line for line in printed.splitlines() if line.strip()}
    # Only the changed trader decides differently; the others are the same run again.
    assert lines["random-walk*"].split()[2] != "0"
    assert lines["ema-cross"].split()[2] == "0"
    assert lines["btc-hold"].split()[2] == "0"
    assert "random-walk 2022-01-13" in printed  # the first differing cycles, named
    counterfactual = summary(out)
    assert counterfactual["traders"]["random-walk"] == "baseline:ema_cross"  # type: ignore[index]
    assert counterfactual["fingerprint"] != summary(runs[0])["fingerprint"]


def test_replay_run_with_the_same_settings_changes_nothing(
    runs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # max_positions 3 is what ema-cross has already: the counterfactual is the run itself.
    out = tmp_path / "same"
    assert (
        replay_run(
            str(runs[0]), "--risk", "max_positions=3", "--trader", "ema-cross", "--out", str(out)
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert summary(out)["fingerprint"] == summary(runs[0])["fingerprint"]
    assert " 0  " in next(line for line in printed.splitlines() if line.startswith("ema-cross"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "nothing to change"),
        (("--risk", "max_leverage=3"), "not a risk parameter"),
        (("--risk", "max_positions=0"), "max_positions"),
        (("--risk", "max_positions"), "is not KEY=VALUE"),
        (("--model", "baseline:ema_cross", "--trader", "nobody"), "the run has no trader nobody"),
    ],
)
def test_replay_run_refuses_bad_input_clearly(
    runs: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    message: str,
) -> None:
    code = replay_run(str(runs[0]), *args, "--out", str(tmp_path / "x"))
    assert code in {1, 2}
    err = capsys.readouterr().err
    assert err.startswith("replay run refused: ")
    assert message in err


def test_replay_run_needs_a_backtest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert replay_run(str(tmp_path), "--model", "baseline:random") == 1
    assert "holds no backtest.json" in capsys.readouterr().err


def test_replay_run_refuses_a_configuration_changed_since_the_run(
    candles: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.support.workspace import Workspace

    ws = Workspace(tmp_path / "arena")
    run = tmp_path / "run"
    short = ("--from", "2022-01-13T00:00Z", "--to", "2022-01-13T00:30Z")
    assert (
        main(
            ["backtest", "--config", str(ws.main), *short, "--candles", candles, "--out", str(run)]
        )
        == 0
    )
    ws.set("manager.yaml", ("traders", 0, "market_ioc_slippage_bps"), 10)  # ema-cross
    code = main(
        [
            "replay",
            "run",
            str(run),
            "--model",
            "baseline:random",
            "--trader",
            "random-walk",
            "--config",
            str(ws.main),
        ]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "ema-cross's configuration has changed since the run (market_ioc_slippage_bps)" in err


# -- candles from the market history store (nof0 data) -------------------------------------


def test_a_backtest_from_the_history_store_equals_the_one_from_the_file(
    shared_dir: Path, runs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    config = ("--config", str(DEFAULT_CONFIG), "--data-dir", str(data))
    imported = ["data", "import", *config, "--coin", "BTC", "--interval", "1m"]
    assert main([*imported, str(shared_dir / BTC)]) == 0
    out = tmp_path / "from-store"
    assert main(["backtest", *config, *WINDOW, "--coins", "BTC", "--out", str(out)]) == 0
    assert summary(out)["fingerprint"] == summary(runs[0])["fingerprint"]
    candles = summary(out)["candles"]
    assert isinstance(candles, dict)
    assert candles["coins"] == ["BTC"]
    # A counterfactual of it reads the same candles from the store again.
    change = ["--model", "baseline:ema_cross", "--trader", "random-walk"]
    assert main(["replay", "run", str(out), *change, *config]) == 0
    capsys.readouterr()
    only_eth = ["backtest", *config, *WINDOW, "--coins", "ETH", "--traders", "ema-cross"]
    assert main([*only_eth, "--out", str(tmp_path / "eth")]) == 1
    assert "ETH 1m candles: fewer than two candles" in capsys.readouterr().err


def test_no_candles_at_all_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("backtest", *WINDOW, "--coins", "BTC", "--data-dir", str(tmp_path)) == 1
    assert "no market history store" in capsys.readouterr().err


def test_a_backtest_of_a_live_configuration_touches_neither_its_postgres_nor_its_redis(
    candles: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing listens on port 1: any connection attempt would fail the run.
    monkeypatch.setenv("Postgres__DataSource", "postgresql://nobody@127.0.0.1:1/live")
    monkeypatch.setenv("Cache__0__Host", "127.0.0.1:1")
    out = tmp_path / "run"
    short = ("--from", "2022-01-13T00:00Z", "--to", "2022-01-13T00:20Z")
    assert cli("backtest", *short, "--candles", candles, "--out", str(out)) == 0
    assert (out / "events.sqlite3").is_file()
    assert (out / "views" / "CURRENT").is_file()


def test_replay_run_in_two_processes_compares_the_same(
    runs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    change = ("--model", "baseline:ema_cross", "--trader", "random-walk")
    capsys.readouterr()
    assert replay_run(str(runs[0]), *change, "--out", str(tmp_path / "one")) == 0
    one = capsys.readouterr().out
    assert replay_run(str(runs[0]), *change, "--out", str(tmp_path / "two"), "--workers", "2") == 0
    two = capsys.readouterr().out
    # The same table, differing cycles and fingerprints; only the first line names OUT.
    assert one.splitlines()[1:] == two.splitlines()[1:]
    assert summary(tmp_path / "two")["workers"] == 2
    assert (tmp_path / "two" / "workers" / "1" / "events.sqlite3").is_file()
    assert summary(tmp_path / "two")["fingerprint"] == summary(tmp_path / "one")["fingerprint"]


def test_replay_run_refuses_fewer_than_one_worker(
    runs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("--model", "baseline:ema_cross", "--out", str(tmp_path / "x"), "--workers", "0")
    assert replay_run(str(runs[0]), *args) == 2
    assert "--workers must be at least 1, not 0" in capsys.readouterr().err


def test_replicas_that_fail_leave_a_marker_naming_the_error_and_the_finished_seeds(
    shared_dir: Path, tmp_path: Path
) -> None:
    from datetime import UTC, datetime

    from infrastructure.backtest import INCOMPLETE, run_replicas

    config = bootstrap.load_config(DEFAULT_CONFIG, env={})
    plan = bootstrap.BacktestPlan(
        start=datetime(2022, 1, 13, tzinfo=UTC),
        end=datetime(2022, 1, 13, 1, tzinfo=UTC),
        candles={"BTC": shared_dir / BTC},
        out=tmp_path / "replicas",
    )

    def run_one(one: bootstrap.BacktestPlan) -> bootstrap.BacktestResult:
        marker = json.loads((plan.out / INCOMPLETE).read_text())
        assert marker["state"] == "running"  # while the replicas run
        if one.seed == 1:
            raise RuntimeError("the second replica's disk is full")
        return bootstrap.run_backtest(config, one, lambda _: None)

    with pytest.raises(RuntimeError, match="disk is full"):
        run_replicas(config, plan, 3, run_one=run_one, read=lambda _: None, null=None)  # type: ignore[arg-type, return-value]
    marker = json.loads((plan.out / INCOMPLETE).read_text())
    assert marker["state"] == "failed"
    assert marker["error"] == "RuntimeError: the second replica's disk is full"
    assert "run_one" in marker["traceback"]
    assert marker["finished"] == ["seed-0"]
    assert not (plan.out / "replicas.json").exists()


def test_a_failed_runs_marker_masks_secrets(tmp_path: Path) -> None:
    from application.redaction import register_secrets
    from infrastructure.backtest import INCOMPLETE, mark_incomplete

    secret = "sk-test-" + "9" * 24
    register_secrets([secret])
    mark_incomplete(
        tmp_path,
        {"state": "failed", "error": f"auth with {secret}", "traceback": f"...{secret}...", "n": 1},
    )
    written = (tmp_path / INCOMPLETE).read_text()
    assert secret not in written
    assert json.loads(written)["n"] == 1
