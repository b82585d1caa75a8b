"""The ``nof0`` command line.

Every command takes ``--config PATH`` (default ``etc/nof0.yaml``) and ``--data-dir DIR``
(default: the configuration's DataPath), so several arenas can live side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from application.counterfactual import describe
from infrastructure import bootstrap
from interfaces import data_cli, sim_cli

DEFAULT_CONFIG = "etc/nof0.yaml"
EXIT_CONFIG = 2


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        default=os.environ.get("NOF0_CONFIG", DEFAULT_CONFIG),
        help=f"main configuration file (default: {DEFAULT_CONFIG})",
    )
    parser.add_argument(
        "--data-dir", default=None, help="data directory (default: DataPath from the config)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nof0", description="An event-sourced arena of AI traders on crypto perpetuals."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the engine, the views and the query API")
    _common(run)
    run.add_argument("--port", type=int, default=None, help="API port (default: Port)")
    run.add_argument("--host", default=None, help="API host (default: Host)")

    serve = commands.add_parser(
        "serve", help="serve the query API alone, in worker processes (production)"
    )
    _common(serve)
    serve.add_argument("--port", type=int, default=None, help="API port (default: Port)")
    serve.add_argument("--host", default=None, help="API host (default: Host)")
    serve.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes (default: one per core this process may run on)",
    )

    report = commands.add_parser(
        "report", help="an HTML report with charts, PNGs and JSON KPIs of a run's views"
    )
    _common(report)
    report.add_argument(
        "run",
        nargs="?",
        default=None,
        help="the run's data directory (default: --data-dir, else the config's DataPath)",
    )
    report.add_argument("--out", default=None, help="output directory (default: RUN/report)")
    report.add_argument("--seed", type=int, default=0, help="the bootstrap's seed (default 0)")

    backtest = commands.add_parser(
        "backtest", help="the configured traders over recorded candles, on the simulator"
    )
    _common(backtest)
    backtest.add_argument("--from", dest="start", required=True, help="UTC start, ISO 8601")
    backtest.add_argument("--to", dest="end", required=True, help="UTC end, ISO 8601")
    backtest.add_argument(
        "--candles",
        action="append",
        default=[],
        metavar="COIN=PATH",
        help="a one-minute candle CSV for a coin (repeat per coin)",
    )
    backtest.add_argument(
        "--coins",
        default="",
        help="coins whose one-minute candles the history store holds (see nof0 data)",
    )
    backtest.add_argument(
        "--traders", default="", help="comma-separated trader ids (default: every trader)"
    )
    backtest.add_argument(
        "--out", default=None, help="the run's directory (default: DATA/backtests/<now>)"
    )
    backtest.add_argument("--report", action="store_true", help="write the report at the end")
    backtest.add_argument(
        "--yes", action="store_true", help="run LLM traders without asking (after the estimate)"
    )
    backtest.add_argument(
        "--max-cost",
        type=float,
        default=None,
        metavar="USD",
        help="refuse when the estimated model cost is above this",
    )
    backtest.add_argument(
        "--seeds",
        type=int,
        default=1,
        help="replicas (random baseline and simulator book seeds): KPIs as mean and interval",
    )
    backtest.add_argument(
        "--matched-null",
        action="store_true",
        help="with --seeds: each trader against a random trader matched to its turnover, "
        "holding time and leverage (null-<id>, under RUN/null)",
    )
    backtest.add_argument(
        "--compare-triggers",
        action="store_true",
        help="run the traders on their decision interval and on their triggers over the same "
        "candles (OUT/timer, OUT/triggers): model calls and P&L side by side",
    )
    backtest.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="processes: replicas (--seeds) or the two sides (--compare-triggers) side by "
        "side; a single run's traders split across them (OUT/workers/<k>), their events "
        "merged into OUT. Same results as one process",
    )

    check = commands.add_parser("check", help="validate the configuration and report problems")
    _common(check)

    projections = commands.add_parser("projections", help="rebuild or inspect the views")
    projections_commands = projections.add_subparsers(dest="action", required=True)
    rebuild = projections_commands.add_parser(
        "rebuild", help="replay all events into a new namespace, then switch to it"
    )
    _common(rebuild)
    rebuild.add_argument(
        "--processes",
        type=int,
        default=None,
        metavar="N",
        help="reduce the views in up to N processes side by side (default 1); the views "
        "written are the same. Each process reads the whole log: on two cores it paid "
        "on SQLite (1.2x) and not on PostgreSQL (0.9x)",
    )
    status = projections_commands.add_parser("status", help="position and lag of every view")
    _common(status)

    replay = commands.add_parser("replay", help="verify recorded cycles")
    replay_commands = replay.add_subparsers(dest="action", required=True)
    verify = replay_commands.add_parser(
        "verify",
        help="re-run parse, validation, risk and order planning over recorded cycles and "
        "report any divergence (exit 1)",
    )
    verify.add_argument("--trader", action="append", help="only this trader (repeatable)")
    verify.add_argument("--last", type=int, default=None, help="only the last N cycles each")
    _common(verify)

    counterfactual = replay_commands.add_parser(
        "run",
        help="a backtest, or a recorded arena's cycles, decided again under a change, "
        "compared side by side",
    )
    counterfactual.add_argument(
        "run", help="the backtest's directory, or the data directory an arena traded in"
    )
    counterfactual.add_argument("--prompt", default=None, help="another system prompt template")
    counterfactual.add_argument("--model", default=None, help="another model id")
    counterfactual.add_argument(
        "--risk", action="append", default=[], metavar="KEY=VALUE", help="a risk parameter"
    )
    counterfactual.add_argument(
        "--trader", action="append", default=[], help="who gets the change (default: all)"
    )
    counterfactual.add_argument(
        "--blindfold",
        action="store_true",
        help="mask coin names and dates in the prompt (ASSET1…, day 0): how much of a "
        "result is the model's memory of the period",
    )
    counterfactual.add_argument("--out", default=None, help="default: RUN/counterfactuals/<n>")
    counterfactual.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="the re-decided traders split across N processes, their events merged into "
        "OUT (as backtest --workers). Same comparison as one process",
    )
    counterfactual.add_argument(
        "--yes", action="store_true", help="call paid models without asking (after the estimate)"
    )
    counterfactual.add_argument(
        "--max-cost", type=float, default=None, metavar="USD", help="refuse a larger estimate"
    )
    _common(counterfactual)

    events = commands.add_parser(
        "events", help="export or import the event log (move an arena between stores)"
    )
    events_commands = events.add_subparsers(dest="action", required=True)
    export = events_commands.add_parser(
        "export", help="write every stored event to a verified nof0-events NDJSON file"
    )
    export.add_argument(
        "--out", default="-", help="file to write, atomically ('-', the default: stdout)"
    )
    _common(export)
    imported = events_commands.add_parser(
        "import",
        help="verify a nof0-events file whole, then append it to an empty event store",
    )
    imported.add_argument("file", help="the file written by 'nof0 events export'")
    _common(imported)

    traders = commands.add_parser("traders", help="list, pause, resume or flatten traders")
    trader_commands = traders.add_subparsers(dest="action", required=True)
    listing = trader_commands.add_parser("list", help="traders and their state")
    _common(listing)
    helps = {
        "pause": "no new entries; stops and targets stay on the venue",
        "resume": "decide again",
        "flatten": "pause, cancel entries, close positions at market, cancel protections",
    }
    for action, text in helps.items():
        sub = trader_commands.add_parser(action, help=text)
        sub.add_argument("trader", help="the trader's config id")
        sub.add_argument("--reason", default="operator request")
        _common(sub)
    kill = commands.add_parser("kill", help="the kill switch: pause (or flatten) every trader")
    kill.add_argument("--flatten", action="store_true", help="flatten every trader too")
    kill.add_argument("--reason", default="kill switch")
    _common(kill)
    sim_cli.add_parser(commands)
    data_cli.add_parser(commands, _common)
    return parser


def _load(args: argparse.Namespace) -> bootstrap.LoadedConfig | None:
    try:
        return bootstrap.load_config(args.config, data_dir=args.data_dir)
    except bootstrap.ConfigError as exc:
        print(f"configuration {args.config} has {len(exc.problems)} problem(s):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        print("run 'nof0 check' after fixing them", file=sys.stderr)
        return None


def cmd_check(args: argparse.Namespace) -> int:
    report = bootstrap.check_config(args.config, data_dir=args.data_dir)
    if not report.ok:
        print(f"{args.config}: {len(report.problems)} problem(s)")
        for problem in report.problems:
            print(f"  - {problem}")
        return 1
    print(f"{args.config}: OK")
    for line in report.summary:
        print(f"  {line}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from interfaces.runner import run_arena

    config = _load(args)
    if config is None:
        return EXIT_CONFIG
    _logging(config.main.Logging.Level)
    host = args.host or config.main.Host
    port = args.port or config.main.Port
    try:
        return asyncio.run(run_arena(config, host=host, port=port))
    except (bootstrap.NotAvailable, bootstrap.EventStoreError, RuntimeError, OSError) as exc:
        # An event store that cannot be opened (PostgreSQL refusing): fail closed, one line.
        logging.getLogger("nof0").error("cannot run: %s", exc)
        return 1


def cmd_serve(args: argparse.Namespace) -> int:
    from interfaces.serve import default_workers, serve

    config = _load(args)
    if config is None:
        return EXIT_CONFIG
    _logging(config.main.Logging.Level)
    workers = default_workers() if args.workers is None else args.workers
    if workers < 1:
        print(f"--workers must be at least 1, not {workers}", file=sys.stderr)
        return EXIT_CONFIG
    host = args.host or config.main.Host
    port = args.port or config.main.Port
    return serve(config, args.config, host=host, port=port, workers=workers)


def _utc(text: str, flag: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{flag} {text!r} is not an ISO 8601 time (e.g. 2022-01-15T00:00Z)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _candle_files(specs: list[str]) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for spec in specs:
        coin, sep, path = spec.partition("=")
        if not sep or not coin.strip() or not path:
            raise ValueError(f"--candles {spec!r} is not COIN=PATH")
        files[coin.strip().upper()] = Path(path)
    return files


def _progress_bar(progress: bootstrap.Progress) -> None:
    width = 30
    filled = width * progress.done // progress.total
    eta = progress.eta_s
    left = "--:--" if eta is None else f"{int(eta // 60):02d}:{int(eta % 60):02d}"
    print(
        f"\r[{'#' * filled}{'.' * (width - filled)}] {100 * progress.done // progress.total:3d}% "
        f"{progress.at:%Y-%m-%d %H:%M} ETA {left}",
        end="" if progress.done < progress.total else "\n",
        file=sys.stderr,
        flush=True,
    )


def _spend_approved(
    estimate: bootstrap.CostEstimate,
    yes: bool,
    max_cost: float | None,
    runs: int = 1,
    what: str = "backtest",
) -> bool:
    """Print what the LLM traders would cost (``runs`` times one run's); go on only when
    told to (or asked and answered yes at a terminal), and never when the most it could
    cost is above ``--max-cost``."""
    for row in estimate.traders:
        print(
            f"{row.trader} ({row.model}): up to {runs * row.calls:,} model calls, about "
            f"{runs * row.tokens_in:,} prompt and {runs * row.tokens_out_typical:,} answer "
            f"tokens: about ${runs * row.dollars_typical:,.2f} (at most "
            f"${runs * row.dollars_max:,.2f}), less what the prompt cache answers (a re-run "
            "of the same backtest asks no model)",
            file=sys.stderr,
        )
    most = runs * estimate.dollars_max
    if max_cost is not None and most > max_cost:
        print(
            f"{what} refused: up to ${most:,.2f} of model calls is over --max-cost {max_cost:,.2f}",
            file=sys.stderr,
        )
        return False
    if yes:
        return True
    if not sys.stdin.isatty():
        print(
            f"{what} refused: it would call paid models; pass --yes to run it (and --max-cost "
            "to cap it)",
            file=sys.stderr,
        )
        return False
    answer = input(f"run it for about ${runs * estimate.dollars_typical:,.2f}? [y/N] ")
    return answer.strip().lower() in {"y", "yes"}


def cmd_backtest(args: argparse.Namespace) -> int:
    config = _load(args)
    if config is None:
        return EXIT_CONFIG
    try:
        start, end = _utc(args.start, "--from"), _utc(args.end, "--to")
        candles = _candle_files(args.candles)
    except ValueError as exc:
        print(f"backtest refused: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    out = (
        Path(args.out)
        if args.out
        else Path(config.data_dir) / "backtests" / datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    )
    traders = [t.strip() for t in args.traders.split(",") if t.strip()]
    coins = [c.strip().upper() for c in args.coins.split(",") if c.strip()]
    plan = bootstrap.BacktestPlan(
        start=start,
        end=end,
        candles=candles,
        out=out,
        traders=traders,
        store=bootstrap.history_store_path(config) if coins else None,
        coins=coins,
    )
    logging.basicConfig(level=logging.WARNING)
    if args.workers < 1:
        print(
            f"backtest refused: --workers must be at least 1, not {args.workers}", file=sys.stderr
        )
        return EXIT_CONFIG
    if args.matched_null and args.seeds < 2:
        print("backtest refused: --matched-null needs --seeds 2 or more", file=sys.stderr)
        return 1
    try:
        estimate = bootstrap.estimate_backtest_cost(config, plan)
    except (bootstrap.BacktestError, bootstrap.NotAvailable) as exc:
        print(f"backtest refused: {exc}", file=sys.stderr)
        return 1
    if args.compare_triggers and args.seeds != 1:
        print("backtest refused: --compare-triggers runs one seed per side", file=sys.stderr)
        return EXIT_CONFIG
    # Each replica's fills differ, so its prompts do too: N replicas can cost N times one.
    # A comparison runs twice (the estimate of a trader with triggers is its most calls).
    runs = 2 if args.compare_triggers else args.seeds
    if estimate.calls and not _spend_approved(estimate, args.yes, args.max_cost, runs):
        return 1
    if args.compare_triggers:
        return _compare_triggers(config, plan, args.workers)
    if args.seeds != 1:
        return _backtest_replicas(
            config, plan, args.seeds, matched=args.matched_null, workers=args.workers
        )
    try:
        result = bootstrap.run_backtest(config, plan, _progress_bar, workers=args.workers)
    except bootstrap.WorkerFailed as exc:
        print(f"\nbacktest failed: {exc}", file=sys.stderr)
        return 1
    except (bootstrap.BacktestError, bootstrap.NotAvailable) as exc:
        print(f"backtest refused: {exc}", file=sys.stderr)
        return 1
    print(
        f"backtest {result.out}: {', '.join(result.traders)} on {', '.join(result.coins)}, "
        f"{result.minutes:,} minutes, {result.cycles:,} cycles, {result.trades} trades in "
        f"{result.seconds:.1f} s ({result.candles_per_s:,.0f} candles/s)"
    )
    print(f"fingerprint {result.fingerprint}")
    print(f"serve it: nof0 serve --data-dir {result.out}; report: nof0 report {result.out}")
    if args.report:
        written = bootstrap.write_run_report(result.out).written
        print(f"wrote {written.html}")
    return 0


def _summary(summary: object) -> str:
    mean, low, high = (getattr(summary, name) for name in ("mean", "low", "high"))
    if mean is None:
        return "–"
    if low is None or high is None:
        return f"{mean:+.4f}"
    return f"{mean:+.4f} [{low:+.4f}, {high:+.4f}]"


def _compare_triggers(
    config: bootstrap.LoadedConfig, plan: bootstrap.BacktestPlan, workers: int
) -> int:
    try:
        results, comparison = bootstrap.compare_triggers(
            config, plan, _progress_bar, workers=workers
        )
    except bootstrap.WorkerFailed as exc:
        print(f"\nbacktest failed: {exc}", file=sys.stderr)
        return 1
    except (bootstrap.BacktestError, bootstrap.NotAvailable) as exc:
        print(f"backtest refused: {exc}", file=sys.stderr)
        return 1
    timer = results["timer"]
    print(
        f"timer and triggers over {', '.join(timer.coins)}, {timer.minutes:,} minutes "
        f"({plan.start.isoformat()} to {plan.end.isoformat()}): {plan.out / 'timer'}, "
        f"{plan.out / 'triggers'}"
    )
    head = f"{'trader':<20} {'side':<9} {'calls':>6} {'net P&L':>10} {'trades':>6}"
    print(f"{head}  return [interval]")
    for trader, sides in comparison.traders.items():
        for side, row in sides.items():
            pnl = "–" if row.net_pnl is None else f"{row.net_pnl:+,.2f}"
            ret = _interval(row.total_return, row.return_low, row.return_high)
            print(f"{trader:<20} {side:<9} {row.calls:>6} {pnl:>10} {row.trades:>6}  {ret}")
        ratio = comparison.calls_ratio(trader)
        if ratio is not None:
            print(f"{trader:<20} {ratio:.1f}× fewer calls on triggers")
    print(f"wrote {plan.out / 'triggers-comparison.json'}")
    return 0


def _interval(estimate: float | None, low: float | None, high: float | None) -> str:
    if estimate is None:
        return "–"
    if low is None or high is None:
        return f"{estimate:+.4f}"
    return f"{estimate:+.4f} [{low:+.4f}, {high:+.4f}]"


def _backtest_replicas(
    config: bootstrap.LoadedConfig,
    plan: bootstrap.BacktestPlan,
    seeds: int,
    *,
    matched: bool,
    workers: int = 1,
) -> int:
    try:
        runs, table = bootstrap.run_backtest_replicas(
            config, plan, seeds, _progress_bar, matched_null=matched, workers=workers
        )
    except bootstrap.WorkerFailed as exc:
        print(f"\nbacktest failed: {exc}", file=sys.stderr)
        return 1
    except (bootstrap.BacktestError, bootstrap.NotAvailable) as exc:
        print(f"backtest refused: {exc}", file=sys.stderr)
        return 1
    print(f"{len(runs)} replicas in {plan.out} (seed-0 … seed-{len(runs) - 1})")
    for trader, kpis in table.traders.items():
        luck = table.verdicts.get(trader, {})
        verdict = f"; sharpe {luck['sharpe']}" if "sharpe" in luck else ""
        print(
            f"{trader}: return {_summary(kpis['total_return'])}, "
            f"sharpe {_summary(kpis['sharpe'])}{verdict}"
        )
    for trader, row in table.matched.items():
        print(
            f"{trader} against its matched null ({row['null']}): "
            + ", ".join(f"{kpi} {label}" for kpi, label in row["luck"].items())
        )
    print(f"wrote {plan.out / 'replicas.json'}")
    return 0


def _pair(before: Any, after: Any, getter: Any, fmt: str) -> str:
    one = "–" if before is None else format(getter(before), fmt)
    two = "–" if after is None else format(getter(after), fmt)
    return f"{one} → {two}"


def _counterfactual(config: bootstrap.LoadedConfig, args: argparse.Namespace) -> int:
    risk: dict[str, str] = {}
    for spec in args.risk:
        key, sep, value = spec.partition("=")
        if not sep or not key.strip():
            print(f"replay run refused: --risk {spec!r} is not KEY=VALUE", file=sys.stderr)
            return EXIT_CONFIG
        risk[key.strip()] = value.strip()
    change = bootstrap.Change(
        prompt=Path(args.prompt) if args.prompt else None,
        model=args.model,
        risk=risk,
        traders=args.trader,
        blindfold=args.blindfold,
    )
    if args.workers < 1:
        print(
            f"replay run refused: --workers must be at least 1, not {args.workers}",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    logging.basicConfig(level=logging.WARNING)

    def approve(estimate: bootstrap.CostEstimate) -> bool:
        return not estimate.calls or _spend_approved(
            estimate, args.yes, args.max_cost, what="replay run"
        )

    try:
        result = bootstrap.replay_counterfactual(
            config,
            Path(args.run),
            change,
            _progress_bar,
            approve=approve,
            out=Path(args.out) if args.out else None,
            workers=args.workers,
        )
    except (bootstrap.BacktestError, bootstrap.NotAvailable) as exc:
        print(f"replay run refused: {exc}", file=sys.stderr)
        return 1
    print(f"counterfactual of {result.run} with {change.describe()}: {result.out}")
    header = (
        f"{'trader':<14} {'cycles':>6} {'differ':>6}  {'trades':>9}  {'net P&L':>21}  "
        f"{'return':>17}  {'model cost':>17}"
    )
    print(header)
    for row in result.traders:
        both = (row.original, row.counterfactual)
        mark = "*" if row.changed else " "
        decided = f"{row.decisions.compared:>6} {len(row.decisions.differing):>6}"
        print(
            f"{row.trader + mark:<14} {decided}  "
            f"{_pair(*both, lambda r: r.num_trades, 'd'):>9}  "
            f"{_pair(*both, lambda r: r.kpis.trades.net_pnl, '+.2f'):>21}  "
            f"{_pair(*both, lambda r: r.kpis.returns.total_return.estimate or 0.0, '+.2%'):>17}  "
            f"{row.original_cost:.4f} → {row.counterfactual_cost:.4f}"
        )
    print("* the change applies to this trader")
    for row in result.traders:
        for at, was, now in row.decisions.differing[:5]:
            print(f"  {row.trader} {at:%Y-%m-%d %H:%M}: {describe(was)} → {describe(now)}")
        if len(row.decisions.differing) > 5:
            print(f"  {row.trader}: … {len(row.decisions.differing) - 5} more cycles differ")
    fingerprints = (result.original_fingerprint[:12], result.counterfactual_fingerprint[:12])
    print(f"fingerprints {fingerprints[0]} → {fingerprints[1]}")
    if result.recorded_arena:
        print(
            "the original is the recorded arena (its own venue and fills); the counterfactual "
            "re-decided its recorded snapshots on the simulator at the recorded prices, which "
            "stand still between cycles: trades and P&L differ by that too, decisions only by "
            "the change"
        )
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    if args.run is not None:
        run = Path(args.run)
    else:
        config = _load(args)
        if config is None:
            return EXIT_CONFIG
        run = Path(config.data_dir)
    try:
        result = bootstrap.write_run_report(
            run, Path(args.out) if args.out else None, seed=args.seed
        )
    except bootstrap.ReportError as exc:
        print(f"no report: {exc}", file=sys.stderr)
        return 1
    report, written = result.report, result.written
    for trader in report.traders:
        kpis = trader.kpis.returns
        low, high = kpis.total_return.low, kpis.total_return.high
        interval = "" if low is None or high is None else f" [{low:+.2%}, {high:+.2%}]"
        print(
            f"{trader.model_id}: return {kpis.total_return.estimate or 0:+.2%}{interval}, "
            f"{trader.num_trades} trades, max drawdown {kpis.max_drawdown:.2%}"
        )
    print(f"fingerprint {report.fingerprint}")
    print(f"wrote {written.html}, {written.json} and {len(written.pngs)} PNGs")
    return 0


def cmd_projections(args: argparse.Namespace) -> int:
    config = _load(args)
    if config is None:
        return EXIT_CONFIG
    if args.action == "rebuild":
        processes = 1 if args.processes is None else args.processes
        if processes < 1:
            print("--processes must be at least 1", file=sys.stderr)
            return 2
        try:
            report = bootstrap.rebuild_projections(config, processes=processes)
        except RuntimeError as exc:
            print(f"rebuild refused: {exc}", file=sys.stderr)
            return 1
        print(
            f"rebuilt {report.events} events (up to position {report.head}) into namespace "
            f"{report.namespace} in {report.seconds:.2f}s ({report.rate:,.0f} events/s); "
            f"readers switched from {report.previous or '(none)'}"
        )
        if report.tables is not None:
            print(f"SQL read tables rebuilt from {report.tables} events")
        return 0
    rows = bootstrap.projection_status(config)
    if not rows:
        print("no views written yet (start the engine with 'nof0 run')")
        return 0
    print(f"{'store':<12} {'view':<18} {'file':<28} {'position':>9} {'head':>9} {'lag':>7}")
    for row in rows:
        position = "-" if row.position is None else str(row.position)
        lag = "-" if row.lag is None else str(row.lag)
        print(f"{row.store:<12} {row.view:<18} {row.file:<28} {position:>9} {row.head:>9} {lag:>7}")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    config = _load(args)
    if config is None:
        return EXIT_CONFIG
    if args.action == "run":
        return _counterfactual(config, args)
    try:
        report = bootstrap.verify_replay(config, traders=args.trader, last=args.last)
    except LookupError as exc:
        print(str(exc).strip("'\""), file=sys.stderr)
        return EXIT_CONFIG
    for divergence in report.divergences:
        print(divergence)
    verdict = "OK" if report.ok else f"{len(report.divergences)} divergence(s)"
    print(
        f"replay verify: {verdict} — {report.cycles} cycles of {', '.join(report.traders)} "
        f"checked, {report.skipped} without an answer to re-read"
    )
    return 0 if report.ok else 1


def cmd_events(args: argparse.Namespace) -> int:
    config = _load(args)
    if config is None:
        return EXIT_CONFIG
    if args.action == "export":
        out = None if args.out == "-" else Path(args.out)
        try:
            exported = bootstrap.export_arena(config, out)
        except (bootstrap.ArchiveError, bootstrap.EventStoreError, OSError) as exc:
            print(f"export failed: {exc}", file=sys.stderr)
            return 1
        print(
            f"exported {exported.events} events (up to position {exported.head}) of arena "
            f"{config.main.Name} to {exported.destination}, sha256 {exported.sha256}",
            file=sys.stderr,
        )
        return 0
    try:
        imported = bootstrap.import_arena(config, Path(args.file))
    except (bootstrap.ArchiveError, bootstrap.EventStoreError, OSError, RuntimeError) as exc:
        print(f"import refused: {exc}", file=sys.stderr)
        return 1
    resumed = (
        f" ({imported.already_present} were already there)" if imported.already_present else ""
    )
    print(
        f"imported {imported.written} of {imported.events} events from arena "
        f"{imported.arena} into {config.main.Name}{resumed}; sha256 {imported.sha256} verified"
    )
    if imported.arena != config.main.Name:
        print(f"note: the archive's arena is {imported.arena!r}, this one {config.main.Name!r}")
    if not imported.ids_preserved:
        print(
            "note: the target numbered the events differently from the source; views "
            "rebuilt here carry other positions"
        )
    print("run 'nof0 projections rebuild' to build the views from the imported events")
    return 0


def cmd_traders(args: argparse.Namespace) -> int:
    config = _load(args)
    if config is None:
        return EXIT_CONFIG
    if args.action == "list":
        for row in bootstrap.trader_rows(config):
            if not row["registered"]:
                print(f"{row['id']}: not registered yet")
                continue
            state = f"paused ({row['pause_reason']})" if row["paused"] else "active"
            print(
                f"{row['id']}: {state}, model {row['model']}, {row['cycles']} cycles, "
                f"{row['trades']} trades, positions {', '.join(row['positions']) or 'none'}"
            )
        return 0
    try:
        if args.action == "flatten":
            bootstrap.flatten_trader(config, args.trader, args.reason)
            print(
                f"{args.trader}: paused; flatten requested (the running engine cancels its "
                "entries, closes its positions at market and cancels its protections)"
            )
            return 0
        if args.action == "pause":
            changed = bootstrap.pause_trader(config, args.trader, args.reason)
        else:
            changed = bootstrap.resume_trader(config, args.trader, args.reason)
    except (LookupError, bootstrap.ControlError) as exc:
        print(str(exc), file=sys.stderr)
        return 1
    verb = "paused" if args.action == "pause" else "resumed"
    print(f"{args.trader}: {verb}" if changed else f"{args.trader}: already {verb}")
    return 0


def cmd_kill(args: argparse.Namespace) -> int:
    config = _load(args)
    if config is None:
        return EXIT_CONFIG
    try:
        results = bootstrap.kill_switch(config, flatten=args.flatten, reason=args.reason)
    except bootstrap.ControlError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    what = "paused and flatten requested" if args.flatten else "paused"
    for result in results:
        print(f"{result.trader}: {what}")
    if not results:
        print("no trader is registered: nothing to stop")
    return 0


def _logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handlers = {
        "run": cmd_run,
        "serve": cmd_serve,
        "report": cmd_report,
        "backtest": cmd_backtest,
        "check": cmd_check,
        "projections": cmd_projections,
        "replay": cmd_replay,
        "events": cmd_events,
        "traders": cmd_traders,
        "kill": cmd_kill,
        "sim": sim_cli.run,
        "data": data_cli.run,
    }
    try:
        return handlers[args.command](args)
    except BrokenPipeError:
        # The reader went away (e.g. `nof0 check | head`): stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


__all__ = ["Path", "main"]
