"""``nof0 data download|record|list`` against ``nof0 sim serve`` (served in-process on 127.0.0.1).

The simulator answers ``candleSnapshot`` like the venue: candles overlapping
``[startTime, endTime]``, at most 500 rows per answer, only the latest 5000 of an interval, the
last one forming. The downloader must page through it without overlap and store each closed
candle once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hyperliquid.info import Info

from infrastructure.market.history import HistoryStore
from infrastructure.simulator.serve import ServeOptions
from interfaces.cli import main
from tests.support.sim_server import serving

MINUTE = 60_000
HOUR = 3_600_000
HISTORY_DAYS = 5


@pytest.fixture(scope="module")
def sim_url() -> Iterator[str]:
    options = ServeOptions(port=0, coins=("BTC", "ETH"), history_days=HISTORY_DAYS)
    with serving(options) as url:
        yield url


def iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_download_pages_through_the_simulator_and_a_second_run_asks_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, sim_url: str
) -> None:
    now = int(time.time() * 1000)
    end = now - now % HOUR - HOUR  # a closed hour: the range is wholly in the past
    start = end - 4 * 86_400_000  # 5760 minutes: more than the venue keeps (5000)
    args = ["data", "download", "--url", sim_url, "--data-dir", str(tmp_path)]
    args += ["--coins", "BTC,ETH", "--interval", "1m,3m,1h,4h", "--from", iso(start)]
    args += ["--to", iso(end)]
    code, out, err = run(capsys, *args)
    assert code == 0, err
    with HistoryStore.open(tmp_path) as store:
        minutes = store.coverage("BTC", "1m")
        oldest_kept = now - now % MINUTE - 4999 * MINUTE
        assert minutes.first_ms is not None
        assert oldest_kept <= minutes.first_ms <= oldest_kept + 2 * MINUTE
        assert minutes.last_ms == end - MINUTE
        assert minutes.gaps == ()
        assert minutes.count == (end - minutes.first_ms) // MINUTE
        hours = store.coverage("ETH", "1h")
        assert (hours.first_ms, hours.last_ms, hours.count) == (start, end - HOUR, 96)
        # What is stored is what the venue serves, strings exact.
        info = Info(sim_url, skip_ws=True)
        try:
            served = info.candles_snapshot("ETH", "1h", start, end - 1)
        finally:
            info.session.close()
        stored = store.raw_candles("ETH", "1h")
        assert [(r.open_time_ms, r.open, r.high, r.low, r.close, r.volume) for r in stored] == [
            (c["t"], c["o"], c["h"], c["l"], c["c"], c["v"]) for c in served
        ]
    # ~4,990 one-minute candles in answers of at most 500: ten requests, none overlapping.
    assert "BTC 1m:" in out
    line = next(x for x in out.splitlines() if x.startswith("BTC 1m:"))
    assert line.endswith(("10 request(s)", "11 request(s)")), line
    code, out, _ = run(capsys, *args)
    assert code == 0
    assert "0 new rows in 0 request(s)" in out


def test_list_json_after_a_download(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, sim_url: str
) -> None:
    now = int(time.time() * 1000)
    end = now - now % HOUR
    args = ["data", "download", "--url", sim_url, "--data-dir", str(tmp_path), "--coins", "NOPE"]
    code, _, err = run(capsys, *args, "--interval", "1h", "--from", iso(end - 10 * HOUR))
    assert code == 1
    assert "unknown coin NOPE:" in err
    assert "does not list it (listed: BNB, BTC, DOGE, ETH" in err
    assert "resume" not in err
    args[args.index("NOPE")] = "ETH"
    code, _, err = run(
        capsys, *args, "--interval", "1h", "--from", iso(end - 10 * HOUR), "--to", iso(end)
    )
    assert code == 0, err
    code, out, _ = run(capsys, "data", "list", "--data-dir", str(tmp_path), "--json")
    (series,) = json.loads(out)["candles"]
    assert (series["coin"], series["interval"], series["count"]) == ("ETH", "1h", 10)
    assert series["first_ms"] == end - 10 * HOUR
    assert series["gaps"] == []


def test_record_once_appends_closed_candles_only(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, sim_url: str
) -> None:
    args = ["data", "record", "--url", sim_url, "--data-dir", str(tmp_path)]
    args += ["--coins", "BTC", "--interval", "1m,1h", "--backfill", "30"]
    code, out, err = run(capsys, *args, "--once")
    assert code == 0, err
    assert "pass 1:" in out
    now = int(time.time() * 1000)
    with HistoryStore.open(tmp_path) as store:
        minutes = store.raw_candles("BTC", "1m")
        assert 29 <= len(minutes) <= 31
        assert all(r.open_time_ms + MINUTE <= now for r in minutes)  # none still forming
        assert store.coverage("BTC", "1m").gaps == ()
        last = minutes[-1].open_time_ms
    code, _, _ = run(capsys, *args, "--once")
    with HistoryStore.open(tmp_path) as store:
        again = store.raw_candles("BTC", "1m")
    assert code == 0
    assert again[: len(minutes)] == minutes  # appended, nothing rewritten
    assert again[-1].open_time_ms >= last


def test_record_stops_cleanly_on_sigint(tmp_path: Path, sim_url: str) -> None:
    command = [sys.executable, "-m", "interfaces.cli", "data", "record", "--url", sim_url]
    command += ["--data-dir", str(tmp_path), "--coins", "ETH", "--interval", "1m"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    ) as proc:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # the first pass is done: it now waits for the minute
        assert first.startswith("pass 1:"), first
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "stopped" in out
    assert "Traceback" not in err
    with HistoryStore.open(tmp_path) as store:
        assert len(store.raw_candles("ETH", "1m")) >= 499
