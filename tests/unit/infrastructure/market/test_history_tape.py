"""Recorded one-minute candles as a replay tape, served point-in-time."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from infrastructure.market.history_tape import HistoryError, HistoryTape, read_minute_candles
from infrastructure.market.replay import ReplayMarket

T0 = datetime(2022, 1, 1, tzinfo=UTC)
HEADER = "timestamp_ms,date,open,high,low,close,volume\n"


def write_csv(
    path: Path, closes: list[float], *, start: datetime = T0, skip: set[int] = frozenset()
) -> Path:  # type: ignore[assignment]
    lines = [HEADER]
    for i, close in enumerate(closes):
        if i in skip:
            continue
        ms = int((start + timedelta(minutes=i)).timestamp() * 1000)
        lines.append(f"{ms},x,{close},{close * 1.001},{close * 0.999},{close},{10 + i}\n")
    path.write_text("".join(lines))
    return path


def walk(n: int, seed: int = 1, start: float = 40_000.0) -> list[float]:
    steps = np.random.default_rng(seed).normal(0, 0.001, n)
    return [round(start * math.exp(x), 2) for x in np.cumsum(steps)]


def test_a_missing_minute_is_filled_flat_at_the_previous_close(tmp_path: Path) -> None:
    candles = read_minute_candles(
        write_csv(tmp_path / "c.csv", [10.0, 11.0, 12.0, 13.0], skip=frozenset({2}))
    )
    assert candles.filled == 1
    assert list(candles.close) == [10.0, 11.0, 11.0, 13.0]
    assert candles.high[2] == candles.low[2] == candles.open[2] == 11.0
    assert candles.volume[2] == 0.0


@pytest.mark.parametrize(
    ("body", "fault"),
    [
        ("timestamp_ms,open,close\n1,2,3\n", "no column high, low, volume"),
        (HEADER + "60000,x,1,1,1,1,1\n60000,x,1,1,1,1,1\n", "a minute appears twice"),
        (HEADER + "60000,x,1,1,1,1,1\n150000,x,1,1,1,1,1\n", "one minute apart"),
        (HEADER + "60000,x,1,1,1,1,1\n120000,x,1,1,0,1,1\n", "prices must be positive"),
        (HEADER + "60000,x,1,1,1,1,1\nnope,x,1,1,1,1,1\n", "line 3"),
        (HEADER + "60000,x,1,1,1,1,1\n", "fewer than two candles"),
        (HEADER + "60000,x,1,1,1,1,1\n120000,x,1,1,1\n", "line 3: too few fields"),
        ("", "no column timestamp_ms"),
    ],
)
def test_a_bad_candle_file_is_named_with_its_fault(tmp_path: Path, body: str, fault: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(body)
    with pytest.raises(HistoryError, match=fault) as caught:
        read_minute_candles(path)
    assert str(path) in str(caught.value)


def test_columns_are_read_by_their_names_in_any_order(tmp_path: Path) -> None:
    ordered = read_minute_candles(write_csv(tmp_path / "a.csv", walk(30)))
    rows = (tmp_path / "a.csv").read_text().splitlines()
    fields = [row.split(",") for row in rows]
    order = [6, 4, 1, 0, 5, 2, 3]  # volume, low, date, timestamp_ms, close, open, high
    shuffled = tmp_path / "b.csv"
    shuffled.write_text("".join(",".join(f[i] for i in order) + "\n" for f in fields))
    read = read_minute_candles(shuffled)
    for column in ("open", "high", "low", "close", "volume"):
        assert list(getattr(read, column)) == list(getattr(ordered, column)), column
    assert read.start_ms == ordered.start_ms
    assert list(ordered.close) == walk(30)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match=r"nowhere\.csv"):
        read_minute_candles(tmp_path / "nowhere.csv")


def test_coins_are_cut_to_the_minutes_every_file_covers_from_a_4h_boundary(
    tmp_path: Path,
) -> None:
    btc = write_csv(tmp_path / "btc.csv", walk(600))
    eth = write_csv(tmp_path / "eth.csv", walk(600, 2, 3000.0), start=T0 + timedelta(minutes=10))
    tape = HistoryTape.from_files({"BTC": btc, "ETH": eth})
    assert tape.start == T0 + timedelta(hours=4)  # the first 4-hour UTC boundary both cover
    assert tape.end == T0 + timedelta(minutes=600)
    assert {coin: len(c.minutes) for coin, c in tape.coins.items()} == {"BTC": 360, "ETH": 360}
    assert tape.coins["BTC"].minutes.close[0] == walk(600)[240]
    assert tape.coins["ETH"].minutes.close[0] == walk(600, 2, 3000.0)[230]


def test_a_snapshot_at_t_holds_nothing_stamped_after_t(tmp_path: Path) -> None:
    """Two tapes equal up to minute t and different after it give the same snapshot at t:
    the replay cannot look ahead."""
    n = 14 * 1440
    past = walk(n)
    cut = 13 * 1440
    future = past[:cut] + [price * 1.5 for price in past[cut:]]
    one = ReplayMarket(HistoryTape.from_files({"BTC": write_csv(tmp_path / "a.csv", past)}))
    two = ReplayMarket(HistoryTape.from_files({"BTC": write_csv(tmp_path / "b.csv", future)}))
    at = T0 + timedelta(minutes=cut)
    first, second = (asyncio.run(m.snapshot(["BTC"], at)) for m in (one, two))
    assert first == second
    later = at + timedelta(minutes=30)
    assert asyncio.run(one.mids(["BTC"], later)) != asyncio.run(two.mids(["BTC"], later))
