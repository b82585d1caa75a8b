"""A rebuild's views replayed in several processes (``projections.rebuild.Replayer``).

Reducing is pure Python and bound by one core; the views are independent folds over the
same log, so groups of them can be reduced side by side. Each group but the first is
replayed in a forked child, which opens its own connection to the store (a connection is
never carried across a fork), reads the whole log for its group's events and fields, and
hands back its views' outputs; the first group is replayed here. The views are the bytes
a replay in one process writes (the outputs are the same projectors' ``output``).

Forking, not spawning: a spawned child imports the engine again (seconds), about what a
rebuild of a few hundred thousand events takes. The fork happens before the rebuild reads
the log, while the parent's own store connection is idle (no transaction, no lock on the
database taken); the child never uses that connection, opens its own (SQLite's warning
is about using a connection on both sides of a fork), and leaves with ``os._exit``, so
none of the parent's cleanup runs twice. Where ``os.fork`` does not exist, or for one
group, the replay runs in this process (also where ``os.waitid`` does not: children are
looked at without being reaped).

A child that fails fails the rebuild with its views' names and its error; the parent
stops the others; Ctrl-C or SIGTERM stop them all; a parent killed outright takes its
children along (Linux). Nothing is written or flipped unless every group succeeded.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import tempfile
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path
from typing import Any

import msgspec

from application.redaction import redact
from projections.engine import BatchSource, Projector, ViewOutput
from projections.rebuild import replay_outputs

#: A rebuild process's cost of each view relative to the others (its read, decode and
#: reduce alone, measured over the bench's log; the unnamed cost 1): used to balance the
#: groups.
VIEW_COST: dict[str, float] = {
    "conversations_v1": 2.9,
    "analytics_v1": 2.7,
    "portfolio_v1": 1.7,
    "market_v1": 1.5,
    "status_v1": 1.3,
    "trades_v1": 1.0,
}


#: A child's outputs, as it hands them back (bytes stay bytes in MessagePack).
_DECODER = msgspec.msgpack.Decoder(list[ViewOutput])


class RebuildProcessFailed(RuntimeError):
    """A rebuild process ended without its views; nothing was written or flipped."""


def groups(projectors: Sequence[Projector[Any]], count: int) -> list[list[Projector[Any]]]:
    """``projectors`` in at most ``count`` groups of about equal cost (the costliest view
    first into the cheapest group), each in the projectors' order, the group of the first
    projector first; no empty group."""
    if count < 1:
        raise ValueError("at least one group")
    bins: list[tuple[float, list[int]]] = [(0.0, []) for _ in range(min(count, len(projectors)))]
    order = sorted(
        range(len(projectors)), key=lambda i: -VIEW_COST.get(projectors[i].view_name, 1.0)
    )
    for index in order:
        cost, members = min(bins, key=lambda b: b[0])
        bins.remove((cost, members))
        bins.append((cost + VIEW_COST.get(projectors[index].view_name, 1.0), [*members, index]))
    chosen = sorted(sorted(members) for _, members in bins if members)
    return [[projectors[i] for i in members] for members in chosen]


class ForkedReplay:
    """Replays the views in up to ``processes`` processes. ``open_source`` opens the log
    afresh (in a child, after the fork) and closes it when the context ends."""

    def __init__(
        self,
        open_source: Callable[[], AbstractContextManager[BatchSource]],
        processes: int,
    ) -> None:
        if processes < 1:
            raise ValueError("processes must be at least 1")
        self.open_source = open_source
        self.processes = processes

    def __call__(
        self, source: BatchSource, projectors: Sequence[Projector[Any]], head: int
    ) -> tuple[list[ViewOutput], int]:
        split = groups(projectors, self.processes) if projectors else []
        if len(split) < 2 or not hasattr(os, "fork") or not hasattr(os, "waitid"):
            return replay_outputs(source, projectors, head)
        with _terminate_unwinds(), tempfile.TemporaryDirectory(prefix="nof0-rebuild-") as tmp:
            children: dict[int, tuple[Path, list[Projector[Any]]]] = {}
            try:
                for index, group in enumerate(split[1:], start=1):
                    result = Path(tmp) / f"group-{index}"
                    pid = _start(self.open_source, group, head, result)
                    children[pid] = (result, group)
                outputs, events = replay_outputs(source, split[0], head)
                for result in _finished(children):
                    outputs.extend(_DECODER.decode(result.read_bytes()))
            finally:
                _stop(children)
        order = {p.view_name: i for i, p in enumerate(projectors)}
        return sorted(outputs, key=lambda o: order[o.view]), events


#: Signals that would unwind the parent's code in a child caught between fork and exit.
_DEFERRED = {signal.SIGINT, signal.SIGTERM}


def _start(
    open_source: Callable[[], AbstractContextManager[BatchSource]],
    group: Sequence[Projector[Any]],
    head: int,
    result: Path,
) -> int:
    """Fork a child replaying ``group``; its pid. Ctrl-C and SIGTERM are held back across
    the fork, so the child is inside its own ``try`` before either can reach it."""
    parent = os.getpid()
    held = signal.pthread_sigmask(signal.SIG_BLOCK, _DEFERRED)
    try:
        pid = _fork()
        if pid == 0:  # pragma: no cover - the child; its result is the test
            _child(open_source, group, head, result, parent, held)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)  # the parent's (the child exits)
    return pid


def _fork() -> int:
    # Python 3.12+ warns when a process with threads forks (a PostgreSQL store's pool has
    # some). The child takes none of their locks: it uses none of the parent's connections
    # or pools, opens its own store, reduces and leaves with os._exit.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*fork\(\)", category=DeprecationWarning)
        return os.fork()


def _child(
    open_source: Callable[[], AbstractContextManager[BatchSource]],
    group: Sequence[Projector[Any]],
    head: int,
    result: Path,
    parent: int,
    mask: Iterable[int],
) -> None:  # pragma: no cover - runs in the forked child
    """Replay ``group``, write its outputs (or the error) to ``result`` and exit; never
    returns into the parent's code."""
    code = 1
    try:
        _die_with(parent)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        with open_source() as source:
            outputs, _ = replay_outputs(source, group, head)
        result.write_bytes(msgspec.msgpack.encode(outputs))
        code = 0
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises it
        result.with_suffix(".error").write_text(
            "".join(traceback.format_exception_only(exc)).strip()
        )
    finally:
        os._exit(code)


def _die_with(parent: int) -> None:  # pragma: no cover - runs in the forked child
    """A parent killed outright (SIGKILL, a crash) takes its children along (Linux), rather
    than leaving them reducing for nobody."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # best effort: -1 leaves them be
    if os.getppid() != parent:  # the parent died before the request took
        os._exit(1)


_PR_SET_PDEATHSIG = 1


def _finished(children: dict[int, tuple[Path, list[Projector[Any]]]]) -> Iterator[Path]:
    """Each child's result as it ends, whichever ends first; the first that failed raises.
    A child is forgotten only once it has ended and just before it is reaped: a pid that
    was reaped may belong to another process and is never signalled."""
    while children:
        for pid in list(children):
            if not _ended(pid):
                continue
            result, group = children.pop(pid)
            _, status = os.waitpid(pid, 0)
            code = os.waitstatus_to_exitcode(status)
            if code != 0 or not result.is_file():
                raise RebuildProcessFailed(_failure(group, result, code))
            yield result
        if children:
            time.sleep(_POLL_S)


_POLL_S = 0.01


def _ended(pid: int) -> bool:
    """Whether ``pid`` has ended, looked at without reaping it."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _failure(group: Iterable[Projector[Any]], result: Path, code: int) -> str:
    names = ", ".join(p.view_name for p in group)
    error = result.with_suffix(".error")
    text = error.read_text().strip() if error.is_file() else ""
    detail = "; ".join(line.strip() for line in redact(text).splitlines() if line.strip())
    return f"the rebuild process for {names} failed: " + (detail or f"exit status {code}")


def _stop(children: dict[int, Any]) -> None:
    """Children still running when the parent gives up (its own group failed, another
    child failed, Ctrl-C, SIGTERM): stopped and reaped, none left behind."""
    for pid in children:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for pid in children:
        with suppress(ChildProcessError):
            os.waitpid(pid, 0)


@contextmanager
def _terminate_unwinds() -> Iterator[None]:
    """SIGTERM (``kill``, ``timeout``, a supervisor) unwinds the rebuild like Ctrl-C: the
    children are stopped and the results' directory removed, then the process exits 143.
    Only where SIGTERM still has its default action, and on the main thread."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return

    def unwind(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, unwind)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


__all__ = ["VIEW_COST", "ForkedReplay", "RebuildProcessFailed", "groups"]
