"""Killed between sending an order and recording its fill, then restarted: exactly one
order on the venue and its fill recorded once (issue 3, done-when)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.arena import REPO, OfflineArena
from tests.support.crash_after_order import KILLED
from tests.support.fakes import venue_fills, venue_open_orders, venue_positions

pytestmark = pytest.mark.slow


def test_a_kill_after_sending_ends_with_one_order_and_its_fill_recorded(tmp_path: Path) -> None:
    data = tmp_path / "data"
    crashed = subprocess.run(
        [sys.executable, "-m", "tests.support.crash_after_order", str(data)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert crashed.returncode == KILLED, crashed.stderr[-2000:]
    cloid = (data / "killed-after").read_text()

    # Before the restart: the order is on the venue, the books only know it was placed.
    arena = OfflineArena.open(data)
    app = arena.engine.app
    owner = next(t for t in arena.engine.arena.trader_ids if cloid in app.get_trader(t).pending)
    assert not any(type(e).__name__ == "OrderFilled" for e in app.trader_events(owner))

    asyncio.run(arena.run(1))  # start-up reconciles with the venue, then one tick

    exchange = arena.engine.arena.syncs[0].exchange
    fills = [f for f in venue_fills(exchange) if f.get("cloid") == cloid]  # type: ignore[arg-type]
    assert len({f["oid"] for f in fills}) == 1, "exactly one order on the venue"
    recorded = [
        e
        for e in app.trader_events(owner)
        if type(e).__name__ == "OrderFilled" and e.cloid == cloid
    ]
    assert sorted(e.fill_id for e in recorded) == sorted(str(f["tid"]) for f in fills)
    trader = app.get_trader(owner)
    assert cloid not in trader.pending
    coin = recorded[0].coin
    assert trader.positions[coin].qty == venue_positions(exchange)[coin]  # type: ignore[arg-type]
    assert not trader.paused
    # The position got its stop and target after the restart.
    triggers = [o for o in venue_open_orders(exchange) if o["coin"] == coin]  # type: ignore[arg-type]
    assert sorted(o["orderType"] for o in triggers) == ["Stop Market", "Take Profit Market"]
