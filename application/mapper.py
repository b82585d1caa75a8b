"""Store domain events as plain JSON and read them back with typed msgspec decoders.

The library's default transcoder tags every Decimal and datetime as an object and decodes
them through a Python hook, which made decoding the main cost of rebuilding views. Here
an event's fields are encoded by msgspec (Decimal as a string, datetime as RFC 3339) and
decoded by a decoder generated from the event class's annotations, in C.

* Values nested inside ``dict[str, Any]`` / ``list[dict[str, Any]]`` fields must already be
  JSON-native (the domain writes Decimals there as strings), so an event reads back equal
  to the one that was written.
* ``class_version`` upcasting works as in the library: older states are upcast as dicts,
  then converted to the current types.
* Snapshots keep the library's tagged transcoder (aggregate state holds value objects),
  and events stored in the tagged format are still read (converted to the typed fields).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any, TypeVar, cast, get_type_hints
from uuid import UUID

import msgspec
from eventsourcing.domain import CanSnapshotAggregate, DomainEventProtocol
from eventsourcing.persistence import Mapper, MapperDeserialisationError, StoredEvent
from eventsourcing.utils import get_topic, resolve_topic

from application.redaction import redact_bytes

T = TypeVar("T")
_ENCODER = msgspec.json.Encoder(decimal_format="string")
_SKIPPED = frozenset({"originator_id", "originator_version"})


@dataclasses.dataclass(frozen=True)
class _Codec:
    struct: type[msgspec.Struct]
    decoder: msgspec.json.Decoder[Any]


@cache
def _is_typed(cls: type[Any]) -> bool:
    return dataclasses.is_dataclass(cls) and not issubclass(cls, CanSnapshotAggregate)


@cache
def _codec(cls: type[Any]) -> _Codec:
    hints = get_type_hints(cls)
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = [
        (f.name, hints.get(f.name, Any)) for f in dataclasses.fields(cls) if f.name not in _SKIPPED
    ]
    fields.append(("class_version", int, 1))
    struct = msgspec.defstruct(f"{cls.__qualname__}State", fields)
    return _Codec(struct=struct, decoder=msgspec.json.Decoder(struct))


class TypedJSONMapper(Mapper[UUID]):
    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        cls = type(domain_event)
        if not _is_typed(cls):
            return super().to_stored_event(domain_event)
        state = dict(vars(domain_event))
        originator_id = state.pop("originator_id")
        originator_version = state.pop("originator_version")
        class_version = getattr(cls, "class_version", 1)
        if class_version > 1:
            state["class_version"] = class_version
        # The last guard: whatever text reached an event, no registered secret is stored.
        data = redact_bytes(_ENCODER.encode(state))
        if self.compressor:
            data = self.compressor.compress(data)
        if self.cipher:
            data = self.cipher.encrypt(data)
        return StoredEvent(
            originator_id=originator_id,
            originator_version=originator_version,
            topic=get_topic(cls),
            state=data,
        )

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        cls = resolve_topic(stored_event.topic)
        if not _is_typed(cls):
            return super().to_domain_event(stored_event)
        data = stored_event.state
        codec = _codec(cls)
        try:
            if self.cipher:
                data = self.cipher.decrypt(data)
            if self.compressor:
                data = self.compressor.decompress(data)
            state = self._decode(cls, codec, data)
        except (msgspec.MsgspecError, ValueError, TypeError) as exc:
            raise MapperDeserialisationError(
                f"cannot read the stored event {stored_event.topic} of "
                f"{stored_event.originator_id} v{stored_event.originator_version}: {exc}"
            ) from exc
        state["originator_id"] = (
            stored_event.originator_id
            if isinstance(stored_event.originator_id, UUID)
            else UUID(str(stored_event.originator_id))
        )
        state["originator_version"] = stored_event.originator_version
        event = object.__new__(cls)
        object.__setattr__(event, "__dict__", state)
        return cast("DomainEventProtocol[UUID]", event)

    def _decode(self, cls: type[Any], codec: _Codec, data: bytes) -> dict[str, Any]:
        current = getattr(cls, "class_version", 1)
        try:
            decoded = codec.decoder.decode(data)
        except msgspec.ValidationError:
            decoded = None  # an older shape (upcast below) or the library's tagged format
        if decoded is not None and decoded.class_version >= current:
            state = msgspec.structs.asdict(decoded)
            state.pop("class_version")
            return state
        raw = msgspec.json.decode(data) if decoded is not None else self._untyped(data)
        version = raw.pop("class_version", 1)
        while version < current:
            getattr(cls, f"upcast_v{version}_v{version + 1}")(raw)
            version += 1
        converted = msgspec.convert(raw, codec.struct, strict=False)
        state = msgspec.structs.asdict(converted)
        state.pop("class_version")
        return state

    def _untyped(self, data: bytes) -> dict[str, Any]:
        """Events written by the library's tagged transcoder."""
        decoded = self.transcoder.decode(data)
        if not isinstance(decoded, dict):
            raise TypeError("a stored event's state must be an object")
        return decoded


#: A stored event as a rebuild reads it: (position, topic, originator id, version, state).
StoredRow = tuple[int, str, Any, int, bytes]


@dataclasses.dataclass(frozen=True)
class _FieldsCodec:
    cls: type[Any]
    current: int  # the class's class_version
    #: None: not a typed class (the mapper decodes it).
    decoder: msgspec.json.Decoder[Any] | None = None


@cache
def _fields_codec(
    cls: type[Any], fields: frozenset[str] | None, raw: frozenset[str] = frozenset()
) -> _FieldsCodec:
    """A struct of ``fields`` (every field when None) of the event class ``cls``, under the
    same names and with the same types as the mapper decodes them (those in ``raw``
    undecoded, as ``msgspec.Raw``), plus the originator."""
    hints = get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.name not in _SKIPPED]
    chosen = [n for n in names if fields is None or n in fields or n == "timestamp"]
    struct = msgspec.defstruct(
        f"{cls.__qualname__}Fields",
        [
            *[(n, msgspec.Raw if n in raw else hints.get(n, Any)) for n in chosen],
            ("class_version", int, 1),
            ("originator_id", Any, None),
            ("originator_version", int, 0),
        ],
        gc=False,  # decoded JSON holds no cycles
    )
    return _FieldsCodec(
        cls=cls,
        current=getattr(cls, "class_version", 1),
        decoder=msgspec.json.Decoder(struct),
    )


class BatchDecoder:
    """Decodes a batch of stored events, keeping only the classes and fields asked for:
    skipped fields are scanned, not built, and there are no ``StoredEvent`` or domain event
    objects. (Joining a batch into one JSON array to decode it in one call was no faster
    than a call per event, and the copy cost a fifth of the decoding.) Events of an older
    ``class_version`` or in the library's tagged format take the mapper's own path and come
    out as domain events.

    ``wanted`` maps event classes to the fields to keep (None: all) and those of them to
    leave undecoded (``msgspec.Raw``); None: every event, every field."""

    def __init__(
        self,
        mapper: Mapper[UUID],
        wanted: Mapping[type[Any], tuple[frozenset[str] | None, frozenset[str]]] | None,
    ) -> None:
        self.mapper = mapper
        self.wanted = wanted
        self._plain = not (mapper.compressor or mapper.cipher)
        self._topics: dict[str, _FieldsCodec | None] = {}
        self._ids: dict[Any, UUID] = {}

    def _codec(self, topic: str) -> _FieldsCodec | None:
        try:
            return self._topics[topic]
        except KeyError:
            pass
        cls = resolve_topic(topic)
        codec = None
        if self.wanted is None or cls in self.wanted:
            fields, raw = (None, frozenset()) if self.wanted is None else self.wanted[cls]
            codec = _fields_codec(cls, fields, raw) if _is_typed(cls) else _FieldsCodec(cls, 1)
        self._topics[topic] = codec
        return codec

    def _uuid(self, raw: Any) -> UUID:
        try:
            return self._ids[raw]
        except KeyError:
            value = raw if isinstance(raw, UUID) else UUID(str(raw))
            self._ids[raw] = value
            return value

    def decode(self, rows: Sequence[StoredRow]) -> list[tuple[int, type[Any], Any]]:
        """The wanted events of ``rows``, in order, as (position, class, event)."""
        codecs = self._topics
        uuid = self._uuid
        out = []
        for row in rows:
            topic = row[1]
            codec = codecs[topic] if topic in codecs else self._codec(topic)
            if codec is None:
                continue
            decoder = codec.decoder
            if decoder is None:  # not a typed event class: the mapper's own path
                out.append((row[0], codec.cls, self._full(row)))
                continue
            try:
                event = decoder.decode(row[4] if self._plain else self._unwrap(row[4]))
            except msgspec.MsgspecError:
                # An older shape, the tagged format, or worse: the mapper reads it (and
                # raises its typed error if it cannot).
                out.append((row[0], codec.cls, self._full(row)))
                continue
            if event.class_version < codec.current:  # the mapper upcasts it
                out.append((row[0], codec.cls, self._full(row)))
                continue
            event.originator_id = uuid(row[2])
            event.originator_version = row[3]
            out.append((row[0], codec.cls, event))
        return out

    def _unwrap(self, data: bytes) -> bytes:
        if self.mapper.cipher:
            data = self.mapper.cipher.decrypt(data)
        if self.mapper.compressor:
            data = self.mapper.compressor.decompress(data)
        return data

    def _full(self, row: StoredRow) -> Any:
        return self.mapper.to_domain_event(
            StoredEvent(
                originator_id=self._uuid(row[2]),
                originator_version=row[3],
                topic=row[1],
                state=row[4],
            )
        )
