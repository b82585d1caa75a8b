"""Rebuilding the views: every event up to the head replayed into a fresh namespace, its
copy written to the mirror (Redis), then readers flipped to it and the old ones removed;
the SQL read tables are rebuilt to the same head. Written against ports: the stores are
infrastructure's."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from projections.engine import (
    BatchSource,
    EventSource,
    EventSourceBatches,
    Projector,
    ViewOutput,
    ViewStore,
    replay,
)


class Namespaces(Protocol):
    """Named generations of the views; readers follow the current one."""

    def rebuild_lock(self) -> AbstractContextManager[None]: ...

    def create(self) -> str: ...

    def current(self) -> str | None: ...

    def flip(self, name: str) -> None: ...

    def all(self) -> list[str]: ...

    def remove(self, name: str) -> None: ...


class MirrorNamespaces(Protocol):
    def flip(self, namespace: str) -> None: ...

    def remove(self, namespace: str) -> None: ...


@dataclass(frozen=True)
class Mirror:
    """A second copy of the views (Redis): a store per namespace, and its namespaces."""

    store: Callable[[str], ViewStore]
    namespaces: MirrorNamespaces


class Replayer(Protocol):
    """Every event up to ``head`` through fresh states of ``projectors``: each view's output
    at ``head`` (in the projectors' order) and the events read."""

    def __call__(
        self, source: BatchSource, projectors: Sequence[Projector[Any]], head: int
    ) -> tuple[list[ViewOutput], int]: ...


def replay_outputs(
    source: BatchSource, projectors: Sequence[Projector[Any]], head: int
) -> tuple[list[ViewOutput], int]:
    """The views replayed in this process, one read of the log for all of them."""
    states, events = replay(source, projectors, head)
    return [p.output(states[p.view_name], head) for p in projectors], events


class Tables(Protocol):
    """The SQL read tables, rebuilt from the first event up to ``head`` (read through
    ``bulk``)."""

    def rebuild(self, head: int, bulk: BatchSource | None = None) -> int: ...


@dataclass(frozen=True)
class RebuildReport:
    namespace: str
    previous: str | None
    events: int
    head: int
    seconds: float
    #: Events replayed into the SQL read tables (None when they are off).
    tables: int | None = None

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def rebuild_views(
    source: EventSource | BatchSource,
    namespaces: Namespaces,
    store: Callable[[str], ViewStore],
    projectors: Sequence[Projector[Any]],
    *,
    mirror: Mirror | None = None,
    tables: Callable[[], Tables | None] = lambda: None,
    batch_size: int = 1000,
    replayer: Replayer = replay_outputs,
) -> RebuildReport:
    """Replay every event into a new namespace (``store`` opens one), then flip readers to
    it. ``tables`` is opened only once the views are flipped.

    The views are kept in memory while the log is read (a ``BatchSource`` reads it in large
    batches and decodes only what the views read) and each is written once, at ``head``."""
    batches = source if isinstance(source, BatchSource) else EventSourceBatches(source, batch_size)
    with namespaces.rebuild_lock():
        head = batches.max_position()
        fresh = namespaces.create()
        started = time.perf_counter()
        outputs, events = replayer(batches, projectors, head)
        fresh_store = store(fresh)
        for output in outputs:
            fresh_store.write(output)
        elapsed = time.perf_counter() - started
        if mirror is not None:
            copy = mirror.store(fresh)
            for output in outputs:
                copy.write(output)
        previous = namespaces.current()
        namespaces.flip(fresh)
        if mirror is not None:
            mirror.namespaces.flip(fresh)
            if previous:
                mirror.namespaces.remove(previous)
        for old in namespaces.all():
            if old != fresh:
                namespaces.remove(old)
        opened = tables()
        replayed = None if opened is None else opened.rebuild(head, batches)
    return RebuildReport(fresh, previous, events, head, elapsed, replayed)
