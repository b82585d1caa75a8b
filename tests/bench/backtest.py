"""Backtest throughput: ``python -m tests.bench.backtest [--hours H] [--days D]``.

The three baseline traders over the shared BTC one-minute candles through ``nof0
backtest``, one process, the bulk path (quiet minutes between decisions settled by the
simulator in bulk): minute candles replayed per second and decision cycles per second,

* with the configured decision intervals (3 min, 3 min, 15 min) over ``--hours``;
* with a one-hour decision interval for every trader (``REALISTIC_INTERVAL_S``: an LLM
  trader decides every hour or so) over ``--days``, the figure compared with freqtrade;
* the same realistic run with ``--workers 2`` (the traders split across two processes,
  their stores merged into the run's and its views rebuilt: the wall time of all of it,
  the processes' start-up included), on a line of its own; the one-process figure stays
  the headline.

Then freqtrade's backtesting of an equivalent EMA-cross strategy on the same candles and
window (``tests/bench/freqtrade.py``: its own venv, skipped with the reason when it cannot
be installed), and the ratio of the two candles-per-second figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from infrastructure import bootstrap
from tests.conftest import REPO, SHARED

CANDLES = SHARED / "data" / "candles" / "BTC-PERP_FTX_1m_2021-12-31_2022-02-01.csv"
START = datetime(2022, 1, 13, tzinfo=UTC)
#: The decision interval of the compared figure, for every trader.
REALISTIC_INTERVAL_S = 3600.0


def _config(interval_s: float | None) -> bootstrap.LoadedConfig:
    config = bootstrap.load_config(REPO / "etc" / "nof0.yaml", env={})
    if interval_s is None:
        return config
    traders = [
        t.model_copy(update={"decision_interval": interval_s}) for t in config.manager.traders
    ]
    return dataclasses.replace(
        config, manager=config.manager.model_copy(update={"traders": traders})
    )


def one(
    hours: float, interval_s: float | None = None, *, bulk: bool = True, workers: int = 1
) -> dict[str, Any]:
    """One run: ``interval_s`` for every trader (None: as configured), in ``workers``
    processes."""
    config = _config(interval_s)
    with tempfile.TemporaryDirectory() as tmp:
        plan = bootstrap.BacktestPlan(
            start=START,
            end=START + timedelta(hours=hours),
            candles={"BTC": CANDLES},
            out=Path(tmp) / "run",
            bulk=bulk,
        )
        result = bootstrap.run_backtest(config, plan, lambda _: None, workers=workers)
        processes = json.loads((plan.out / "backtest.json").read_text()).get("processes")
    intervals = {t.id: t.decision_interval for t in config.manager.traders}
    return {
        "traders": result.traders,
        "intervals_s": intervals,
        "coins": result.coins,
        "minutes": result.minutes,
        "ticks": result.ticks,
        "cycles": result.cycles,
        "trades": result.trades,
        "seconds": round(result.seconds, 2),
        "candles_per_s": round(result.candles_per_s),
        "cycles_per_s": round(result.cycles / result.seconds) if result.seconds else 0,
        "fingerprint": result.fingerprint,
        "workers": workers,
        **({"processes": processes} if processes else {}),
    }


def run(hours: float = 24.0, days: float = 18.0, *, freqtrade: bool = True) -> dict[str, Any]:
    if not CANDLES.is_file():
        return {"skipped": f"{CANDLES} is missing (the shared candles are not beside us)"}
    results: dict[str, Any] = {
        "configured": one(hours),
        "realistic": one(days * 24, REALISTIC_INTERVAL_S),
        "realistic_workers_2": one(days * 24, REALISTIC_INTERVAL_S, workers=2),
    }
    if freqtrade:
        from tests.bench import freqtrade as ft

        results["freqtrade"] = ft.run(days)
        theirs = results["freqtrade"].get("candles_per_s")
        if theirs:
            results["ratio"] = round(results["realistic"]["candles_per_s"] / theirs, 2)
    return results


def _line(label: str, r: dict[str, Any]) -> str:
    intervals = ", ".join(f"{t} {s / 60:g} min" for t, s in r["intervals_s"].items())
    return (
        f"  {label} ({intervals}): {r['minutes']:,} minutes ({r['ticks']:,} ticked in full) "
        f"in {r['seconds']} s = {r['candles_per_s']:,} candles/s, {r['cycles_per_s']:,} "
        f"cycles/s ({r['cycles']:,} cycles, {r['trades']} trades)"
    )


def report(results: dict[str, Any]) -> None:
    print("\nbacktest throughput (nof0 backtest, one process, shared BTC 1m candles)")
    if "skipped" in results:
        print(f"  skipped: {results['skipped']}")
        return
    print(_line("configured intervals", results["configured"]))
    print(_line("realistic interval", results["realistic"]))
    if "realistic_workers_2" in results:
        two = results["realistic_workers_2"]
        same = two["fingerprint"] == results["realistic"]["fingerprint"]
        print(
            _line("realistic interval, --workers 2", two)
            + f"; fingerprint {'the same' if same else 'DIFFERENT'} as one process"
        )
    if "freqtrade" in results:
        from tests.bench import freqtrade as ft

        ft.report(results["freqtrade"])
        if "ratio" in results:
            print(f"  nof0 / freqtrade (same candles and window): {results['ratio']}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--days", type=float, default=18.0)
    parser.add_argument("--no-freqtrade", action="store_true")
    args = parser.parse_args()
    results = run(args.hours, args.days, freqtrade=not args.no_freqtrade)
    report(results)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
