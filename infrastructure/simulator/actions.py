"""Reading /exchange actions off the wire into typed requests.

Only the *shape* is checked here (keys and JSON types): anything malformed raises
``ShapeError``, which the venue answers with Hyperliquid's deserialisation text. Values that
are well-formed but wrong (a price with six figures, a size of zero) are the business rules'
concern and get per-order errors.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from infrastructure.simulator.errors import ShapeError
from infrastructure.simulator.rules import parse_decimal

CLOID = re.compile(r"0x[0-9a-fA-F]{32}")
TIFS = frozenset({"Gtc", "Ioc", "Alo"})


@dataclass(frozen=True)
class TriggerWire:
    is_market: bool
    px: Decimal | None  # None: not a number
    tpsl: str


@dataclass(frozen=True)
class OrderWire:
    asset: int
    is_buy: bool
    px: Decimal | None  # None: not a number
    sz: Decimal | None
    reduce_only: bool
    tif: str | None  # None for a trigger order
    trigger: TriggerWire | None
    cloid: str | None  # lower-case


def mapping(value: object) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ShapeError("expected an object")
    return value


def sequence(value: object) -> Sequence[Any]:
    if not isinstance(value, list | tuple):
        raise ShapeError("expected an array")
    return value


def integer(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ShapeError("expected an integer")
    return value


def boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise ShapeError("expected a boolean")
    return value


def text(value: object) -> str:
    if not isinstance(value, str):
        raise ShapeError("expected a string")
    return value


def cloid(value: object) -> str:
    raw = text(value)
    if not CLOID.fullmatch(raw):
        raise ShapeError("a cloid is 0x and 32 hex digits")
    return raw.lower()


def field(body: Mapping[str, Any], key: str) -> Any:
    if key not in body:
        raise ShapeError(f"missing {key}")
    return body[key]


def order_wire(value: object) -> OrderWire:
    wire = mapping(value)
    try:
        kind = mapping(wire["t"])
        tif: str | None = None
        trigger: TriggerWire | None = None
        if "limit" in kind:
            tif = text(mapping(kind["limit"])["tif"])
            if tif not in TIFS:
                raise ShapeError(f"unknown tif {tif}")
        elif "trigger" in kind:
            spec = mapping(kind["trigger"])
            tpsl = text(spec["tpsl"])
            if tpsl not in ("tp", "sl"):
                raise ShapeError(f"unknown tpsl {tpsl}")
            trigger = TriggerWire(
                boolean(spec["isMarket"]), parse_decimal(text(spec["triggerPx"])), tpsl
            )
        else:
            raise ShapeError("an order type is limit or trigger")
        raw_cloid = wire.get("c")
        return OrderWire(
            asset=integer(wire["a"]),
            is_buy=boolean(wire["b"]),
            px=parse_decimal(text(wire["p"])),
            sz=parse_decimal(text(wire["s"])),
            reduce_only=boolean(wire["r"]),
            tif=tif,
            trigger=trigger,
            cloid=None if raw_cloid is None else cloid(raw_cloid),
        )
    except KeyError as missing:
        raise ShapeError(f"missing {missing}") from None


def grouping(value: object) -> str:
    """``na``, ``normalTpsl`` or ``positionTpsl``; the ``{"p": n}`` form is treated as ``na``."""
    if isinstance(value, Mapping):
        integer(value.get("p"))
        return "na"
    name = text(value)
    if name not in ("na", "normalTpsl", "positionTpsl"):
        raise ShapeError(f"unknown grouping {name}")
    return name


def oid_or_cloid(value: object) -> int | str:
    """An order reference: an oid (int) or a cloid (hex string, lower-cased)."""
    return cloid(value) if isinstance(value, str) else integer(value)
