"""``nof0 backtest --workers N``: backtests in parallel processes, with the same results.

Two uses, both through :func:`run_jobs` (up to N ``spawn`` processes, each running the
one-process backtest of :mod:`infrastructure.backtest` for one job into a directory of its
own; one progress bar across them; the first job that fails stops the others and fails
the whole, naming the job and its error):

* **Independent runs** (``--seeds``' replicas, the matched nulls' replicas, the two sides
  of ``--compare-triggers``): each already is a run into its own directory, so they only
  run side by side; their results are those of the same runs one after another.
* **One run split by trader** (:func:`run_split`): the chosen traders are cut into up to N
  contiguous groups in their configured order (:func:`partition`), each group runs into
  ``OUT/workers/<k>/``, then OUT's own event store is assembled from the groups' stores
  (:func:`merge_stores`) and OUT's views are rebuilt from it by the ``projections
  rebuild`` path. ``nof0 serve|run --data-dir OUT``, ``replay verify`` and ``projections
  rebuild`` then work on OUT as on a one-process run.

Why a trader's events do not depend on which process ran it: in a backtest every trader
trades on a simulator account of its own (``backtest_config``: venue
``backtest-<trader>``, seeded by the venue's seed and the replica, not by the other
traders), its market is a replay of the same candle files, its random baseline draws from
a seed of its own id, its cycle and the replica, and its allocation is its share of its
own account. Nothing a trader records is read by another trader's cycle (the tests check
it: each aggregate's events are the same, byte for byte, with one process and with two).

Aggregates written by more than one trader's run: none. The store holds two kinds of
aggregate, ``Trader`` (id: uuid5 of the trader's config id, written only by its own
cycles) and ``VenueAccount`` (one per exchange account: in a backtest one per trader,
``backtest-<trader>``, written only by that account's reconciliation). There is no
arena-wide aggregate, cost ledger or run record in the event store (the run's record is
``backtest.json``, written once by the parent; the model prompt cache is a cache outside
the store). So each aggregate's events come from exactly one worker, and the merge keeps
them whole and in their order. Should a future aggregate be written by two workers (an
arena-wide one, or an account shared by traders), the merge refuses with the aggregate's
id rather than interleave or drop anyone's history (:class:`SharedAggregate`).

The merged order (deterministic, whatever the processes' speed): the workers' event
streams merged by each event's timestamp (the backtest's simulated clock), ties broken by
worker number (the traders' configured order) and then by the worker's own order. It is
a merge, not a sort: each worker's events keep their relative order even if two of them
were stamped out of order. The events are inserted through OUT's eventsourcing recorder in
batches, so OUT's notification ids are fresh and consecutive; the aggregates' snapshots
are copied as they are (the same as a one-process run's but for the wall-clock time the
library stamps on a snapshot, which differs between any two runs).

A run in progress, or one that failed, is never taken for a finished one: ``backtest.json``
is written last, only when every worker, the merge and the rebuild succeeded; until then
``OUT/incomplete.json`` says what is running, and after a failure what failed.
"""

from __future__ import annotations

import dataclasses
import heapq
import json
import multiprocessing
import queue as queues
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteAggregateRecorder, SQLiteApplicationRecorder

from application.trading import TradingApp
from infrastructure.backtest import (
    INCOMPLETE,
    STEP,
    BacktestError,
    BacktestPlan,
    BacktestResult,
    Progress,
    backtest_config,
    backtest_summary,
    mark_incomplete,
)
from infrastructure.config.loader import LoadedConfig
from infrastructure.event_log import StoredLog
from infrastructure.files import atomic_write
from projections.documents import TradesDocument
from projections.report import trades_fingerprint

#: Runs one job in a worker process: a module-level function (spawn pickles it by name).
RunJob = Callable[[LoadedConfig, BacktestPlan, Callable[[Progress], None]], BacktestResult]

#: Events inserted into the merged store per transaction.
MERGE_BATCH = 5000
#: How long the parent waits for a message before it looks at its workers' health.
POLL_S = 0.5


class WorkerFailed(BacktestError):
    """A worker process failed: the message names it, its traders or run, and the error;
    ``detail`` holds the worker's traceback (when it could send one)."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


class SharedAggregate(BacktestError):
    """An aggregate was written by more than one worker: the stores cannot be merged."""


def check_workers(workers: int) -> None:
    if workers < 1:
        raise BacktestError(f"--workers must be at least 1, not {workers}")


def partition(traders: Sequence[str], workers: int) -> list[list[str]]:
    """``traders`` in up to ``workers`` contiguous groups, in order, the first ones a
    trader larger when they do not divide evenly (never an empty group)."""
    check_workers(workers)
    n = min(workers, len(traders))
    if n == 0:
        return []
    size, extra = divmod(len(traders), n)
    groups, at = [], 0
    for k in range(n):
        width = size + (1 if k < extra else 0)
        groups.append(list(traders[at : at + width]))
        at += width
    return groups


@dataclass(frozen=True)
class Job:
    """One backtest for a worker process: its configuration and plan (its own ``out``)."""

    config: LoadedConfig
    plan: BacktestPlan
    label: str  # what a failure names: "worker 1 (btc-hold)", "seed-2"...


@dataclass(frozen=True)
class JobTiming:
    label: str
    out: Path
    seconds: float  # the process's wall time, start to result (its start-up included)
    backtest_seconds: float  # the backtest's own time, as it measured it


def _run_in_child(
    run: RunJob, index: int, job: Job, messages: multiprocessing.queues.Queue[Any]
) -> None:
    """A worker process: the job's backtest, its progress and its result (or its error)
    sent to the parent."""

    def progress(p: Progress) -> None:
        messages.put(("progress", index, p))

    try:
        result = run(job.config, job.plan, progress)
    except BaseException as exc:
        messages.put(("failed", index, f"{type(exc).__name__}: {exc}", traceback.format_exc()))
        raise SystemExit(1) from exc
    messages.put(("done", index, result))


def run_one_backtest(
    config: LoadedConfig, plan: BacktestPlan, progress: Callable[[Progress], None]
) -> BacktestResult:
    """The default job of a worker: ``bootstrap.run_backtest`` in one process."""
    from infrastructure import bootstrap  # imported in the worker: bootstrap imports this

    return bootstrap.run_backtest(config, plan, progress)


def run_jobs(
    jobs: Sequence[Job],
    workers: int,
    progress: Callable[[Progress], None] = lambda _: None,
    *,
    run: RunJob = run_one_backtest,
) -> tuple[list[BacktestResult], list[JobTiming]]:
    """Each job in a ``spawn`` process of its own, up to ``workers`` at a time; the results
    in the jobs' order. ``progress`` sees one bar across the jobs (minutes done over all
    of them). The first job that fails (an exception, or a process that died) stops the
    others and raises :class:`WorkerFailed` naming it."""
    check_workers(workers)
    context = multiprocessing.get_context("spawn")
    messages: multiprocessing.queues.Queue[Any] = context.Queue()
    pending = list(enumerate(jobs))
    running: dict[int, Any] = {}
    started: dict[int, float] = {}
    finished: dict[int, float] = {}
    results: dict[int, BacktestResult] = {}
    minutes = [int((job.plan.end - job.plan.start) / STEP) for job in jobs]
    latest: dict[int, Progress] = {}
    began = time.perf_counter()
    shown = -1

    def show() -> None:
        nonlocal shown
        total = sum(latest[i].total if i in latest else minutes[i] for i in range(len(jobs)))
        done = sum(
            (latest[i].total if i in latest else minutes[i])
            if i in results
            else (latest[i].done if i in latest else 0)
            for i in range(len(jobs))
        )
        if done == shown or total == 0:
            return
        shown = done
        live = [latest[i].at for i in latest if i not in results]
        at = min(live) if live else max((p.at for p in latest.values()), default=jobs[0].plan.end)
        progress(Progress(done, total, at, time.perf_counter() - began))

    def fail(index: int, error: str, detail: str = "") -> WorkerFailed:
        for process in running.values():
            if process.is_alive():
                process.terminate()
        for process in running.values():
            process.join()
        return WorkerFailed(f"{jobs[index].label} failed: {error}", detail)

    def handle(message: tuple[Any, ...]) -> None:
        kind, index = message[0], message[1]
        if kind == "progress":
            latest[index] = message[2]
            show()
        elif kind == "done":
            results[index] = message[2]
            finished[index] = time.perf_counter()
            running.pop(index).join()
            show()
        else:
            raise fail(index, message[2], message[3])

    try:
        while pending or running:
            while pending and len(running) < workers:
                index, job = pending.pop(0)
                process = context.Process(
                    target=_run_in_child,
                    args=(run, index, job, messages),
                    name=f"nof0-backtest-{index}",
                )
                started[index] = time.perf_counter()
                process.start()
                running[index] = process
            try:
                handle(messages.get(timeout=POLL_S))
                continue
            except queues.Empty:
                pass
            dead = [i for i, p in running.items() if p.exitcode is not None]
            for index in dead:
                # Its last messages may still be on their way: read them before judging.
                while index in running:
                    try:
                        handle(messages.get(timeout=2.0))
                    except queues.Empty:
                        code = running[index].exitcode
                        error = f"its process exited with code {code} and no result"
                        raise fail(index, error) from None
    finally:
        for process in running.values():
            if process.is_alive():
                process.terminate()
            process.join()
        messages.close()
    ordered = [results[i] for i in range(len(jobs))]
    timings = [
        JobTiming(
            label=job.label,
            out=job.plan.out,
            seconds=round(finished[i] - started[i], 3),
            backtest_seconds=round(ordered[i].seconds, 3),
        )
        for i, job in enumerate(jobs)
    ]
    return ordered, timings


# -- one run, split by trader ----------------------------------------------------------------


class _Stamped(msgspec.Struct):
    timestamp: datetime


@dataclass(frozen=True)
class MergeReport:
    events: int
    snapshots: int
    per_source: list[int]


def _originators(app: TradingApp) -> set[str]:
    """The ids of the aggregates with events in ``app``'s store."""
    recorder = app.recorder
    if isinstance(recorder, SQLiteApplicationRecorder):
        table = recorder.events_table_name  # the library's own table name, not input
        with recorder.datastore.transaction(commit=False) as wrapped:
            cursor = wrapped.sqlite_cursor
            cursor.execute(f"SELECT DISTINCT originator_id FROM {table}")  # noqa: S608
            return {str(row[0]) for row in cursor.fetchall()}
    return {str(row[2]) for rows in StoredLog(app).rows(0, app.max_position()) for row in rows}


def _snapshots(app: TradingApp) -> list[StoredEvent]:
    """The aggregates' snapshots in ``app``'s store."""
    if app.snapshots is None:
        return []
    recorder = app.snapshots.recorder
    if not isinstance(recorder, SQLiteAggregateRecorder):
        raise BacktestError(
            f"a worker's snapshots are in a {type(recorder).__name__}, not SQLite: cannot copy"
        )
    table = recorder.events_table_name
    with recorder.datastore.transaction(commit=False) as wrapped:
        cursor = wrapped.sqlite_cursor
        cursor.execute(
            "SELECT originator_id, originator_version, topic, state "  # noqa: S608
            f"FROM {table} ORDER BY originator_id, originator_version"
        )
        rows = cursor.fetchall()
    return [StoredEvent(UUID(str(r[0])), int(r[1]), str(r[2]), bytes(r[3])) for r in rows]


def _timestamp(app: TradingApp, row: Sequence[Any]) -> datetime:
    """When the stored event happened (its ``timestamp``: the backtest's clock)."""
    state = bytes(row[4])
    mapper = app.mapper
    if not (mapper.compressor or mapper.cipher):
        try:
            return msgspec.json.decode(state, type=_Stamped).timestamp
        except msgspec.MsgspecError:
            pass  # an older or tagged shape: the mapper's own path below reads it
    event = mapper.to_domain_event(StoredEvent(UUID(str(row[2])), int(row[3]), str(row[1]), state))
    stamp = getattr(event, "timestamp", None)
    if not isinstance(stamp, datetime):
        raise BacktestError(f"event {row[1]} of {row[2]} has no timestamp: cannot order it")
    return stamp


def _stream(k: int, app: TradingApp) -> Iterator[tuple[tuple[datetime, int], StoredEvent]]:
    for rows in StoredLog(app).rows(0, app.max_position()):
        for row in rows:
            yield (
                (_timestamp(app, row), k),
                StoredEvent(UUID(str(row[2])), int(row[3]), str(row[1]), bytes(row[4])),
            )


def merge_stores(
    sources: Sequence[TradingApp], target: TradingApp, *, batch: int = MERGE_BATCH
) -> MergeReport:
    """Every stored event of ``sources`` (the workers' stores, in worker order) inserted
    into ``target`` (empty) in the order described in the module's docstring, and their
    snapshots copied. Refuses (:class:`SharedAggregate`) when an aggregate has events in
    more than one source."""
    if target.max_position():
        raise BacktestError("the merged event store is not empty")
    owner: dict[str, int] = {}
    for k, app in enumerate(sources):
        for originator in _originators(app):
            if originator in owner:
                raise SharedAggregate(
                    f"aggregate {originator} was written by worker {owner[originator]} and "
                    f"worker {k}: a backtest split by trader needs every aggregate to belong "
                    "to one trader's run (run it with --workers 1)"
                )
            owner[originator] = k
    counts = [0] * len(sources)
    written = 0
    chunk: list[StoredEvent] = []
    merged = heapq.merge(
        *(_stream(k, app) for k, app in enumerate(sources)), key=lambda item: item[0]
    )
    for (_, k), stored in merged:
        chunk.append(stored)
        counts[k] += 1
        if len(chunk) >= batch:
            target.recorder.insert_events(chunk)
            written += len(chunk)
            chunk = []
    if chunk:
        target.recorder.insert_events(chunk)
        written += len(chunk)
    expected = sum(app.max_position() for app in sources)
    if written != expected or target.max_position() != expected:
        raise BacktestError(
            f"the merge wrote {written} events of {expected} (the store's head is "
            f"{target.max_position()})"
        )
    snapshots = 0
    for app in sources:
        copies = _snapshots(app)
        if copies:
            if target.snapshots is None:
                raise BacktestError("the merged store keeps no snapshots; the workers' do")
            target.snapshots.recorder.insert_events(copies)
            snapshots += len(copies)
    return MergeReport(written, snapshots, counts)


@dataclass(frozen=True)
class SplitStore:
    """How the split run reaches the stores and views (wired by bootstrap)."""

    open_app: Callable[[LoadedConfig], TradingApp]  # the run's own store (OUT)
    open_worker: Callable[[Path], TradingApp]  # a worker's store, by its run directory
    rebuild: Callable[[LoadedConfig, TradingApp], None]  # OUT's views from OUT's store
    current_views: Callable[[LoadedConfig], Path]


def run_split(
    config: LoadedConfig,
    plan: BacktestPlan,
    workers: int,
    *,
    store: SplitStore,
    progress: Callable[[Progress], None] = lambda _: None,
    run: RunJob = run_one_backtest,
) -> BacktestResult:
    """One backtest with its traders split across up to ``workers`` processes (see the
    module's docstring); ``backtest.json`` records ``workers`` and each process's times."""
    check_workers(workers)
    if plan.out.exists() and any(plan.out.iterdir()):
        raise BacktestError(f"{plan.out} is not empty: give a new --out for each run")
    run_config = backtest_config(config, plan)  # refuse bad input before any process starts
    chosen = [t.id for t in run_config.manager.traders]
    groups = partition(chosen, workers)
    plan.out.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    jobs = [
        Job(
            config,
            dataclasses.replace(plan, traders=group, out=plan.out / "workers" / str(k)),
            f"worker {k} ({', '.join(group)})",
        )
        for k, group in enumerate(groups)
    ]
    mark_incomplete(
        plan.out,
        {
            "state": "running",
            "workers": {str(k): group for k, group in enumerate(groups)},
            "note": "not a finished run: backtest.json is written when it is",
        },
    )
    try:
        results, timings = run_jobs(jobs, workers, progress, run=run)
        merging = time.perf_counter()
        app = store.open_app(run_config)
        sources = [store.open_worker(job.plan.out) for job in jobs]
        try:
            report = merge_stores(sources, app)
        finally:
            for source in sources:
                source.close()
        rebuilding = time.perf_counter()
        store.rebuild(run_config, app)
        app.close()
        done = time.perf_counter()
    except BaseException as exc:
        mark_incomplete(
            plan.out,
            {
                "state": "failed",
                "error": str(exc)
                if isinstance(exc, WorkerFailed)
                else f"{type(exc).__name__}: {exc}",
                "traceback": exc.detail
                if isinstance(exc, WorkerFailed)
                else "".join(traceback.format_exception(exc)),
                "workers": {str(k): group for k, group in enumerate(groups)},
                "note": "not a finished run: it failed; run it again into a new --out",
            },
        )
        raise
    trades = msgspec.json.decode(
        (store.current_views(run_config) / "trades.json").read_bytes(), type=TradesDocument
    ).trades
    result = BacktestResult(
        out=plan.out,
        traders=chosen,
        coins=plan.market_coins,
        minutes=int((plan.end - plan.start) / STEP),
        cycles=sum(r.cycles for r in results),
        trades=len(trades),
        seconds=done - began,
        fingerprint=trades_fingerprint(trades),
        ticks=max(r.ticks for r in results),
    )
    summary = backtest_summary(plan, run_config, result)
    summary["workers"] = workers
    summary["processes"] = [
        {
            "worker": k,
            "traders": groups[k],
            "out": str(timing.out.relative_to(plan.out)),
            "seconds": timing.seconds,
            "backtest_seconds": timing.backtest_seconds,
            "cycles": results[k].cycles,
            "ticks": results[k].ticks,
            "events": report.per_source[k],
            "fingerprint": results[k].fingerprint,
        }
        for k, timing in enumerate(timings)
    ]
    summary["merge"] = {
        "events": report.events,
        "snapshots": report.snapshots,
        "seconds": round(rebuilding - merging, 3),
        "rebuild_seconds": round(done - rebuilding, 3),
    }
    atomic_write(plan.out / "backtest.json", json.dumps(summary, indent=2).encode())
    (plan.out / INCOMPLETE).unlink()
    return result
