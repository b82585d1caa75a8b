"""The bulk path of ``nof0 backtest`` (quiet minutes settled without the arena's tick)
records what the minute-by-minute path records: the same events on every trader, the
same trades fingerprint, the same equity, on a run where stops and targets are hit
(inside the minute, on the minute's price path), funding is paid every hour and three
traders decide at different intervals."""

from __future__ import annotations

import collections
import csv
import dataclasses
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from application.manager import Arena
from application.venue_state import SyncReport
from application.venue_sync import VenueSync
from infrastructure import bootstrap
from tests.support.arena import DEFAULT_CONFIG

T0 = datetime(2024, 1, 1, tzinfo=UTC)
START = T0 + timedelta(days=12)  # the replay's warm-up
HOURS = 8
#: Decision intervals long enough for minutes to be skipped, different per trader.
INTERVALS = {"ema-cross": 1800.0, "random-walk": 1200.0, "btc-hold": 7200.0}


def write_candles(path: Path, *, seed: int = 3, vol: float = 0.002) -> None:
    """A volatile random walk (0.2 % a minute): stops and targets are reached in hours."""
    minutes = (12 * 24 + HOURS + 1) * 60
    rng = np.random.default_rng(seed)
    close = 40_000 * np.exp(np.cumsum(rng.normal(0, vol, minutes)))
    open_ = np.concatenate(([40_000.0], close[:-1]))
    wick = np.abs(rng.normal(0, vol / 2, minutes))
    high = np.maximum(open_, close) * (1 + wick)
    low = np.minimum(open_, close) * (1 - wick)
    start_ms = int(T0.timestamp() * 1000)
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["timestamp_ms", "open", "high", "low", "close", "volume"])
        for i in range(minutes):
            prices = (f"{v:.2f}" for v in (open_[i], high[i], low[i], close[i]))
            out.writerow([start_ms + i * 60_000, *prices, "10"])


@pytest.fixture(scope="module")
def candles(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("candles") / "btc.csv"
    write_candles(path)
    return path


def config() -> bootstrap.LoadedConfig:
    loaded = bootstrap.load_config(DEFAULT_CONFIG, env={})
    traders = [
        t.model_copy(update={"decision_interval": INTERVALS[t.id]}) for t in loaded.manager.traders
    ]
    return dataclasses.replace(
        loaded, manager=loaded.manager.model_copy(update={"traders": traders})
    )


def run(candles: Path, out: Path, *, bulk: bool) -> bootstrap.BacktestResult:
    plan = bootstrap.BacktestPlan(
        start=START,
        end=START + timedelta(hours=HOURS),
        candles={"BTC": candles},
        out=out,
        bulk=bulk,
    )
    return bootstrap.run_backtest(config(), plan, lambda _: None)


def events(run_dir: Path) -> dict[str, list[tuple[int, str, bytes]]]:
    """Each aggregate's events in order (its version, topic and stored state)."""
    by_aggregate: dict[str, list[tuple[int, str, bytes]]] = collections.defaultdict(list)
    with sqlite3.connect(run_dir / "events.sqlite3") as db:
        rows = db.execute(
            "SELECT originator_id, originator_version, topic, state FROM stored_events "
            "ORDER BY rowid"
        )
        for originator, version, topic, state in rows:
            by_aggregate[str(originator)].append((version, topic, bytes(state)))
    return dict(by_aggregate)


def view(run_dir: Path, name: str) -> object:
    return json.loads(next(run_dir.rglob(name)).read_text())


@pytest.fixture(scope="module")
def runs(candles: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    results = {}
    for mode in ("minute", "bulk"):
        result = run(candles, root / mode, bulk=mode == "bulk")
        results[mode] = result
    with pytest.MonkeyPatch.context() as patch:
        # Every reconciliation pass run, none left out as unchanged (VenueSync._unchanged).
        patch.setattr(VenueSync, "_unchanged", lambda self, names, full: None)
        results["every_pass"] = run(candles, root / "every_pass", bulk=False)
    assert results["minute"].ticks == HOURS * 60
    # The bulk path ticked far fewer minutes, and still decided as often.
    assert results["bulk"].ticks < results["minute"].ticks / 3
    assert results["bulk"].cycles == results["minute"].cycles
    assert results["bulk"].fingerprint == results["minute"].fingerprint
    return {mode: result.out for mode, result in results.items()}


def test_the_run_has_stops_targets_funding_and_three_traders(runs: dict[str, Path]) -> None:
    topics = collections.Counter(
        topic for stream in events(runs["minute"]).values() for _, topic, _ in stream
    )
    assert topics["nof0/Trader.FundingSettled"] >= 3
    placed, filled = topics["nof0/Trader.OrderPlaced"], topics["nof0/Trader.OrderFilled"]
    assert filled > placed  # fills beyond the orders sent: stops and targets that fired
    assert topics["nof0/Trader.PositionClosed"] >= 2
    trades = view(runs["minute"], "trades.json")
    assert isinstance(trades, dict)
    assert len({t["model_id"] for t in trades["trades"]}) >= 2


def test_stops_and_targets_fire_inside_the_minute_on_both_paths(runs: dict[str, Path]) -> None:
    # A decision's orders fill at a whole minute (the tick's time); a stop or a target the
    # minute's path reached between two closes fills at a point inside the minute.
    for mode in runs:
        trades = view(runs[mode], "trades.json")
        assert isinstance(trades, dict)
        inside = [t for t in trades["trades"] if t["exit_time"] % 60]
        assert len(inside) >= 2, mode


def test_bulk_and_minute_paths_record_the_same_events(runs: dict[str, Path]) -> None:
    assert events(runs["bulk"]) == events(runs["minute"])


def test_leaving_out_unchanged_reconciliation_passes_records_the_same_events(
    runs: dict[str, Path],
) -> None:
    assert events(runs["minute"]) == events(runs["every_pass"])
    for name in ("account-totals.json", "positions.json", "trades.json"):
        assert view(runs["minute"], name) == view(runs["every_pass"], name), name


def test_most_passes_of_a_quiet_minute_are_left_out(
    candles: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reports: list[SyncReport] = []
    original = VenueSync.run

    async def counted(self: VenueSync, *args: object, **kwargs: object) -> SyncReport:
        report = await original(self, *args, **kwargs)  # type: ignore[arg-type]
        reports.append(report)
        return report

    monkeypatch.setattr(VenueSync, "run", counted)
    plan = bootstrap.BacktestPlan(
        start=START,
        end=START + timedelta(hours=1),
        candles={"BTC": candles},
        out=tmp_path,
        bulk=False,
    )
    bootstrap.run_backtest(config(), plan, lambda _: None)
    idle = sum(r.idle for r in reports)
    assert idle > len(reports) / 2  # a minute ticked on three venues, most with nothing new


def test_bulk_and_minute_paths_give_the_same_equity_and_positions(
    runs: dict[str, Path],
) -> None:
    for name in ("account-totals.json", "positions.json", "trades.json", "leaderboard.json"):
        assert view(runs["bulk"], name) == view(runs["minute"], name), name
    summaries = [json.loads((runs[m] / "backtest.json").read_text()) for m in runs]
    assert summaries[0]["fingerprint"] == summaries[1]["fingerprint"]


def test_an_arena_that_needs_every_tick_is_stepped_minute_by_minute(
    candles: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Per-trader price triggers (another change) add this; the bulk path must honour it.
    monkeypatch.setattr(Arena, "needs_every_tick", lambda self: True, raising=False)
    plan = bootstrap.BacktestPlan(
        start=START, end=START + timedelta(hours=1), candles={"BTC": candles}, out=tmp_path
    )
    result = bootstrap.run_backtest(config(), plan, lambda _: None)
    assert result.ticks == 60


def test_the_final_catch_up_gives_the_views_and_tables_of_small_batches(
    candles: Path, runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The run's views and tables are replayed at its end in bulk, like a rebuild
    # (``BULK_CATCH_UP``); caught up event by event in batches of seven they must come out
    # the same, file for file.
    from infrastructure import backtest

    assert backtest.BULK_CATCH_UP
    monkeypatch.setattr(backtest, "BULK_CATCH_UP", False)
    monkeypatch.setattr(backtest, "CATCH_UP_BATCH", 7)
    small = run(candles, tmp_path / "small", bulk=True).out
    large = runs["bulk"]
    names = sorted(p.name for p in (large / "views").rglob("*.json"))
    assert len(names) > 5
    assert names == sorted(p.name for p in (small / "views").rglob("*.json"))
    for name in names:
        assert view(small, name) == view(large, name), name

    def tables(run_dir: Path) -> list[str]:
        with sqlite3.connect(run_dir / "tables.sqlite3") as db:
            return list(db.iterdump())

    assert tables(small) == tables(large)
    assert len(tables(large)) > 10
