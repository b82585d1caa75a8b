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
import contextvars
import inspect
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import yaml

from application.leases import LeaseKeeper, venue_lease
from application.shared_market import SharedSnapshots
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


#: (model, exchange, store-write) seconds of the cycle running in this task, when timed.
_SPENT: contextvars.ContextVar[list[float] | None] = contextvars.ContextVar("spent", default=None)


def _timed(fn: Callable[..., Awaitable[Any]], slot: int) -> Callable[..., Awaitable[Any]]:
    async def timed(*args: Any, **kwargs: Any) -> Any:
        spent = _SPENT.get()
        started = time.perf_counter()
        try:
            return await fn(*args, **kwargs)
        finally:
            if spent is not None:
                spent[slot] += time.perf_counter() - started

    return timed


def _timed_sync(fn: Callable[..., Any], slot: int) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        spent = _SPENT.get()
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            if spent is not None:
                spent[slot] += time.perf_counter() - started

    return timed


def _timed_into(fn: Callable[..., Awaitable[Any]], spent: list[float]) -> Callable[..., Any]:
    async def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await fn(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - started)

    return timed


Row = tuple[float, float, float, float]  # cycle, model, exchange, store writes (seconds)


def _instrument(
    arena: OfflineArena,
    rows: list[Row],
    builds: list[float] | None = None,
    preparations: list[float] | None = None,
) -> None:
    """Time every cycle, and inside it the model's answers, the exchange's calls (each
    object's coroutine methods) and the event store's writes, per task, so another task's
    calls never count. ``builds``: the seconds of each shared snapshot's assembly, and
    ``preparations``: of each preparation of the shared prompt parts (the tick's work,
    outside every cycle, since the tick prefetches and prepares what its traders share)."""
    app = arena.engine.app
    app.save = _timed_sync(app.save, 2)  # type: ignore[method-assign]
    wrapped: set[int] = set()
    renderer = arena.engine.arena.renderer
    if preparations is not None and hasattr(renderer, "prepare"):
        prepare = renderer.prepare

        def timed_prepare(**kwargs: Any) -> None:
            started = time.perf_counter()
            try:
                prepare(**kwargs)
            finally:
                preparations.append(time.perf_counter() - started)

        renderer.prepare = timed_prepare
    for state in arena.engine.arena._states.values():
        market = state.runtime.market
        if builds is not None and isinstance(market, SharedSnapshots) and id(market) not in wrapped:
            wrapped.add(id(market))
            market.inner.snapshot = _timed_into(market.inner.snapshot, builds)  # type: ignore[method-assign]
        cycle = state.cycle
        for model in cycle.gateway.models.values():
            if id(model) not in wrapped:
                wrapped.add(id(model))
                model.decide = _timed(model.decide, 0)  # type: ignore[method-assign]
        exchange = cycle.exchange
        if id(exchange) not in wrapped:
            wrapped.add(id(exchange))
            for name in dir(type(exchange)):
                method = getattr(exchange, name, None)
                if not name.startswith("_") and inspect.iscoroutinefunction(method):
                    setattr(exchange, name, _timed(method, 1))
        run = cycle.run

        async def timed_run(as_of: Any, run: Callable[..., Awaitable[Any]] = run) -> Any:
            spent = [0.0, 0.0, 0.0]
            _SPENT.set(spent)
            started = time.perf_counter()
            outcome = await run(as_of)
            rows.append((time.perf_counter() - started, spent[0], spent[1], spent[2]))
            return outcome

        cycle.run = timed_run  # type: ignore[method-assign]


def arena_cycles(traders: int, ticks: int = 20) -> dict[str, Any]:
    """Each cycle of the offline arena timed on its own (cycles run one at a time, the
    shipped setting), with the model's and the exchange's time taken out and reported
    apart: the engine's overhead per cycle at this many traders in one process."""
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp) / "arena")
        _cloned_traders(ws, traders)
        arena = OfflineArena.open(Path(tmp) / "data", config_path=ws.main)
        rows: list[Row] = []
        builds: list[float] = []
        preparations: list[float] = []
        _instrument(arena, rows, builds, preparations)
        asyncio.run(_drive(arena, ticks))
        deciding = len(arena.engine.arena.trader_ids)
    rows = rows[deciding:]  # the warm-up tick's first snapshots and prompts
    per_tick = len(builds) // (ticks + 1) or 1
    builds_ms = [b * 1000 for b in builds[per_tick:]]  # the warm-up tick's left out
    preparing = len(preparations) // (ticks + 1) or 1
    shared_ms = (sum(builds[per_tick:]) + sum(preparations[preparing:])) * 1000 / ticks
    overhead = [(wall - model - exchange) * 1000 for wall, model, exchange, _ in rows]
    cpu = [(wall - model - exchange - store) * 1000 for wall, model, exchange, store in rows]
    model_ms = [row[1] * 1000 for row in rows]
    exchange_ms = [row[2] * 1000 for row in rows]
    store_ms = [row[3] * 1000 for row in rows]
    return {
        "traders": deciding,
        "cycles": len(rows),
        "overhead_p50_ms": round(statistics.median(overhead), 3),
        "overhead_p99_ms": round(percentile(overhead, 99), 3),
        "without_store_p50_ms": round(statistics.median(cpu), 3),
        "without_store_p99_ms": round(percentile(cpu, 99), 3),
        "store_p50_ms": round(statistics.median(store_ms), 3),
        "store_p99_ms": round(percentile(store_ms, 99), 3),
        "model_p50_ms": round(statistics.median(model_ms), 3),
        "exchange_p50_ms": round(statistics.median(exchange_ms), 3),
        "exchange_p99_ms": round(percentile(exchange_ms, 99), 3),
        "snapshot_builds_per_tick": per_tick,
        "snapshot_build_p50_ms": round(statistics.median(builds_ms), 3) if builds_ms else 0.0,
        "snapshot_build_p99_ms": round(percentile(builds_ms, 99), 3) if builds_ms else 0.0,
        "tick_shared_ms": round(shared_ms, 3),  # snapshots + shared prompt parts, per tick
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
    rows = results.get("arena_cycles", [])
    if rows:
        print(
            "\nengine overhead per cycle in the offline arena (baseline models; the model's and"
            " the exchange's time taken out, reported apart; the exchange is the Hyperliquid"
            " adapter signing and the in-process venue answering)"
        )
        for r in rows:
            print(
                f"  {r['traders']:>4} traders: p50 {r['overhead_p50_ms']:.3f} ms, "
                f"p99 {r['overhead_p99_ms']:.3f} ms over {r['cycles']} cycles (of which event "
                f"store writes p50 {r['store_p50_ms']:.3f} ms, p99 {r['store_p99_ms']:.3f} ms; "
                f"without them p50 {r['without_store_p50_ms']:.3f} ms, "
                f"p99 {r['without_store_p99_ms']:.3f} ms); model p50 "
                f"{r['model_p50_ms']:.3f} ms; exchange p50 {r['exchange_p50_ms']:.3f} ms, "
                f"p99 {r['exchange_p99_ms']:.3f} ms; shared snapshots (the tick's, outside the "
                f"cycles): {r['snapshot_builds_per_tick']} a tick, p50 "
                f"{r['snapshot_build_p50_ms']:.3f} ms, p99 {r['snapshot_build_p99_ms']:.3f} ms; "
                f"with the shared prompt parts {r['tick_shared_ms']:.3f} ms a tick"
            )
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
