"""A batched catch-up loop over the event log, written against ports.

Each view (projector) keeps its state *and its position* in its primary document, written
as one atomic unit by the view store. Delivery is at-least-once; because a projector
skips events at or below its stored position, re-delivery changes nothing, and any batch
size or restart point gives the same views as a full rebuild.
"""

from __future__ import annotations

import dataclasses
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar, Generic, Protocol, TypeVar, runtime_checkable

import msgspec

from application.redaction import redact_bytes

S = TypeVar("S", bound=msgspec.Struct)

_ENCODER = msgspec.json.Encoder(decimal_format="string")


class EventSource(Protocol):
    def max_position(self) -> int: ...

    def read_events(self, after: int, limit: int) -> Sequence[tuple[int, Any]]: ...


#: What a set of projectors reads of an event class: the fields to decode (``None``: every
#: field), and those of them to hand over undecoded (``msgspec.Raw``, see Projector.raw).
Fields = tuple[frozenset[str] | None, frozenset[str]]
#: What a set of projectors reads, by event class. ``None``: every event, in full.
Wanted = Mapping[type[Any], Fields] | None

#: One decoded event of a batch: (position, event class, event). The event is the domain
#: event, or an object carrying only the wanted fields (plus ``originator_id``,
#: ``originator_version`` and ``timestamp``) under the same names and types.
Decoded = tuple[int, type[Any], Any]
#: A batch: how many events were read, and the wanted ones among them, decoded.
Batch = tuple[int, Sequence[Decoded]]


@runtime_checkable
class BatchSource(Protocol):
    """The log read for a rebuild: large batches of the wanted events only, decoded in bulk."""

    def max_position(self) -> int: ...

    def batches(self, after: int, head: int, wanted: Wanted) -> Iterator[Batch]:
        """Events with ``after`` < position <= ``head``, in order, in batches."""
        ...


class EventSourceBatches:
    """A plain event source read as batches (domain events in full): for stores that have
    no bulk reader (in-memory logs, tests)."""

    def __init__(self, source: EventSource, batch_size: int = 1000) -> None:
        self.source = source
        self.batch_size = batch_size

    def max_position(self) -> int:
        return self.source.max_position()

    def batches(self, after: int, head: int, wanted: Wanted) -> Iterator[Batch]:
        while after < head:
            events = self.source.read_events(after, self.batch_size)
            if not events:
                return
            batch = [(p, type(e), e) for p, e in events if after < p <= head]
            if not batch:
                return  # a source that only re-sends old events
            yield len(batch), [d for d in batch if wanted is None or d[1] in wanted]
            after = batch[-1][0]


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

    ``reduce`` mutates the state it is given (the engine owns each state exclusively); it
    must be deterministic and must not read clocks or do I/O. It dispatches on the event
    class it is given, not on ``type(event)``: a rebuild hands it objects that carry only
    the fields it reads (see ``handles`` and ``ignores``).
    """

    name: ClassVar[str]
    version: ClassVar[int]
    primary: ClassVar[str]
    state_type: ClassVar[type[Any]]
    #: The event classes ``reduce`` acts on (``None``: it must see every event). A rebuild
    #: decodes nothing else for this view.
    handles: ClassVar[frozenset[type[Any]] | None] = None
    #: Fields of a handled class that ``reduce`` never reads (a rebuild need not decode
    #: them when no other view reads them either).
    ignores: ClassVar[Mapping[type[Any], frozenset[str]]] = {}
    #: Text fields ``reduce`` reads only now and then (through ``projections.common.text``):
    #: a rebuild may hand them over undecoded, as ``msgspec.Raw``, when every other view
    #: reading the class ignores them or reads them the same way.
    raw: ClassVar[Mapping[type[Any], frozenset[str]]] = {}

    @cached_property
    def view_name(self) -> str:
        return f"{self.name}_v{self.version}"

    @abstractmethod
    def initial(self) -> S: ...

    @abstractmethod
    def meta(self, state: S) -> ViewMeta: ...

    def apply(self, state: S, event: Any) -> bool:
        """Apply one domain event; return whether the documents changed."""
        return self.reduce(state, type(event), event)

    @abstractmethod
    def reduce(self, state: S, kind: type[Any], event: Any) -> bool:
        """Apply one event of class ``kind``; return whether the documents changed."""

    def reduce_batch(self, state: S, events: Sequence[Decoded]) -> None:
        """Apply a batch of events in order, to the same end state as ``reduce`` one by one
        (a view may defer work that later events of the batch would undo)."""
        reduce = self.reduce
        handles = self.handles
        if handles is None:
            for _, kind, event in events:
                reduce(state, kind, event)
        else:
            for _, kind, event in events:
                if kind in handles:
                    reduce(state, kind, event)

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


def wanted_by(projectors: Sequence[Projector[Any]]) -> Wanted:
    """The events and fields a set of projectors reads (see ``Projector.handles``)."""
    wanted: dict[type[Any], Fields] = {}
    ignored: dict[type[Any], list[frozenset[str]]] = {}
    seldom: dict[type[Any], list[frozenset[str]]] = {}
    for projector in projectors:
        if projector.handles is None:
            return None
        for kind in projector.handles:
            skip = projector.ignores.get(kind, frozenset())
            ignored.setdefault(kind, []).append(skip)
            seldom.setdefault(kind, []).append(skip | projector.raw.get(kind, frozenset()))
    for kind, skips in ignored.items():
        common = skips[0].intersection(*skips[1:])
        lazy = seldom[kind]
        raw = lazy[0].intersection(*lazy[1:]) - common
        wanted[kind] = (None if not common else _fields_of(kind) - common, raw)
    return wanted


def _fields_of(kind: type[Any]) -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(kind))


def replay(
    source: BatchSource, projectors: Sequence[Projector[Any]], head: int
) -> tuple[dict[str, Any], int]:
    """Every event up to ``head`` through fresh states of ``projectors``, in memory: the
    states by view name, and the events read. Nothing is written."""
    states = {p.view_name: p.initial() for p in projectors}
    plan = [(p.reduce_batch, states[p.view_name]) for p in projectors]
    read = 0
    for count, batch in source.batches(0, head, wanted_by(projectors)):
        read += count
        for reduce_batch, state in plan:
            reduce_batch(state, batch)
    return states, read
