"""A rebuild's views replayed in several processes (``projections.rebuild.Replayer``).

Reducing is pure Python and bound by one core; the views are independent folds over the
same log, so groups of them can be reduced side by side. Each group but the first is
replayed in a forked child, which opens its own connection to the store (a connection is
never carried across a fork), reads the whole log for its group's events and fields, and
hands back its views' outputs; the first group is replayed here. The views are the bytes
a replay in one process writes (the outputs are the same projectors' ``output``).

Forking, not spawning: a spawned child imports the engine again (seconds), about what a
rebuild of a few hundred thousand events takes. Where ``os.fork`` does not exist, or
for one group, the replay runs in this process.
"""

from __future__ import annotations

import os
import signal
import tempfile
import traceback
import warnings
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, suppress
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
        if len(split) < 2 or not hasattr(os, "fork"):
            return replay_outputs(source, projectors, head)
        with tempfile.TemporaryDirectory(prefix="nof0-rebuild-") as tmp:
            children: dict[int, tuple[Path, list[Projector[Any]]]] = {}
            try:
                for index, group in enumerate(split[1:], start=1):
                    result = Path(tmp) / f"group-{index}"
                    pid = _fork()
                    if pid == 0:  # pragma: no cover - the child; its result is the test
                        _child(self.open_source, group, head, result)
                    children[pid] = (result, group)
                outputs, events = replay_outputs(source, split[0], head)
                while children:
                    # Forgotten before it is reaped: a reaped pid may be reused, and is
                    # never signalled.
                    pid, (result, group) = children.popitem()
                    _reap(pid, result, group)
                    outputs.extend(_DECODER.decode(result.read_bytes()))
            finally:
                _stop(children)
        order = {p.view_name: i for i, p in enumerate(projectors)}
        return sorted(outputs, key=lambda o: order[o.view]), events


def _fork() -> int:
    # Python 3.12+ warns when a process with threads forks (a PostgreSQL store's pool has
    # some). The child touches none of the parent's connections or locks: it opens its own
    # store, reduces and leaves with os._exit.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*fork\(\)", category=DeprecationWarning)
        return os.fork()


def _child(
    open_source: Callable[[], AbstractContextManager[BatchSource]],
    group: Sequence[Projector[Any]],
    head: int,
    result: Path,
) -> None:  # pragma: no cover - runs in the forked child
    """Replay ``group``, write its outputs (or the error) to ``result`` and exit; never
    returns into the parent's code."""
    code = 1
    try:
        with open_source() as source:
            outputs, _ = replay_outputs(source, group, head)
        result.write_bytes(msgspec.msgpack.encode(outputs))
        code = 0
    except BaseException:  # noqa: BLE001 - reported to the parent, which raises it
        result.with_suffix(".error").write_text(traceback.format_exc())
    finally:
        os._exit(code)


def _reap(pid: int, result: Path, group: Iterable[Projector[Any]]) -> None:
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) == 0 and result.is_file():
        return
    names = ", ".join(p.view_name for p in group)
    error = result.with_suffix(".error")
    lines = error.read_text().strip().splitlines() if error.is_file() else []
    detail = redact(lines[-1]) if lines else ""
    raise RebuildProcessFailed(
        f"the rebuild process for {names} failed"
        + (f": {detail}" if detail else f" (exit status {os.waitstatus_to_exitcode(status)})")
    )


def _stop(children: dict[int, Any]) -> None:
    """Children still running when the parent gives up (its own group failed, another
    child failed, Ctrl-C): stopped and reaped, none left behind."""
    for pid in children:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for pid in children:
        with suppress(ChildProcessError):
            os.waitpid(pid, 0)


__all__ = ["VIEW_COST", "ForkedReplay", "RebuildProcessFailed", "groups"]
