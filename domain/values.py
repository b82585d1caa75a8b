"""Value types shared by the whole domain: enumerations and Decimal helpers.

Events store the *values* of these enumerations (plain strings) so that stored
events never depend on Python class names.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal, InvalidOperation
from enum import StrEnum

ZERO = Decimal(0)
ONE = Decimal(1)
HUNDRED = Decimal(100)

#: The arena's default universe (Alpha Arena season 1).
DEFAULT_COINS: tuple[str, ...] = ("BTC", "ETH", "SOL", "BNB", "DOGE", "XRP")
#: Coins that get the "major" leverage cap by default.
MAJOR_COINS: frozenset[str] = frozenset({"BTC", "ETH"})


class Signal(StrEnum):
    BUY_TO_ENTER = "buy_to_enter"
    SELL_TO_ENTER = "sell_to_enter"
    HOLD = "hold"
    CLOSE = "close"


class Side(StrEnum):
    LONG = "long"
    SHORT = "short"


class OrderSide(StrEnum):
    BUY = "buy"
    SELL = "sell"


class Liquidity(StrEnum):
    TAKER = "taker"
    MAKER = "maker"


class OrderIntent(StrEnum):
    OPEN_LONG = "open_long"
    OPEN_SHORT = "open_short"
    CLOSE = "close"


class CloseReason(StrEnum):
    SIGNAL = "signal"
    STOP = "stop"
    TARGET = "target"
    LIQUIDATION = "liquidation"
    EXTERNAL = "external"
    OPERATOR = "operator"  # flattened by an operator


class SkipReason(StrEnum):
    STALE_DATA = "stale_data"
    MISSING_DATA = "missing_data"
    BUDGET = "budget"
    PAUSED = "paused"
    EXCHANGE_UNAVAILABLE = "exchange_unavailable"
    PROMPT_ERROR = "prompt_error"


class LLMFailureReason(StrEnum):
    """Why a model answer produced no decision (never silently a hold)."""

    TIMEOUT = "timeout"
    RATE_LIMITED = "rate_limited"
    SERVER_ERROR = "server_error"
    TRANSPORT_ERROR = "transport_error"
    REFUSAL = "refusal"
    EMPTY_OUTPUT = "empty_output"
    NO_JSON_FOUND = "no_json_found"
    INVALID_JSON = "invalid_json"
    NOT_AN_OBJECT = "not_an_object"
    NO_DECISIONS = "no_decisions"
    ALL_ITEMS_INVALID = "all_items_invalid"
    OUTPUT_TOO_LARGE = "output_too_large"
    MODEL_ERROR = "model_error"


def side_of(qty: Decimal) -> Side:
    return Side.LONG if qty > 0 else Side.SHORT


def sign(side: Side) -> Decimal:
    return ONE if side is Side.LONG else -ONE


def floor_to_decimals(value: Decimal, decimals: int) -> Decimal:
    """Round towards zero to ``decimals`` places (sizes never round up past margin)."""
    quantum = Decimal(1).scaleb(-decimals)
    return value.quantize(quantum, rounding=ROUND_DOWN)


def is_finite_decimal(value: object) -> bool:
    if not isinstance(value, Decimal):
        return False
    try:
        return value.is_finite()
    except InvalidOperation:  # pragma: no cover - is_finite never raises for Decimal
        return False
