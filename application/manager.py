"""The arena manager: a tick loop that marks prices, reconciles venue accounts and runs
due cycles.

Traders are independent: each cycle runs as its own task under the trader's lock, and an
exception in one trader's cycle is logged and alerted without touching the others. Each
venue account (one per exchange provider) is reconciled by its own ``VenueSync`` pass,
which takes the lock of every trader it touches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol, TypeGuard, runtime_checkable

from application.capital import Rebalancer
from application.control import Flattener
from application.cycle import (
    CycleOutcome,
    DecisionCycle,
    SchemaCheck,
    canonical_snapshot,
    prompt_limits,
)
from application.fenced_exchange import acting_for
from application.gateway import DecisionGateway
from application.leases import LeaseKeeper, venue_lease
from application.orders import OrderDesk
from application.ports import (
    Alerts,
    Clock,
    DecisionModel,
    Exchange,
    ExchangeError,
    FundingFeed,
    GateMemory,
    IntrabarFeed,
    MarkedToMarket,
    MarketData,
    MarketDataError,
    MinutePath,
    PathMarked,
    PromptLimits,
    PromptRenderer,
)
from application.remembered_gates import RememberedGates
from application.settings import EngineSettings, TraderSettings
from application.shared_market import PreparesPrompts, SharedSnapshots
from application.store_guard import StoreGuard
from application.trading import TradingApp
from application.venue_health import HealthPolicy, VenueHealth, paper_twin_id, real_trader_id
from application.venue_sync import SyncPolicy, VenueSync
from domain.breakers import due_after
from domain.trader import Trader
from domain.triggers import HeldPosition, TraderFacts, TriggerState, WakeRecord

log = logging.getLogger("nof0.engine")


@runtime_checkable
class ResumableClock(Protocol):
    """A replay clock that can continue from where the recorded history stops."""

    def resume_at(self, at: datetime) -> None: ...


_CONFORMS: dict[tuple[type, object], bool] = {}


def _conforms(obj: object, protocol: Any) -> bool:
    """``isinstance(obj, protocol)`` for a runtime protocol, remembered per class (the check
    walks the protocol's members; every tick asks it of every venue and market)."""
    key = (type(obj), protocol)
    known = _CONFORMS.get(key)
    if known is None:
        known = _CONFORMS[key] = isinstance(obj, protocol)
    return known


def _marked_to_market(exchange: object) -> TypeGuard[MarkedToMarket]:
    return _conforms(exchange, MarkedToMarket)


def _path_marked(exchange: object) -> TypeGuard[PathMarked]:
    return _conforms(exchange, PathMarked)


def _intrabar(market: object) -> TypeGuard[IntrabarFeed]:
    return _conforms(market, IntrabarFeed)


def _prepares(renderer: object) -> TypeGuard[PreparesPrompts]:
    return _conforms(renderer, PreparesPrompts)


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
    #: The trader's triggers (None: the fixed decision interval), what they read of the
    #: trader and of this tick's prices, and the record of the call they decided on.
    gate: TriggerState | None = None
    facts: TraderFacts = field(default_factory=TraderFacts)
    prices: dict[str, Decimal] = field(default_factory=dict)
    wake: WakeRecord | None = None


@dataclass
class _Paper:
    """A failing venue's traders, deciding through paper twins on the simulator."""

    venue: _VenueState  # the in-process simulator on the same prices
    twins: dict[str, _TraderState]  # real config id -> its twin
    since: datetime


@dataclass
class _VenueState:
    exchange: Exchange
    sync: VenueSync
    interval_s: float
    running: bool = False
    health: VenueHealth | None = None
    paper: _Paper | None = None
    reconciled_at: datetime | None = None  # the last reconciliation that succeeded
    traders: list[str] = field(default_factory=list)
    #: Traders this engine just took (several engines): no cycle until a reconciliation
    #: has booked what their last owner sent but did not record.
    unsettled: set[str] = field(default_factory=set)


def _new_trader(cfg: TraderSettings, now: datetime) -> Trader:
    return Trader.register(
        config_id=cfg.config_id,
        name=cfg.name,
        model=cfg.model,
        allocation=cfg.allocation,
        coins=list(cfg.coins),
        at=now,
    )


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
        health: Mapping[str, VenueHealth] | None = None,
        health_policy: HealthPolicy | None = None,
        paper_venue: Callable[[Exchange], Exchange] | None = None,
        store_guard: StoreGuard | None = None,
        leases: LeaseKeeper | None = None,
        gate_memory: GateMemory | None = None,
    ) -> None:
        """``reconcile_intervals``: seconds between reconciliations per exchange provider
        (0: every tick, right for the in-process simulator); default the engine's.
        ``on_cycle``: told each finished cycle's trader and wall seconds (the metrics).
        ``health`` (by exchange provider) and ``paper_venue``: a venue failing under
        ``health_policy`` hands its traders' decisions to paper twins on the simulator that
        ``paper_venue`` opens, until it passes again and has been reconciled.
        ``leases``: several engines share the event store; this one drives only the traders
        whose leases it holds, and writes the venue account only with the venue's lease.
        ``gate_memory``: where triggers' gates are kept between runs (None: not kept)."""
        self.app = app
        self.clock = clock
        self.engine = engine
        self.alerts = alerts
        #: ``allocation_strategy: performance_based``; None: the configured allocations.
        self.rebalancer = rebalancer
        self.on_cycle = on_cycle
        self.renderer = renderer
        self.sync_policy = sync_policy
        self.health_policy = health_policy or HealthPolicy()
        self.paper_venue = paper_venue
        #: An event store outage stops the arena's work (see application/store_guard.py).
        self.store_guard = store_guard
        self.leases = leases
        self.gates = RememberedGates(gate_memory)
        self._leases_kept_at: float | None = None
        # A thread of their own: renewals must not queue behind venue calls waiting out a
        # request budget in the shared pool, or the leases expire under a live engine.
        self._lease_thread = (
            None
            if leases is None
            else ThreadPoolExecutor(max_workers=1, thread_name_prefix="nof0-leases")
        )
        #: Traders whose leases this engine took and made ready (registered, reconciling).
        self._adopted: frozenset[str] = frozenset()
        self._states: dict[str, _TraderState] = {}
        self._locks = {rt.settings.config_id: asyncio.Lock() for rt in runtimes}
        self._venues: dict[int, _VenueState] = {}
        #: Twins being flattened after their venue came back, with their simulators.
        self._retiring: list[_TraderState] = []
        self._shadows: list[_VenueState] = []
        intervals = reconcile_intervals or {}
        for rt in runtimes:
            if id(rt.exchange) in self._venues:
                continue
            sharing = [r.settings for r in runtimes if r.exchange is rt.exchange]
            interval = intervals.get(rt.exchange.name, engine.reconcile_interval_s)
            venue = self._venue(rt.exchange, sharing, interval)
            venue.health = (health or {}).get(rt.exchange.name)
            self._venues[id(rt.exchange)] = venue
        for rt in runtimes:
            self._states[rt.settings.config_id] = self._state(rt, self._venues[id(rt.exchange)])
        self._tasks: set[asyncio.Task[None]] = set()
        #: The tick whose shared prompt parts are being prepared, and for what.
        self._prepared_at: datetime | None = None
        self._prepared: set[tuple[object, ...]] = set()
        self.cycles_run = 0
        bound = engine.max_concurrent_decisions
        self._slots = asyncio.Semaphore(bound) if bound > 0 else None
        self.deciding = 0  # cycles deciding now
        self.most_deciding = 0  # the most ever deciding at once

    def _venue(
        self, exchange: Exchange, sharing: Sequence[TraderSettings], interval_s: float
    ) -> _VenueState:
        desk = OrderDesk(self.app, exchange, self.clock, self.engine, self.alerts)
        sync = VenueSync(
            app=self.app,
            exchange=exchange,
            desk=desk,
            clock=self.clock,
            alerts=self.alerts,
            traders=list(sharing),
            engine=self.engine,
            policy=self.sync_policy,
            locks={s.config_id: self._locks[s.config_id] for s in sharing},
        )
        return _VenueState(exchange, sync, interval_s, traders=[s.config_id for s in sharing])

    def _state(self, rt: TraderRuntime, venue: _VenueState) -> _TraderState:
        cycle = DecisionCycle(
            app=self.app,
            settings=rt.settings,
            engine=self.engine,
            market=rt.market,
            exchange=rt.exchange,
            gateway=rt.gateway,
            model=rt.model,
            renderer=self.renderer,
            clock=self.clock,
            alerts=self.alerts,
            schema=rt.schema,
            desk=venue.sync.desk,
            sync=venue.sync,
        )
        flattener = Flattener(
            self.app, venue.sync.desk, venue.sync, rt.market, self.clock, self.alerts
        )
        rules = rt.settings.triggers
        # Continued from its memory in start(), once the replay clock has resumed.
        gate = None if rules is None else TriggerState(rules)
        return _TraderState(rt, cycle, self._locks[rt.settings.config_id], flattener, gate=gate)

    def _all_states(self) -> Iterator[_TraderState]:
        """Every trader the loop drives: the configured ones, their twins, retiring twins."""
        yield from self._states.values()
        for venue in self._venues.values():
            if venue.paper is not None:
                yield from venue.paper.twins.values()
        yield from self._retiring

    def paper_twins(self) -> dict[str, str]:
        """Configured trader -> its paper twin, for the traders deciding on paper now."""
        return {
            real: twin.runtime.settings.config_id
            for venue in self._venues.values()
            if venue.paper is not None
            for real, twin in venue.paper.twins.items()
        }

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
        # Announce this engine first: the others on this host then share the request budget.
        await self._keep_leases()
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
            rules = state.runtime.settings.triggers
            if rules is not None and self.owns(config_id):
                state.gate = self.gates.open(config_id, rules, now)
        for config_id, state in self._states.items():
            if not self.owns(config_id):
                continue  # another engine registers and allocates it
            cfg = state.runtime.settings
            trader = known.get(config_id)
            if trader is None:
                self._register(cfg, now)
            elif not (self.rebalancer is not None and trader.reallocated):
                # Performance-based allocations survive a restart; fixed ones follow the file.
                trader.allocate(cfg.allocation, now)
                self.app.save_trader(trader)
        for venue in self._venues.values():
            try:
                owned, full = self._sync_scope(venue)
                if full:
                    await venue.sync.register(now)
                report = await venue.sync.run(now, startup=True, owned=owned, full=full)
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
        for config_id, state in self._states.items():
            if self.owns(config_id):
                self._refresh(state)
        if self.leases is not None:
            self._adopted = self.leases.traders()  # registered and reconciled above
        return findings

    def _register(self, cfg: TraderSettings, now: datetime) -> None:
        self.app.save_trader(_new_trader(cfg, now))
        log.info(
            "registered trader %s (%s, model %s, allocation %s)",
            cfg.config_id,
            cfg.name,
            cfg.model,
            cfg.allocation,
        )

    def _refresh(self, state: _TraderState, *, look: bool = True) -> None:
        """``look=False``: right after the trader's own cycle, whose writes the working copy
        holds (another process's, an operator's pause, are seen by the look of the next
        tick's refresh, which comes before any decision)."""
        trader = self.app.get_trader(state.runtime.settings.config_id, look=look)
        state.last_cycle_at = trader.last_cycle_at
        state.paused = trader.paused
        state.flatten_requested = trader.flatten_requested
        if state.gate is not None:
            state.facts = _facts(trader)

    def needs_every_tick(self) -> bool:
        """Whether a running trader has triggers: its gates follow every tick's prices and
        fills, so a backtest must not skip quiet minutes in bulk while this holds."""
        return any(
            state.gate is not None and state.runtime.settings.auto_start and not state.paused
            for state in self._all_states()
        )

    # -- the loop ---------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        log.info("arena running with %d traders", len(self._states))
        renewing = asyncio.create_task(self._renew_leases(stop), name="leases")
        try:
            await self._loop(stop)
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing

    async def _renew_leases(self, stop: asyncio.Event) -> None:
        """Renew on a clock of their own: a tick can wait a long time (a venue call waiting
        out the request budget, a slow market) and the leases must not expire meanwhile."""
        keeper = self.leases
        if keeper is None:
            return
        while not stop.is_set():
            try:
                await self._keep_leases()
            except Exception as exc:
                # The store guard decides what an outage means; the renewal retries.
                if not self._store_down(exc):
                    log.exception("lease renewal failed; retrying")
            await asyncio.sleep(keeper.ttl / 9)

    async def _loop(self, stop: asyncio.Event) -> None:
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
        guard = self.store_guard
        if guard is not None and not await guard.ready():
            return  # the store is down: nothing could be recorded, so nothing is done
        try:
            await self._tick()
        except Exception as exc:
            if self._store_down(exc):
                return
            raise

    def _store_down(self, exc: Exception) -> bool:
        return self.store_guard is not None and self.store_guard.failed(exc)

    async def _tick(self) -> None:
        now = self.clock.now()
        await self._keep_leases()
        self._adopt(now)
        marked = await self._mark(now)
        for venue in list(self._venues.values()):
            await self._check_health(venue, now)
        for venue in [*self._venues.values(), *self._shadow_venues()]:
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
        # One look at the log's head for the whole loop (it has no await: nothing of this
        # process writes in between), not one per trader read.
        with self.app.one_look():
            self._decide_who_runs(now, marked)
        self._retiring = [t for t in self._retiring if t.flatten_requested]

    def _decide_who_runs(self, now: datetime, marked: dict[int, dict[str, Decimal]]) -> None:
        on_paper = self.paper_twins()
        owned = None if self.leases is None else self.leases.traders()
        for state in list(self._all_states()):
            config_id = state.runtime.settings.config_id
            self._observe(state, now, marked)
            mine = self.owns(config_id, owned)
            if mine and state.gate is not None:
                self.gates.observed(config_id, state.gate, now)  # another engine's: its to keep
            if state.lock.locked() or not mine or self._settling(config_id):
                continue
            self._refresh(state)
            if state.flatten_requested:
                # An operator's flatten comes before any decision, paused or not.
                self._spawn(config_id, self._flatten(state))
            elif config_id in on_paper:
                continue  # its twin decides while its venue fails
            elif self._twin_due(state, on_paper, now) or (
                config_id in self._states and self._due(state, now)
            ):
                wake, state.wake = state.wake, None
                self._prepare_shared(state, now)
                self._spawn(config_id, self._cycle(state, now, wake))

    def _prepare_shared(self, state: _TraderState, now: datetime) -> None:
        """What the traders of this tick share is the tick's work, done once before the first
        of their cycles runs (not inside it): the snapshot of their coins is prefetched and,
        for the first trader of each coin set, templates and limits, the shared parts of its
        prompt are rendered by a task spawned just before its cycle."""
        market = state.runtime.market
        if not isinstance(market, SharedSnapshots):
            return
        cfg = state.runtime.settings
        market.prefetch(cfg.coins, now)
        if not _prepares(self.renderer):
            return
        limits = prompt_limits(cfg)
        key = (id(market), cfg.coins, cfg.system_template, cfg.user_template, limits)
        if self._prepared_at is not now:
            self._prepared_at, self._prepared = now, set()
        if key in self._prepared:
            return
        self._prepared.add(key)
        self._spawn(f"prompts:{cfg.config_id}", self._prepare_prompts(market, cfg, limits, now))

    async def _prepare_prompts(
        self, market: SharedSnapshots, cfg: TraderSettings, limits: PromptLimits, now: datetime
    ) -> None:
        renderer = self.renderer
        try:
            snapshot = await market.snapshot(cfg.coins, now)
            canonical_snapshot(snapshot)  # as every DecisionRequested of the tick stores it
            if _prepares(renderer):
                renderer.prepare(
                    system_template=cfg.system_template,
                    user_template=cfg.user_template,
                    snapshot=snapshot,
                    limits=limits,
                    as_of=now,
                )
        except Exception as exc:  # noqa: BLE001 - each cycle meets it again and records it
            log.debug("shared prompt parts not prepared at %s: %r", now.isoformat(), exc)

    async def _reconcile(self, venue: _VenueState, now: datetime) -> None:
        again = False  # traders taken while this pass ran: reconcile them at the next tick
        try:
            owned, full = self._sync_scope(venue)
            settling = venue.unsettled & (owned or frozenset())
            report = await venue.sync.run(now, owned=owned, full=full)
            venue.reconciled_at = now
            venue.unsettled -= settling
            again = bool(venue.unsettled)
            for line in report.findings:
                log.warning("exchange %s reconcile: %s", venue.exchange.name, line)
        except Exception as exc:
            if self._store_down(exc):
                return
            log.error("exchange %s reconcile failed: %r", venue.exchange.name, exc, exc_info=exc)
            self.alerts.alert("venue", "reconcile_error", repr(exc))
        finally:
            venue.sync.last_run = None if again else now
            venue.running = False

    def _due(self, state: _TraderState, now: datetime) -> bool:
        cfg = state.runtime.settings
        if state.gate is not None and cfg.auto_start and not state.paused:
            return self._triggered(state, state.gate, now)
        due = self._due_at(state)
        return due is not None and now >= due

    def _due_at(self, state: _TraderState) -> datetime | None:
        """When the trader's next cycle is due (``datetime.min``: now; None: not while it
        is paused or not started)."""
        cfg = state.runtime.settings
        if not cfg.auto_start or state.paused:
            return None
        if state.last_cycle_at is None:
            return datetime.min.replace(tzinfo=UTC)
        limits = cfg.breakers
        if limits.min_sharpe is None and limits.cooldown_after_losses is None:
            return state.last_cycle_at + timedelta(seconds=cfg.decision_interval_s)
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
        return due

    def _observe(
        self, state: _TraderState, now: datetime, marked: dict[int, dict[str, Decimal]]
    ) -> None:
        """Feed a trader's gates this tick's prices (every tick, deciding or not)."""
        if state.gate is None:
            return
        rt = state.runtime
        mids = marked.get(id(rt.market), {})
        state.prices = {c: mids[c] for c in rt.settings.coins if c in mids}
        state.gate.observe(now, state.prices)

    def _triggered(self, state: _TraderState, gate: TriggerState, now: datetime) -> bool:
        """A trader with triggers: called when a gate fires (or at ``max_interval``); a
        tick it is not called on is counted, in aggregate, for the next call's record."""
        cfg = state.runtime.settings
        interval = cfg.decision_interval_s
        last = state.last_cycle_at
        if last is None:
            state.wake = gate.called(now, state.prices, ("first_call",), None, interval)
            self.gates.save(cfg.config_id, gate, now)
            return True
        verdict = gate.check(
            now,
            coins=cfg.coins,
            prices=state.prices,
            last_call_at=last,
            interval_s=interval,
            facts=state.facts,
        )
        limits = cfg.breakers
        held = False
        if verdict.call and limits.cooldown_after_losses is not None:
            trader = self.app.get_trader(cfg.config_id)
            # A loss cooldown holds the triggers back too (the Sharpe slowdown is the
            # timer's: with triggers the gates set the pace).
            not_before, _ = due_after(
                replace(limits, min_sharpe=None),
                interval_s=0.0,
                last_cycle_at=last,
                loss_streak=trader.loss_streak,
                last_loss_at=trader.last_loss_at,
                sharpe=0.0,
                returns=0,
            )
            held = now < not_before
        if not verdict.call or held:
            gate.skipped(verdict)
            return False
        state.wake = gate.called(now, state.prices, verdict.fired, last, interval)
        self.gates.save(cfg.config_id, gate, now)
        return True

    def next_work_at(self, now: datetime, step: timedelta) -> datetime | None:
        """For a backtest stepping the clock by ``step``: the earliest time after ``now`` a
        tick has work besides marking prices and reconciling venues where nothing happened
        (a trader or the rebalancer due, a reconciliation due on a venue reconciled less
        often than every step); ``datetime.max`` if none ever is. None when that cannot be
        told: every tick may count (work in flight, a venue failing or over to paper, a
        flatten asked for, orders waiting to settle, several engines).

        It says nothing about the venue's own events (fills, triggers, funding): the
        caller bounds those from the prices to come."""
        store_down = self.store_guard is not None and self.store_guard.down
        if self._tasks or self.leases is not None or self._retiring or store_down:
            return None
        due = [datetime.max.replace(tzinfo=UTC)]
        for venue in self._venues.values():
            if venue.running or venue.paper is not None or not venue.sync.at_rest():
                return None
            if venue.health is not None and self.health_policy.failing(venue.health):
                return None
            if venue.interval_s > step.total_seconds():
                last = venue.sync.last_run
                if last is None:
                    return None
                due.append(last + timedelta(seconds=venue.interval_s))
        for state in self._states.values():
            if state.lock.locked() or state.flatten_requested or state.gate is not None:
                return None  # a trader with triggers is evaluated every tick
            if self.app.get_trader(state.runtime.settings.config_id).pending:
                return None
            at = self._due_at(state)
            if at is not None:
                due.append(at)
        if self.rebalancer is not None:
            last_run = self.rebalancer.last_run
            if last_run is None:
                return None
            due.append(last_run + timedelta(seconds=self.rebalancer.interval_s))
        earliest = min(due)
        return earliest if earliest > now else None

    def marked_venues(self) -> list[tuple[MarketData, list[str], list[MarkedToMarket]]]:
        """Each market provider, the coins its mids are asked for and the in-process
        venues a tick marks with them (as ``mark`` does)."""
        markets: dict[int, tuple[MarketData, set[str], list[Exchange]]] = {}
        for state in self._all_states():
            rt = state.runtime
            entry = markets.setdefault(id(rt.market), (rt.market, set(), []))
            entry[1].update(rt.settings.coins)
            if rt.exchange not in entry[2]:
                entry[2].append(rt.exchange)
        return [
            (market, sorted(coins), [e for e in exchanges if _marked_to_market(e)])
            for market, coins, exchanges in markets.values()
        ]

    async def mark(self, now: datetime) -> None:
        """Mark the in-process venues to market at ``now`` (what a tick does first)."""
        await self._mark(now)

    async def _mark(self, now: datetime) -> dict[int, dict[str, Decimal]]:
        """Fetch mids once per market provider and mark in-process venues to market.

        A provider that knows the minute candles (a replay) gives the path of the minute
        that closed at ``now``, and the venues walk it (a stop the minute's low reached
        fires there, not at the close); the mids are that path's close."""
        result: dict[int, dict[str, Decimal]] = {}
        for market, coins, marked in self.marked_venues():
            path: MinutePath | None = None
            try:
                if marked and _intrabar(market):
                    path = await market.minute_path(coins, now)
                mids = dict(path.points[-1]) if path else await market.mids(coins, now)
            except MarketDataError as exc:
                log.debug("no mids at %s: %s", now.isoformat(), exc)
                continue
            result[id(market)] = mids
            if not marked:
                continue
            funding: dict[str, Decimal] | None = None
            if isinstance(market, FundingFeed):
                try:
                    funding = await market.funding_rates(coins, now)
                except MarketDataError as exc:
                    log.debug("no funding rates at %s: %s", now.isoformat(), exc)
            for exchange in marked:
                if path is not None and _path_marked(exchange):
                    exchange.mark_path(path, now, funding)
                else:
                    exchange.mark(mids, now, funding)
        return result

    # -- exchange health: paper twins while a venue fails -------------------------------------

    def _shadow_venues(self) -> list[_VenueState]:
        live = [v.paper.venue for v in self._venues.values() if v.paper is not None]
        retiring = {id(t.runtime.exchange) for t in self._retiring}
        self._shadows = [
            v for v in self._shadows if id(v.exchange) in retiring or any(v is x for x in live)
        ]
        return self._shadows

    def _twin_due(self, state: _TraderState, on_paper: dict[str, str], now: datetime) -> bool:
        config_id = state.runtime.settings.config_id
        real = next((r for r, t in on_paper.items() if t == config_id), None)
        if real is None:
            return False
        owner = self._states[real]
        # The operator's pause of the real trader holds for its twin too.
        if owner.paused or not owner.runtime.settings.auto_start:
            return False
        return self._due(state, now)

    async def _check_health(self, venue: _VenueState, now: datetime) -> None:
        health = venue.health
        if health is None or self.paper_venue is None:
            return
        if venue.paper is None:
            if self.health_policy.failing(health):
                await self._to_paper(venue, health, now)
        elif (
            venue.reconciled_at is not None
            and venue.reconciled_at > venue.paper.since
            and self.health_policy.passing(health)
        ):
            self._to_venue(venue, health, now)

    async def _to_paper(self, venue: _VenueState, health: VenueHealth, now: datetime) -> None:
        assert self.paper_venue is not None
        name = venue.exchange.name
        pct = _pct(health)
        shadow_exchange = self.paper_venue(venue.exchange)
        try:
            await shadow_exchange.start()
        except ExchangeError as exc:
            log.error("exchange %s failing, and its paper venue did not start: %r", name, exc)
            self.alerts.alert("venue", "exchange_switch_failed", f"{name}: {exc}")
            return
        runtimes: list[tuple[str, TraderRuntime]] = []
        for config_id in venue.traders:
            rt = self._states[config_id].runtime
            cfg = rt.settings
            twin_id = paper_twin_id(config_id)
            owner = self.app.get_trader(config_id)
            equity = max(owner.account(owner.marks).equity, Decimal(0))
            twin_cfg = replace(
                cfg,
                config_id=twin_id,
                name=f"{cfg.name} (paper)",
                allocation=equity,
                exchange=shadow_exchange.name,
            )
            self._register_twin(twin_cfg, now)
            self._locks.setdefault(twin_id, asyncio.Lock())
            runtimes.append((config_id, replace(rt, settings=twin_cfg, exchange=shadow_exchange)))
        shadow = self._venue(shadow_exchange, [r.settings for _, r in runtimes], 0.0)
        await shadow.sync.register(now)
        await shadow.sync.run(now, startup=True)
        shadow.sync.last_run = now
        twins = {real: self._state(rt, shadow) for real, rt in runtimes}
        venue.paper = _Paper(shadow, twins, now)
        self._shadows.append(shadow)
        for real, twin in twins.items():
            twin_id = twin.runtime.settings.config_id
            owner = self.app.get_trader(real)
            owner.switch_venue(
                venue=name,
                to="paper",
                failure_pct=pct,
                requests=health.requests,
                paper_trader=twin_id,
                at=now,
            )
            self.app.save_trader(owner)
            message = (
                f"{name}: {pct}% of {health.requests} requests failed; decisions of {real} "
                f"go to {twin_id} on the simulator, its venue positions stay protected there"
            )
            log.warning("trader=%s %s", real, message)
            self.alerts.alert(real, "exchange_switch", message)

    def _register_twin(self, cfg: TraderSettings, now: datetime) -> None:
        twin = self.app.find_trader(cfg.config_id)
        if twin is None:
            twin = _new_trader(cfg, now)
        else:
            twin.allocate(cfg.allocation, now)
            twin.resume("venue failing again: the twin decides", now)
        self.app.save_trader(twin)

    def _to_venue(self, venue: _VenueState, health: VenueHealth, now: datetime) -> None:
        assert venue.paper is not None
        name = venue.exchange.name
        pct = _pct(health)
        for real, twin in venue.paper.twins.items():
            twin_id = twin.runtime.settings.config_id
            paper = self.app.get_trader(twin_id)
            reason = f"{name} passed its health check and was reconciled"
            paper.record_control("flatten", reason, "engine", now)
            paper.pause("venue_restored", reason, now)
            self.app.save_trader(paper)
            self._retiring.append(twin)
            owner = self.app.get_trader(real)
            owner.switch_venue(
                venue=name,
                to="venue",
                failure_pct=pct,
                requests=health.requests,
                paper_trader=twin_id,
                at=now,
            )
            self.app.save_trader(owner)
            message = f"{name}: healthy again ({pct}% failed); {real} decides on it again"
            log.warning("trader=%s %s", real, message)
            self.alerts.alert(real, "exchange_switch", message)
        venue.paper = None

    # -- several engines --------------------------------------------------------------------

    def owns(self, config_id: str, owned: frozenset[str] | None = None) -> bool:
        """Whether this engine drives ``config_id`` now (a paper twin follows its trader);
        ``owned``: the held traders, when the caller already has them."""
        if self.leases is None:
            return True
        held = self.leases.traders() if owned is None else owned
        return real_trader_id(config_id) in held

    def _sync_scope(self, venue: _VenueState) -> tuple[frozenset[str] | None, bool]:
        """(traders this engine reconciles, whether it writes the venue account)."""
        if self.leases is None:
            return None, True
        return self.leases.traders(), self.leases.holds(venue_lease(venue.exchange.name))

    async def release_leases(self) -> None:
        """Hand every lease back (a graceful stop) so the others need not wait out the ttl."""
        if self.leases is None or self._lease_thread is None:
            return
        await asyncio.get_running_loop().run_in_executor(
            self._lease_thread, self.leases.release_all
        )
        self._lease_thread.shutdown(wait=False)

    def _adopt(self, now: datetime) -> None:
        """Make the traders this engine took since the last tick ready: registered (their
        last owner may have died before it registered them) and held back from deciding
        until their venue has been reconciled (an order it sent may not be booked)."""
        if self.leases is None:
            return
        held = self.leases.traders()
        for venue in self._venues.values():
            venue.unsettled &= held
        for config_id in sorted(held - self._adopted):
            state = self._states.get(config_id)
            if state is None:
                continue  # not in this engine's configuration
            if self.app.find_trader(config_id) is None:
                self._register(state.runtime.settings, now)
            venue = self._venues[id(state.runtime.exchange)]
            venue.unsettled.add(config_id)
            venue.sync.last_run = None  # reconcile this tick
        self._adopted = held

    def _settling(self, config_id: str) -> bool:
        real = self._states.get(real_trader_id(config_id))
        if real is None:
            return False
        venue = self._venues[id(real.runtime.exchange)]
        return real.runtime.settings.config_id in venue.unsettled

    async def _keep_leases(self) -> None:
        """Renew every ttl/3 (off the event loop: it waits on the database)."""
        keeper = self.leases
        if keeper is None:
            return
        now = keeper.monotonic()
        if self._leases_kept_at is not None and now - self._leases_kept_at < keeper.ttl / 3:
            return
        self._leases_kept_at = now
        await asyncio.get_running_loop().run_in_executor(self._lease_thread, keeper.tick)
        taken = keeper.drain_takeovers()
        if taken:
            # The new traders' fills may be older than this engine's cursors.
            for venue in self._venues.values():
                venue.sync.rewind_cursors()
        for lease in taken:
            message = (
                f"took over {lease.name} from engine {lease.previous_owner} (token {lease.token})"
            )
            log.warning(message)
            self.alerts.alert(lease.name.partition(":")[2], "engine_takeover", message)
        for name in keeper.drain_lost():
            message = f"lost {name} to another engine; this engine no longer acts for it"
            log.warning(message)
            self.alerts.alert(name.partition(":")[2], "lease_lost", message)

    def _spawn(self, config_id: str, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work, name=f"trader:{config_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _flatten(self, state: _TraderState) -> None:
        async with state.lock:
            try:
                with acting_for(real_trader_id(state.runtime.settings.config_id)):
                    report = await state.flattener.run(state.runtime.settings)
            except Exception as exc:  # noqa: BLE001 - logged and alerted; retried next tick
                if not self._store_down(exc):
                    self._failed(state, "flatten", exc)
                return
            for problem in report.problems:
                log.warning("trader=%s flatten: %s", report.trader, problem)
            self._refresh(state)

    async def _cycle(
        self, state: _TraderState, now: datetime, wake: WakeRecord | None = None
    ) -> None:
        async with state.lock:
            if self.store_guard is not None and self.store_guard.down:
                return  # spawned before another cycle found the store down: due again later
            if self._slots is None:
                await self._counted(state, now, wake)
                return
            async with self._slots:  # at most max_concurrent_decisions cycles at once
                await self._counted(state, now, wake)

    async def _counted(self, state: _TraderState, now: datetime, wake: WakeRecord | None) -> None:
        self.deciding += 1
        self.most_deciding = max(self.most_deciding, self.deciding)
        try:
            await self._run_cycle(state, now, wake)
        finally:
            self.deciding -= 1
            if state.gate is not None:
                # What this call did (its own fills, its closes) is not news for the gates.
                self._settle(state)

    def _settle(self, state: _TraderState) -> None:
        assert state.gate is not None
        trader = self.app.find_trader(state.runtime.settings.config_id)
        if trader is not None:
            state.facts = _facts(trader)
            state.gate.settle(state.facts)
            self.gates.save(state.runtime.settings.config_id, state.gate, self.clock.now())

    async def _run_cycle(
        self, state: _TraderState, now: datetime, wake: WakeRecord | None = None
    ) -> None:
        config_id = state.runtime.settings.config_id
        started = time.perf_counter()
        try:
            with acting_for(real_trader_id(config_id)):
                outcome: CycleOutcome = await (
                    state.cycle.run(now) if wake is None else state.cycle.run(now, wake=wake)
                )
            self.cycles_run += 1
            if self.on_cycle is not None:
                self.on_cycle(config_id, time.perf_counter() - started)
            state.failures_in_row = 0
            if outcome.status == "paused":
                log.debug("trader=%s is paused", config_id)
        except Exception as exc:  # noqa: BLE001 - logged and alerted; the others go on
            if self._store_down(exc):
                return  # not the trader's failure; the cycle is due again once the store is
            self._failed(state, "cycle", exc)
            # Do not hammer a broken trader every tick: wait for its next interval.
            state.last_cycle_at = now
            return
        self._refresh(state, look=False)

    def _failed(self, state: _TraderState, what: str, exc: Exception) -> None:
        config_id = state.runtime.settings.config_id
        state.failures_in_row += 1
        log.error("trader=%s %s failed: %r", config_id, what, exc, exc_info=exc)
        self.alerts.alert(config_id, f"{what}_error", repr(exc))


def _facts(trader: Trader) -> TraderFacts:
    """What a trader's gates read of it: its positions' invalidation conditions, its newest
    fill and how many positions it has closed."""
    held = []
    for coin, position in sorted(trader.positions.items()):
        plan = position.context.exit_plan
        held.append(HeldPosition(coin, plan.invalidation_condition if plan else ""))
    return TraderFacts(tuple(held), trader.last_fill_at, trader.num_trades)


def _pct(health: VenueHealth) -> Decimal:
    return (Decimal(str(health.ratio())) * 100).quantize(Decimal("0.01"))
