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
