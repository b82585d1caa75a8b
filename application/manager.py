"""The arena manager: a tick loop that marks prices, reconciles venue accounts and runs
due cycles.

Traders are independent: each cycle runs as its own task under the trader's lock, and an
exception in one trader's cycle is logged and alerted without touching the others. Each
venue account (one per exchange provider) is reconciled by its own ``VenueSync`` pass,
which takes the lock of every trader it touches.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

from application.capital import Rebalancer
from application.control import Flattener
from application.cycle import CycleOutcome, DecisionCycle, SchemaCheck
from application.gateway import DecisionGateway
from application.orders import OrderDesk
from application.ports import (
    Alerts,
    Clock,
    DecisionModel,
    Exchange,
    ExchangeError,
    FundingFeed,
    MarkedToMarket,
    MarketData,
    MarketDataError,
    PromptRenderer,
)
from application.settings import EngineSettings, TraderSettings
from application.trading import TradingApp
from application.venue_sync import SyncPolicy, VenueSync
from domain.breakers import due_after
from domain.trader import Trader

log = logging.getLogger("nof0.engine")


@runtime_checkable
class ResumableClock(Protocol):
    """A replay clock that can continue from where the recorded history stops."""

    def resume_at(self, at: datetime) -> None: ...


@dataclass
class TraderRuntime:
    settings: TraderSettings
    market: MarketData
    exchange: Exchange
    model: DecisionModel | None = None  # a single model (tests, baselines) ...
    gateway: DecisionGateway | None = None  # ... or routing over several
    schema: SchemaCheck | None = None


@dataclass
class _TraderState:
    runtime: TraderRuntime
    cycle: DecisionCycle
    lock: asyncio.Lock
    flattener: Flattener
    last_cycle_at: datetime | None = None
    paused: bool = False
    flatten_requested: bool = False
    failures_in_row: int = 0


@dataclass
class _VenueState:
    exchange: Exchange
    sync: VenueSync
    interval_s: float
    running: bool = False


class Arena:
    def __init__(
        self,
        *,
        app: TradingApp,
        runtimes: Sequence[TraderRuntime],
        renderer: PromptRenderer,
        clock: Clock,
        engine: EngineSettings,
        alerts: Alerts,
        reconcile_intervals: dict[str, float] | None = None,
        sync_policy: SyncPolicy | None = None,
        rebalancer: Rebalancer | None = None,
        on_cycle: Callable[[str, float], None] | None = None,
    ) -> None:
        """``reconcile_intervals``: seconds between reconciliations per exchange provider
        (0: every tick, right for the in-process simulator); default the engine's.
        ``on_cycle``: told each finished cycle's trader and wall seconds (the metrics)."""
        self.app = app
        self.clock = clock
        self.engine = engine
        self.alerts = alerts
        #: ``allocation_strategy: performance_based``; None: the configured allocations.
        self.rebalancer = rebalancer
        self.on_cycle = on_cycle
        self._states: dict[str, _TraderState] = {}
        locks = {rt.settings.config_id: asyncio.Lock() for rt in runtimes}
        self._venues: dict[int, _VenueState] = {}
        intervals = reconcile_intervals or {}
        for rt in runtimes:
            if id(rt.exchange) in self._venues:
                continue
            sharing = [r.settings for r in runtimes if r.exchange is rt.exchange]
            desk = OrderDesk(app, rt.exchange, clock, engine, alerts)
            sync = VenueSync(
                app=app,
                exchange=rt.exchange,
                desk=desk,
                clock=clock,
                alerts=alerts,
                traders=sharing,
                engine=engine,
                policy=sync_policy,
                locks={s.config_id: locks[s.config_id] for s in sharing},
            )
            interval = intervals.get(rt.exchange.name, engine.reconcile_interval_s)
            self._venues[id(rt.exchange)] = _VenueState(rt.exchange, sync, interval)
        for rt in runtimes:
            venue = self._venues[id(rt.exchange)]
            cycle = DecisionCycle(
                app=app,
                settings=rt.settings,
                engine=engine,
                market=rt.market,
                exchange=rt.exchange,
                gateway=rt.gateway,
                model=rt.model,
                renderer=renderer,
                clock=clock,
                alerts=alerts,
                schema=rt.schema,
                desk=venue.sync.desk,
                sync=venue.sync,
            )
            flattener = Flattener(app, venue.sync.desk, venue.sync, rt.market, clock, alerts)
            self._states[rt.settings.config_id] = _TraderState(
                rt, cycle, locks[rt.settings.config_id], flattener
            )
        self._tasks: set[asyncio.Task[None]] = set()
        self.cycles_run = 0
        bound = engine.max_concurrent_decisions
        self._slots = asyncio.Semaphore(bound) if bound > 0 else None
        self.deciding = 0  # cycles deciding now
        self.most_deciding = 0  # the most ever deciding at once

    @property
    def trader_ids(self) -> list[str]:
        return list(self._states)

    @property
    def syncs(self) -> list[VenueSync]:
        return [v.sync for v in self._venues.values()]

    # -- start-up ---------------------------------------------------------------------------

    async def start(self) -> list[str]:
        """Check the venues, register new traders, resume the replay clock, reconcile.

        A venue that fails its pre-flight raises ``ExchangeSetupError`` (nothing trades)."""
        findings: list[str] = []
        for venue in self._venues.values():
            for note in await venue.exchange.start():
                log.info("exchange %s: %s", venue.exchange.name, note)
                findings.append(f"{venue.exchange.name}: {note}")
        latest: datetime | None = None
        known: dict[str, Trader] = {}
        for config_id in self._states:
            trader = self.app.find_trader(config_id)
            if trader is not None:
                known[config_id] = trader
                if trader.last_cycle_at and (latest is None or trader.last_cycle_at > latest):
                    latest = trader.last_cycle_at
        if latest is not None and isinstance(self.clock, ResumableClock):
            self.clock.resume_at(latest)
            log.info("resuming the replay clock at %s", latest.isoformat())
        now = self.clock.now()
        for config_id, state in self._states.items():
            cfg = state.runtime.settings
            trader = known.get(config_id)
            if trader is None:
                trader = Trader.register(
                    config_id=cfg.config_id,
                    name=cfg.name,
                    model=cfg.model,
                    allocation=cfg.allocation,
                    coins=list(cfg.coins),
                    at=now,
                )
                self.app.save_trader(trader)
                log.info(
                    "registered trader %s (%s, model %s, allocation %s)",
                    cfg.config_id,
                    cfg.name,
                    cfg.model,
                    cfg.allocation,
                )
            elif not (self.rebalancer is not None and trader.reallocated):
                # Performance-based allocations survive a restart; fixed ones follow the file.
                trader.allocate(cfg.allocation, now)
                self.app.save_trader(trader)
        for venue in self._venues.values():
            try:
                await venue.sync.register(now)
                report = await venue.sync.run(now, startup=True)
            except ExchangeError as exc:
                findings.append(f"{venue.exchange.name}: venue unavailable at start-up: {exc}")
                continue
            venue.sync.last_run = now
            lines = [
                f"{report.fills} fills, {report.funding} funding payments, "
                f"{report.settled} orders settled, {report.protections} protection changes",
                *report.findings,
                *(f"drift: {d}" for d in report.drift),
            ]
            for line in lines:
                log.info("exchange %s reconcile: %s", venue.exchange.name, line)
            findings.extend(f"{venue.exchange.name}: {line}" for line in lines)
        for state in self._states.values():
            self._refresh(state)
        return findings

    def _refresh(self, state: _TraderState) -> None:
        trader = self.app.get_trader(state.runtime.settings.config_id)
        state.last_cycle_at = trader.last_cycle_at
        state.paused = trader.paused
        state.flatten_requested = trader.flatten_requested

    # -- the loop ---------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        log.info("arena running with %d traders", len(self._states))
        while not stop.is_set():
            try:
                await self.tick()
            except Exception:
                log.exception("tick failed; the loop continues")
            sleeper = asyncio.ensure_future(self.clock.sleep(self.engine.tick_seconds))
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
            for pending in (sleeper, stopper):
                pending.cancel()
        await self.drain()
        log.info("arena stopped after %d cycles", self.cycles_run)

    async def drain(self, timeout: float = 30.0) -> None:
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=timeout)

    async def tick(self) -> None:
        now = self.clock.now()
        await self._mark(now)
        for venue in self._venues.values():
            if venue.running:
                continue
            last = venue.sync.last_run
            if last is None or (now - last).total_seconds() >= venue.interval_s:
                venue.running = True
                self._spawn(f"venue:{venue.exchange.name}", self._reconcile(venue, now))
        # Between cycles only: a reallocation must not change a trader mid-decision.
        idle = not any(state.lock.locked() for state in self._states.values())
        if self.rebalancer is not None and idle and self.rebalancer.due(now):
            self.rebalancer.run(now)
        for config_id, state in self._states.items():
            if state.lock.locked():
                continue
            self._refresh(state)
            if state.flatten_requested:
                # An operator's flatten comes before any decision, paused or not.
                self._spawn(config_id, self._flatten(state))
            elif self._due(state, now):
                self._spawn(config_id, self._cycle(state, now))

    async def _reconcile(self, venue: _VenueState, now: datetime) -> None:
        try:
            report = await venue.sync.run(now)
            for line in report.findings:
                log.warning("exchange %s reconcile: %s", venue.exchange.name, line)
        except Exception as exc:
            log.error("exchange %s reconcile failed: %r", venue.exchange.name, exc, exc_info=exc)
            self.alerts.alert("venue", "reconcile_error", repr(exc))
        finally:
            venue.sync.last_run = now
            venue.running = False

    def _due(self, state: _TraderState, now: datetime) -> bool:
        cfg = state.runtime.settings
        if not cfg.auto_start or state.paused:
            return False
        if state.last_cycle_at is None:
            return True
        limits = cfg.breakers
        if limits.min_sharpe is None and limits.cooldown_after_losses is None:
            return now - state.last_cycle_at >= timedelta(seconds=cfg.decision_interval_s)
        trader = self.app.get_trader(cfg.config_id)
        due, _ = due_after(
            limits,
            interval_s=cfg.decision_interval_s,
            last_cycle_at=state.last_cycle_at,
            loss_streak=trader.loss_streak,
            last_loss_at=trader.last_loss_at,
            sharpe=trader.sharpe(),
            returns=trader.returns_n,
        )
        return now >= due

    async def _mark(self, now: datetime) -> dict[int, dict[str, Decimal]]:
        """Fetch mids once per market provider and mark in-process venues to market."""
        markets: dict[int, tuple[MarketData, set[str], list[Exchange]]] = {}
        for state in self._states.values():
            rt = state.runtime
            entry = markets.setdefault(id(rt.market), (rt.market, set(), []))
            entry[1].update(rt.settings.coins)
            if rt.exchange not in entry[2]:
                entry[2].append(rt.exchange)
        result: dict[int, dict[str, Decimal]] = {}
        for key, (market, coins, exchanges) in markets.items():
            try:
                mids = await market.mids(sorted(coins), now)
            except MarketDataError as exc:
                log.debug("no mids at %s: %s", now.isoformat(), exc)
                continue
            result[key] = mids
            marked = [e for e in exchanges if isinstance(e, MarkedToMarket)]
            if not marked:
                continue
            funding: dict[str, Decimal] | None = None
            if isinstance(market, FundingFeed):
                try:
                    funding = await market.funding_rates(sorted(coins), now)
                except MarketDataError as exc:
                    log.debug("no funding rates at %s: %s", now.isoformat(), exc)
            for exchange in marked:
                exchange.mark(mids, now, funding)
        return result

    def _spawn(self, config_id: str, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work, name=f"trader:{config_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _flatten(self, state: _TraderState) -> None:
        async with state.lock:
            try:
                report = await state.flattener.run(state.runtime.settings)
            except Exception as exc:  # noqa: BLE001 - logged and alerted; retried next tick
                self._failed(state, "flatten", exc)
                return
            for problem in report.problems:
                log.warning("trader=%s flatten: %s", report.trader, problem)
            self._refresh(state)

    async def _cycle(self, state: _TraderState, now: datetime) -> None:
        async with state.lock:
            if self._slots is None:
                await self._counted(state, now)
                return
            async with self._slots:  # at most max_concurrent_decisions cycles at once
                await self._counted(state, now)

    async def _counted(self, state: _TraderState, now: datetime) -> None:
        self.deciding += 1
        self.most_deciding = max(self.most_deciding, self.deciding)
        try:
            await self._run_cycle(state, now)
        finally:
            self.deciding -= 1

    async def _run_cycle(self, state: _TraderState, now: datetime) -> None:
        config_id = state.runtime.settings.config_id
        started = time.perf_counter()
        try:
            outcome: CycleOutcome = await state.cycle.run(now)
            self.cycles_run += 1
            if self.on_cycle is not None:
                self.on_cycle(config_id, time.perf_counter() - started)
            state.failures_in_row = 0
            if outcome.status == "paused":
                log.debug("trader=%s is paused", config_id)
        except Exception as exc:  # noqa: BLE001 - logged and alerted; the others go on
            self._failed(state, "cycle", exc)
            # Do not hammer a broken trader every tick: wait for its next interval.
            state.last_cycle_at = now
            return
        self._refresh(state)

    def _failed(self, state: _TraderState, what: str, exc: Exception) -> None:
        config_id = state.runtime.settings.config_id
        state.failures_in_row += 1
        log.error("trader=%s %s failed: %r", config_id, what, exc, exc_info=exc)
        self.alerts.alert(config_id, f"{what}_error", repr(exc))
