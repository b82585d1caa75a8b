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
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

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
