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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from infrastructure.clock import ManualClock
from infrastructure.config.loader import LoadedConfig
from infrastructure.config.models import ReplayMarketConfig, SimExchangeConfig
from infrastructure.files import atomic_write
from infrastructure.market.history_tape import HistoryTape
from projections.documents import TradesDocument
from projections.replicas import ReplicaSummary, aggregate_replicas, luck_test
from projections.report import RunReport, trades_fingerprint

if TYPE_CHECKING:  # bootstrap wires the backtest; importing it at run time would loop
    from infrastructure.bootstrap import Engine

BuildEngine = Callable[[LoadedConfig, ManualClock, int], "Engine"]

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
        venues[own_venue] = venue.model_copy(update={"seed": venue.seed + plan.seed})
        update = {"market_provider": PROVIDER, "coins": shared, "exchange_provider": own_venue}
        traders.append(trader.model_copy(update=update))
    provider = ReplayMarketConfig.model_validate(
        {
            "type": "replay",
            "source": "history",
            **(
                {"store": str(plan.store.resolve()), "coins": coins}
                if plan.store is not None
                else {"candles": {coin: str(path.resolve()) for coin, path in plan.candles.items()}}
            ),
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
) -> int:
    clock = ManualClock(plan.start)
    engine = build_engine(config, clock, plan.seed)
    await engine.start()
    total = int((plan.end - plan.start) / STEP)
    began = time.perf_counter()
    report_every = max(1, total // 200)
    for done in range(1, total + 1):
        clock.advance(STEP.total_seconds())
        await engine.arena.tick()
        await engine.arena.drain()
        if done % report_every == 0 or done == total:
            progress(Progress(done, total, clock.now(), time.perf_counter() - began))
    worker = engine.worker
    for target in worker.targets:
        while worker.pump(target):
            pass
    if worker.tables is not None:
        while worker.tables.pump():
            pass
    return engine.arena.cycles_run


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
    cycles = asyncio.run(_run(run_config, plan, build_engine, progress))
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
    )
    summary = {
        "seed": plan.seed,
        "from": plan.start.isoformat(),
        "to": plan.end.isoformat(),
        "traders": {t.id: t.model for t in run_config.manager.traders},
        "trader_configs": trader_records(run_config),
        "candles": candle_record(plan),
        "minutes": result.minutes,
        "cycles": cycles,
        "trades": result.trades,
        "seconds": round(seconds, 3),
        "candles_per_s": round(result.candles_per_s),
        "fingerprint": result.fingerprint,
    }
    atomic_write(plan.out / "backtest.json", json.dumps(summary, indent=2).encode())
    return result


# -- replicas (--seeds N) ------------------------------------------------------------------


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


def run_replicas(
    config: LoadedConfig,
    plan: BacktestPlan,
    seeds: int,
    *,
    run_one: Callable[[BacktestPlan], BacktestResult],
    read: Callable[[Path], RunReport],
    null: str | None,
) -> tuple[list[BacktestResult], ReplicaTable]:
    """``--seeds N``: N replicas into ``out/seed-<i>``, then ``out/replicas.json``."""
    if seeds < 1:
        raise BacktestError(f"--seeds must be at least 1, not {seeds}")
    if plan.out.exists() and any(plan.out.iterdir()):
        raise BacktestError(f"{plan.out} is not empty: give a new --out for each run")
    if null is not None and plan.traders and null not in plan.traders:
        raise BacktestError(f"the null trader {null} is not among --traders")
    backtest_config(config, plan)  # refuse bad input before the first replica runs
    runs = [
        run_one(dataclasses.replace(plan, out=plan.out / f"seed-{seed}", seed=seed))
        for seed in range(seeds)
    ]
    table = replica_table(runs, read, null)
    atomic_write(plan.out / "replicas.json", json.dumps(table.document(), indent=2).encode())
    return runs, table


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
) -> tuple[dict[str, BacktestResult], TriggerComparison]:
    """``--compare-triggers``: the chosen traders over the same candles twice, on their
    decision interval (``out/timer``) and on their triggers (``out/triggers``), then
    ``out/triggers-comparison.json`` with each side's calls and P&L."""
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
    results: dict[str, BacktestResult] = {}
    figures: dict[str, dict[str, SideFigures]] = {}
    for side in SIDES:
        one = dataclasses.replace(plan, out=plan.out / side)
        results[side] = run_one(configs[side], one)
        for trader, row in read(backtest_config(configs[side], one), one.out).items():
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
