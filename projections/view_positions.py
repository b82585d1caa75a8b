"""How far each stored view is behind the event store: the position stamped in each view's
primary document, per store, and the SQL read tables' own."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec

from projections.engine import Projector, ViewStore
from projections.sql_tables import NAME as SQL_TABLES_VIEW


@dataclass(frozen=True)
class ViewPosition:
    store: str
    view: str
    file: str
    position: int | None
    head: int

    @property
    def lag(self) -> int | None:
        return None if self.position is None else max(0, self.head - self.position)


class Tables(Protocol):
    label: str

    def position(self) -> int | None: ...


class _StampView(msgspec.Struct):
    position: int = 0


class _Stamp(msgspec.Struct):
    view: _StampView = msgspec.field(name="_view", default_factory=_StampView)


def view_positions(
    head: int,
    stores: Sequence[tuple[str, ViewStore]],
    projectors: Callable[[], Sequence[Projector[Any]]],
    tables: Tables | None = None,
) -> list[ViewPosition]:
    """One row per (labelled) store and view, then one for the tables when they are on."""
    rows = []
    for label, store in stores:
        for projector in projectors():
            raw = store.read(projector.primary)
            position = None
            if raw:
                meta = msgspec.json.decode(raw, type=_Stamp)
                position = meta.view.position
            rows.append(ViewPosition(label, projector.view_name, projector.primary, position, head))
    if tables is not None:
        rows.append(
            ViewPosition(tables.label, SQL_TABLES_VIEW, "(tables)", tables.position(), head)
        )
    return rows
