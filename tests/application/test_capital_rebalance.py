"""``allocation_strategy: performance_based`` through the running arena."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from tests.support.arena import OfflineArena
from tests.support.workspace import Workspace


def test_capital_moves_with_performance_is_recorded_and_survives_a_restart(
    tmp_path: Path,
) -> None:
    ws = Workspace(tmp_path / "arena")
    ws.set("manager.yaml", ("manager", "allocation_strategy"), "performance_based")
    ws.set("manager.yaml", ("manager", "rebalance_interval"), "1h")
    arena = OfflineArena.open(tmp_path / "data", config_path=ws.main)
    arena.run_sync(minutes=28 * 60)
    ids = arena.engine.arena.trader_ids
    moves = [
        e
        for t in ids
        for e in arena.engine.app.trader_events(t)
        if type(e).__name__ == "CapitalReallocated"
    ]
    assert moves, "after a day of hourly returns the allocations moved"
    for move in moves:
        assert {"score", "sharpe", "equity", "margin_used", "pool"} <= set(move.inputs)
        assert abs(move.allocation - move.previous) <= move.previous * Decimal("0.2") + Decimal(
            "0.01"
        )
    rebalancer = arena.engine.arena.rebalancer
    assert rebalancer is not None
    allocations = {t: arena.engine.app.get_trader(t).allocation for t in ids}
    assert sum(allocations.values()) <= rebalancer.pool

    again = OfflineArena.open(tmp_path / "data", config_path=ws.main)
    import asyncio

    asyncio.run(again.engine.start())
    assert {t: again.engine.app.get_trader(t).allocation for t in ids} == allocations
