"""freqtrade's backtesting of an EMA-cross strategy on the backtest bench's candles:
``python -m tests.bench.freqtrade [--days D]``.

freqtrade is never a dependency of the project: the bench installs it with pip into a
virtual environment of its own under its temporary directory (``NOF0_BENCH_FREQTRADE_VENV``
names one to reuse), and when that fails the figure is skipped with the reason. The shared
BTC one-minute candles are written in freqtrade's JSON data format, and ``freqtrade
backtesting`` runs offline: a small driver gives ccxt a static market list for the pair
(freqtrade asks the exchange for its markets at start-up; the bench has no network beyond
the package registries).

The strategy is the EMA-cross baseline's rule on one-minute candles: long when the close is
above its EMA20, MACD (12/26) is positive and EMA20 is above EMA50; out when the close is
below EMA20 with MACD negative; a 0.6 % stop and a 1.8 % target (the baseline's reward/risk
of 3). Spot, long only: freqtrade's futures mode needs the exchange's mark and funding
history, which the shared data does not hold. Candles per second are the candles of the
window over the wall time of the whole ``freqtrade backtesting`` process (start-up
included, as the nof0 figure includes its own).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tests.bench.backtest import CANDLES, START

FREQTRADE = "freqtrade"
INSTALL_TIMEOUT_S = 1800
RUN_TIMEOUT_S = 1800

STRATEGY = """
from pandas import DataFrame
from freqtrade.strategy import IStrategy


class EmaCross(IStrategy):
    INTERFACE_VERSION = 3
    timeframe = "1m"
    minimal_roi = {"0": 0.018}
    stoploss = -0.006
    startup_candle_count = 100
    can_short = False

    def populate_indicators(self, df: DataFrame, metadata: dict) -> DataFrame:
        close = df["close"]
        df["ema20"] = close.ewm(span=20, adjust=False).mean()
        df["ema50"] = close.ewm(span=50, adjust=False).mean()
        fast = close.ewm(span=12, adjust=False).mean()
        df["macd"] = fast - close.ewm(span=26, adjust=False).mean()
        return df

    def populate_entry_trend(self, df: DataFrame, metadata: dict) -> DataFrame:
        up = (df["close"] > df["ema20"]) & (df["macd"] > 0) & (df["ema20"] > df["ema50"])
        df.loc[up, "enter_long"] = 1
        return df

    def populate_exit_trend(self, df: DataFrame, metadata: dict) -> DataFrame:
        df.loc[(df["close"] < df["ema20"]) & (df["macd"] < 0), "exit_long"] = 1
        return df
"""

#: ccxt is handed this market instead of asking the exchange (offline).
DRIVER = """
import json, sys
from ccxt.async_support.base.exchange import Exchange as AsyncExchange
from ccxt.base.exchange import Exchange as SyncExchange

MARKETS = json.loads(open(sys.argv.pop(1)).read())


async def load_async(self, reload=False, params={}):
    self.set_markets(MARKETS)
    return self.markets


def load_sync(self, reload=False, params={}):
    self.set_markets(MARKETS)
    return self.markets


AsyncExchange.load_markets = load_async
SyncExchange.load_markets = load_sync

from freqtrade.main import main

main(sys.argv[1:])
"""

MARKET = {
    "id": "BTCUSDT",
    "symbol": "BTC/USDT",
    "base": "BTC",
    "quote": "USDT",
    "baseId": "BTC",
    "quoteId": "USDT",
    "active": True,
    "type": "spot",
    "spot": True,
    "margin": False,
    "swap": False,
    "future": False,
    "option": False,
    "contract": False,
    "linear": None,
    "inverse": None,
    "settle": None,
    "settleId": None,
    "contractSize": None,
    "taker": 0.00045,
    "maker": 0.00015,
    "precision": {"amount": 0.00001, "price": 0.01},
    "limits": {
        "amount": {"min": 0.00001, "max": 9000},
        "price": {"min": 0.01, "max": 1_000_000},
        "cost": {"min": 5, "max": None},
        "leverage": {"min": None, "max": None},
    },
    "info": {},
}


def _venv(tmp: Path) -> tuple[Path | None, str]:
    """freqtrade's python, or None and why not."""
    reuse = os.environ.get("NOF0_BENCH_FREQTRADE_VENV")
    venv = Path(reuse) if reuse else tmp / "freqtrade-venv"
    python = venv / "bin" / "python"
    if reuse and python.is_file():
        return python, f"reused {venv}"
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", FREQTRADE],
            check=True,
            timeout=INSTALL_TIMEOUT_S,
            capture_output=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        tail = detail.decode(errors="replace").strip().splitlines()[-1:] if detail else []
        return None, f"pip install {FREQTRADE} failed: {exc} {' '.join(tail)}".strip()
    return python, f"installed into {venv}"


def _write_candles(path: Path, start: datetime, end: datetime, warmup: int) -> int:
    """The shared candles in freqtrade's JSON format (``[ms, o, h, l, c, v]`` rows), from
    ``warmup`` minutes before ``start``; the candles of the window."""
    first = int((start - timedelta(minutes=warmup)).timestamp() * 1000)
    last = int(end.timestamp() * 1000)
    rows = []
    with CANDLES.open(newline="") as handle:
        for row in csv.DictReader(handle):
            stamp = int(row["timestamp_ms"])
            if first <= stamp < last:
                values = (float(row[c]) for c in ("open", "high", "low", "close", "volume"))
                rows.append([stamp, *values])
    rows.sort()
    path.write_text(json.dumps(rows))
    return sum(1 for r in rows if r[0] >= int(start.timestamp() * 1000))


def _config(root: Path) -> dict[str, Any]:
    return {
        "max_open_trades": 1,
        "stake_currency": "USDT",
        "stake_amount": 1000,
        "dry_run": True,
        "dry_run_wallet": 10000,
        "trading_mode": "spot",
        "timeframe": "1m",
        "fee": 0.00045,
        "exchange": {
            "name": "binance",
            "key": "",
            "secret": "",
            "pair_whitelist": ["BTC/USDT"],
            "ccxt_config": {},
            "ccxt_async_config": {},
        },
        "pairlists": [{"method": "StaticPairList"}],
        "dataformat_ohlcv": "json",
        "entry_pricing": {"price_side": "same", "use_order_book": False},
        "exit_pricing": {"price_side": "same", "use_order_book": False},
        "user_data_dir": str(root / "user_data"),
        "datadir": str(root / "user_data" / "data" / "binance"),
        "strategy": "EmaCross",
        "strategy_path": str(root),
        "db_url": "sqlite://",
    }


def run(days: float = 18.0) -> dict[str, Any]:
    if not CANDLES.is_file():
        return {"skipped": f"{CANDLES} is missing (the shared candles are not beside us)"}
    start, end = START, START + timedelta(days=days)
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        python, how = _venv(tmp)
        if python is None:
            return {"skipped": how}
        data = tmp / "user_data" / "data" / "binance"
        data.mkdir(parents=True)
        candles = _write_candles(data / "BTC_USDT-1m.json", start, end, warmup=200)
        (tmp / "EmaCross.py").write_text(STRATEGY)
        (tmp / "driver.py").write_text(DRIVER)
        (tmp / "markets.json").write_text(json.dumps([MARKET]))
        (tmp / "config.json").write_text(json.dumps(_config(tmp)))
        timerange = f"{start:%Y%m%d}-{end:%Y%m%d}"
        command = [
            str(python),
            str(tmp / "driver.py"),
            str(tmp / "markets.json"),
            "backtesting",
            "--config",
            str(tmp / "config.json"),
            "--timerange",
            timerange,
            "--export",
            "none",
            "--cache",
            "none",
        ]
        began = time.perf_counter()
        done = subprocess.run(
            command, cwd=tmp, capture_output=True, text=True, timeout=RUN_TIMEOUT_S
        )
        seconds = time.perf_counter() - began
        if done.returncode != 0:
            tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
            return {"skipped": f"freqtrade backtesting failed ({done.returncode}): {tail}"}
        version = subprocess.run(
            [str(python), "-m", "freqtrade", "--version"], capture_output=True, text=True
        ).stdout.strip()
    trades = next(
        (line for line in done.stdout.splitlines() if "EmaCross" in line and "│" in line), ""
    )
    return {
        "version": version.split()[-1] if version else "",
        "venv": how,
        "timerange": timerange,
        "candles": candles,
        "seconds": round(seconds, 2),
        "candles_per_s": round(candles / seconds) if seconds else 0,
        "summary": " ".join(trades.replace("│", " ").split()),
    }


def report(results: dict[str, Any]) -> None:
    print("\nfreqtrade backtesting, EMA cross on the same BTC 1m candles (its own venv)")
    if "skipped" in results:
        print(f"  skipped: {results['skipped']}")
        return
    print(
        f"  freqtrade {results['version']}: {results['candles']:,} candles "
        f"({results['timerange']}) "
        f"in {results['seconds']} s = {results['candles_per_s']:,} candles/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=float, default=18.0)
    results = run(parser.parse_args().days)
    report(results)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
