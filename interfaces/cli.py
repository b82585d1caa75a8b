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
from pathlib import Path

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

    check = commands.add_parser("check", help="validate the configuration and report problems")
    _common(check)

    projections = commands.add_parser("projections", help="rebuild or inspect the views")
    projections_commands = projections.add_subparsers(dest="action", required=True)
    rebuild = projections_commands.add_parser(
        "rebuild", help="replay all events into a new namespace, then switch to it"
    )
    _common(rebuild)
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


def cmd_projections(args: argparse.Namespace) -> int:
    config = _load(args)
    if config is None:
        return EXIT_CONFIG
    if args.action == "rebuild":
        try:
            report = bootstrap.rebuild_projections(config)
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
