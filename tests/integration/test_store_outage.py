"""PostgreSQL going away under a running arena, and coming back (ARCHITECTURE.md §8: an event
store that cannot be written stops the cycle before any order).

The arena's event store is reached through a loopback proxy whose link the test cuts: every
pooled connection is reset and new ones are refused, as when the database host dies. The
first store call that fails marks the store down; from then on no cycle runs, no order is
sent and no position changes, the outage is alerted once, and the store is probed off the
event loop. When the link is restored the arena resumes: cycles run and orders are placed
again, with no client order id used twice.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import psycopg
import pytest

from tests.conftest import POSTGRES_DSN
from tests.support.arena import OfflineArena
from tests.support.tcp_proxy import TcpProxy
from tests.support.workspace import Workspace

pytestmark = pytest.mark.postgres


@pytest.fixture
def schema() -> Iterator[str]:
    name = f"outage_{uuid.uuid4().hex[:10]}"
    yield name
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def cloids(arena: OfflineArena) -> list[str]:
    return [
        e.cloid
        for _, e in arena.engine.app.read_events(0, 10**7)
        if type(e).__name__ == "OrderPlaced"
    ]


async def tick(arena: OfflineArena, minutes: int) -> None:
    for _ in range(minutes):
        arena.clock.advance(60)
        await arena.engine.arena.tick()
        await arena.engine.arena.drain()


async def positions(arena: OfflineArena) -> dict[str, object]:
    (sync,) = arena.engine.arena.syncs
    state = await sync.exchange.account_state()
    return {coin: p.qty for coin, p in state.positions.items()}


def test_postgres_dying_mid_run_stops_the_arena_and_it_resumes_after(
    tmp_path: Path, schema: str
) -> None:
    target = urlparse(POSTGRES_DSN)
    with TcpProxy((target.hostname or "127.0.0.1", target.port or 5432)) as proxy:
        ws = Workspace(tmp_path / "arena")
        ws.replace("nof0.yaml", "  MaxLifetime: 5m", f"  MaxLifetime: 5m\n  Schema: {schema}")
        dsn = POSTGRES_DSN.replace(f":{target.port or 5432}/", f":{proxy.port}/")
        arena = OfflineArena.open(
            tmp_path / "data", config_path=ws.main, env={"Postgres__DataSource": dsn}
        )
        guard = arena.engine.arena.store_guard
        assert guard is not None

        async def scenario() -> None:
            await arena.engine.start()
            await tick(arena, 45)
            placed_before = cloids(arena)
            assert placed_before, "the baselines trade before the outage"
            held = await positions(arena)
            cycles = arena.engine.arena.cycles_run

            proxy.cut()
            await tick(arena, 20)
            assert guard.down
            assert arena.engine.arena.cycles_run == cycles  # not one cycle during the outage
            assert await positions(arena) == held  # nothing sent, nothing changed
            kinds = [kind for _, kind, _ in arena.engine.alerts.sent]
            assert kinds.count("store_down") == 1

            proxy.restore()
            deadline = time.monotonic() + 90
            while guard.down and time.monotonic() < deadline:
                await tick(arena, 1)
                await asyncio.sleep(0.5)  # the guard probes on a wall-clock backoff
            assert not guard.down, "the arena did not see the store come back"
            await tick(arena, 45)
            assert arena.engine.arena.cycles_run > cycles
            placed = cloids(arena)
            assert len(placed) > len(placed_before), "orders are placed again"
            assert len(placed) == len(set(placed)), "no client order id is used twice"
            kinds = [kind for _, kind, _ in arena.engine.alerts.sent]
            assert kinds.count("store_down") == 1
            assert kinds.count("store_recovered") == 1

        asyncio.run(scenario())
