"""Move an arena's event log between stores: a verified, line-delimited archive.

The format (``nof0-events``, version 1) is NDJSON, one JSON object per line, UTF-8, ``\\n``
line ends:

* line 1, the header: ``{"format": "nof0-events", "version": 1, "arena": NAME,
  "events": N, "head": H, "source": "sqlite" | "postgresql", "exported_at": ISO-8601 UTC}``;
* lines 2..N+1, one stored event each, in notification order: ``{"notification_id": int,
  "originator_id": UUID, "originator_version": int, "topic": str, "state": <the stored
  JSON, byte for byte>}``; a state that is not compact UTF-8 JSON (a compressed or
  encrypted store) is written as ``"state_b64": <standard base64>`` instead of ``"state"``;
* the last line, the trailer: ``{"end": "nof0-events", "events": N, "sha256": HEX}``, where
  ``sha256`` is taken over the exact bytes of the N event lines, each with its ``\\n``.

Import verifies the whole file before it writes anything: the header, every line's shape,
that notification ids increase, that each aggregate's versions start at 1 and have no gap,
that every state decodes into a domain event of this version, the count and the digest.
Then it inserts the events through the eventsourcing recorder in batches, each batch one
transaction. A store that already holds events is refused unless those events are exactly
the first events of the file (an interrupted import is resumed from there).

Snapshots are not exported: they are a cache of the events and the engine takes new ones.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO
from uuid import UUID

import msgspec
from eventsourcing.persistence import Notification, PersistenceError, StoredEvent
from eventsourcing.utils import TopicError

from application.trading import TradingApp

FORMAT = "nof0-events"
VERSION = 1
#: Events read from the source, or written to the target, per round trip/transaction.
BATCH = 1000


class ArchiveError(Exception):
    """The archive is malformed, does not verify, or does not fit the target store."""


class Header(msgspec.Struct, forbid_unknown_fields=True):
    format: str
    version: int
    arena: str
    events: int
    head: int
    source: str
    exported_at: str


class EventLine(msgspec.Struct, forbid_unknown_fields=True):
    """An event line as read: ``state`` is the exact bytes of the JSON value (empty when
    the line carries ``state_b64``)."""

    notification_id: int
    originator_id: UUID
    originator_version: int
    topic: str
    state: msgspec.Raw = msgspec.field(default_factory=msgspec.Raw)
    state_b64: str | None = None


class _JsonStateLine(msgspec.Struct):
    notification_id: int
    originator_id: UUID
    originator_version: int
    topic: str
    state: msgspec.Raw


class _Base64StateLine(msgspec.Struct):
    notification_id: int
    originator_id: UUID
    originator_version: int
    topic: str
    state_b64: str


class Trailer(msgspec.Struct, forbid_unknown_fields=True):
    end: str
    events: int
    sha256: str


_header_decoder = msgspec.json.Decoder(Header)
_event_decoder = msgspec.json.Decoder(EventLine)
_trailer_decoder = msgspec.json.Decoder(Trailer)
_encoder = msgspec.json.Encoder()


def _utf8_json(state: bytes) -> bool:
    """Whether ``state`` can be carried verbatim as a JSON value on one line."""
    if not state or state != state.strip() or b"\n" in state or b"\r" in state:
        return False
    try:
        state.decode("utf-8")
        msgspec.json.decode(state)
    except (UnicodeDecodeError, msgspec.DecodeError):
        return False
    return True


def encode_event(notification: Notification) -> bytes:
    """One event line, with its ``\\n``."""
    originator = UUID(str(notification.originator_id))
    line: _JsonStateLine | _Base64StateLine
    if _utf8_json(notification.state):
        line = _JsonStateLine(
            notification.id,
            originator,
            notification.originator_version,
            notification.topic,
            msgspec.Raw(notification.state),
        )
    else:
        line = _Base64StateLine(
            notification.id,
            originator,
            notification.originator_version,
            notification.topic,
            base64.b64encode(notification.state).decode("ascii"),
        )
    return _encoder.encode(line) + b"\n"


def _state(line: EventLine, where: str) -> bytes:
    has_json = len(line.state) > 0
    if has_json == (line.state_b64 is not None):
        raise ArchiveError(f"{where}: an event carries exactly one of 'state' and 'state_b64'")
    if line.state_b64 is None:
        return bytes(line.state)
    try:
        return base64.b64decode(line.state_b64, validate=True)
    except binascii.Error as exc:
        raise ArchiveError(f"{where}: state_b64 is not base64 ({exc})") from None


# -- export ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportReport:
    events: int
    head: int
    sha256: str
    destination: str


def _source_kind(app: TradingApp) -> str:
    from eventsourcing.postgres import PostgresApplicationRecorder  # noqa: TID251 - infrastructure

    postgres = isinstance(app.recorder, PostgresApplicationRecorder)  # the fenced one too
    return "postgresql" if postgres else "sqlite"


def export_events(
    app: TradingApp, arena: str, out: IO[bytes], *, destination: str, batch: int = BATCH
) -> ExportReport:
    """Write every event up to the current head. The events go through a spool file first,
    so the header can carry their count and the log is read once."""
    head = app.max_position()
    digest = hashlib.sha256()
    count = 0
    with tempfile.SpooledTemporaryFile(max_size=64 * 1024 * 1024) as spool:
        after = 0
        while after < head:
            notifications = app.recorder.select_notifications(
                start=after, limit=batch, stop=head, inclusive_of_start=False
            )
            if not notifications:
                break
            for notification in notifications:
                line = encode_event(notification)
                digest.update(line)
                spool.write(line)
                count += 1
            after = notifications[-1].id
        header = Header(
            format=FORMAT,
            version=VERSION,
            arena=arena,
            events=count,
            head=head,
            source=_source_kind(app),
            exported_at=datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        )
        out.write(_encoder.encode(header) + b"\n")
        spool.seek(0)
        shutil.copyfileobj(spool, out)
    sha = digest.hexdigest()
    out.write(_encoder.encode(Trailer(end=FORMAT, events=count, sha256=sha)) + b"\n")
    out.flush()
    return ExportReport(count, head, sha, destination)


def export_to_path(app: TradingApp, arena: str, path: Path) -> ExportReport:
    """Write to ``path`` atomically: a temporary file beside it, fsynced, then renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            report = export_events(app, arena, handle, destination=str(path))
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return report


# -- import ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArchiveSummary:
    header: Header
    sha256: str


@dataclass(frozen=True)
class ImportReport:
    arena: str
    events: int
    already_present: int
    written: int
    sha256: str
    ids_preserved: bool


class _Reader:
    """One pass over an archive: the header, then events, then the trailer, checked as read."""

    def __init__(self, handle: IO[bytes], name: str) -> None:
        self.handle = handle
        self.name = name
        self.digest = hashlib.sha256()
        self.header = self._read_header()
        self.count = 0
        self.trailer: Trailer | None = None
        self._last_id = 0
        self._versions: dict[UUID, int] = {}

    @property
    def last_id(self) -> int:
        """The notification id of the last event read."""
        return self._last_id

    def _where(self, number: int) -> str:
        return f"{self.name} line {number}"

    def _read_header(self) -> Header:
        first = self.handle.readline()
        if not first:
            raise ArchiveError(f"{self.name} is empty (no header line)")
        if not first.endswith(b"\n"):
            raise ArchiveError(f"{self.name} is truncated: the header line has no line end")
        try:
            header = _header_decoder.decode(first)
        except msgspec.DecodeError as exc:
            raise ArchiveError(f"{self.name} line 1 is not a {FORMAT} header: {exc}") from None
        if header.format != FORMAT:
            raise ArchiveError(f"{self.name} is format {header.format!r}, expected {FORMAT!r}")
        if header.version != VERSION:
            raise ArchiveError(
                f"{self.name} is {FORMAT} version {header.version}; this nof0 reads {VERSION}"
            )
        if header.events < 0 or header.head < header.events:
            raise ArchiveError(f"{self.name}: the header's counts are inconsistent")
        return header

    def events(self) -> Iterator[StoredEvent]:
        """The stored events, in order; the last line is checked as the trailer once the
        iterator is exhausted (a truncated file fails there, not silently)."""
        pending: tuple[int, bytes] | None = None
        for number, line in enumerate(self.handle, start=2):
            if pending is not None:
                yield self._event(*pending)
            pending = (number, line)
        if pending is None:
            raise ArchiveError(f"{self.name} is truncated: no events and no trailer line")
        self._finish(*pending)

    def _event(self, number: int, line: bytes) -> StoredEvent:
        where = self._where(number)
        if not line.endswith(b"\n"):
            raise ArchiveError(f"{where} has no line end")
        try:
            parsed = _event_decoder.decode(line)
        except msgspec.DecodeError as exc:
            raise ArchiveError(f"{where} is not a valid event line: {exc}") from None
        state = _state(parsed, where)
        if parsed.notification_id <= self._last_id:
            raise ArchiveError(
                f"{where}: notification id {parsed.notification_id} does not increase "
                f"(previous {self._last_id})"
            )
        if parsed.notification_id > self.header.head:
            raise ArchiveError(
                f"{where}: notification id {parsed.notification_id} is past the header's "
                f"head {self.header.head}"
            )
        expected = self._versions.get(parsed.originator_id, 0) + 1
        if parsed.originator_version != expected:
            raise ArchiveError(
                f"{where}: aggregate {parsed.originator_id} jumps to version "
                f"{parsed.originator_version}, expected {expected} (an event is missing)"
            )
        self._versions[parsed.originator_id] = expected
        self._last_id = parsed.notification_id
        self.digest.update(line)
        self.count += 1
        if self.count > self.header.events:
            raise ArchiveError(
                f"{where}: more events than the header's {self.header.events} "
                "(or the trailer is missing)"
            )
        return StoredEvent(
            originator_id=parsed.originator_id,
            originator_version=parsed.originator_version,
            topic=parsed.topic,
            state=state,
        )

    def _finish(self, number: int, line: bytes) -> None:
        # ``number`` counts from the header; the trailer is the last line.
        where = self._where(number)
        if not line.endswith(b"\n"):
            raise ArchiveError(f"{self.name} is truncated: the last line ({where}) is incomplete")
        try:
            trailer = _trailer_decoder.decode(line)
        except msgspec.DecodeError:
            raise ArchiveError(
                f"{self.name} is truncated: the last line ({where}) is not the trailer"
            ) from None
        if trailer.end != FORMAT:
            raise ArchiveError(f"{where}: the trailer names {trailer.end!r}, expected {FORMAT!r}")
        if trailer.events != self.count or self.header.events != self.count:
            raise ArchiveError(
                f"{self.name} holds {self.count} events; the header says {self.header.events} "
                f"and the trailer {trailer.events}"
            )
        sha = self.digest.hexdigest()
        if trailer.sha256 != sha:
            raise ArchiveError(
                f"{self.name}: digest mismatch — the event lines hash to {sha}, the trailer "
                f"says {trailer.sha256} (the file was altered or damaged)"
            )
        self.trailer = trailer


def _same(a: StoredEvent, b: StoredEvent) -> bool:
    return (
        UUID(str(a.originator_id)) == UUID(str(b.originator_id))
        and a.originator_version == b.originator_version
        and a.topic == b.topic
        and a.state == b.state
    )


def verify_archive(path: Path, app: TradingApp) -> ArchiveSummary:
    """Read the whole archive once, checking everything; decode every state with ``app``'s
    mapper (so an archive from another version, or another cipher key, is refused)."""
    with path.open("rb") as handle:
        reader = _Reader(handle, path.name)
        for number, stored in enumerate(reader.events(), start=2):
            try:
                app.mapper.to_domain_event(stored)
            except (TopicError, ValueError, TypeError, KeyError) as exc:
                raise ArchiveError(
                    f"{path.name} line {number}: the event does not decode as "
                    f"{stored.topic}: {type(exc).__name__}: {exc}"
                ) from None
        assert reader.trailer is not None
        return ArchiveSummary(reader.header, reader.trailer.sha256)


def import_events(path: Path, app: TradingApp, *, batch: int = BATCH) -> ImportReport:
    summary = verify_archive(path, app)
    present = app.max_position()
    existing = 0
    if present:
        existing = _check_prefix(path, app, summary.header.events)
    written = 0
    preserved = True
    with path.open("rb") as handle:
        reader = _Reader(handle, path.name)
        chunk: list[StoredEvent] = []
        ids: list[int] = []
        skipped = 0

        def flush() -> None:
            nonlocal written, preserved
            try:
                assigned = app.recorder.insert_events(chunk)
            except PersistenceError as exc:
                raise ArchiveError(
                    f"the target store refused a batch after {written} events were written "
                    f"({type(exc).__name__}: {exc}); each batch is one transaction, so "
                    "running the same import again resumes from there"
                ) from exc
            if assigned is None or list(assigned) != ids:
                preserved = False
            written += len(chunk)
            chunk.clear()
            ids.clear()

        for stored in reader.events():
            if skipped < existing:
                skipped += 1
                continue
            chunk.append(stored)
            ids.append(reader.last_id)
            if len(chunk) >= batch:
                flush()
        if chunk:
            flush()
        assert reader.trailer is not None
        if reader.trailer.sha256 != summary.sha256:
            raise ArchiveError(f"{path.name} changed while it was being imported")
    return ImportReport(
        arena=summary.header.arena,
        events=summary.header.events,
        already_present=existing,
        written=written,
        sha256=summary.sha256,
        ids_preserved=preserved,
    )


def _check_prefix(path: Path, app: TradingApp, total: int) -> int:
    """The target's events must be exactly the archive's first events; return how many."""
    head = app.max_position()
    stored: list[Notification] = []
    after = 0
    while after < head:
        page = app.recorder.select_notifications(
            start=after, limit=BATCH, stop=head, inclusive_of_start=False
        )
        if not page:
            break
        stored.extend(page)
        after = page[-1].id
    if len(stored) > total:
        raise ArchiveError(
            f"the target event store is not empty: it holds {len(stored)} events, more than "
            f"the {total} in {path.name}; import only into an empty store (or one holding a "
            "prefix of this archive, from an interrupted import)"
        )
    with path.open("rb") as handle:
        reader = _Reader(handle, path.name)
        events = reader.events()
        for index, target in enumerate(stored):
            ours = next(events)
            if not _same(ours, target):
                raise ArchiveError(
                    f"the target event store is not empty and is not a prefix of {path.name}: "
                    f"its event #{index + 1} (aggregate {target.originator_id} v"
                    f"{target.originator_version}, {target.topic}) differs from the archive's "
                    f"(aggregate {ours.originator_id} v{ours.originator_version}, "
                    f"{ours.topic}); import only into an empty store"
                )
    return len(stored)


__all__ = [
    "ArchiveError",
    "ExportReport",
    "ImportReport",
    "export_events",
    "export_to_path",
    "import_events",
    "verify_archive",
]
