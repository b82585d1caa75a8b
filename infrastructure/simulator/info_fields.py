"""Reading /info request fields; numbers in the venue's wire format."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from infrastructure.simulator.errors import InfoRequestError
from infrastructure.simulator.rules import wire_rounded

Request = Mapping[str, Any]

USD = 6  # decimals of USD amounts
PX = 8  # decimals of derived prices (entry, liquidation, impact)
RATIO = 10  # decimals of ratios (return on equity)


def usd(value: Decimal) -> str:
    return wire_rounded(value, USD)


def text_field(request: Request, key: str) -> str:
    value = request.get(key)
    if not isinstance(value, str):
        raise InfoRequestError()
    return value


def user_field(request: Request) -> str:
    return text_field(request, "user").lower()


def int_field(request: Request, key: str) -> int:
    value = request.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InfoRequestError()
    return value


def optional_int_field(request: Request, key: str) -> int | None:
    return None if request.get(key) is None else int_field(request, key)
