"""A batched catch-up loop over the event log, written against ports.

Each view (projector) keeps its state *and its position* in its primary document, written
as one atomic unit by the view store. Delivery is at-least-once; because a projector
skips events at or below its stored position, re-delivery changes nothing, and any batch
size or restart point gives the same views as a full rebuild.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import msgspec

from application.redaction import redact_bytes

S = TypeVar("S", bound=msgspec.Struct)

_ENCODER = msgspec.json.Encoder(decimal_format="string")


class EventSource(Protocol):
    def max_position(self) -> int: ...

    def read_events(self, after: int, limit: int) -> Sequence[tuple[int, Any]]: ...


@dataclass
class ViewOutput:
    """What one view writes at one position: files (the primary last) and cache keys."""

    view: str
    position: int
    files: dict[str, bytes]
    keys: dict[str, bytes] = field(default_factory=dict)


class ViewStore(Protocol):
    def read(self, filename: str) -> bytes | None: ...

    def write(self, output: ViewOutput) -> None: ...


class ViewMeta(msgspec.Struct):
    name: str
    position: int = 0


class Projector(ABC, Generic[S]):
    """One view: a deterministic reducer over events plus the documents it renders.

    ``apply`` mutates the state it is given (the engine owns each state exclusively); it
    must be deterministic and must not read clocks or do I/O.
    """

    name: ClassVar[str]
    version: ClassVar[int]
    primary: ClassVar[str]
    state_type: ClassVar[type[Any]]

    @cached_property
    def view_name(self) -> str:
        return f"{self.name}_v{self.version}"

    @abstractmethod
    def initial(self) -> S: ...

    @abstractmethod
    def meta(self, state: S) -> ViewMeta: ...

    @abstractmethod
    def apply(self, state: S, event: Any) -> bool:
        """Apply one event; return whether the documents changed."""

    def secondary(self, state: S) -> dict[str, msgspec.Struct]:
        """Other files this view renders from its state (written before the primary)."""
        return {}

    def cache_keys(self, state: S) -> dict[str, bytes]:
        """Extra cache keys (Redis) derived from the state."""
        return {}

    def decode(self, raw: bytes) -> S:
        state: S = msgspec.json.decode(raw, type=self.state_type)
        if self.meta(state).name != self.view_name:
            raise ValueError(
                f"{self.primary} holds view {self.meta(state).name!r}, expected {self.view_name!r}"
            )
        return state

    def output(self, state: S, position: int) -> ViewOutput:
        self.meta(state).position = position
        files: dict[str, bytes] = {}
        stamp = {"_view": {"name": self.view_name, "position": position}}
        for filename, document in self.secondary(state).items():
            files[filename] = redact_bytes(_with_stamp(_ENCODER.encode(document), stamp))
        files[self.primary] = redact_bytes(_ENCODER.encode(state))
        # Events written before a secret was masked keep their bytes; the views never do.
        keys = {key: redact_bytes(value) for key, value in self.cache_keys(state).items()}
        return ViewOutput(self.view_name, position, files, keys)


def _with_stamp(encoded: bytes, stamp: Mapping[str, Any]) -> bytes:
    """Add the view name and position to a rendered JSON object."""
    extra = _ENCODER.encode(stamp)
    if encoded == b"{}":
        return extra
    return encoded[:-1] + b"," + extra[1:]


@dataclass
class ViewStatus:
    view: str
    position: int
    head: int
    error: str = ""

    @property
    def lag(self) -> int:
        return max(0, self.head - self.position)


class CatchUp:
    """Runs a set of projectors over one event source into one view store."""

    def __init__(
        self,
        source: EventSource,
        store: ViewStore,
        projectors: Sequence[Projector[Any]],
        *,
        batch_size: int = 500,
        idle_commit_s: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.source = source
        self.store = store
        self.projectors = list(projectors)
        self.batch_size = batch_size
        self.idle_commit_s = idle_commit_s
        self._monotonic = monotonic
        self._states: dict[str, Any] = {}
        self._positions: dict[str, int] = {}
        self._committed: dict[str, int] = {}
        self._last_commit: dict[str, float] = {}
        self._dirty: set[str] = set()
        self.errors: dict[str, str] = {}
        self.load()

    def load(self) -> None:
        """(Re)load every view's state and position from the store."""
        for projector in self.projectors:
            raw = self.store.read(projector.primary)
            state = projector.decode(raw) if raw else projector.initial()
            position = projector.meta(state).position
            self._states[projector.view_name] = state
            self._positions[projector.view_name] = position
            self._committed[projector.view_name] = position
            self._last_commit[projector.view_name] = self._monotonic()
        self._dirty.clear()

    def positions(self) -> dict[str, int]:
        return dict(self._committed)

    def state(self, view_name: str) -> Any:
        return self._states[view_name]

    def step(self, *, commit: bool = True) -> int:
        """Read one batch and apply it; commit (unless told not to). Returns events read."""
        start = min(self._positions.values(), default=0)
        events = self.source.read_events(start, self.batch_size)
        if events:
            for projector in self.projectors:
                name = projector.view_name
                applied = self._positions[name]
                state = self._states[name]
                apply = projector.apply
                changed = False
                for position, event in events:
                    if position <= applied:
                        continue  # already in this view: re-delivery is a no-op
                    if apply(state, event):
                        changed = True
                    applied = position
                self._positions[name] = applied
                if changed:
                    self._dirty.add(name)
        if commit:
            self.commit(caught_up=len(events) < self.batch_size)
        return len(events)

    def commit(self, *, caught_up: bool = True, force: bool = False) -> list[str]:
        """Write the views that changed (and, when idle, those whose position moved)."""
        now = self._monotonic()
        written = []
        for projector in self.projectors:
            name = projector.view_name
            position = self._positions[name]
            if position == self._committed[name] and not force:
                continue
            idle = now - self._last_commit[name] >= self.idle_commit_s
            if name not in self._dirty and not (force or caught_up or idle):
                continue
            self.store.write(projector.output(self._states[name], position))
            self._committed[name] = position
            self._last_commit[name] = now
            self._dirty.discard(name)
            written.append(name)
        return written

    def run_until(self, head: int | None = None, *, commit_each_batch: bool = True) -> int:
        """Catch up to ``head`` (default: the log's end now); return events processed."""
        target = self.source.max_position() if head is None else head
        total = 0
        while (before := min(self._positions.values(), default=0)) < target:
            read = self.step(commit=commit_each_batch)
            total += read
            if read == 0 or min(self._positions.values(), default=0) == before:
                break  # the end of the log, or a source that only re-sends old events
        self.commit(caught_up=True, force=not commit_each_batch)
        return total

    def status(self) -> list[ViewStatus]:
        head = self.source.max_position()
        return [
            ViewStatus(
                p.view_name, self._committed[p.view_name], head, self.errors.get(p.view_name, "")
            )
            for p in self.projectors
        ]
