"""``nof0 backtest``: the engine itself over recorded candles, as fast as it decides.

Not a second engine: the configured traders run through the same manager, cycle, risk,
order and reconciliation code as ``nof0 run``, against the in-process simulator, with the
market a replay of the candle files (its point-in-time guard refuses anything stamped
after the cycle's time) and a manual clock stepped one minute at a time. The run writes
its own event store and views into its own directory, so ``nof0 serve --data-dir RUN``,
``nof0 report RUN``, ``nof0 replay verify --data-dir RUN`` and ``nof0 projections rebuild
--data-dir RUN`` all work on it. ``backtest.json`` there holds the inputs (with the
candle files' SHA-256), the figures and the trades' fingerprint: the same inputs give the
same fingerprint.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from application.manager import Arena
from application.ports import MarketDataError
from application.redaction import redact
from application.trading import TradingApp
from infrastructure.clock import ManualClock
from infrastructure.config.loader import LoadedConfig
from infrastructure.config.models import (
    HyperliquidExchangeConfig,
    ReplayMarketConfig,
    SimExchangeConfig,
)
from infrastructure.event_log import StoredLog
from infrastructure.files import atomic_write
from infrastructure.hyperliquid.simulated import SimulatedHyperliquid
from infrastructure.market.history_tape import HistoryTape
from infrastructure.market.recorded import read_frames
from infrastructure.market.replay import ReplayMarket, as_rate
from infrastructure.models.baseline import RandomParams
from infrastructure.reports.source import read_positions
from projections.documents import TradeDoc, TradesDocument
from projections.rebuild import replay_outputs
from projections.replicas import ReplicaSummary, aggregate_replicas, luck_test
from projections.report import RunReport, trades_fingerprint

if TYPE_CHECKING:  # bootstrap wires the backtest; importing it at run time would loop
    from infrastructure.bootstrap import Engine
    from infrastructure.projection_worker import ProjectionWorker

BuildEngine = Callable[[LoadedConfig, ManualClock, int], "Engine"]
#: Runs several independent backtests (each into its plan's ``out``), results in order:
#: one after another, or side by side in processes (``--workers``).
RunAll = Callable[[Sequence[tuple[LoadedConfig, "BacktestPlan"]]], list["BacktestResult"]]

PROVIDER = "backtest"
STEP = timedelta(minutes=1)


class BacktestError(Exception):
    """The backtest cannot run as asked; the message says why."""


@dataclass(frozen=True)
class BacktestPlan:
    start: datetime
    end: datetime
    candles: dict[str, Path]  # coin -> one-minute CSV (or none, with a store)
    out: Path
    traders: Sequence[str] = ()  # config ids; empty: every configured trader
    history_days: int = 12
    #: The replica: seeds the random baseline's draws and the simulator's book (0: as
    #: configured).
    seed: int = 0
    #: The market history store (``nof0 data``) to read ``coins`` from, instead of files.
    store: Path | None = None
    coins: Sequence[str] = ()
    #: A recorded arena's snapshots (``nof0 replay run DATA_DIR``) instead of candles.
    snapshots: Path | None = None
    #: Traders of a real venue run on a simulator with its fees (a recorded arena's
    #: counterfactual); otherwise such a trader is refused.
    simulate_venues: bool = False
    #: Fill randomness of replicas (``--seeds N``): the simulator's spread varies by this
    #: share per price update, seeded by the replica (None: as the venue is configured).
    spread_jitter: float | None = None
    #: Settle the quiet minutes between decisions in bulk (see ``_BulkSteps``); False:
    #: a full arena tick every minute (the reference the bulk path is tested against).
    bulk: bool = True

    @property
    def market_coins(self) -> list[str]:
        return list(self.candles) if self.candles else [c.upper() for c in self.coins]

    def store_tape(self) -> HistoryTape:
        """The store's candles this plan replays (the warm-up included)."""
        assert self.store is not None
        return HistoryTape.from_store(
            self.store,
            self.market_coins,
            self.start - timedelta(days=self.history_days),
            self.end,
        )


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    at: datetime
    elapsed_s: float

    @property
    def eta_s(self) -> float | None:
        if self.done == 0:
            return None
        return self.elapsed_s / self.done * (self.total - self.done)


@dataclass(frozen=True)
class BacktestResult:
    out: Path
    traders: list[str]
    coins: list[str]
    minutes: int
    cycles: int
    trades: int
    seconds: float
    fingerprint: str
    #: Minutes the arena ticked in full (the others were settled in bulk).
    ticks: int = 0

    @property
    def candles_per_s(self) -> float:
        """Minute candles replayed per second (coins × minutes / wall time)."""
        return len(self.coins) * self.minutes / self.seconds if self.seconds else 0.0


def trader_records(config: LoadedConfig) -> dict[str, dict[str, Any]]:
    """What each trader ran with: its settings and its prompt templates' SHA-256 (a
    counterfactual checks that nothing but its change differs)."""
    records = {}
    for trader in config.manager.traders:
        record = trader.model_dump(mode="json")
        # What else shapes its result: its venue's fees and book, the arena's capital.
        record["venue"] = config.exchange.providers[trader.exchange_provider].model_dump(
            mode="json"
        )
        record["arena"] = config.manager.manager.model_dump(mode="json")
        for field in ("prompt_template", "executor_prompt_template"):
            path = config.resolve("Manager", getattr(trader, field))
            record[f"{field}_sha256"] = _sha256(path) if path.is_file() else None
        records[trader.id] = record
    return records


def candle_record(plan: BacktestPlan) -> dict[str, Any]:
    """Where the candles came from, and their digest: a replay checks it is the same path."""
    if plan.snapshots is not None:
        return {
            "snapshots": str(plan.snapshots.resolve()),
            "coins": plan.market_coins,
            "sha256": _sha256(plan.snapshots),
        }
    if plan.store is not None:
        return {
            "store": str(plan.store.resolve()),
            "coins": plan.market_coins,
            "sha256": plan.store_tape().digest(),
        }
    return {
        coin: {"file": str(path), "sha256": _sha256(path)} for coin, path in plan.candles.items()
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def backtest_config(config: LoadedConfig, plan: BacktestPlan) -> LoadedConfig:
    """The configuration of the run: the chosen traders on the candles' coins, their
    market a replay of the candle files, their venue the in-process simulator."""
    if plan.end <= plan.start:
        raise BacktestError(f"--to {plan.end.isoformat()} is not after --from")
    if plan.candles and plan.store is not None:
        raise BacktestError("give --candles files or --coins from the history store, not both")
    if not plan.market_coins:
        raise BacktestError(
            "no candles: give --coins BTC,ETH (from nof0 data) or --candles COIN=PATH "
            "(one-minute CSV) per coin"
        )
    known = {t.id: t for t in config.manager.traders}
    unknown = [t for t in plan.traders if t not in known]
    if unknown:
        raise BacktestError(
            f"no trader {', '.join(unknown)} in the configuration (there are: {', '.join(known)})"
        )
    chosen = [known[t] for t in plan.traders] if plan.traders else list(known.values())
    coins = plan.market_coins
    traders = []
    venues: dict[str, SimExchangeConfig] = {}
    for trader in chosen:
        venue = config.exchange.providers.get(trader.exchange_provider)
        if isinstance(venue, HyperliquidExchangeConfig) and plan.simulate_venues:
            venue = SimExchangeConfig(
                type="sim",
                fee_taker_bps=venue.fee_taker_bps,
                timeout=venue.timeout,
                retry=venue.retry,
                capabilities=["market_orders", "reduce_only", "trigger_orders", "leverage"],
            )
        if not isinstance(venue, SimExchangeConfig):
            raise BacktestError(
                f"{trader.id} trades on {trader.exchange_provider}, not the simulator: a "
                "backtest never sends orders to a venue"
            )
        shared = [c for c in trader.coins if c in coins]
        if not shared:
            raise BacktestError(
                f"{trader.id} trades {', '.join(trader.coins)}; the candles hold "
                f"{', '.join(coins)} (give --candles for one of its coins, or leave it out "
                "with --traders)"
            )
        # Each trader on a simulator account of its own: on one shared account a coin
        # belongs to one trader at a time, and with few coins one trader would hold them all.
        own_venue = f"{PROVIDER}-{trader.id}"
        update_venue: dict[str, Any] = {"seed": venue.seed + plan.seed}
        if plan.spread_jitter is not None and not venue.book.spread_jitter:
            update_venue["book"] = venue.book.model_copy(
                update={"spread_jitter": plan.spread_jitter}
            )
        venues[own_venue] = venue.model_copy(update=update_venue)
        update = {"market_provider": PROVIDER, "coins": shared, "exchange_provider": own_venue}
        traders.append(trader.model_copy(update=update))
    source: dict[str, Any]
    if plan.snapshots is not None:
        source = {"source": "recorded", "snapshots": str(plan.snapshots.resolve()), "coins": coins}
    elif plan.store is not None:
        source = {"source": "history", "store": str(plan.store.resolve()), "coins": coins}
    else:
        files = {coin: str(path.resolve()) for coin, path in plan.candles.items()}
        source = {"source": "history", "candles": files}
    provider = ReplayMarketConfig.model_validate(
        {
            "type": "replay",
            **source,
            "start": plan.start,
            "end": plan.end,
            "history_days": plan.history_days,
            "max_staleness": 90.0,
            "timeout": 5.0,
            "retry": {"max_attempts": 1, "backoff": 0.0},
            "capabilities": ["candles_3m", "candles_4h", "mids", "funding", "replay"],
        }
    )
    market = config.market.model_copy(
        update={"default": PROVIDER, "providers": {**config.market.providers, PROVIDER: provider}}
    )
    # The run is its own: SQLite events and JSON views in its directory (never the live
    # arena's PostgreSQL or Redis), no leases, and no alerts to the operator's webhook.
    main = config.main.model_copy(
        update={
            "Postgres": config.main.Postgres.model_copy(update={"DataSource": ""}),
            "Cache": [],
        }
    )
    monitoring = config.manager.monitoring.model_copy(update={"alert_webhook": ""})
    # Backtests share one prompt cache that never expires: a re-run asks no model again
    # (a cycle's prompt holds its time and state, so only the same cycle hits it).
    cache = config.llm.cache.model_copy(
        update={
            "path": str(config.data_dir.resolve() / "backtests" / "llm_cache.sqlite3"),
            "ttl": 0,
        }
    )
    llm = config.llm.model_copy(update={"cache": cache})
    manager = config.manager.model_copy(update={"traders": traders, "monitoring": monitoring})
    exchange = config.exchange.model_copy(
        update={"providers": {**config.exchange.providers, **venues}}
    )
    return dataclasses.replace(
        config,
        main=main,
        llm=llm,
        market=market,
        manager=manager,
        exchange=exchange,
        data_dir=plan.out,
        durable_events=False,  # reproducible from its inputs: commits need not wait for disk
        sole_writer=True,  # and no other process writes it
    )


#: Prompt tokens of one cycle: measured 4,415 (cl100k) for six coins and two positions with
#: the default template, about 600 fixed and 650 per coin.
PROMPT_TOKENS_BASE, PROMPT_TOKENS_PER_COIN = 600, 650
#: A decision answer is usually well under the completion cap; the cap is the bound.
TYPICAL_ANSWER_TOKENS = 800


@dataclass(frozen=True)
class TraderCost:
    trader: str
    model: str
    calls: int
    tokens_in: int
    tokens_out_typical: int
    tokens_out_max: int
    dollars_typical: float
    dollars_max: float


@dataclass(frozen=True)
class CostEstimate:
    """Model calls of a backtest's LLM traders, before the prompt cache answers any."""

    traders: list[TraderCost]

    @property
    def calls(self) -> int:
        return sum(t.calls for t in self.traders)

    @property
    def dollars_typical(self) -> float:
        return sum(t.dollars_typical for t in self.traders)

    @property
    def dollars_max(self) -> float:
        return sum(t.dollars_max for t in self.traders)


def _prices(config: LoadedConfig, model: str) -> tuple[float, float]:
    price = config.llm.budget.cost_per_million_tokens.get(model)
    if price is None:
        return 0.0, 0.0
    if isinstance(price, (int, float)):
        return float(price), float(price)
    return price.input, price.output


def estimate_cost(
    config: LoadedConfig,
    plan: BacktestPlan,
    intervals: dict[str, float],
    *,
    baseline_prefix: str,
) -> CostEstimate:
    minutes = (plan.end - plan.start) / STEP
    rows = []
    for trader in config.manager.traders:
        if trader.model.startswith(baseline_prefix):
            continue
        calls = int(minutes * 60 // max(intervals[trader.id], 60.0)) + 1
        tokens_in = calls * (PROMPT_TOKENS_BASE + PROMPT_TOKENS_PER_COIN * len(trader.coins))
        spec = config.llm.models.get(trader.model)
        cap = spec.max_completion_tokens if spec is not None else 4096
        out_typical, out_max = calls * min(TYPICAL_ANSWER_TOKENS, cap), calls * cap
        price_in, price_out = _prices(config, trader.model)
        rows.append(
            TraderCost(
                trader=trader.id,
                model=trader.model,
                calls=calls,
                tokens_in=tokens_in,
                tokens_out_typical=out_typical,
                tokens_out_max=out_max,
                dollars_typical=(tokens_in * price_in + out_typical * price_out) / 1e6,
                dollars_max=(tokens_in * price_in + out_max * price_out) / 1e6,
            )
        )
    return CostEstimate(rows)


async def _run(
    config: LoadedConfig,
    plan: BacktestPlan,
    build_engine: BuildEngine,
    progress: Callable[[Progress], None],
) -> tuple[int, int]:
    """(cycles run, minutes ticked in full)."""
    clock = ManualClock(plan.start)
    engine = build_engine(config, clock, plan.seed)
    await engine.start()
    total = int((plan.end - plan.start) / STEP)
    began = time.perf_counter()
    report_every = max(1, total // 200)
    reported = 0
    recorder = engine.app.recorder
    bulk = _BulkSteps(engine.arena, plan.start) if plan.bulk else None
    done = ticks = 0
    quiet = False  # the last tick recorded nothing
    if plan.snapshots is not None:
        # A recorded arena: the clock goes to each recorded cycle's instant, so a trader is
        # due exactly when the arena's own cycle was (stepping minutes would make it due
        # just before the snapshot it should decide on, and serve it the previous one).
        times = [frame.as_of for frame in read_frames(plan.snapshots)]
        for n, at in enumerate(times, start=1):
            clock.advance(max(0.0, (at - clock.now()).total_seconds()))
            await engine.arena.tick()
            await engine.arena.drain()
            ticks += 1
            if n * 200 // len(times) > reported or n == len(times):
                reported = n * 200 // len(times)
                progress(Progress(n, len(times), clock.now(), time.perf_counter() - began))
        done = total
    # The log's head after the last tick: one read a tick tells whether it recorded
    # anything (a write between ticks, none expected, only makes the next tick not quiet).
    head = recorder.max_notification_id() if bulk is not None else None
    while done < total:
        target = done + 1
        if bulk is not None and quiet:
            target = await bulk.settle(done, total)
        clock.advance((target - done) * STEP.total_seconds())
        await engine.arena.tick()
        await engine.arena.drain()
        ticks += 1
        if bulk is not None:
            after = recorder.max_notification_id()
            quiet = after == head
            head = after
        done = target
        if done // report_every > reported or done == total:
            reported = done // report_every
            progress(Progress(done, total, clock.now(), time.perf_counter() - began))
    _catch_up(engine.worker, engine.app)
    return engine.arena.cycles_run, ticks


#: Events per batch of a backtest's final view catch-up (a live worker's batches stay
#: small: bounded work per call, between the engine's own writes).
CATCH_UP_BATCH = 20_000
#: A run's views and tables, written for the first time at its end, are replayed the way
#: ``projections rebuild`` replays them (the same bytes; tests compare).
BULK_CATCH_UP = True


def _catch_up(worker: ProjectionWorker, app: TradingApp) -> None:
    """Bring the run's views and tables to the head of its log. Views nothing has written
    yet (a run's, at its end) are replayed in bulk and written once, like a rebuild;
    otherwise they catch up in large batches (each batch writes every view it changed).
    Views do not depend on where batches end (a rebuild equals an incremental catch-up)."""
    head = app.max_position()
    log = StoredLog(app)
    worker.batch_size = CATCH_UP_BATCH
    for view_target in worker.targets:
        namespace = view_target.current()
        if BULK_CATCH_UP and namespace is not None and view_target.catchup is None:
            store = view_target.open_store(namespace)
            projectors = worker.projectors()
            if all(store.read(p.primary) is None for p in projectors):
                outputs, _ = replay_outputs(log, projectors, head)
                for output in outputs:
                    store.write(output)
                continue
        if view_target.catchup is not None:
            view_target.catchup.batch_size = worker.batch_size
        while worker.pump(view_target):
            pass
    if worker.tables is not None:
        if BULK_CATCH_UP and worker.tables.store.position() is None:
            worker.tables.rebuild(head, log)
            return
        worker.tables.batch_size = CATCH_UP_BATCH
        while worker.tables.pump():
            pass


#: The simulator caps a funding rate at 4 % an hour.
MAX_HOURLY_FUNDING = Decimal("0.04")


class _BulkSteps:
    """The minutes between decisions, settled without the arena's tick.

    After a tick that recorded nothing, the minutes up to the next one with work for the
    arena (``Arena.next_work_at``: a trader due, ...) only mark the simulator, and most of
    those marks set nothing off. The simulator bounds, from the coming candles' lows and
    highs, how many are sure to be quiet (``SimulatedHyperliquid.quiet_marks``: a minute's
    whole path, open to close through both extremes, lies within its range); those are
    taken in bulk (``mark_quiet``: each minute's path, update for update), a funding hour
    among them is marked in full (funding is settled there, with the hour's price and
    rate, and booked by the next tick's reconciliation, as the minute path books it), and
    the first minute that may not be quiet gets a full tick. So the run records what it
    records minute by minute: the same events, the same trades fingerprint, the same
    equity (tests/integration).

    Conservative: nothing is skipped while the arena cannot say when it has work (None),
    or says it needs every tick (``needs_every_tick``, per-trader price triggers), or a
    venue or market is not the in-process simulator and the replay.
    """

    def __init__(self, arena: Arena, start: datetime) -> None:
        self.arena = arena
        self.start = start

    def _at(self, minute: int) -> datetime:
        return self.start + minute * STEP

    def _groups(self) -> list[tuple[ReplayMarket, list[str], list[SimulatedHyperliquid]]] | None:
        groups = []
        for market, coins, venues in self.arena.marked_venues():
            replay = getattr(market, "inner", market)
            sims = [v for v in venues if isinstance(v, SimulatedHyperliquid)]
            if not isinstance(replay, ReplayMarket) or len(sims) != len(venues):
                return None
            groups.append((replay, coins, sims))
        return groups

    async def settle(self, done: int, total: int) -> int:
        """Settle the quiet minutes after minute ``done``; the next minute to tick."""
        arena = self.arena
        needs_every_tick = getattr(arena, "needs_every_tick", None)
        if callable(needs_every_tick) and needs_every_tick():
            return done + 1
        due = arena.next_work_at(self._at(done), STEP)
        groups = self._groups()
        if due is None or groups is None:
            return done + 1
        limit = total
        if due < self._at(total):
            limit = min(total, -(-(due - self.start) // STEP))  # the first tick at or after
        while done + 1 < limit:
            now = self._at(done)
            hour = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
            hour_tick = -(-(hour - self.start) // STEP)  # the tick that settles funding
            last = min(limit - 1, hour_tick)
            count = last - done
            times = [self._at(done + 1 + j) for j in range(count)]
            quiet = count
            windows = []
            for market, coins, venues in groups:
                try:
                    ranges = market.minute_ranges(coins, times[0], count)
                except MarketDataError:
                    return done + 1
                lows = {c: r[0] for c, r in ranges.items()}
                highs = {c: r[1] for c, r in ranges.items()}
                rate = Decimal(0)
                if last == hour_tick:
                    worst = max(float(np.max(np.abs(r[3]))) for r in ranges.values())
                    rate = min(MAX_HOURLY_FUNDING, Decimal(repr(worst * 1.001)))
                for venue in venues:
                    quiet = min(quiet, venue.quiet_marks(times, lows, highs, rate))
                windows.append((ranges, venues))
            take = quiet if quiet < count or last != hour_tick else count - 1
            for (market, coins, _), (ranges, venues) in zip(groups, windows, strict=True):
                # Each minute's path, as the tick's ``Arena._mark`` would walk it.
                paths = market.minute_paths(coins, times[0], take) if take else []
                marks = tuple(  # one tuple for every venue: walked once (mark_quiet)
                    (times[j], paths[j], {c: as_rate(float(r[3][j])) for c, r in ranges.items()})
                    for j in range(take)
                )
                for venue in venues:
                    venue.mark_quiet(marks)
            if quiet < count:
                return done + take + 1
            done += take
            if last == hour_tick:
                done += 1
                await arena.mark(self._at(done))  # funding: proven to set nothing else off
        return limit


def run_backtest(
    config: LoadedConfig,
    plan: BacktestPlan,
    *,
    build_engine: BuildEngine,
    current_views: Callable[[LoadedConfig], Path],
    progress: Callable[[Progress], None] = lambda _: None,
) -> BacktestResult:
    if plan.out.exists() and any(plan.out.iterdir()):
        raise BacktestError(f"{plan.out} is not empty: give a new --out for each run")
    run_config = backtest_config(config, plan)
    plan.out.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    cycles, ticks = asyncio.run(_run(run_config, plan, build_engine, progress))
    seconds = time.perf_counter() - began
    trades = msgspec.json.decode(
        (current_views(run_config) / "trades.json").read_bytes(), type=TradesDocument
    ).trades
    result = BacktestResult(
        out=plan.out,
        traders=[t.id for t in run_config.manager.traders],
        coins=plan.market_coins,
        minutes=int((plan.end - plan.start) / STEP),
        cycles=cycles,
        trades=len(trades),
        seconds=seconds,
        fingerprint=trades_fingerprint(trades),
        ticks=ticks,
    )
    summary = backtest_summary(plan, run_config, result)
    atomic_write(plan.out / "backtest.json", json.dumps(summary, indent=2).encode())
    return result


def backtest_summary(
    plan: BacktestPlan, run_config: LoadedConfig, result: BacktestResult
) -> dict[str, Any]:
    """``backtest.json``: the run's inputs, figures and fingerprint."""
    return {
        "seed": plan.seed,
        "spread_jitter": plan.spread_jitter,
        "from": plan.start.isoformat(),
        "to": plan.end.isoformat(),
        "traders": {t.id: t.model for t in run_config.manager.traders},
        "trader_configs": trader_records(run_config),
        "candles": candle_record(plan),
        "minutes": result.minutes,
        "cycles": result.cycles,
        "ticks": result.ticks,
        "trades": result.trades,
        "seconds": round(result.seconds, 3),
        "candles_per_s": round(result.candles_per_s),
        "fingerprint": result.fingerprint,
    }


# -- replicas (--seeds N) ------------------------------------------------------------------

#: Replicas' fill randomness (all but replica 0): the half-spread varies ±50 % per price
#: update, so that even a deterministic strategy's replicas fill at different prices.
REPLICA_SPREAD_JITTER = 0.5


#: The KPIs compared with the null in the luck test.
LUCK_KPIS = ("total_return", "sharpe")


@dataclass(frozen=True)
class ReplicaTable:
    """Each trader's KPIs over the replicas: mean and interval, and the luck verdicts."""

    seeds: int
    null: str | None
    traders: dict[str, dict[str, ReplicaSummary]]
    verdicts: dict[str, dict[str, str]]  # trader -> KPI -> label (against the null)
    fingerprints: list[str]
    #: --matched-null: trader -> its own null (model spec, how close the match came, and
    #: the luck verdicts against it).
    matched: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

    def document(self) -> dict[str, object]:
        return {
            "seeds": self.seeds,
            "null": self.null,
            "fingerprints": self.fingerprints,
            "traders": {
                trader: {kpi: dataclasses.asdict(summary) for kpi, summary in kpis.items()}
                for trader, kpis in self.traders.items()
            },
            "luck": self.verdicts,
            "matched_null": self.matched,
        }


def replica_table(
    runs: Sequence[BacktestResult], read: Callable[[Path], RunReport], null: str | None
) -> ReplicaTable:
    """Aggregate the replicas' reports; each trader is tested against ``null`` (a random
    trader run over the same replicas) on ``LUCK_KPIS``."""
    flats: dict[str, list[dict[str, float | None]]] = {}
    for run in runs:
        for trader in read(run.out).traders:
            flats.setdefault(trader.model_id, []).append(trader.kpis.flat())
    traders = {model: aggregate_replicas(rows) for model, rows in flats.items()}
    verdicts: dict[str, dict[str, str]] = {}
    if null is not None and null in traders:
        for model, kpis in traders.items():
            if model != null:
                verdicts[model] = {
                    kpi: luck_test(kpis, traders[null], kpi).label for kpi in LUCK_KPIS
                }
    return ReplicaTable(len(runs), null, traders, verdicts, [r.fingerprint for r in runs])


def matched_params(
    trades: Sequence[TradeDoc],
    *,
    minutes: int,
    interval_s: float,
    coins: int,
    still_open: Sequence[tuple[float, float, float]] = (),
) -> RandomParams:
    """A random trader's odds, leverage and size matched to ``trades``: it enters a flat coin
    as often as they did per cycle, leaves a held one at the rate that gives their mean
    holding time, at their mean leverage and entry notional. (Its stops and targets can
    shorten its holds; the replicas report both traders' turnover and holds to show how
    close the match came.)"""
    # (seconds held, notional, leverage) per entry; a position still open at the end counts
    # with the time it has been held so far.
    entries = [
        (max(t.exit_time - t.entry_time, 0.0), abs(t.entry_sz * t.entry_price), t.leverage)
        for t in trades
    ] + list(still_open)
    if not entries:
        return RandomParams(entry=0.0, exit=1.0)  # a trader that never trades: nor does its null
    n = len(entries)
    coin_cycles = max(1.0, minutes * 60 / interval_s * coins)
    held = sum(e[0] for e in entries) / interval_s
    flat = max(coin_cycles - held, float(n))
    hold_cycles = max(held / n, 1.0)
    return RandomParams(
        entry=min(1.0, n / flat),
        exit=min(1.0, 1.0 / hold_cycles),
        leverage=max(1, min(50, round(sum(e[2] for e in entries) / n))),
        notional=Decimal(f"{sum(e[1] for e in entries) / n:.2f}"),
    )


def _still_open(run: Path, trader: str, end: datetime) -> list[tuple[float, float, float]]:
    """The trader's positions open at the end of a run: (seconds held, notional, leverage)."""
    document = read_positions(run)
    if document is None:
        return []
    return [
        (
            max(end.timestamp() - p.entry_time, 0.0),
            abs(p.quantity * p.entry_price),
            p.leverage,
        )
        for row in document.accountTotals
        if row.model_id == trader
        for p in row.positions.values()
    ]


def _matched_nulls(
    config: LoadedConfig,
    plan: BacktestPlan,
    first: RunReport,
    first_run: Path,
    null: str | None,
) -> tuple[LoadedConfig, dict[str, str], dict[str, RandomParams]]:
    """The configuration with a matched null beside each trader (``null-<id>``)."""
    chosen = [t for t in config.manager.traders if not plan.traders or t.id in plan.traders]
    ex = config.executor
    minutes = int((plan.end - plan.start) / STEP)
    nulls: dict[str, str] = {}
    params: dict[str, RandomParams] = {}
    extra = []
    for trader in chosen:
        if trader.id == null:
            continue
        interval = trader.decision_interval or ex.decision_interval
        coins = [c for c in trader.coins if c in plan.market_coins]
        mine = [t for t in first.trades if t.model_id == trader.id]
        matched = matched_params(
            mine,
            minutes=minutes,
            interval_s=interval,
            coins=len(coins),
            still_open=_still_open(first_run, trader.id, plan.end),
        )
        null_id = f"null-{trader.id}"
        nulls[trader.id], params[trader.id] = null_id, matched
        extra.append(
            trader.model_copy(
                update={
                    "id": null_id,
                    "name": f"null of {trader.id}",
                    "model": matched.name(),
                    # Its odds are per interval: called on the timer, not on the trader's gates.
                    "triggers": None,
                }
            )
        )
    manager = config.manager.model_copy(update={"traders": [*config.manager.traders, *extra]})
    return dataclasses.replace(config, manager=manager), nulls, params


def run_replicas(
    config: LoadedConfig,
    plan: BacktestPlan,
    seeds: int,
    *,
    run_one: Callable[[BacktestPlan], BacktestResult],
    read: Callable[[Path], RunReport],
    null: str | None,
    matched_null: bool = False,
    run_with: Callable[[LoadedConfig, BacktestPlan], BacktestResult] | None = None,
    run_all: RunAll | None = None,
) -> tuple[list[BacktestResult], ReplicaTable]:
    """``--seeds N``: N replicas into ``out/seed-<i>``, then ``out/replicas.json``.

    ``matched_null``: then, per trader, a random trader matched to its replica-0 turnover,
    holding time and leverage (``null-<id>``) over the same N replicas into
    ``out/null/seed-<i>``, and each trader tested against its own null
    (``run_with`` runs a replica under the configuration with the nulls).

    ``run_all``: the replicas (then the nulls' replicas) run through it, all at once (in
    parallel processes with ``--workers``), instead of one by one through ``run_one``."""
    if seeds < 1:
        raise BacktestError(f"--seeds must be at least 1, not {seeds}")
    if plan.out.exists() and any(plan.out.iterdir()):
        raise BacktestError(f"{plan.out} is not empty: give a new --out for each run")
    if null is not None and plan.traders and null not in plan.traders:
        raise BacktestError(f"the null trader {null} is not among --traders")
    backtest_config(config, plan)  # refuse bad input before the first replica runs
    with _replicas_marked(plan.out, seeds):
        plans = [
            dataclasses.replace(
                plan,
                out=plan.out / f"seed-{seed}",
                seed=seed,
                # Replica 0 is the run as configured; the others add fill randomness.
                spread_jitter=REPLICA_SPREAD_JITTER if seed > 0 else plan.spread_jitter,
            )
            for seed in range(seeds)
        ]
        runs = (
            run_all([(config, one) for one in plans])
            if run_all is not None
            else [run_one(one) for one in plans]
        )
        table = replica_table(runs, read, null)
        if matched_null:
            if run_with is None and run_all is None:
                raise BacktestError("--matched-null needs a way to run the nulls")
            first = runs[0].out
            with_nulls, nulls, params = _matched_nulls(config, plan, read(first), first, null)
            null_plans = [
                dataclasses.replace(
                    plan,
                    traders=list(nulls.values()),
                    out=plan.out / "null" / f"seed-{seed}",
                    seed=seed,
                    spread_jitter=REPLICA_SPREAD_JITTER if seed > 0 else plan.spread_jitter,
                )
                for seed in range(seeds)
            ]
            if run_all is not None:
                null_runs = run_all([(with_nulls, one) for one in null_plans])
            else:
                assert run_with is not None
                null_runs = [run_with(with_nulls, one) for one in null_plans]
            null_table = replica_table(null_runs, read, None)
            matched: dict[str, dict[str, Any]] = {}
            for trader, null_id in nulls.items():
                mine, theirs = table.traders.get(trader), null_table.traders.get(null_id)
                if mine is None or theirs is None:
                    continue
                matched[trader] = {
                    "null": null_id,
                    "model": params[trader].name(),
                    "luck": {kpi: luck_test(mine, theirs, kpi).label for kpi in LUCK_KPIS},
                    "match": {
                        kpi: {"trader": mine[kpi].mean, "null": theirs[kpi].mean}
                        for kpi in ("num_trades", "avg_hold_hours", "turnover")
                        if kpi in mine and kpi in theirs
                    },
                    "null_kpis": {kpi: dataclasses.asdict(s) for kpi, s in theirs.items()},
                }
            table = dataclasses.replace(table, matched=matched)
        atomic_write(plan.out / "replicas.json", json.dumps(table.document(), indent=2).encode())
        return runs, table


#: Written into OUT while a run is not finished (or after it failed); gone once it is.
INCOMPLETE = "incomplete.json"


def mark_incomplete(out: Path, document: dict[str, Any]) -> None:
    """``OUT/incomplete.json``; its texts (an error, a traceback) with secrets masked."""
    masked = {k: redact(v) if isinstance(v, str) else v for k, v in document.items()}
    atomic_write(out / INCOMPLETE, json.dumps(masked, indent=2).encode())


@contextmanager
def _replicas_marked(out: Path, seeds: int) -> Iterator[None]:
    """The marker while the replicas run; after a failure, the error and the replicas that
    finished (each a complete run of its own; replicas.json is not written)."""
    out.mkdir(parents=True, exist_ok=True)
    note = "not a finished run: replicas.json is written when it is"
    mark_incomplete(out, {"state": "running", "seeds": seeds, "note": note})
    try:
        yield
    except BaseException as exc:
        detail = getattr(exc, "detail", None)  # a worker process's own traceback
        finished = sorted(
            str(d.relative_to(out))
            for d in [*out.glob("seed-*"), *out.glob("null/seed-*")]
            if (d / "backtest.json").is_file()
        )
        mark_incomplete(
            out,
            {
                "state": "failed",
                "seeds": seeds,
                "error": str(exc) if detail is not None else f"{type(exc).__name__}: {exc}",
                "traceback": detail or "".join(traceback.format_exception(exc)),
                "finished": finished,
                "note": "not a finished run: it failed; run it again into a new --out",
            },
        )
        raise
    (out / INCOMPLETE).unlink()


# -- timer against triggers (--compare-triggers) ---------------------------------------------

#: The two sides of a trigger comparison, in the order they are run.
SIDES = ("timer", "triggers")


@dataclass(frozen=True)
class SideFigures:
    """One trader on one side of a comparison: its model calls and its result."""

    calls: int  # decisions asked of its model (DecisionRequested)
    net_pnl: float | None  # final equity − allocation (USD)
    total_return: float | None
    return_low: float | None  # the report's interval for the total return
    return_high: float | None
    trades: int
    timer_calls: int | None = None  # triggers: what the timer would have called meanwhile


@dataclass(frozen=True)
class TriggerComparison:
    traders: dict[str, dict[str, SideFigures]]  # trader -> side -> figures

    def calls_ratio(self, trader: str) -> float | None:
        """Timer calls per triggered call (the issue's target: at least 5)."""
        sides = self.traders[trader]
        timer, triggers = sides["timer"].calls, sides["triggers"].calls
        return None if triggers == 0 else timer / triggers

    def document(self) -> dict[str, object]:
        return {
            trader: {
                **{side: dataclasses.asdict(figures) for side, figures in sides.items()},
                "calls_ratio": self.calls_ratio(trader),
            }
            for trader, sides in self.traders.items()
        }


def without_triggers(config: LoadedConfig) -> LoadedConfig:
    """The same configuration on the fixed timer: every trader's ``triggers`` removed."""
    traders = [t.model_copy(update={"triggers": None}) for t in config.manager.traders]
    return dataclasses.replace(
        config, manager=config.manager.model_copy(update={"traders": traders})
    )


def run_trigger_comparison(
    config: LoadedConfig,
    plan: BacktestPlan,
    *,
    run_one: Callable[[LoadedConfig, BacktestPlan], BacktestResult],
    read: Callable[[LoadedConfig, Path], dict[str, SideFigures]],
    run_all: RunAll | None = None,
) -> tuple[dict[str, BacktestResult], TriggerComparison]:
    """``--compare-triggers``: the chosen traders over the same candles twice, on their
    decision interval (``out/timer``) and on their triggers (``out/triggers``), then
    ``out/triggers-comparison.json`` with each side's calls and P&L. ``run_all``: both
    sides at once (side by side in processes with ``--workers``)."""
    if plan.out.exists() and any(plan.out.iterdir()):
        raise BacktestError(f"{plan.out} is not empty: give a new --out for each run")
    run = backtest_config(config, plan)  # refuse bad input before either side runs
    if not any(t.triggers is not None for t in run.manager.traders):
        chosen = ", ".join(t.id for t in run.manager.traders)
        raise BacktestError(
            f"no trader with triggers among {chosen}: --compare-triggers compares a "
            "trader's triggers with its timer (set triggers in manager.yaml)"
        )
    configs = {"timer": without_triggers(config), "triggers": config}
    figures: dict[str, dict[str, SideFigures]] = {}
    sides = [(configs[side], dataclasses.replace(plan, out=plan.out / side)) for side in SIDES]
    if run_all is not None:
        results = dict(zip(SIDES, run_all(sides), strict=True))
    else:
        results = {side: run_one(*job) for side, job in zip(SIDES, sides, strict=True)}
    for side, (side_config, one) in zip(SIDES, sides, strict=True):
        for trader, row in read(backtest_config(side_config, one), one.out).items():
            figures.setdefault(trader, {})[side] = row
    comparison = TriggerComparison(
        {t: sides for t, sides in figures.items() if set(sides) == set(SIDES)}
    )
    atomic_write(
        plan.out / "triggers-comparison.json",
        json.dumps(
            {
                "from": plan.start.isoformat(),
                "to": plan.end.isoformat(),
                "candles": candle_record(plan),
                "traders": comparison.document(),
            },
            indent=2,
        ).encode(),
    )
    return results, comparison
