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
from typing import TYPE_CHECKING

import msgspec

from infrastructure.clock import ManualClock
from infrastructure.config.loader import LoadedConfig
from infrastructure.config.models import ReplayMarketConfig, SimExchangeConfig
from infrastructure.files import atomic_write
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
    candles: dict[str, Path]  # coin -> one-minute CSV
    out: Path
    traders: Sequence[str] = ()  # config ids; empty: every configured trader
    history_days: int = 12
    #: The replica: seeds the random baseline's draws and the simulator's book (0: as
    #: configured).
    seed: int = 0


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
    if not plan.candles:
        raise BacktestError("no candles: give --candles COIN=PATH (one-minute CSV) per coin")
    known = {t.id: t for t in config.manager.traders}
    unknown = [t for t in plan.traders if t not in known]
    if unknown:
        raise BacktestError(
            f"no trader {', '.join(unknown)} in the configuration (there are: {', '.join(known)})"
        )
    chosen = [known[t] for t in plan.traders] if plan.traders else list(known.values())
    coins = list(plan.candles)
    traders = []
    venues: dict[str, SimExchangeConfig] = {}
    for trader in chosen:
        venue = config.exchange.providers.get(trader.exchange_provider)
        if not isinstance(venue, SimExchangeConfig):
            raise BacktestError(
                f"{trader.id} trades on {trader.exchange_provider}, not the simulator: a "
                "backtest never sends orders to a venue"
            )
        shared = [c for c in trader.coins if c in plan.candles]
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
            "candles": {coin: str(path.resolve()) for coin, path in plan.candles.items()},
            "start": plan.start,
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
    manager = config.manager.model_copy(update={"traders": traders, "monitoring": monitoring})
    exchange = config.exchange.model_copy(
        update={"providers": {**config.exchange.providers, **venues}}
    )
    return dataclasses.replace(
        config, main=main, market=market, manager=manager, exchange=exchange, data_dir=plan.out
    )


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
        coins=list(plan.candles),
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
        "candles": {
            coin: {"file": str(path), "sha256": _sha256(path)}
            for coin, path in plan.candles.items()
        },
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
