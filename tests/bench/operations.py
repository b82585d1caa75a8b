"""Operations benchmarks (issue 8): the arena's cycle overhead with 100 traders in one
process, and events appended per second on each event store.

* ``arena_overhead``: the shipped offline arena (replayed market, simulator, baseline models)
  with its traders cloned to ``traders`` of them, each deciding every 3 minutes; the clock is
  advanced one decision interval at a time and each ``tick`` + ``drain`` (every due trader's
  whole cycle: market snapshot, prompt, model, risk, orders, events, reconciliation) is timed.
  Reported per tick and per trader-cycle. Baseline models answer in microseconds, so the
  figure is the engine's own cost.
* events appended per second on each store are timed in ``tests/bench/__main__.py`` while it
  fills the rebuild benchmark's log (realistic payloads, one cycle's events per save).
* ``lease_takeover``: two engines' lease keepers on PostgreSQL (the real lease table, the
  database's clock), each ticking every ttl/3 as the arena does; one holds every trader and
  the venue lease, then stops renewing (a SIGKILL, as far as the others can tell). Timed from
  its last renewal until the survivor holds everything; the expected bound is ttl + ttl/3.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from application.leases import LeaseKeeper, venue_lease
from infrastructure.leases import TABLE, PostgresLeaseStore
from tests.support.arena import OfflineArena
from tests.support.workspace import Workspace

DECISION_INTERVAL_S = 180


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def _cloned_traders(ws: Workspace, traders: int) -> None:
    manager = ws.file("manager.yaml")
    data = yaml.safe_load(manager.read_text(encoding="utf-8"))
    shipped = [t for t in data["traders"] if t["id"] != "btc-hold"]
    share = round((100 - data["manager"]["reserve_equity_pct"]) / traders, 4)
    data["manager"]["total_equity_usd"] = 1_000 * traders
    clones = []
    for n in range(traders):
        base = dict(shipped[n % len(shipped)])
        base.update(
            id=f"{base['id']}-{n:03d}",
            name=f"{base['name']} #{n}",
            allocation_pct=share,
            decision_interval="3m",
            auto_start=True,
        )
        clones.append(base)
    data["traders"] = clones
    manager.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


async def _drive(arena: OfflineArena, ticks: int) -> list[float]:
    await arena.engine.start()
    arena.clock.advance(DECISION_INTERVAL_S)
    await arena.engine.arena.tick()  # warm-up: first snapshots, first prompts
    await arena.engine.arena.drain()
    per_tick = []
    for _ in range(ticks):
        arena.clock.advance(DECISION_INTERVAL_S)
        started = time.perf_counter()
        await arena.engine.arena.tick()
        await arena.engine.arena.drain()
        per_tick.append((time.perf_counter() - started) * 1000)
    return per_tick


def arena_overhead(traders: int = 100, ticks: int = 20) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp) / "arena")
        _cloned_traders(ws, traders)
        arena = OfflineArena.open(Path(tmp) / "data", config_path=ws.main)
        per_tick = asyncio.run(_drive(arena, ticks))
        deciding = len(arena.engine.arena.trader_ids)
    per_cycle = [ms / deciding for ms in per_tick]
    return {
        "traders": deciding,
        "ticks": len(per_tick),
        "tick_p50_ms": round(statistics.median(per_tick), 1),
        "tick_p99_ms": round(percentile(per_tick, 99), 1),
        "per_trader_cycle_p50_ms": round(statistics.median(per_cycle), 2),
        "per_trader_cycle_p99_ms": round(percentile(per_cycle, 99), 2),
    }


def lease_takeover(
    dsn: str, schema: str, *, ttl: float = 3.0, trials: int = 5, traders: int = 3
) -> dict[str, Any]:
    """Seconds from a dead engine's last renewal until a survivor holds all its leases."""
    import psycopg

    store = PostgresLeaseStore(dsn, schema)
    wanted = tuple(f"trader-{i}" for i in range(traders))
    venue = (venue_lease("sim"),)
    rng = random.Random(5)
    takeovers: list[float] = []
    for trial in range(trials):
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DELETE FROM "{schema}"."{TABLE}"')
        dead = LeaseKeeper(store, f"dead-{trial}", wanted, extra=venue, ttl=ttl)
        dead.tick()  # alone: it takes every trader and the venue
        last_renewal = time.monotonic()
        survivor = LeaseKeeper(store, f"survivor-{trial}", wanted, extra=venue, ttl=ttl)
        time.sleep(rng.uniform(0, ttl / 3))  # the survivor's ticks fall anywhere in between
        while True:
            survivor.tick()
            if survivor.traders() == frozenset(wanted) and survivor.holds(venue[0]):
                break
            time.sleep(ttl / 3)
        takeovers.append(time.monotonic() - last_renewal)
    return {
        "ttl_s": ttl,
        "trials": trials,
        "traders": traders,
        "takeover_p50_s": round(statistics.median(takeovers), 2),
        "takeover_max_s": round(max(takeovers), 2),
        "bound_s": round(ttl + ttl / 3, 2),
    }


def report(results: dict[str, Any]) -> None:
    row = results.get("arena_100")
    if row:
        print(f"\nthe offline arena with {row['traders']} traders in one process (baseline models)")
        print(
            f"  per tick (every trader's cycle): p50 {row['tick_p50_ms']} ms, "
            f"p99 {row['tick_p99_ms']} ms over {row['ticks']} ticks; per trader-cycle "
            f"p50 {row['per_trader_cycle_p50_ms']} ms, p99 {row['per_trader_cycle_p99_ms']} ms"
        )
    rows = results.get("appends", [])
    if rows:
        print("\nevents appended per second (the rebuild log's cycles, one cycle per save)")
        for r in rows:
            print(f"  {r['store']:<10} {r['events_per_s']:>8,} events/s ({r['events']:,} events)")
    row = results.get("lease_takeover")
    if row:
        print(
            f"\nlease takeover on PostgreSQL (an engine stops renewing; TTL {row['ttl_s']} s, "
            f"survivor ticks every TTL/3, {row['traders']} traders + the venue lease)"
        )
        print(
            f"  p50 {row['takeover_p50_s']} s, max {row['takeover_max_s']} s over "
            f"{row['trials']} trials (bound TTL + TTL/3 = {row['bound_s']} s)"
        )
