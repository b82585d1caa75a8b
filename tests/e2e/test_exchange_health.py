"""A failing venue hands its traders' decisions to paper twins on the simulator, and takes
them back once it passes its health check again and has been reconciled (#8 part 3)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from infrastructure.hyperliquid.transport import ServerFailed, Transport
from infrastructure.metrics.transport import MeteredTransport
from tests.support.arena import OfflineArena, api_client
from tests.support.workspace import Workspace


class Storm:
    """The venue's transport answering 5xx to everything while ``on``."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.on = False
        self.base_url = getattr(inner, "base_url", "")

    def post(self, path: str, payload: Mapping[str, Any]) -> Any:
        if self.on:
            raise ServerFailed("502 Bad Gateway", status=502)
        return self.inner.post(path, payload)


async def tick(arena: OfflineArena, minutes: int) -> None:
    """Run the started arena on, one event loop throughout (its locks are bound to it)."""
    for _ in range(minutes):
        arena.clock.advance(60)
        await arena.engine.arena.tick()
        await arena.engine.arena.drain()
    arena.project()


def venue_positions(arena: OfflineArena) -> dict[str, Any]:
    return {
        t: dict(arena.engine.app.get_trader(t).positions)
        for t in ("btc-hold", "ema-cross", "random-walk")
    }


def test_a_5xx_storm_moves_decisions_to_paper_and_back_after_recovery(tmp_path: Path) -> None:
    asyncio.run(scenario(tmp_path))


async def scenario(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    ws.set("manager.yaml", ("manager", "exchange_failure_min_requests"), 10)
    ws.set("manager.yaml", ("manager", "exchange_failure_window"), "10m")
    arena = OfflineArena.open(tmp_path / "data", config_path=ws.main)
    engine = arena.engine
    (sync,) = engine.arena.syncs
    metered = sync.exchange.transport  # type: ignore[attr-defined]
    assert isinstance(metered, MeteredTransport)
    storm = Storm(metered.inner)
    metered.inner = storm

    await engine.start()
    await tick(arena, 20)
    assert engine.arena.paper_twins() == {}
    before = venue_positions(arena)

    storm.on = True
    await tick(arena, 5)
    twins = engine.arena.paper_twins()
    assert twins == {
        "btc-hold": "btc-hold.paper",
        "ema-cross": "ema-cross.paper",
        "random-walk": "random-walk.paper",
    }
    # The venue positions are left as they were (protected there); nothing was sent.
    assert venue_positions(arena) == before
    await tick(arena, 30)  # the twins decide on the simulator meanwhile
    assert venue_positions(arena) == before
    twin = engine.app.get_trader("ema-cross.paper")
    assert twin.cycle_no >= 2
    switched = [
        e for _, e in engine.app.read_events(0, 100_000) if type(e).__name__ == "VenueSwitched"
    ]
    assert {(e.to, e.paper_trader) for e in switched} == {("paper", t) for t in twins.values()}
    assert all(e.failure_pct > 5 for e in switched)
    with api_client(arena.config) as client:
        status = {t["model_id"]: t for t in client.get("/api/status").json()["traders"]}
        board = {row["id"] for row in client.get("/api/leaderboard").json()["leaderboard"]}
    assert status["ema-cross"]["on_paper"] is True
    assert status["ema-cross"]["paper_trader"] == "ema-cross.paper"
    assert status["ema-cross"]["last_venue_switch"]["reason"] == "paper"
    assert "ema-cross.paper" in board

    storm.on = False  # the venue answers again: once the failures age out, it passes
    await tick(arena, 15)
    assert engine.arena.paper_twins() == {}
    back = [
        e
        for _, e in engine.app.read_events(0, 100_000)
        if type(e).__name__ == "VenueSwitched" and e.to == "venue"
    ]
    assert len(back) == 3
    for real in twins.values():
        paper = engine.app.get_trader(real)
        assert paper.paused
        assert not paper.positions  # flattened on the simulator when retired
    cycles = engine.app.get_trader("ema-cross").cycle_no
    await tick(arena, 10)
    assert engine.app.get_trader("ema-cross").cycle_no > cycles  # deciding on the venue again
    with api_client(arena.config) as client:
        status = {t["model_id"]: t for t in client.get("/api/status").json()["traders"]}
    assert status["ema-cross"]["on_paper"] is False
    assert status["ema-cross"]["venue_switches"] == 2
