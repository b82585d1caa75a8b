"""The composition root: configuration in, a wired engine, views and readers out.

This is the only module ``interfaces`` may import from ``infrastructure``.
"""

from __future__ import annotations

import asyncio
import fcntl
import getpass
import hashlib
import logging
import socket
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import psycopg
import redis

from application import trader_listing as listing
from application.budget import BudgetGuard, BudgetPolicy, Price
from application.capital import Rebalancer
from application.control import ControlError, ControlResult, OperatorControl, kill_targets
from application.fenced_exchange import FencedExchange
from application.gateway import DecisionGateway, ModelSpec
from application.leases import LeaseKeeper, venue_lease
from application.manager import Arena, TraderRuntime
from application.ports import (
    Alerts,
    Clock,
    DecisionModel,
    Exchange,
    LogAlerts,
    MarkedToMarket,
    MarketData,
)
from application.routing import ModelChoice, ModelRouter, RouterPolicy
from application.settings import EngineSettings, TraderSettings
from application.shared_market import SharedSnapshots
from application.store_guard import StoreGuard
from application.trading import TradingApp
from application.venue_health import HealthPolicy, paper_twin_id
from application.verify import ReplayVerifier, VerifyReport
from domain.capital import CapitalPolicy
from domain.trader import PausePolicy
from infrastructure.alerts.webhook import WebhookAlerts
from infrastructure.backtest import (
    BacktestError,
    BacktestPlan,
    BacktestResult,
    CostEstimate,
    Progress,
    ReplicaTable,
    RunAll,
    SideFigures,
    TriggerComparison,
    backtest_config,
    estimate_cost,
    run_replicas,
    run_trigger_comparison,
)
from infrastructure.backtest import run_backtest as _run_backtest
from infrastructure.backtest_workers import (
    Job,
    SplitStore,
    WorkerFailed,
    check_workers,
    run_jobs,
    run_split,
)
from infrastructure.clock import ReplayClock, SystemClock
from infrastructure.config.loader import ConfigError, LoadedConfig, Problem, load_config
from infrastructure.config.models import (
    CacheNode,
    HyperliquidExchangeConfig,
    PriceSplit,
    ReplayMarketConfig,
    SimExchangeConfig,
    TraderConfig,
)
from infrastructure.config.settings import trader_settings
from infrastructure.counterfactual import Change, Comparison
from infrastructure.counterfactual import replay_run as _replay_run
from infrastructure.event_archive import (
    ArchiveError,
    ExportReport,
    ImportReport,
    export_events,
    export_to_path,
    import_events,
)
from infrastructure.event_log import StoredLog, connects
from infrastructure.eventstore import (
    APP_PREFIX,
    EventStoreError,
    ensure_schema,
    open_trading_app,
    postgres_env,
    sqlite_env,
)
from infrastructure.eventstore_unsynced import TOPIC as UNSYNCED_SQLITE
from infrastructure.fenced_recorder import FencedPostgresRecorder, lease_fence
from infrastructure.forked_rebuild import ForkedReplay
from infrastructure.hyperliquid.assets import HYPERLIQUID_ASSETS
from infrastructure.hyperliquid.exchange import HyperliquidExchange, RetryPolicy
from infrastructure.hyperliquid.market import HyperliquidMarket
from infrastructure.hyperliquid.nonces import NonceRegistry
from infrastructure.hyperliquid.simulated import SimulatedHyperliquid
from infrastructure.hyperliquid.transport import HttpTransport, WeightBudget
from infrastructure.leases import PostgresLeaseStore
from infrastructure.llm.budget_store import FileBudgetStore
from infrastructure.llm.cache import SQLiteDecisionCache
from infrastructure.llm.clients import ModelEndpoint, build_model
from infrastructure.market.download import (
    DownloadError,
    DownloadReport,
    HistoryDownloader,
    RecordReport,
    SeriesResult,
)
from infrastructure.market.download import record as record_history
from infrastructure.market.failover import FailoverMarket
from infrastructure.market.history import INTERVAL_MS as HISTORY_INTERVALS
from infrastructure.market.history import HistoryStore, UnknownInterval
from infrastructure.market.history import store_path as history_store_file
from infrastructure.market.history_csv import CandleFileError, ImportResult
from infrastructure.market.history_csv import export_candles as export_history_candles
from infrastructure.market.history_csv import import_file as import_history_file
from infrastructure.market.history_tape import HistoryError, HistoryTape
from infrastructure.market.recorded import RecordedError, RecordedMarket, read_frames
from infrastructure.market.replay import ReplayMarket, Tape
from infrastructure.market.synthetic import SyntheticTape
from infrastructure.metrics.collector import CollectorSources, MetricsCollector
from infrastructure.metrics.families import EngineMetrics
from infrastructure.metrics.transport import FailureWindow, MeteredTransport
from infrastructure.models.baseline import PREFIX as BASELINE_PREFIX
from infrastructure.models.baseline import BaselineModel
from infrastructure.projection_worker import ProjectionWorker, Target, json_target, redis_target
from infrastructure.prompts.renderer import JinjaPromptRenderer
from infrastructure.prompts.schema import DecisionSchema
from infrastructure.reports.source import ReportError
from infrastructure.trigger_store import FileGateMemory

if TYPE_CHECKING:  # matplotlib is imported by nof0 report only: every other process starts faster
    from infrastructure.reports.html import WrittenReport
from infrastructure.simulator.config import BookModel, SimConfig
from infrastructure.simulator.engine import SimVenue
from infrastructure.simulator.gateway import SimGateway
from infrastructure.simulator.serve import ServeOptions
from infrastructure.simulator.serve import serve as serve_simulator
from infrastructure.views.jsonfile import JsonViewStore, Namespaces
from infrastructure.views.readers import ViewReaders, views_root
from infrastructure.views.redis_store import RedisKeys, RedisNamespaces, RedisViewStore
from infrastructure.views.sql_tables import (
    SqlTablesStore,
    SqlTablesWorker,
    postgres_tables,
    sqlite_tables,
)
from projections.analytics import AnalyticsProjector
from projections.conversations import ConversationsProjector
from projections.engine import Projector, ViewStore
from projections.market import MarketProjector
from projections.portfolio import PortfolioProjector
from projections.rebuild import Mirror, RebuildReport, rebuild_views
from projections.report import RunReport
from projections.status import StatusProjector
from projections.trades import TradesProjector
from projections.view_positions import ViewPosition, view_positions

__all__ = [
    "HISTORY_INTERVALS",
    "ArchiveError",
    "BacktestError",
    "BacktestPlan",
    "CandleFileError",
    "Change",
    "ConfigError",
    "ControlError",
    "CostEstimate",
    "DownloadError",
    "DownloadReport",
    "Engine",
    "EventStoreError",
    "HistoryDownloader",
    "HistoryStore",
    "ImportResult",
    "LoadedConfig",
    "NotAvailable",
    "Problem",
    "Progress",
    "RecordReport",
    "ReportError",
    "SeriesResult",
    "ServeOptions",
    "SideFigures",
    "TriggerComparison",
    "UnknownInterval",
    "WorkerFailed",
    "build_engine",
    "build_readers",
    "check_config",
    "cli_credential",
    "compare_triggers",
    "control_traders",
    "export_arena",
    "export_history_candles",
    "flatten_trader",
    "history_downloader",
    "import_arena",
    "import_history_file",
    "kill_switch",
    "load_config",
    "operator_control",
    "pause_trader",
    "projection_status",
    "rebuild_projections",
    "record_history",
    "resume_trader",
    "serve_simulator",
    "trader_settings",
]

log = logging.getLogger("nof0")


class NotAvailable(Exception):
    """The configuration asks for an adapter this version does not provide."""


# -- configuration --------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckReport:
    ok: bool
    problems: list[Problem]
    summary: list[str]


def check_config(path: Path | str, data_dir: Path | str | None = None) -> CheckReport:
    try:
        config = load_config(path, data_dir=data_dir)
    except ConfigError as exc:
        return CheckReport(False, exc.problems, [])
    return CheckReport(True, [], describe(config) + stranded_traders(config))


def stranded_traders(config: LoadedConfig) -> list[str]:
    """Warnings for traders holding positions that no started trader manages."""
    if not config.main.Postgres.DataSource and not event_db(config).exists():
        return []  # no arena has run here yet; do not create a store to look
    try:
        app = open_app(config)
    except EventStoreError as exc:
        return [f"warning: cannot read the event store to look for stranded positions: {exc}"]
    traders = config.manager.traders
    return listing.stranded_traders(
        app, [t.id for t in traders], [t.id for t in traders if t.auto_start]
    )


def describe(config: LoadedConfig) -> list[str]:
    lines = [
        f"config: {config.path}",
        f"data directory: {config.data_dir}",
        "event store: "
        + ("PostgreSQL" if config.main.Postgres.DataSource else f"SQLite ({event_db(config)})"),
        "views: JSON files" + (" + Redis" if redis_node(config) else ""),
        f"prompt schema: {config.executor.prompt_schema_version}",
    ]
    for trader in config.manager.traders:
        settings = trader_settings(config, trader)
        lines.append(
            f"trader {trader.id}: model {trader.model}, {settings.allocation} USD, "
            f"every {timedelta(seconds=settings.decision_interval_s)}, "
            f"{trader.exchange_provider}/{trader.market_provider}, coins {','.join(trader.coins)}"
        )
    return lines


def event_db(config: LoadedConfig) -> Path:
    return config.data_dir / "events.sqlite3"


def redis_node(config: LoadedConfig) -> CacheNode | None:
    for node in config.main.Cache:
        if node.Host:
            return node
    return None


def redis_url(node: CacheNode) -> str:
    scheme = "rediss" if node.Tls else "redis"
    return f"{scheme}://{node.Host}/0"


# -- the event store -------------------------------------------------------------------------


FENCED_RECORDER_TOPIC = "infrastructure.fenced_recorder:FencedPostgresRecorder"


def open_app(
    config: LoadedConfig, *, create_tables: bool = True, pool_size: int | None = None
) -> TradingApp:
    """The arena's event store. ``create_tables=False``: a store known to exist (a reader
    beside an open one), no DDL. ``pool_size``: PostgreSQL connections to keep (default:
    ``MaxOpen``, at most 20), none beyond them."""
    pg = config.main.Postgres
    if pg.DataSource:
        schema = pg.Schema or config.main.Name
        if create_tables:
            ensure_schema(pg.DataSource, schema)
        env = postgres_env(pg.DataSource, schema=schema, pool_size=pool_size or min(pg.MaxOpen, 20))
        if pool_size is not None:
            env[f"{APP_PREFIX}_POSTGRES_MAX_OVERFLOW"] = "0"
        if config.main.Leases.Enabled:
            # Events are stored only under this engine's leases (infrastructure/fenced_recorder).
            env[f"{APP_PREFIX}_APPLICATION_RECORDER_TOPIC"] = FENCED_RECORDER_TOPIC
    else:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        env = sqlite_env(event_db(config))
        if not config.durable_events:
            env[f"{APP_PREFIX}_PERSISTENCE_MODULE"] = UNSYNCED_SQLITE
    if not create_tables:
        env[f"{APP_PREFIX}_CREATE_TABLE"] = "n"
    try:
        if not pg.DataSource or not create_tables:
            app = open_trading_app(env)
            app.sole_writer = config.sole_writer
            return app
        # Engines starting together would race on creating the tables: one at a time.
        with psycopg.connect(pg.DataSource, autocommit=True, connect_timeout=10) as conn:
            conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (f"nof0-tables:{schema}",))
            return open_trading_app(env)
    except psycopg.OperationalError as exc:
        raise EventStoreError(f"cannot open the event store: {exc}") from exc
    except OSError as exc:
        raise EventStoreError(f"cannot open the event store: {exc}") from exc


# -- views ------------------------------------------------------------------------------------


def projectors(config: LoadedConfig) -> list[Projector[Any]]:
    max_leverage = {coin: rules.max_leverage for coin, rules in HYPERLIQUID_ASSETS.items()}
    return [
        MarketProjector(),
        PortfolioProjector(max_leverage),
        TradesProjector(),
        AnalyticsProjector(),
        ConversationsProjector(per_trader=config.main.Projections.ConversationsPerTrader),
        StatusProjector(),
    ]


def namespaces(config: LoadedConfig) -> Namespaces:
    return Namespaces(views_root(config.data_dir))


def redis_client(config: LoadedConfig) -> redis.Redis | None:
    node = redis_node(config)
    if node is None:
        return None
    return redis.Redis.from_url(
        redis_url(node), password=node.Pass or None, socket_timeout=2, socket_connect_timeout=2
    )


def redis_keys(config: LoadedConfig) -> RedisKeys:
    return RedisKeys(f"nof0:{config.main.Name}")


def build_readers(config: LoadedConfig) -> ViewReaders:
    node = redis_node(config)
    return ViewReaders(
        namespaces(config),
        redis_url=redis_url(node) if node else None,
        redis_password=node.Pass if node else None,
        keys=redis_keys(config),
    )


def _targets(config: LoadedConfig) -> list[Target]:
    ns = namespaces(config)
    targets = [json_target(ns)]
    client = redis_client(config)
    if client is not None:
        keys = redis_keys(config)
        targets.append(
            redis_target(
                lambda name: RedisViewStore(client, keys, name),
                RedisNamespaces(client, keys),
                follow=ns.current,
            )
        )
    return targets


def sql_tables_store(config: LoadedConfig) -> SqlTablesStore | None:
    """The SQL read tables: beside the events (PostgreSQL schema), or a SQLite file."""
    if not config.main.Projections.SqlTables:
        return None
    pg = config.main.Postgres
    if pg.DataSource:
        return postgres_tables(pg.DataSource, pg.Schema or config.main.Name)
    return sqlite_tables(config.data_dir / "tables.sqlite3")


def sql_tables_worker(config: LoadedConfig, app: TradingApp) -> SqlTablesWorker | None:
    store = sql_tables_store(config)
    if store is None:
        return None
    return SqlTablesWorker(app, store, batch_size=config.main.Projections.BatchSize)


def rebuild_projections(
    config: LoadedConfig,
    *,
    app: TradingApp | None = None,
    batch_size: int = 1000,
    processes: int = 1,
) -> RebuildReport:
    """Replay every event into a new namespace, then flip readers to it; the views reduced
    in up to ``processes`` processes."""
    if app is not None and processes > 1 and connects(app):
        # A child reopens the store from ``config``: it must be the store ``app`` is.
        raise ValueError("a rebuild of a given store runs in one process")
    app = app or open_app(config)
    opened = app

    @contextmanager
    def reopened() -> Iterator[StoredLog]:
        if not connects(opened):
            yield StoredLog(opened)  # in memory: the fork's copy is the log
            return
        # The parent made the tables (no DDL race); one connection reads one cursor.
        child = open_app(config, create_tables=False, pool_size=1)
        try:
            yield StoredLog(child)
        finally:
            child.close()

    ns = namespaces(config)
    client = redis_client(config)
    mirror = None
    if client is not None:
        keys = redis_keys(config)
        mirror = Mirror(
            store=lambda name: RedisViewStore(client, keys, name),
            namespaces=RedisNamespaces(client, keys),
        )
    return rebuild_views(
        StoredLog(app),
        ns,
        lambda name: JsonViewStore(ns.directory(name)),
        projectors(config),
        mirror=mirror,
        tables=lambda: sql_tables_worker(config, app),
        batch_size=batch_size,
        replayer=ForkedReplay(reopened, processes),
    )


def projection_status(config: LoadedConfig, *, app: TradingApp | None = None) -> list[ViewPosition]:
    app = app or open_app(config)
    head = app.max_position()
    ns = namespaces(config)
    current = ns.current()
    stores: list[tuple[str, ViewStore]] = []
    if current is not None:
        stores.append((f"json:{current}", JsonViewStore(ns.directory(current))))
    client = redis_client(config)
    if client is not None:
        try:
            redis_current = RedisNamespaces(client, redis_keys(config)).current()
        except redis.RedisError as exc:
            redis_current = None
            log.warning("redis unavailable: %s", exc)
        if redis_current:
            stores.append(
                (
                    f"redis:{redis_current}",
                    RedisViewStore(client, redis_keys(config), redis_current),
                )
            )
    return view_positions(head, stores, lambda: projectors(config), sql_tables_store(config))


# -- the engine -----------------------------------------------------------------------------


@dataclass
class Engine:
    config: LoadedConfig
    app: TradingApp
    arena: Arena
    worker: ProjectionWorker
    alerts: LogAlerts
    clock: Clock
    metrics: EngineMetrics = field(default_factory=EngineMetrics)
    #: None with ``monitoring.metrics_exporter: none``.
    collector: MetricsCollector | None = None
    findings: list[str] = field(default_factory=list)

    async def start(self) -> None:
        self.findings = await self.arena.start()

    async def run(self, stop: asyncio.Event) -> None:
        """The arena and the projection worker until ``stop``; the views are flushed last."""
        arena_stop = asyncio.Event()

        async def arena() -> None:
            await self.arena.run(arena_stop)

        task = asyncio.create_task(arena())
        worker_stop = asyncio.Event()
        worker = asyncio.create_task(self.worker.run(worker_stop))
        collecting: asyncio.Task[None] | None = None
        if self.collector is not None:
            interval = self.config.manager.monitoring.update_interval
            collecting = asyncio.create_task(self.collector.run(worker_stop, interval))
        await stop.wait()
        arena_stop.set()
        await task
        await self.arena.release_leases()
        worker_stop.set()
        await worker
        if collecting is not None:
            await collecting
        for sink in self.alerts.forward:
            if isinstance(sink, WebhookAlerts):
                await asyncio.to_thread(sink.close)  # deliver what is queued, then stop


MAINNET_URL = "https://api.hyperliquid.xyz"  # the SDK signs mainnet-style for this exact URL
TESTNET_URL = "https://api.hyperliquid-testnet.xyz"


def _api_url(api_url: str, testnet: bool) -> str:
    return api_url or (TESTNET_URL if testnet else MAINNET_URL)


def _replay_tape(config: LoadedConfig, provider: ReplayMarketConfig) -> Tape:
    """The tape a replay provider serves: generated, or recorded candles (which must hold
    ``history_days`` of warm-up before ``start``)."""
    if provider.source == "synthetic":
        return SyntheticTape(
            tuple(provider.coins),
            provider.start - timedelta(days=provider.history_days),
            (provider.history_days + provider.days) * 1440,
            provider.seed,
            anchor_minute=provider.history_days * 1440,
        )
    files = {coin: config.resolve("Market", path) for coin, path in provider.candles.items()}
    try:
        if provider.store:
            tape = HistoryTape.from_store(
                config.resolve("Market", provider.store),
                provider.coins,
                provider.start - timedelta(days=provider.history_days),
                provider.end,
            )
        else:
            tape = HistoryTape.from_files(files)
    except HistoryError as exc:
        raise NotAvailable(f"replay candles: {exc}") from exc
    earliest = tape.start + timedelta(days=provider.history_days)
    if provider.end is not None and provider.end > tape.end:
        raise NotAvailable(
            f"replay end {provider.end.isoformat()} is after the candles end "
            f"({tape.end.isoformat()}): the cycles past it would have no market data"
        )
    if provider.start < earliest or provider.start >= tape.end:
        raise NotAvailable(
            f"replay start {provider.start.isoformat()} is outside the candles: they run "
            f"{tape.start.isoformat()} to {tape.end.isoformat()}, and the indicators need "
            f"{provider.history_days} days before the start (so from {earliest.isoformat()})"
        )
    return tape


@dataclass
class _Wiring:
    """Adapters shared across traders: one per provider, one weight budget per API host
    (Hyperliquid limits by IP), one nonce manager per signing key."""

    config: LoadedConfig
    #: Engines on this host now (they share its IP's budget); 1 without leases.
    sharers: Callable[[], int] = lambda: 1
    #: A backtest's: simulators in memory (nothing on disk to make durable: a run that
    #: dies is run again) and called inline, not on a worker thread.
    backtest: bool = False
    budgets: dict[str, WeightBudget] = field(default_factory=dict)
    nonces: NonceRegistry = field(default_factory=lambda: NonceRegistry(_wall_ms))
    markets: dict[str, tuple[MarketData, Clock | None]] = field(default_factory=dict)

    def budget(self, url: str, per_minute: int) -> WeightBudget:
        """One budget per API host; providers naming it differently get the smaller."""
        budget = self.budgets.setdefault(url, WeightBudget(per_minute, sharers=self.sharers))
        budget.per_minute = min(budget.per_minute, per_minute)
        return budget

    def market(self, name: str, seen: tuple[str, ...] = ()) -> tuple[MarketData, Clock | None]:
        """The provider (with its hot standbys) and the clock it imposes (replay only)."""
        if name in self.markets:
            return self.markets[name]
        provider = self.config.market.providers[name]
        built: tuple[MarketData, Clock | None]
        if isinstance(provider, ReplayMarketConfig) and provider.source == "recorded":
            try:
                frames = read_frames(self.config.resolve("Market", provider.snapshots))
            except RecordedError as exc:
                raise NotAvailable(str(exc)) from exc
            recorded = RecordedMarket(frames, max_staleness_s=provider.max_staleness)
            built = (recorded, ReplayClock(provider.start, provider.speed))
        elif isinstance(provider, ReplayMarketConfig):
            tape = _replay_tape(self.config, provider)
            market = ReplayMarket(tape, max_staleness_s=provider.max_staleness)
            built = (market, ReplayClock(provider.start, provider.speed))
        else:
            url = _api_url(provider.api_url, provider.testnet)
            live: MarketData = HyperliquidMarket(
                # The shorter of the two: a tick waits for mids, and a standby can only take
                # over once the primary has failed.
                HttpTransport(
                    url,
                    timeout_s=min(provider.http_timeout, provider.timeout),
                    budget=self.budget(url, provider.request_weight_per_minute),
                ),
                clock=SystemClock(),
                max_staleness_s=provider.max_staleness,
                name=name,
            )
            standbys = [
                self.market(other, (*seen, name))[0]
                for other in provider.standby
                if other not in seen and other != name
            ]
            if standbys:
                live = FailoverMarket([live, *standbys], name=name)
            built = (live, None)
        self.markets[name] = built
        return built


def _wall_ms() -> int:
    return int(time.time() * 1000)


def _allocated(config: LoadedConfig, provider: str) -> Decimal:
    return sum(
        (
            trader_settings(config, t).allocation
            for t in config.manager.traders
            if t.exchange_provider == provider
        ),
        start=Decimal(0),
    )


def _exchange(wiring: _Wiring, name: str, clock: Clock) -> Exchange:
    config = wiring.config
    provider = config.exchange.providers[name]
    bps = Decimal(10_000)
    retry = RetryPolicy(
        attempts=provider.retry.max_attempts,
        backoff_s=provider.retry.backoff,
        max_backoff_s=provider.retry.max_backoff,
    )
    if isinstance(provider, SimExchangeConfig):
        fund = provider.fund_usdc or config.manager.manager.total_equity_usd
        return _simulator(
            config,
            name,
            provider,
            clock,
            fund=Decimal(str(fund)),
            min_equity=_allocated(config, name),
            retry=retry,
            backtest=wiring.backtest,
        )
    assert isinstance(provider, HyperliquidExchangeConfig)
    from eth_account import Account

    url = _api_url(provider.api_url, provider.testnet)
    wallet = Account.from_key(provider.private_key)
    return HyperliquidExchange(
        name,
        HttpTransport(
            url,
            timeout_s=provider.timeout,
            budget=wiring.budget(url, provider.request_weight_per_minute),
        ),
        wallet=wallet,
        account_address=provider.main_address,
        vault_address=provider.vault_address or None,
        nonces=wiring.nonces.for_signer(wallet.address),
        is_mainnet=url == MAINNET_URL,
        fee_taker=Decimal(str(provider.fee_taker_bps)) / bps,
        min_equity=_allocated(config, name),
        retry=retry,
    )


def _simulator(
    config: LoadedConfig,
    name: str,
    provider: SimExchangeConfig,
    clock: Clock,
    *,
    fund: Decimal,
    min_equity: Decimal,
    retry: RetryPolicy | None = None,
    backtest: bool = False,
) -> SimulatedHyperliquid:
    bps = Decimal(10_000)
    book = provider.book
    level = Decimal(str(book.level_usd))
    venue = SimVenue.open(
        SimConfig(
            taker_fee=Decimal(str(provider.fee_taker_bps)) / bps,
            maker_fee=Decimal(str(provider.fee_maker_bps)) / bps,
            funding_rate=Decimal(str(provider.funding_rate_hourly)),
            book=BookModel(
                spread_bps=Decimal(str(book.spread_bps)),
                levels=book.levels,
                step_bps=Decimal(str(book.step_bps)),
                level_usd={"BTC": level * 5, "ETH": level * 3, "*": level},
                spread_jitter=Decimal(str(book.spread_jitter)),
            ),
            seed=provider.seed,
        ),
        None if backtest else config.data_dir / "sim" / name,
    )
    return SimulatedHyperliquid(
        name,
        SimGateway(venue),
        fund_usdc=fund,
        clock_ms=lambda: int(clock.now().timestamp() * 1000),
        fee_taker=Decimal(str(provider.fee_taker_bps)) / bps,
        min_equity=min_equity,
        retry=retry,
        inline=backtest,
    )


def _paper_venue(config: LoadedConfig, clock: Clock) -> Callable[[Exchange], Exchange]:
    """Opens the in-process simulator that a failing venue's traders decide on meanwhile:
    the venue's fees, the default book, funded with the arena's equity."""

    def open_paper(venue: Exchange) -> Exchange:
        provider = config.exchange.providers[venue.name]
        fees = {"fee_taker_bps": provider.fee_taker_bps}
        if isinstance(provider, SimExchangeConfig):
            fees["fee_maker_bps"] = provider.fee_maker_bps
        paper = SimExchangeConfig.model_validate(
            {
                "type": "sim",
                "timeout": provider.timeout,
                "retry": {"max_attempts": 1},
                "capabilities": ["market_orders", "reduce_only", "trigger_orders", "leverage"],
                **fees,
            }
        )
        fund = Decimal(str(config.manager.manager.total_equity_usd))
        name = paper_twin_id(venue.name)
        return _simulator(config, name, paper, clock, fund=fund, min_equity=Decimal(0))

    return open_paper


def _reconcile_interval(config: LoadedConfig, name: str) -> float:
    provider = config.exchange.providers[name]
    return float(provider.reconcile_interval)


def _schema(config: LoadedConfig) -> DecisionSchema | None:
    validation = config.executor.output_validation
    if not (validation.enabled and validation.fail_on_invalid and validation.schema_path):
        return None
    return DecisionSchema(config.resolve("Executor", validation.schema_path))


@dataclass
class _LLMServices:
    """What the traders share: the model clients, one budget, one prompt digest cache."""

    clients: dict[str, DecisionModel] = field(default_factory=dict)
    budget: BudgetGuard | None = None
    cache: SQLiteDecisionCache | None = None


def _price(value: float | PriceSplit) -> Price:
    if isinstance(value, PriceSplit):
        return Price(Decimal(str(value.input)), Decimal(str(value.output)))
    return Price(Decimal(str(value)), Decimal(str(value)))


def _llm_services(config: LoadedConfig, schema: DecisionSchema | None) -> _LLMServices:
    llm = config.llm
    services = _LLMServices()
    needed = _llm_models_in_use(config)
    if not needed:
        return services
    budget = llm.budget
    services.budget = BudgetGuard(
        BudgetPolicy(
            daily_token_limit=budget.daily_token_limit,
            prices={name: _price(v) for name, v in budget.cost_per_million_tokens.items()},
            alert_threshold_pct=Decimal(str(budget.alert_threshold_pct)),
            hard_limit_pct=Decimal(str(budget.hard_limit_pct)),
        ),
        FileBudgetStore(config.data_dir / "llm_budget.json"),
    )
    if llm.cache.enabled:
        services.cache = SQLiteDecisionCache(
            Path(llm.cache.path) if llm.cache.path else config.data_dir / "llm_cache.sqlite3",
            ttl_s=float(llm.cache.ttl),
            max_entries=llm.cache.max_entries,
        )
    for name in needed:
        spec = llm.models[name]
        base_url = spec.base_url or (llm.base_url if spec.protocol == "openai" else "")
        services.clients[name] = build_model(
            ModelEndpoint(
                name=name,
                protocol=spec.protocol,
                model_name=spec.model_name,
                base_url=base_url or None,
                api_key=spec.api_key or llm.api_key,
                temperature=spec.temperature,
                max_completion_tokens=spec.max_completion_tokens,
                structured_output=spec.structured_output,
                timeout_s=llm.timeout,
                max_retries=llm.max_retries,
                decision_schema=schema.document if schema is not None else None,
                send_max_completion_tokens=spec.provider == "openai",
            )
        )
    return services


def _chain(config: LoadedConfig, trader: TraderConfig) -> list[str]:
    if trader.fallback_models is not None:
        fallbacks = [m for m in trader.fallback_models if m != trader.model]
    else:
        models = config.llm.models
        fallbacks = sorted(
            (m for m in models if m != trader.model), key=lambda m: (models[m].priority, m)
        )
    return [trader.model, *fallbacks]


def _llm_models_in_use(config: LoadedConfig) -> list[str]:
    names: list[str] = []
    for trader in config.manager.traders:
        if trader.model.startswith(BASELINE_PREFIX):
            continue
        for name in _chain(config, trader):
            if name not in names:
                names.append(name)
    return names


def _gateway(
    config: LoadedConfig,
    settings: TraderSettings,
    trader: TraderConfig,
    services: _LLMServices,
    current: str | None,
) -> DecisionGateway:
    llm = config.llm
    chain = _chain(config, trader)
    choices = [
        ModelChoice(name, llm.models[name].cost_tier, llm.models[name].priority) for name in chain
    ]
    router = llm.router
    specs = {}
    for name in chain:
        m = llm.models[name]
        sampling = "|".join(
            str(v)
            for v in (
                m.protocol,
                m.base_url or llm.base_url,
                m.model_name,
                m.temperature,
                m.max_completion_tokens,
                m.structured_output,
            )
        )
        specs[name] = ModelSpec(
            name, m.cost_tier, cacheable=services.cache is not None, sampling=sampling
        )
    return DecisionGateway(
        models={name: services.clients[name] for name in chain},
        specs=specs,
        router=ModelRouter(
            choices,
            RouterPolicy(
                failure_threshold=router.failure_threshold,
                success_window=router.success_window,
                recovery_success_pct=Decimal(str(router.recovery_success_pct)),
                probe_every=router.probe_every,
            ),
            current=current,
        ),
        budget=services.budget,
        cache=services.cache,
        deadline_s=settings.decision_timeout_s,
    )


def _rebalancer(config: LoadedConfig, app: TradingApp) -> Rebalancer | None:
    mgr = config.manager.manager
    if mgr.allocation_strategy != "performance_based":
        return None
    total = Decimal(str(mgr.total_equity_usd))
    pool = (total * (100 - Decimal(str(mgr.reserve_equity_pct))) / 100).quantize(Decimal("0.01"))
    return Rebalancer(
        app=app,
        traders=[t.id for t in config.manager.traders],
        pool=pool,
        interval_s=mgr.rebalance_interval,
        policy=CapitalPolicy(max_step_pct=Decimal(str(mgr.rebalance_max_step_pct))),
    )


def _alert_sinks(config: LoadedConfig) -> list[Alerts]:
    mon = config.manager.monitoring
    if not mon.alert_webhook:
        return []
    return [
        WebhookAlerts(
            mon.alert_webhook,
            fmt=mon.alert_format,
            chat_id=mon.alert_telegram_chat_id,
            dedup_window_s=mon.alert_dedup_window,
            rate_per_minute=mon.alert_rate_per_minute,
            max_queue=mon.alert_queue_size,
            retries=mon.alert_retries,
            timeout_s=mon.alert_timeout,
        )
    ]


def build_engine(
    config: LoadedConfig,
    *,
    app: TradingApp | None = None,
    clock: Clock | None = None,
    replica: int = 0,
    backtest: bool = False,
) -> Engine:
    """Wire the engine; ``clock`` replaces the configured one (tests and benchmarks);
    ``replica`` seeds the random baseline differently (a backtest's ``--seeds``);
    ``backtest``: the simulators live in memory and are called inline."""
    app = app or open_app(config)
    schema = _schema(config)
    services = _llm_services(config, schema)
    keeper = lease_keeper(config)
    wiring = (
        _Wiring(config, backtest=backtest)
        if keeper is None
        else _Wiring(config, keeper.engines_on_host, backtest=backtest)
    )
    used = {t.market_provider for t in config.manager.traders}
    own_clocks = [wiring.market(name)[1] for name in sorted(used)]
    replay_clocks = [c for c in own_clocks if c is not None]
    if len(replay_clocks) > 1:
        raise NotAvailable("traders use more than one replay market provider; use one")
    if replay_clocks and len(replay_clocks) != len(own_clocks):
        raise NotAvailable(
            "traders mix replayed and live market data; a replay runs on its own clock, so "
            "run them as separate arenas (--data-dir)"
        )
    if clock is None:
        clock = replay_clocks[0] if replay_clocks else SystemClock()
    exchanges: dict[str, Exchange] = {}
    runtimes: list[TraderRuntime] = []
    metrics = EngineMetrics()
    windows: dict[str, FailureWindow] = {}
    shared: dict[str, SharedSnapshots] = {}
    for trader in config.manager.traders:
        settings = trader_settings(config, trader)
        if trader.market_provider not in shared:
            shared[trader.market_provider] = SharedSnapshots(
                wiring.market(trader.market_provider)[0]
            )
        market = shared[trader.market_provider]
        if trader.exchange_provider not in exchanges:
            venue = _exchange(wiring, trader.exchange_provider, clock)
            windows[venue.name] = _meter(config, venue, metrics, clock)
            if keeper is not None and not isinstance(venue, MarkedToMarket):
                # An in-process simulator is this engine's alone: no one else can trade it.
                venue = FencedExchange(venue, keeper, margin=keeper.ttl / 3)
            exchanges[trader.exchange_provider] = venue
        if trader.model.startswith(BASELINE_PREFIX):
            runtime = TraderRuntime(
                settings=settings,
                market=market,
                exchange=exchanges[trader.exchange_provider],
                model=BaselineModel(
                    settings.model,
                    max_position_size_usd=settings.limits.max_position_size_usd,
                    replica=replica,
                ),
                schema=schema,
            )
        else:
            known = app.find_trader(trader.id)
            runtime = TraderRuntime(
                settings=settings,
                market=market,
                exchange=exchanges[trader.exchange_provider],
                gateway=_gateway(
                    config, settings, trader, services, known.model if known else None
                ),
                schema=schema,
            )
        runtimes.append(runtime)
    recorder = app.recorder
    if keeper is not None and isinstance(recorder, FencedPostgresRecorder):
        recorder.fence = lease_fence(
            keeper,
            [t.id for t in config.manager.traders],
            [(venue.name, venue.account_id) for venue in exchanges.values()],
        )
    ex = config.executor
    renderer = JinjaPromptRenderer(
        root=config.files["Manager"].parent.parent,
        schema_version=ex.prompt_schema_version,
        strict=ex.prompt_validation.strict_mode,
        require_header=ex.prompt_validation.require_version_header,
    )
    for settings in (r.settings for r in runtimes):
        # Refuse to start on a template mismatch rather than at the first cycle.
        renderer.load(Path(settings.system_template))
        renderer.load(Path(settings.user_template))
    mgr = config.manager.manager
    retry = config.exchange.providers[config.exchange.default].retry
    engine_settings = EngineSettings(
        schema_version=ex.prompt_schema_version,
        tick_seconds=mgr.tick_interval,
        pause_policy=PausePolicy(
            window=mgr.pause_failure_window,
            min_cycles=max(2, mgr.pause_failure_window // 2),
            max_failure_pct=Decimal(str(mgr.pause_failure_pct)),
        ),
        order_retries=retry.max_attempts,
        order_backoff_s=retry.backoff,
        order_max_backoff_s=retry.max_backoff,
        max_concurrent_decisions=ex.max_concurrent_decisions,
    )
    alerts = LogAlerts(forward=_alert_sinks(config))
    guard = StoreGuard(app.max_position, alerts=alerts)
    arena = Arena(
        app=app,
        runtimes=runtimes,
        renderer=renderer,
        clock=clock,
        engine=engine_settings,
        alerts=alerts,
        reconcile_intervals={name: _reconcile_interval(config, name) for name in exchanges},
        rebalancer=_rebalancer(config, app),
        on_cycle=lambda trader, seconds: metrics.decision_latency.labels(trader).observe(seconds),
        health=windows,
        health_policy=HealthPolicy(
            max_failure_pct=Decimal(str(mgr.exchange_failure_pct)),
            min_requests=mgr.exchange_failure_min_requests,
        ),
        paper_venue=_paper_venue(config, clock) if mgr.paper_fallback else None,
        store_guard=guard,
        leases=keeper,
        # A backtest never restarts: its gates need no memory.
        gate_memory=None if backtest else FileGateMemory(config.data_dir / "triggers"),
    )
    worker = ProjectionWorker(
        source=app,
        projectors=lambda: projectors(config),
        targets=_targets(config),
        batch_size=config.main.Projections.BatchSize,
        poll_s=config.main.Projections.PollInterval,
        tables=sql_tables_worker(config, app),
    )
    return Engine(
        config,
        app,
        arena,
        worker,
        alerts,
        clock,
        metrics=metrics,
        collector=_collector(config, app, wiring, metrics, store_down=lambda: guard.down),
    )


def engine_owner(config: LoadedConfig) -> str:
    """A name that stays the same across restarts of this engine (host and data directory),
    so a restarted engine takes its own leases back at once instead of waiting them out."""
    leases = config.main.Leases
    if leases.Owner:
        return leases.Owner
    where = hashlib.blake2b(str(config.data_dir.resolve()).encode(), digest_size=5).hexdigest()
    return f"{socket.gethostname()[:60]}:{where}"


def lease_keeper(config: LoadedConfig) -> LeaseKeeper | None:
    """Leases when the events are in PostgreSQL (several engines may share it)."""
    pg = config.main.Postgres
    if not pg.DataSource or not config.main.Leases.Enabled:
        return None
    store = PostgresLeaseStore(pg.DataSource, pg.Schema or config.main.Name)
    return LeaseKeeper(
        store,
        engine_owner(config),
        tuple(t.id for t in config.manager.traders),
        extra=tuple(sorted({venue_lease(t.exchange_provider) for t in config.manager.traders})),
        ttl=config.main.Leases.TTL,
    )


def _meter(
    config: LoadedConfig, venue: Exchange, metrics: EngineMetrics, clock: Clock
) -> FailureWindow:
    """Put the venue's requests through the metrics (and its failure window, on the
    engine's clock so that a replayed arena measures in its own time)."""
    window = FailureWindow(
        config.manager.manager.exchange_failure_window,
        clock=lambda: clock.now().timestamp(),
    )
    if isinstance(venue, HyperliquidExchange):
        venue.transport = MeteredTransport(
            venue.transport, venue=venue.name, metrics=metrics, window=window
        )
    metrics.exchange_paper.labels(venue.name).set(
        1 if isinstance(venue, SimulatedHyperliquid) else 0
    )
    return window


def _collector(
    config: LoadedConfig,
    app: TradingApp,
    wiring: _Wiring,
    metrics: EngineMetrics,
    *,
    store_down: Callable[[], bool] | None = None,
) -> MetricsCollector | None:
    monitoring = config.manager.monitoring
    if monitoring.metrics_exporter == "none":
        return None
    traders = config.manager.traders
    failovers = {
        name: market
        for name, (market, _) in wiring.markets.items()
        if isinstance(market, FailoverMarket)
    }
    sources = CollectorSources(
        app=app,
        venues={t.id: t.exchange_provider for t in traders},
        markets={t.id: t.market_provider for t in traders},
        models=_llm_models_in_use(config),
        failovers=failovers,
        redis=redis_client(config),
        projection_status=lambda: projection_status(config, app=app),
        slow_query_s=monitoring.slow_query_ms / 1000,
        store_down=store_down,
    )
    return MetricsCollector(metrics, sources)


@contextmanager
def engine_lock(config: LoadedConfig) -> Iterator[None]:
    """One engine per data directory (the SQLite store has one writer)."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    path = config.data_dir / "engine.lock"
    handle: IO[str] = open(path, "w")  # noqa: SIM115 - held for the engine's lifetime
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(
                f"another nof0 engine is running on {config.data_dir} "
                "(use --data-dir for a second arena)"
            ) from None
        yield
    finally:
        handle.close()


# -- trader control -----------------------------------------------------------------------


def cli_credential() -> str:
    """Who asked, for the audit trail of a command-line control action."""
    return f"cli:{getpass.getuser()}@{socket.gethostname()}"


def operator_control(
    config: LoadedConfig,
    *,
    app: TradingApp | None = None,
    clock: Clock | None = None,
    alerts: Alerts | None = None,
) -> OperatorControl:
    """The control commands over this arena's event store (the engine's own app when it is
    in the same process, so its working copies see the change at once)."""
    return OperatorControl(app or open_app(config), clock or SystemClock(), alerts)


def control_traders(config: LoadedConfig, app: TradingApp) -> list[str]:
    """Every trader the kill switch reaches: configured ones, then any other registered."""
    configured = [t.id for t in config.manager.traders]
    return kill_targets(configured, app.registered_trader_ids())


def pause_trader(config: LoadedConfig, trader: str, reason: str) -> bool:
    control = operator_control(config)
    return control.pause(trader, reason=reason, credential=cli_credential()).changed


def resume_trader(config: LoadedConfig, trader: str, reason: str) -> bool:
    control = operator_control(config)
    return control.resume(trader, reason=reason, credential=cli_credential()).changed


def flatten_trader(config: LoadedConfig, trader: str, reason: str) -> ControlResult:
    return operator_control(config).flatten(trader, reason=reason, credential=cli_credential())


def kill_switch(config: LoadedConfig, *, flatten: bool, reason: str) -> list[ControlResult]:
    control = operator_control(config)
    targets = control_traders(config, control.app)
    return control.kill(targets, flatten=flatten, reason=reason, credential=cli_credential())


def trader_rows(config: LoadedConfig) -> Sequence[dict[str, Any]]:
    return listing.trader_rows(open_app(config), [t.id for t in config.manager.traders])


# -- moving an arena between stores ------------------------------------------------------------


def export_arena(
    config: LoadedConfig, out: Path | None, *, app: TradingApp | None = None
) -> ExportReport:
    """Every stored event up to the head, to ``out`` (atomically) or to stdout (None)."""
    app = app or open_app(config)
    if out is None:
        return export_events(app, config.main.Name, sys.stdout.buffer, destination="-")
    return export_to_path(app, config.main.Name, out)


def import_arena(
    config: LoadedConfig, archive: Path, *, app: TradingApp | None = None
) -> ImportReport:
    """Verify ``archive`` whole, then append its events to this configuration's store.

    Holds the data directory's engine lock, so no local engine writes meanwhile."""
    if not archive.is_file():
        raise ArchiveError(f"{archive} is not a file")
    with engine_lock(config):
        app = app or open_app(config)
        return import_events(archive, app)


# -- replay verification ----------------------------------------------------------------------


def verify_replay(
    config: LoadedConfig,
    *,
    traders: Sequence[str] | None = None,
    last: int | None = None,
    app: TradingApp | None = None,
) -> VerifyReport:
    """Re-run parse, validation, risk and order planning over recorded cycles."""
    app = app or open_app(config)
    ex = config.executor
    renderer = JinjaPromptRenderer(
        root=config.files["Manager"].parent.parent,
        schema_version=ex.prompt_schema_version,
        strict=False,  # report a template change as a divergence, do not refuse to look
        require_header=ex.prompt_validation.require_version_header,
    )
    settings = {t.id: trader_settings(config, t) for t in config.manager.traders}
    provider = config.exchange.providers[config.exchange.default]
    fee = Decimal(str(provider.fee_taker_bps)) / Decimal(10_000)
    verifier = ReplayVerifier(
        events_of=lambda config_id: app.trader_events(config_id),
        settings=settings,
        assets=HYPERLIQUID_ASSETS,
        fee_rate=fee,
        renderer=renderer,
        schema=_schema(config),
    )
    return verifier.verify(traders, last=last)


# -- reports -----------------------------------------------------------------------------------


def write_run_report(run: Path, out: Path | None = None, *, seed: int = 0) -> RunReportResult:
    """``nof0 report``: read a run's views, compute its report, write HTML, JSON and PNGs
    (into ``run/report`` unless told). Raises :class:`ReportError` naming what is missing."""
    from infrastructure.reports.html import write_report
    from infrastructure.reports.source import read_run
    from projections.report import build_report

    documents = read_run(run)
    report = build_report(
        documents.account_totals, documents.trades, documents.analytics, seed=seed
    )
    written = write_report(
        report, out or run / "report", title=f"nof0 report: {run.resolve().name}"
    )
    return RunReportResult(report, written)


@dataclass(frozen=True)
class RunReportResult:
    report: RunReport
    written: WrittenReport


# -- backtests ---------------------------------------------------------------------------------


def _current_views(run: LoadedConfig) -> Path:
    ns = namespaces(run)
    return ns.directory(ns.ensure_current())


def _rebuild_split(run: LoadedConfig, app: TradingApp) -> None:
    rebuild_projections(run, app=app)


#: How a backtest split by trader reaches its stores (``--workers``).
SPLIT_STORE = SplitStore(
    open_app=lambda run: open_app(run),
    open_worker=lambda out: open_trading_app(sqlite_env(out / "events.sqlite3")),
    rebuild=_rebuild_split,
    current_views=_current_views,
)


def run_backtest(
    config: LoadedConfig,
    plan: BacktestPlan,
    progress: Callable[[Progress], None],
    *,
    workers: int = 1,
) -> BacktestResult:
    """``nof0 backtest``: this configuration's traders over recorded candles (see
    :mod:`infrastructure.backtest`); ``workers`` > 1: the traders split across that many
    processes, their stores merged into the run's (:mod:`infrastructure.backtest_workers`)."""
    check_workers(workers)
    if workers > 1:
        return run_split(config, plan, workers, store=SPLIT_STORE, progress=progress)
    current_views = _current_views
    return _run_backtest(
        config,
        plan,
        build_engine=lambda run, clock, seed: build_engine(
            run, clock=clock, replica=seed, backtest=True
        ),
        current_views=current_views,
        progress=progress,
    )


RANDOM_BASELINE = f"{BASELINE_PREFIX}random"


def run_backtest_replicas(
    config: LoadedConfig,
    plan: BacktestPlan,
    seeds: int,
    progress: Callable[[Progress], None],
    *,
    null: str | None = "random-walk",
    matched_null: bool = False,
    workers: int = 1,
) -> tuple[list[BacktestResult], ReplicaTable]:
    """``nof0 backtest --seeds N``: N replicas, their KPIs as mean and interval, each trader
    against the random trader (``null``) over the same replicas; ``workers`` > 1: the
    replicas in up to that many processes."""
    check_workers(workers)
    from infrastructure.reports.source import read_run
    from projections.report import build_report

    def read(run: Path) -> RunReport:
        documents = read_run(run)
        return build_report(documents.account_totals, documents.trades, documents.analytics)

    chosen = [t for t in config.manager.traders if not plan.traders or t.id in plan.traders]
    # The null is the random trader of the run, whatever its id.
    randoms = [t.id for t in chosen if t.model == RANDOM_BASELINE]
    return run_replicas(
        config,
        plan,
        seeds,
        run_one=lambda one: run_backtest(config, one, progress),
        read=read,
        null=null if null in randoms else (randoms[0] if randoms else None),
        matched_null=matched_null,
        run_with=lambda with_nulls, one: run_backtest(with_nulls, one, progress),
        run_all=_run_all(workers, progress),
    )


def _run_all(workers: int, progress: Callable[[Progress], None]) -> RunAll | None:
    """Independent backtests side by side in up to ``workers`` processes (None: one by
    one, in this process)."""
    if workers == 1:
        return None

    def run_all(runs: Sequence[tuple[LoadedConfig, BacktestPlan]]) -> list[BacktestResult]:
        jobs = [Job(run, plan, str(plan.out)) for run, plan in runs]
        return run_jobs(jobs, workers, progress)[0]

    return run_all


def compare_triggers(
    config: LoadedConfig,
    plan: BacktestPlan,
    progress: Callable[[Progress], None],
    *,
    workers: int = 1,
) -> tuple[dict[str, BacktestResult], TriggerComparison]:
    """``nof0 backtest --compare-triggers``: the traders on their timer and on their
    triggers over the same candles, calls and P&L side by side (``workers`` > 1: the two
    sides in two processes)."""
    check_workers(workers)
    import msgspec

    from infrastructure.reports.source import read_run
    from projections.report import build_report
    from projections.status import StatusState

    def read(run: LoadedConfig, out: Path) -> dict[str, SideFigures]:
        documents = read_run(out)
        report = build_report(documents.account_totals, documents.trades, documents.analytics)
        ns = namespaces(run)
        current = ns.current()
        assert current is not None  # read_run found it
        status = msgspec.json.decode(
            (ns.directory(current) / "status.json").read_bytes(), type=StatusState
        )
        calls = {t.model_id: t for t in status.traders}
        latest: dict[str, float] = {}
        stamps: dict[str, float] = {}
        for row in documents.account_totals.accountTotals:
            if row.timestamp >= stamps.get(row.model_id, float("-inf")):
                stamps[row.model_id] = row.timestamp
                latest[row.model_id] = row.dollar_equity
        allocations = {t.id: float(trader_settings(run, t).allocation) for t in run.manager.traders}
        figures = {}
        for trader in report.traders:
            model_id = trader.model_id
            total = trader.kpis.returns.total_return
            seen = calls.get(model_id)
            equity = latest.get(model_id)
            allocation = allocations.get(model_id)
            figures[model_id] = SideFigures(
                calls=seen.cycles if seen is not None else 0,
                net_pnl=None
                if equity is None or allocation is None
                else round(equity - allocation, 2),
                total_return=total.estimate,
                return_low=total.low,
                return_high=total.high,
                trades=trader.num_trades,
                timer_calls=None
                if seen is None or seen.triggers is None
                else seen.triggers.timer_calls,
            )
        return figures

    return run_trigger_comparison(
        config,
        plan,
        run_one=lambda run, one: run_backtest(run, one, progress),
        read=read,
        run_all=_run_all(workers, progress),
    )


def replay_counterfactual(
    config: LoadedConfig,
    run: Path,
    change: Change,
    progress: Callable[[Progress], None],
    *,
    approve: Callable[[CostEstimate], bool] = lambda estimate: estimate.calls == 0,
    out: Path | None = None,
    workers: int = 1,
) -> Comparison:
    """``nof0 replay run``: the backtest in ``run``, or the arena recorded there (a data
    directory ``nof0 run`` traded in), decided again under ``change``; ``approve`` sees the
    model cost estimate first and may refuse it; ``workers`` > 1: the traders split across
    that many processes (``run_backtest``'s split)."""
    from infrastructure.reports.source import read_run
    from projections.report import build_report

    def read(directory: Path) -> RunReport:
        documents = read_run(directory)
        return build_report(documents.account_totals, documents.trades, documents.analytics)

    return _replay_run(
        config,
        run,
        change,
        run_backtest=lambda changed, plan: run_backtest(changed, plan, progress, workers=workers),
        read=read,
        approve=lambda changed, plan: approve(estimate_backtest_cost(changed, plan)),
        out=out,
        open_arena=_recorded_arena(config, run),
    )


def _recorded_arena(config: LoadedConfig, run: Path) -> Callable[[], TradingApp] | None:
    """How to open the arena recorded in ``run``: the configured store when ``run`` is the
    configuration's data directory (SQLite or PostgreSQL), else its SQLite events file."""
    if (run / "backtest.json").exists():
        return None
    if run.resolve() == config.data_dir.resolve():
        return lambda: open_app(config)
    if (run / "events.sqlite3").is_file():
        return lambda: open_trading_app(sqlite_env(run / "events.sqlite3"))
    return None


def estimate_backtest_cost(config: LoadedConfig, plan: BacktestPlan) -> CostEstimate:
    """The model calls and dollars a backtest would spend, before its prompt cache."""
    run = backtest_config(config, plan)
    intervals = {}
    for trader in run.manager.traders:
        settings = trader_settings(run, trader)
        # A trader with triggers may be called on any step its gates fire: at most every
        # min_interval (the estimate is an upper bound).
        rules = settings.triggers
        intervals[trader.id] = (
            settings.decision_interval_s if rules is None else rules.min_interval_s
        )
    return estimate_cost(run, plan, intervals, baseline_prefix=BASELINE_PREFIX)


# -- market history -----------------------------------------------------------------------


@contextmanager
def history_downloader(
    data_dir: Path, url: str | None = None, *, timeout_s: float = 10.0
) -> Iterator[HistoryDownloader]:
    """A downloader into ``<data_dir>/history/market.sqlite`` over HTTP (the venue's weight
    budget kept client-side); the store and the session are closed afterwards."""
    base = url or MAINNET_URL
    budget = WeightBudget()
    transport = HttpTransport(base, timeout_s=timeout_s, budget=budget)
    store = HistoryStore.open(data_dir)
    try:
        yield HistoryDownloader(transport, store, budget=budget, venue=base)
    finally:
        store.close()
        transport.close()


def history_store_path(config: LoadedConfig) -> Path:
    """The market history store of this configuration's data directory (``nof0 data``)."""
    return history_store_file(config.data_dir)
