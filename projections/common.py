"""Small helpers shared by the projectors (time and id conversions)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from uuid import NAMESPACE_URL, UUID, uuid5

import msgspec

from domain.trader import Trader

#: ``_view`` holds a view's name, position and private state inside its primary file.
VIEW_FIELD = "_view"


def seconds(at: datetime) -> float:
    return at.timestamp()


def millis(at: datetime) -> int:
    return round(at.timestamp() * 1000)


def human_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def oid(cloid: str) -> int:
    """A numeric order id from a cloid (52 bits: safe as a JavaScript number).

    Our cloids are hex; an order id from elsewhere (an external fill) is hashed instead.
    """
    body = cloid[2:15] if cloid.startswith("0x") else ""
    try:
        if len(body) == 13:
            return int(body, 16)
    except ValueError:
        pass
    return int(uuid5(NAMESPACE_URL, f"nof0/order/{cloid}").hex[:13], 16)


def tid(cloid: str, leg: str) -> int:
    return int(uuid5(NAMESPACE_URL, f"nof0/fill/{cloid}/{leg}").hex[:13], 16)


def text(value: str | msgspec.Raw) -> str:
    """A text field that a rebuild may hand over undecoded (``Projector.raw``)."""
    if isinstance(value, str):
        return value
    decoded: str = msgspec.json.decode(value, type=str)
    return decoded


def num(value: Decimal | float | int | None) -> float:
    return 0.0 if value is None else float(value)


def originator(event: Trader.Event | Trader.Registered) -> str:
    originator_id: UUID = event.originator_id
    return originator_id.hex


def stable_id(*parts: str) -> str:
    return str(uuid5(NAMESPACE_URL, "nof0/" + "/".join(parts)))


def trade_doc_id(trader: str, entry_cloid: str, exit_cloid: str) -> str:
    """The id of a closed trade, shared by the trades and analytics views."""
    return f"{trader}_{stable_id('trade', entry_cloid, exit_cloid)}"


def conversation_doc_id(trader: str, at: datetime) -> str:
    return f"{trader}_{seconds(at):.6f}"
