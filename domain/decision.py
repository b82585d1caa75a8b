"""The decision contract: what a model answers, and how an answer is read.

A model answers with Alpha Arena's per-coin map::

    {"BTC": {"signal": "buy_to_enter", "quantity": 0.1, "leverage": 10,
             "profit_target": 112000, "stop_loss": 105000,
             "invalidation_condition": "...", "confidence": 0.7,
             "risk_usd": 300, "justification": "..."}, ...}

Reading is tolerant about *where* the JSON sits (a fenced block, prose around it,
``<think>`` sections) and strict about *what* it says: an answer that cannot be read is
a :class:`DecisionParseError` with a typed reason, never a hold, and each coin's item is
validated on its own so that a valid item survives an invalid neighbour.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from domain.values import LLMFailureReason, Signal

#: Answers longer than this are refused outright (a runaway model, not a decision).
MAX_OUTPUT_CHARS = 200_000
#: Decoding is tried at no more than this many brace positions (bounds adversarial input).
MAX_DECODE_ATTEMPTS = 256
#: Entry items must carry all of these.
ENTRY_FIELDS = (
    "quantity",
    "leverage",
    "profit_target",
    "stop_loss",
    "confidence",
    "risk_usd",
    "invalidation_condition",
)

_THINK_BLOCK = re.compile(r"<(think|thinking|reasoning)>(.*?)</\1>", re.DOTALL | re.IGNORECASE)
_THINK_OPEN = re.compile(r"<(think|thinking|reasoning)>", re.IGNORECASE)
_FENCE = re.compile(r"```[a-zA-Z0-9_-]*\s*\n?(.*?)```", re.DOTALL)
_REFUSAL = re.compile(
    r"\b(I\s+(can(?:no|'|’)t|cannot|won(?:'|’)t|will not|am unable to)|"
    r"I(?:'|’)m\s+(unable|not able)|as an ai)\b",
    re.IGNORECASE,
)


class ItemError(StrEnum):
    """Why one coin's item was refused before risk checks."""

    UNKNOWN_COIN = "unknown_coin"
    NOT_AN_OBJECT = "item_not_an_object"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    NON_FINITE = "non_finite_number"
    OUT_OF_RANGE = "out_of_range"
    UNKNOWN_SIGNAL = "unknown_signal"
    COIN_MISMATCH = "coin_mismatch"
    SCHEMA_VIOLATION = "schema_violation"


class DecisionParseError(Exception):
    """The answer as a whole could not be read; no item may be acted on."""

    def __init__(self, reason: LLMFailureReason, detail: str, cot_trace: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail
        self.cot_trace = cot_trace


@dataclass(frozen=True)
class DecisionItem:
    """One coin's validated decision. Optional numbers are ``None`` when a hold or close
    did not state them."""

    coin: str
    signal: Signal
    quantity: Decimal | None = None
    leverage: int | None = None
    profit_target: Decimal | None = None
    stop_loss: Decimal | None = None
    confidence: Decimal | None = None
    risk_usd: Decimal | None = None
    invalidation_condition: str = ""
    justification: str = ""

    def to_schema_view(self) -> dict[str, Any]:
        """The item as the published JSON Schema sees it: what will be acted on, normalised
        (coin and signal spelled canonically, numbers as numbers, unstated fields absent)."""
        view = {"coin": self.coin, "signal": self.signal.value}
        for name in (
            "quantity",
            "leverage",
            "profit_target",
            "stop_loss",
            "confidence",
            "risk_usd",
        ):
            value = getattr(self, name)
            if value is not None:
                view[name] = value
        if self.invalidation_condition:
            view["invalidation_condition"] = self.invalidation_condition
        if self.justification:
            view["justification"] = self.justification
        return view

    def to_record(self) -> dict[str, Any]:
        """The item as stored in ``LLMResponded``: JSON-native, Decimals as exact strings."""
        return {
            "coin": self.coin,
            "signal": self.signal.value,
            "quantity": _text_of(self.quantity),
            "leverage": self.leverage,
            "profit_target": _text_of(self.profit_target),
            "stop_loss": _text_of(self.stop_loss),
            "confidence": _text_of(self.confidence),
            "risk_usd": _text_of(self.risk_usd),
            "invalidation_condition": self.invalidation_condition,
            "justification": self.justification,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> DecisionItem:
        return cls(
            coin=str(record["coin"]),
            signal=Signal(record["signal"]),
            quantity=_decimal_of(record.get("quantity")),
            leverage=record.get("leverage"),
            profit_target=_decimal_of(record.get("profit_target")),
            stop_loss=_decimal_of(record.get("stop_loss")),
            confidence=_decimal_of(record.get("confidence")),
            risk_usd=_decimal_of(record.get("risk_usd")),
            invalidation_condition=str(record.get("invalidation_condition") or ""),
            justification=str(record.get("justification") or ""),
        )


def _text_of(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _decimal_of(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


@dataclass(frozen=True)
class ItemRejection:
    coin: str
    error: ItemError
    field: str
    detail: str


@dataclass(frozen=True)
class ParsedDecision:
    items: tuple[DecisionItem, ...]
    rejections: tuple[ItemRejection, ...] = ()
    cot_trace: str = ""


def apply_schema_verdicts(parsed: ParsedDecision, problems: Mapping[str, str]) -> ParsedDecision:
    """Refuse the items the published JSON Schema refuses (``problems``: coin → message).

    The code's rules and the schema should agree; where they do not, the stricter wins.
    """
    refused = [item for item in parsed.items if item.coin in problems]
    if not refused:
        return parsed
    kept = tuple(item for item in parsed.items if item.coin not in problems)
    rejections = parsed.rejections + tuple(
        ItemRejection(item.coin, ItemError.SCHEMA_VIOLATION, "", problems[item.coin])
        for item in refused
    )
    if not kept:
        detail = "; ".join(f"{r.coin}: {r.error.value} ({r.detail})" for r in rejections)
        raise DecisionParseError(LLMFailureReason.ALL_ITEMS_INVALID, detail, parsed.cot_trace)
    return ParsedDecision(kept, rejections, parsed.cot_trace)


class _NonFinite:
    """Marks NaN/Infinity in an answer so the item (not the whole answer) is refused."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


class _Oversized(_NonFinite):
    """A number too long or too large to be a decision (refused per item, never computed)."""


#: Numbers beyond this are refused: no order quantity, price or leverage is that large, and
#: Decimal arithmetic on them would fail or take unbounded time.
MAX_NUMBER_DIGITS = 40
MAX_NUMBER_EXPONENT = 15


def _parse_float(text: str) -> Decimal | _Oversized:
    if len(text) > MAX_NUMBER_DIGITS:
        return _Oversized(text[:20] + "…")
    value = Decimal(text)
    if value and value.adjusted() > MAX_NUMBER_EXPONENT:
        return _Oversized(text)
    return value


def _parse_int(text: str) -> int | _Oversized:
    if len(text.lstrip("-")) > MAX_NUMBER_EXPONENT + 1:
        return _Oversized(text[:20] + ("…" if len(text) > 20 else ""))
    return int(text)


def _decoder() -> json.JSONDecoder:
    return json.JSONDecoder(
        parse_float=_parse_float, parse_int=_parse_int, parse_constant=_NonFinite
    )


def _decode_at(decoder: json.JSONDecoder, text: str, start: int) -> tuple[Any, int] | None:
    try:
        return decoder.raw_decode(text, start)
    except (json.JSONDecodeError, RecursionError, ValueError):
        return None


def _strip_thinking(raw: str) -> tuple[str, str]:
    """Remove ``<think>`` sections; an unclosed one swallows the rest of the text."""
    thoughts = [m.group(2).strip() for m in _THINK_BLOCK.finditer(raw)]
    text = _THINK_BLOCK.sub(" ", raw)
    unclosed = _THINK_OPEN.search(text)
    if unclosed:
        thoughts.append(text[unclosed.end() :].strip())
        text = text[: unclosed.start()]
    return text, "\n\n".join(t for t in thoughts if t)


def _looks_like_decision(value: Any) -> bool:
    if not isinstance(value, dict) or not value:
        return False
    if "signal" in value and "coin" in value:
        return True
    if isinstance(value.get("decisions"), dict):
        return True
    return any(isinstance(v, dict) and "signal" in v for v in value.values())


class _Truncated:
    """JSON that opens and never closes: the answer was cut off."""

    def __init__(self, text: str) -> None:
        self.text = text


class _Malformed:
    """A balanced ``{...}`` that is not JSON (prose braces, or a corrupted object)."""


def _balanced_end(text: str, start: int) -> int | None:
    """The index after the bracket closing the one at ``start``; None if it never closes."""
    depth = 0
    in_string = False
    escaped = False
    for index in range(start, len(text)):
        char = text[index]
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
            if depth == 0:
                return index + 1
    return None


def _scan(text: str, found: list[Any], prose: list[str]) -> bool:
    """Collect the JSON values of ``text`` in order; False once JSON is cut off."""
    decoder = _decoder()
    index, last_end, attempts = 0, 0, 0
    while index < len(text):
        char = text[index]
        if char in "{[":
            attempts += 1
            if attempts > MAX_DECODE_ATTEMPTS:
                break
            decoded = _decode_at(decoder, text, index)
            if decoded is not None:
                value, end = decoded
                found.append(value)
                prose.append(text[last_end:index])
                index = last_end = end
                continue
            closing = _balanced_end(text, index)
            if closing is None:
                # Everything after an unclosed bracket is inside it: never act on a
                # fragment of a cut-off answer.
                found.append(_Truncated(text[index:]))
                prose.append(text[last_end:index])
                return False
            if char == "{":
                found.append(_Malformed())
                prose.append(text[last_end:index])
                index = last_end = closing
                continue
        index += 1
    prose.append(text[last_end:])
    return True


def _candidates(text: str) -> tuple[list[Any], list[str]]:
    """Every JSON value in the text, in order (fenced blocks and unfenced text alike),
    and the prose around them."""
    found: list[Any] = []
    prose: list[str] = []
    position = 0
    for match in _FENCE.finditer(text):
        if not _scan(text[position : match.start()], found, prose):
            return found, prose
        body = match.group(1).strip()
        if body:
            decoded = _decode_at(_decoder(), body, 0)
            if decoded is not None and not body[decoded[1] :].strip():
                found.append(decoded[0])
            elif not _scan(body, found, prose):
                return found, prose
        position = match.end()
    _scan(text[position:], found, prose)
    return found, prose


def _as_decision_map(value: dict[str, Any]) -> dict[str, Any]:
    if "signal" in value and "coin" in value:
        return {str(value["coin"]): value}
    decisions = value.get("decisions")
    if isinstance(decisions, dict):
        return decisions
    return value


def parse_decision(raw: str, coins: Collection[str]) -> ParsedDecision:
    """Read a model answer; raise :class:`DecisionParseError` when nothing can be read."""
    if len(raw) > MAX_OUTPUT_CHARS:
        raise DecisionParseError(
            LLMFailureReason.OUTPUT_TOO_LARGE,
            f"answer has {len(raw)} characters, more than the {MAX_OUTPUT_CHARS} allowed",
        )
    if not raw.strip():
        raise DecisionParseError(LLMFailureReason.EMPTY_OUTPUT, "the answer is empty")
    text, thinking = _strip_thinking(raw)
    values, prose_parts = _candidates(text)
    prose = " ".join(" ".join(p.split()) for p in prose_parts if p.strip()).strip()
    cot = "\n\n".join(part for part in (thinking, prose) if part)

    decisions = [v for v in values if _looks_like_decision(v)]
    if not decisions:
        if any(isinstance(v, dict) for v in values):
            obj = next(v for v in values if isinstance(v, dict))
            if not obj:
                raise DecisionParseError(
                    LLMFailureReason.NO_DECISIONS, "the JSON object is empty", cot
                )
            raise DecisionParseError(
                LLMFailureReason.NO_DECISIONS,
                "the JSON object has no item with a 'signal' (expected {COIN: {signal: ...}})",
                cot,
            )
        if any(isinstance(v, list) for v in values):
            raise DecisionParseError(
                LLMFailureReason.NOT_AN_OBJECT,
                "the answer holds a JSON array; a per-coin object is expected",
                cot,
            )
        if any(isinstance(v, (_Truncated, _Malformed)) for v in values):
            raise DecisionParseError(
                LLMFailureReason.INVALID_JSON, "the JSON is truncated or malformed", cot
            )
        if values:
            raise DecisionParseError(
                LLMFailureReason.NOT_AN_OBJECT,
                f"the answer holds a JSON {type(values[-1]).__name__}, not an object",
                cot,
            )
        if _REFUSAL.search(text):
            raise DecisionParseError(
                LLMFailureReason.REFUSAL, "the model declined to answer", cot or text.strip()
            )
        raise DecisionParseError(LLMFailureReason.NO_JSON_FOUND, "no JSON in the answer", cot)

    last = max(i for i, v in enumerate(values) if _looks_like_decision(v))
    if any(isinstance(v, _Truncated) for v in values[last + 1 :]):
        raise DecisionParseError(
            LLMFailureReason.INVALID_JSON,
            "the answer was cut off after its last complete JSON object",
            cot,
        )
    # The last decision object wins: models draft first and conclude last.
    decision_map = _as_decision_map(values[last])
    # One verdict per coin: keys that differ only in case or spaces name the same coin, and
    # (as for duplicate JSON keys) the last one wins.
    by_coin: dict[str, Any] = {}
    for key, body in decision_map.items():
        coin = str(key).strip().upper()
        by_coin.pop(coin, None)
        by_coin[coin] = body
    universe = {c.upper() for c in coins}
    items: list[DecisionItem] = []
    rejections: list[ItemRejection] = []
    for coin, body in by_coin.items():
        item_or_error = _validate_item(coin, body, universe)
        if isinstance(item_or_error, ItemRejection):
            rejections.append(item_or_error)
        else:
            items.append(item_or_error)
    if not items:
        detail = "; ".join(f"{r.coin}: {r.error.value} ({r.detail})" for r in rejections)
        raise DecisionParseError(LLMFailureReason.ALL_ITEMS_INVALID, detail or "no items", cot)
    return ParsedDecision(items=tuple(items), rejections=tuple(rejections), cot_trace=cot)


def _reject(coin: str, error: ItemError, name: str, detail: str) -> ItemRejection:
    return ItemRejection(coin=coin, error=error, field=name, detail=detail)


def _number(
    coin: str, body: Mapping[str, Any], name: str, *, required: bool
) -> Decimal | ItemRejection | None:
    if name not in body or body[name] is None:
        if required:
            return _reject(coin, ItemError.MISSING_FIELD, name, f"'{name}' is required")
        return None
    value = body[name]
    if isinstance(value, _Oversized):
        return _reject(coin, ItemError.OUT_OF_RANGE, name, f"'{name}' is absurdly large")
    if isinstance(value, _NonFinite):
        return _reject(coin, ItemError.NON_FINITE, name, f"'{name}' is {value.text}")
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        return _reject(
            coin, ItemError.WRONG_TYPE, name, f"'{name}' must be a number, got {value!r:.40}"
        )
    return Decimal(value)


def _text(coin: str, body: Mapping[str, Any], name: str, *, required: bool) -> str | ItemRejection:
    value = body.get(name)
    if value is None:
        if required:
            return _reject(coin, ItemError.MISSING_FIELD, name, f"'{name}' is required")
        return ""
    if not isinstance(value, str):
        return _reject(coin, ItemError.WRONG_TYPE, name, f"'{name}' must be a string")
    text = value.strip()
    if required and not text:
        # An entry states when it stops being right; blank is not a condition.
        return _reject(coin, ItemError.MISSING_FIELD, name, f"'{name}' must not be empty")
    return text


def _validate_item(coin: str, body: Any, universe: set[str]) -> DecisionItem | ItemRejection:
    if coin not in universe:
        return _reject(coin, ItemError.UNKNOWN_COIN, "coin", f"{coin!r} is not traded here")
    if not isinstance(body, dict):
        return _reject(coin, ItemError.NOT_AN_OBJECT, "", "each coin maps to an object")
    raw_signal = body.get("signal")
    if raw_signal is None:
        return _reject(coin, ItemError.MISSING_FIELD, "signal", "'signal' is required")
    if not isinstance(raw_signal, str):
        return _reject(coin, ItemError.WRONG_TYPE, "signal", "'signal' must be a string")
    try:
        signal = Signal(raw_signal.strip().lower())
    except ValueError:
        allowed = ", ".join(s.value for s in Signal)
        return _reject(
            coin, ItemError.UNKNOWN_SIGNAL, "signal", f"{raw_signal!r:.40} is not one of {allowed}"
        )
    stated_coin = body.get("coin")
    if stated_coin is not None and str(stated_coin).strip().upper() != coin:
        return _reject(
            coin, ItemError.COIN_MISMATCH, "coin", f"item says {stated_coin!r:.20} under {coin}"
        )
    entry = signal in (Signal.BUY_TO_ENTER, Signal.SELL_TO_ENTER)

    numbers: dict[str, Decimal | None] = {}
    for name in ("quantity", "profit_target", "stop_loss", "confidence", "risk_usd", "leverage"):
        parsed = _number(coin, body, name, required=entry)
        if isinstance(parsed, ItemRejection):
            if entry:
                return parsed
            parsed = None  # a hold or close acts on nothing it states; drop bad extras
        numbers[name] = parsed
    texts: dict[str, str] = {}
    for name, required in (("invalidation_condition", entry), ("justification", False)):
        text = _text(coin, body, name, required=required)
        if isinstance(text, ItemRejection):
            if entry:
                return text
            text = ""
        texts[name] = text

    leverage: int | None = None
    lev = numbers["leverage"]
    if lev is not None:
        if lev != lev.to_integral_value():
            if entry:
                return _reject(coin, ItemError.WRONG_TYPE, "leverage", "must be a whole number")
        else:
            leverage = int(lev)
    checks: list[tuple[str, bool, str]] = []
    if entry:
        assert leverage is not None
        checks = [
            ("quantity", numbers["quantity"] is not None and numbers["quantity"] > 0, "> 0"),
            ("leverage", leverage >= 1, ">= 1"),
            (
                "profit_target",
                numbers["profit_target"] is not None and numbers["profit_target"] > 0,
                "> 0",
            ),
            ("stop_loss", numbers["stop_loss"] is not None and numbers["stop_loss"] > 0, "> 0"),
            ("risk_usd", numbers["risk_usd"] is not None and numbers["risk_usd"] >= 0, ">= 0"),
        ]
    confidence = numbers["confidence"]
    if confidence is not None and not (0 <= confidence <= 1):
        if entry:
            return _reject(
                coin, ItemError.OUT_OF_RANGE, "confidence", f"must be within 0..1, got {confidence}"
            )
        confidence = None
    for name, ok, expected in checks:
        if not ok:
            return _reject(
                coin,
                ItemError.OUT_OF_RANGE,
                name,
                f"must be {expected}, got {body.get(name)!r:.30}",
            )
    return DecisionItem(
        coin=coin,
        signal=signal,
        quantity=numbers["quantity"],
        leverage=leverage,
        profit_target=numbers["profit_target"],
        stop_loss=numbers["stop_loss"],
        confidence=confidence,
        risk_usd=numbers["risk_usd"],
        invalidation_condition=texts["invalidation_condition"],
        justification=texts["justification"],
    )
