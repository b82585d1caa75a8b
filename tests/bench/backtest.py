"""Backtest throughput: ``python -m tests.bench.backtest [--hours H]``.

The three baseline traders over the shared BTC one-minute candles through ``nof0
backtest`` (one process): minute candles replayed per second, and decision cycles per
second. freqtrade's backtest of the same candles is not run yet (see the issue note).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from infrastructure import bootstrap
from tests.conftest import REPO, SHARED

CANDLES = SHARED / "data" / "candles" / "BTC-PERP_FTX_1m_2021-12-31_2022-02-01.csv"
START = datetime(2022, 1, 13, tzinfo=UTC)


def run(hours: float = 24.0) -> dict[str, Any]:
    if not CANDLES.is_file():
        return {"skipped": f"{CANDLES} is missing (the shared candles are not beside us)"}
    config = bootstrap.load_config(REPO / "etc" / "nof0.yaml", env={})
    with tempfile.TemporaryDirectory() as tmp:
        plan = bootstrap.BacktestPlan(
            start=START,
            end=START + timedelta(hours=hours),
            candles={"BTC": CANDLES},
            out=Path(tmp) / "run",
        )
        result = bootstrap.run_backtest(config, plan, lambda _: None)
    return {
        "traders": result.traders,
        "coins": result.coins,
        "minutes": result.minutes,
        "cycles": result.cycles,
        "trades": result.trades,
        "seconds": round(result.seconds, 2),
        "candles_per_s": round(result.candles_per_s),
        "cycles_per_s": round(result.cycles / result.seconds) if result.seconds else 0,
        "fingerprint": result.fingerprint,
    }


def report(results: dict[str, Any]) -> None:
    print("\nbacktest throughput (nof0 backtest, one process, shared BTC 1m candles)")
    if "skipped" in results:
        print(f"  skipped: {results['skipped']}")
        return
    print(
        f"  {', '.join(results['traders'])}: {results['minutes']:,} minutes in "
        f"{results['seconds']} s = {results['candles_per_s']:,} candles/s, "
        f"{results['cycles_per_s']:,} cycles/s ({results['trades']} trades)"
    )
    print("  freqtrade on the same candles: not measured yet")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=24.0)
    results = run(parser.parse_args().hours)
    report(results)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
