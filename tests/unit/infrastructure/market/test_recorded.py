"""Recorded snapshots as a market: served at or after the time they were taken, coins
carried forward between traders' cycles, bad files named."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from application.cycle import canonical_snapshot
from application.ports import MarketSnapshot, MissingData
from infrastructure.market.recorded import (
    RecordedError,
    RecordedMarket,
    frames_from_snapshots,
    read_frames,
    write_frames,
)
from tests.support.fakes import coin_snapshot

T0 = datetime(2025, 10, 17, tzinfo=UTC)


def stored(at: datetime, **prices: str) -> tuple[datetime, str]:
    coins = {c: coin_snapshot(c, p, at) for c, p in prices.items()}
    return at, canonical_snapshot(MarketSnapshot(as_of=at, coins=coins))[0]


def test_a_cycle_gets_the_newest_frame_taken_at_or_before_it(tmp_path: Path) -> None:
    later = T0 + timedelta(minutes=3)
    frames = frames_from_snapshots(
        [stored(later, BTC="101"), stored(T0, BTC="100", ETH="4000"), stored(T0, SOL="200")]
    )
    assert [f.as_of for f in frames] == [T0, later]  # same instant merged, time order
    assert sorted(frames[1].coins) == ["BTC", "ETH", "SOL"]  # carried forward
    write_frames(frames, tmp_path / "f.jsonl")
    market = RecordedMarket(read_frames(tmp_path / "f.jsonl"))

    async def look() -> None:
        at_t0 = await market.mids(["BTC"], T0 + timedelta(seconds=179))
        assert at_t0 == {"BTC": Decimal("100")}  # never the 3-minute frame early
        snap = await market.snapshot(["BTC", "ETH"], later + timedelta(seconds=30))
        assert snap.coins["BTC"].price == Decimal("101")
        assert snap.coins["ETH"].data_time == T0  # old: the cycle's staleness bound decides
        with pytest.raises(MissingData, match="starts"):
            await market.mids(["BTC"], T0 - timedelta(seconds=1))
        with pytest.raises(MissingData, match="DOGE"):
            await market.snapshot(["DOGE"], later)
        rates = await market.funding_rates(["BTC"], later)
        assert set(rates) == {"BTC"}

    asyncio.run(look())


def test_bad_recordings_are_named(tmp_path: Path) -> None:
    with pytest.raises(RecordedError, match="#1"):
        frames_from_snapshots([(T0, "{not json")])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"as_of": "x"}\n')
    with pytest.raises(RecordedError, match=r"bad\.jsonl:1"):
        read_frames(bad)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(RecordedError, match="no snapshot"):
        read_frames(empty)
