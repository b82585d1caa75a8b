"""``max_concurrent_decisions`` bounds how many cycles decide at once (a bounded pool)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

import pytest

from application.cycle import CycleOutcome, DecisionCycle
from tests.support.arena import OfflineArena
from tests.support.workspace import Workspace


@pytest.mark.parametrize(("bound", "expected"), [(1, 1), (2, 2), (10, 3)])
def test_no_more_cycles_decide_at_once_than_the_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bound: int, expected: int
) -> None:
    in_flight: list[int] = [0]
    most: list[int] = [0]

    async def slow_cycle(self: DecisionCycle, as_of: datetime) -> CycleOutcome:
        in_flight[0] += 1
        most[0] = max(most[0], in_flight[0])
        await asyncio.sleep(0.01)  # a model answering takes time
        in_flight[0] -= 1
        return CycleOutcome(self.settings.config_id, None, "decided", "")

    monkeypatch.setattr(DecisionCycle, "run", slow_cycle)
    ws = Workspace(tmp_path / "arena")
    ws.set("executor.yaml", ("max_concurrent_decisions",), bound)
    arena = OfflineArena.open(tmp_path / "data", config_path=ws.main)
    asyncio.run(arena.run(minutes=10))
    assert len(arena.engine.arena.trader_ids) == 3
    assert most[0] == expected
    assert arena.engine.arena.most_deciding == expected
