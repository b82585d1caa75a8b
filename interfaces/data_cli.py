"""``nof0 data``: the local market history (candles and funding rates).

    nof0 data download --coins BTC,ETH --interval 1m,3m,1h,4h --from 2026-01-01
                       [--to 2026-02-01] [--no-funding] [--url URL] [--data-dir D]
    nof0 data record --coins BTC,ETH --interval 1m,3m [--url URL] [--once | --passes N]
    nof0 data list [--json]
    nof0 data import PATH... [--coin C --interval I]
    nof0 data export --coin C --interval I [--from DATE] [--to DATE] [--out FILE|-]

The store is ``<data>/history/market.sqlite`` (``infrastructure.market.history``). A download
is resumable: run the same command again after a failure or Ctrl-C and it asks the venue only
for what it does not have. ``--to`` is exclusive (candles opening before it), default now.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sqlite3
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from infrastructure import bootstrap

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
SHOWN_GAPS = 10


def _coins(text: str) -> list[str]:
    coins = [c.strip() for c in text.split(",") if c.strip()]
    if not coins:
        raise argparse.ArgumentTypeError("expected one coin or more, e.g. BTC,ETH")
    return list(dict.fromkeys(coins))


def _intervals(text: str) -> list[str]:
    intervals = [i.strip() for i in text.split(",") if i.strip()]
    if not intervals:
        raise argparse.ArgumentTypeError("expected one interval or more, e.g. 1m,1h")
    unknown = [i for i in intervals if i not in bootstrap.HISTORY_INTERVALS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown interval {', '.join(map(repr, unknown))}"
            f" (known: {', '.join(bootstrap.HISTORY_INTERVALS)})"
        )
    return list(dict.fromkeys(intervals))


def _moment(text: str) -> int:
    """``2026-01-01`` or ``2026-01-01T12:30[:00][Z|+00:00]`` (UTC unless an offset is given)
    → epoch ms."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date or time (expected e.g. 2026-01-01 or 2026-01-01T12:00Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{ms % 1000:03d}" if ms % 1000 else "") + "Z"


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    common: Any,
) -> argparse.ArgumentParser:
    """Add ``data download|record|list|import``; ``common(parser)`` adds --config/--data-dir."""
    data = subparsers.add_parser("data", help="download, record, list or import market history")
    actions = data.add_subparsers(dest="action", required=True, metavar="ACTION")

    def venue(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--coins", type=_coins, required=True, metavar="C1,C2", help="coins, e.g. BTC,ETH"
        )
        parser.add_argument(
            "--interval",
            type=_intervals,
            required=True,
            metavar="I1,I2",
            help=f"candle intervals ({', '.join(bootstrap.HISTORY_INTERVALS)})",
        )
        parser.add_argument(
            "--url", default=None, help="the Hyperliquid API (default: mainnet); e.g. the simulator"
        )
        common(parser)

    download = actions.add_parser(
        "download",
        help="download candles and funding history (resumable: run again to continue)",
    )
    venue(download)
    download.add_argument(
        "--from", dest="start", type=_moment, required=True, metavar="DATE", help="UTC start"
    )
    download.add_argument(
        "--to", dest="end", type=_moment, default=None, metavar="DATE", help="UTC end, exclusive"
    )
    download.add_argument("--no-funding", action="store_true", help="candles only")

    recording = actions.add_parser(
        "record", help="append closed candles as they close, until Ctrl-C"
    )
    venue(recording)
    recording.add_argument("--once", action="store_true", help="one pass, then stop")
    recording.add_argument("--passes", type=_positive, default=None, help="stop after N passes")
    recording.add_argument(
        "--backfill",
        type=_positive,
        default=500,
        metavar="N",
        help="a series not stored yet starts N intervals back (default: 500)",
    )

    listing = actions.add_parser("list", help="the stored series: first/last, count, gaps")
    listing.add_argument("--json", action="store_true", help="as JSON")
    common(listing)

    importing = actions.add_parser("import", help="load candle or funding CSV files (idempotent)")
    importing.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or dirs")
    importing.add_argument("--coin", default=None, help="the series' coin (one file only)")
    importing.add_argument("--interval", default=None, help="the series' interval (one file only)")
    common(importing)

    exporting = actions.add_parser(
        "export", help="write a stored series as CSV (what 'nof0 backtest --candles' reads)"
    )
    exporting.add_argument("--coin", required=True, help="the series' coin")
    exporting.add_argument(
        "--interval", type=_intervals, required=True, help="the series' interval"
    )
    exporting.add_argument("--from", dest="start", type=_moment, default=None, metavar="DATE")
    exporting.add_argument(
        "--to", dest="end", type=_moment, default=None, metavar="DATE", help="exclusive"
    )
    exporting.add_argument(
        "--out", default="-", help="file to write, atomically ('-', the default: stdout)"
    )
    common(exporting)
    return data


def _data_dir(args: argparse.Namespace) -> Path | None:
    if args.data_dir is not None:
        return Path(args.data_dir)
    try:
        return bootstrap.load_config(args.config).data_dir
    except bootstrap.ConfigError as exc:
        print(
            f"nof0 data: cannot read the data directory from {args.config}; give --data-dir",
            file=sys.stderr,
        )
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return None


def run(args: argparse.Namespace) -> int:
    data_dir = _data_dir(args)
    if data_dir is None:
        return EXIT_USAGE
    handler = {
        "download": _download,
        "record": _record,
        "list": _list,
        "import": _import,
        "export": _export,
    }[args.action]
    try:
        return handler(args, data_dir)
    except sqlite3.Error as exc:  # not a database, locked for too long, disk full
        store = data_dir / "history" / "market.sqlite"
        print(f"nof0 data {args.action}: the history store {store}: {exc}", file=sys.stderr)
        return EXIT_FAILED


def _download(args: argparse.Namespace, data_dir: Path) -> int:
    end = args.end if args.end is not None else int(datetime.now(UTC).timestamp() * 1000)
    if end <= args.start:
        print(
            f"nof0 data download: --from {_when(args.start)} is not before --to {_when(end)}",
            file=sys.stderr,
        )
        return EXIT_USAGE

    def progress(done: bootstrap.SeriesResult) -> None:
        what = "rows" if done.series == "funding" else "candles"
        note = ""
        if done.series != "funding" and done.empty and not done.stored:
            note = " (the venue had none there; Hyperliquid keeps the latest 5000 per interval)"
        print(
            f"{done.coin} {done.series}: {done.stored} new {what}, {done.requests} request(s){note}"
        )
        sys.stdout.flush()

    try:
        with bootstrap.history_downloader(data_dir, args.url) as downloader:
            report = downloader.download(
                args.coins,
                args.interval,
                args.start,
                end,
                funding=not args.no_funding,
                progress=progress,
            )
            path = downloader.store.path
    except bootstrap.DownloadError as exc:
        print(f"nof0 data download: {exc}", file=sys.stderr)
        if exc.resumable:
            print("what was stored is kept; run the same command to resume", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted; run the same command to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:
        print(f"nof0 data download: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"{report.stored} new rows in {report.requests} request(s) into {path}")
    return 0


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _record(args: argparse.Namespace, data_dir: Path) -> int:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(message)s")
    passes = 1 if args.once else args.passes
    stop = threading.Event()

    def on_pass(report: bootstrap.RecordReport) -> None:
        print(
            f"pass {report.passes}: {report.stored} candles stored so far,"
            f" {report.failures} failed request(s)"
        )
        sys.stdout.flush()

    try:
        with (
            _stop_on_signals(stop),
            bootstrap.history_downloader(data_dir, args.url) as downloader,
        ):
            report = bootstrap.record_history(
                downloader,
                args.coins,
                args.interval,
                stop=stop,
                max_passes=passes,
                backfill=args.backfill,
                on_pass=on_pass,
            )
    except bootstrap.DownloadError as exc:
        print(f"nof0 data record: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:
        print(f"nof0 data record: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"recorded {report.stored} candles in {report.passes} pass(es); stopped")
    return 0


def _gap(start: int, end: int, step: int) -> dict[str, Any]:
    return {
        "from": _when(start),
        "to": _when(end),
        "from_ms": start,
        "to_ms": end,
        "missing": (end - start) // step,
    }


def _list(args: argparse.Namespace, data_dir: Path) -> int:
    path = data_dir / "history" / "market.sqlite"
    if not path.is_file():
        if args.json:
            print(json.dumps({"store": str(path), "candles": [], "funding": []}))
        else:
            print(f"no market history in {path} (use 'nof0 data download' or 'nof0 data import')")
        return 0
    with bootstrap.HistoryStore(path) as store:
        candles: list[dict[str, Any]] = []
        for coin, interval in store.series():
            cov = store.coverage(coin, interval)
            step = bootstrap.HISTORY_INTERVALS[interval]
            candles.append(
                {
                    "coin": coin,
                    "interval": interval,
                    "first": _when(cov.first_ms),
                    "last": _when(cov.last_ms),
                    "first_ms": cov.first_ms,
                    "last_ms": cov.last_ms,
                    "count": cov.count,
                    "missing": cov.missing_candles(),
                    "gaps": [_gap(a, b, step) for a, b in cov.gaps],
                }
            )
        funding: list[dict[str, Any]] = []
        for coin in store.funding_coins():
            fc = store.funding_coverage(coin)
            funding.append(
                {
                    "coin": coin,
                    "first": _when(fc.first_ms),
                    "last": _when(fc.last_ms),
                    "first_ms": fc.first_ms,
                    "last_ms": fc.last_ms,
                    "count": fc.count,
                }
            )
    if args.json:
        print(json.dumps({"store": str(path), "candles": candles, "funding": funding}, indent=1))
        return 0
    print(f"{path}")
    header = f"{'coin':<24} {'interval':<8} {'first':<21} {'last':<21} {'count':>9} {'gaps':>5}"
    print(header)
    for row in candles:
        print(
            f"{row['coin']:<24} {row['interval']:<8} {row['first']:<21} {row['last']:<21}"
            f" {row['count']:>9} {len(row['gaps']):>5}"
        )
        for gap in row["gaps"][:SHOWN_GAPS]:
            print(f"    gap {gap['from']} .. {gap['to']} ({gap['missing']} missing)")
        if len(row["gaps"]) > SHOWN_GAPS:
            print(f"    ... {len(row['gaps']) - SHOWN_GAPS} more gap(s) (see --json)")
    for row in funding:
        print(
            f"{row['coin']:<24} {'funding':<8} {row['first']:<21} {row['last']:<21}"
            f" {row['count']:>9} {'-':>5}"
        )
    return 0


def _files(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for path in paths:
        out.extend(sorted(path.glob("*.csv")) if path.is_dir() else [path])
    return out


def _import(args: argparse.Namespace, data_dir: Path) -> int:
    files = _files(args.paths)
    if (args.coin or args.interval) and len(files) != 1:
        print("nof0 data import: --coin and --interval name one file's series", file=sys.stderr)
        return EXIT_USAGE
    if not files:
        print("nof0 data import: no CSV file found", file=sys.stderr)
        return EXIT_USAGE
    failed = 0
    with bootstrap.HistoryStore.open(data_dir) as store:
        for path in files:
            try:
                result = bootstrap.import_history_file(
                    store, path, coin=args.coin, interval=args.interval
                )
            except bootstrap.CandleFileError as exc:
                print(f"nof0 data import: {exc}", file=sys.stderr)
                failed += 1
                continue
            what = f"{result.coin} {result.interval}" + (
                " funding" if result.kind == "funding" else ""
            )
            print(f"{path.name}: {what}: {result.added} new of {result.rows} rows")
    return EXIT_FAILED if failed else 0


def _export(args: argparse.Namespace, data_dir: Path) -> int:
    if len(args.interval) != 1:
        print("nof0 data export: one --interval at a time", file=sys.stderr)
        return EXIT_USAGE
    interval = args.interval[0]
    path = data_dir / "history" / "market.sqlite"
    if not path.is_file():
        print(f"nof0 data export: no market history in {path}", file=sys.stderr)
        return EXIT_FAILED
    out = None if args.out == "-" else Path(args.out)
    with bootstrap.HistoryStore(path) as store:
        try:
            written = bootstrap.export_history_candles(
                store, args.coin, interval, out, start_ms=args.start, end_ms=args.end
            )
        except bootstrap.CandleFileError as exc:
            print(f"nof0 data export: {exc}", file=sys.stderr)
            return EXIT_FAILED
    if out is not None:
        print(f"wrote {written} {args.coin} {interval} candles to {out}")
    return 0
