"""A corpus of malformed and adversarial model answers, as data.

Each :class:`Case` states the exact outcome :func:`domain.decision.parse_decision` must give
for the arena's universe :data:`COINS`:

* ``failure`` set: the whole answer is refused with that :class:`LLMFailureReason`
  (a ``DecisionParseError``; no item may be acted on, never a hold);
* otherwise ``valid`` lists the ``(coin, signal)`` items that survive, in answer order, and
  ``rejected`` the ``(coin, ItemError, field)`` refusals, in answer order.

The failure modes come from peers' issue trackers (notes/peers-llm.md §C.1, §C.2, §C.18):
truncated output, arrays where an object is expected, market-data arrays mistaken for the
decision (NOFX #570), ``<think>`` sections, fences, full-width punctuation, enum drift
(NOFX #418), strings and null-ish values in numbers, out-of-range numbers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from domain.decision import DecisionItem, ItemError
from domain.values import LLMFailureReason, Signal

COINS: tuple[str, ...] = ("BTC", "ETH", "SOL", "BNB", "DOGE", "XRP")

BUY = Signal.BUY_TO_ENTER
SELL = Signal.SELL_TO_ENTER
HOLD = Signal.HOLD
CLOSE = Signal.CLOSE


@dataclass(frozen=True)
class Case:
    name: str
    raw: str
    failure: LLMFailureReason | None = None
    valid: tuple[tuple[str, Signal], ...] = ()
    rejected: tuple[tuple[str, ItemError, str], ...] = ()


def btc_entry(**overrides: Any) -> dict[str, Any]:
    """A valid long entry for BTC around 100k; ``overrides`` set (or, with ``...``, drop) fields."""
    item: dict[str, Any] = {
        "signal": "buy_to_enter",
        "quantity": 0.1,
        "leverage": 10,
        "profit_target": 112000.0,
        "stop_loss": 96000.0,
        "invalidation_condition": "4h close below 95000",
        "confidence": 0.72,
        "risk_usd": 400,
        "justification": "breakout above the range",
    }
    for key, value in overrides.items():
        if value is ...:
            item.pop(key, None)
        else:
            item[key] = value
    return item


def eth_short(**overrides: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "signal": "sell_to_enter",
        "quantity": 2,
        "leverage": 5,
        "profit_target": 3600,
        "stop_loss": 4100,
        "invalidation_condition": "1h close above 4100",
        "confidence": 0.65,
        "risk_usd": 200,
        "justification": "lower highs",
    }
    item.update(overrides)
    return item


ETH_HOLD: dict[str, Any] = {"signal": "hold", "justification": "no edge"}


def dump(value: Any) -> str:
    return json.dumps(value, indent=1)


def bad_btc(name: str, error: ItemError, field: str, **overrides: Any) -> Case:
    """BTC carries one defect; the ETH hold beside it must survive."""
    return Case(
        name=name,
        raw=dump({"BTC": btc_entry(**overrides), "ETH": ETH_HOLD}),
        valid=(("ETH", HOLD),),
        rejected=(("BTC", error, field),),
    )


#: A complete BTC item whose enclosing object is never closed (the final "\n}" cut off).
TRUNCATED_ITEM = dump({"BTC": {"coin": "BTC", **btc_entry()}})[:-2]

#: Alpha Arena's MACD series, as a model might quote it before answering (NOFX #570).
MACD = "[10.802, 21.816, 42.242, 63.667, 77.015, 109.171, 116.049, 116.525, 113.337, 116.567]"

CORPUS: tuple[Case, ...] = (
    # -- the whole answer is unusable -------------------------------------------------------
    Case("empty body", "", failure=LLMFailureReason.EMPTY_OUTPUT),
    Case("whitespace only", "  \n\t \r\n  ", failure=LLMFailureReason.EMPTY_OUTPUT),
    Case("refusal", "I can't help with that.", failure=LLMFailureReason.REFUSAL),
    Case(
        "refusal with cannot",
        "I cannot provide financial advice or trading decisions.",
        failure=LLMFailureReason.REFUSAL,
    ),
    Case(
        "refusal as an AI",
        "As an AI language model, I am unable to trade on your behalf.",
        failure=LLMFailureReason.REFUSAL,
    ),
    Case(
        # Models usually write the typographic apostrophe (U+2019).
        "refusal with a typographic apostrophe",
        "I can\u2019t help with that.",
        failure=LLMFailureReason.REFUSAL,
    ),
    Case(
        "prose without any JSON",
        "The market looks bullish; BTC should go higher from here.",
        failure=LLMFailureReason.NO_JSON_FOUND,
    ),
    Case(
        "truncated JSON mid item",
        '{"BTC": {"signal": "buy_to_enter", "quantity": 0.1, "leve',
        failure=LLMFailureReason.INVALID_JSON,
    ),
    Case(
        "truncated JSON after a complete hold item",
        '{"BTC": {"signal": "hold"}, "ETH": {"signal": "sell_to_en',
        failure=LLMFailureReason.INVALID_JSON,
    ),
    Case(
        # The output hit max_tokens after the first item: the rest of the answer (which may
        # close positions) is lost, so nothing of it may be acted on.
        "truncated JSON after a complete entry carrying its coin",
        TRUNCATED_ITEM + ',\n "ETH": {"signal": "close", "justif',
        failure=LLMFailureReason.INVALID_JSON,
    ),
    Case(
        "truncated fenced JSON without the closing fence",
        '```json\n{"BTC": {"signal": "hold", "justification": "wai',
        failure=LLMFailureReason.INVALID_JSON,
    ),
    Case(
        "array instead of object",
        dump([{"coin": "BTC", **btc_entry()}, {"coin": "ETH", **ETH_HOLD}]),
        failure=LLMFailureReason.NOT_AN_OBJECT,
    ),
    Case(
        "MACD array alone",
        f"MACD indicators: {MACD}",
        failure=LLMFailureReason.NOT_AN_OBJECT,
    ),
    Case("empty object", "{}", failure=LLMFailureReason.NO_DECISIONS),
    Case("item not an object", '{"BTC": "buy"}', failure=LLMFailureReason.NO_DECISIONS),
    Case(
        "items without a signal key",
        dump({"BTC": {"action": "buy", "size": 0.1}}),
        failure=LLMFailureReason.NO_DECISIONS,
    ),
    Case(
        "decisions wrapper holding a list",
        dump({"decisions": [{"coin": "BTC", "signal": "hold"}]}),
        failure=LLMFailureReason.NO_DECISIONS,
    ),
    Case(
        "a bare JSON number",
        "42",
        failure=LLMFailureReason.NO_JSON_FOUND,
    ),
    Case(
        "1 MB answer",
        dump({"BTC": {"signal": "hold"}}) + " " * 1_000_000,
        failure=LLMFailureReason.OUTPUT_TOO_LARGE,
    ),
    Case(
        "1 MB of reasoning before the answer",
        "x" * 1_000_000 + dump({"BTC": {"signal": "hold"}}),
        failure=LLMFailureReason.OUTPUT_TOO_LARGE,
    ),
    Case(
        "unclosed think swallows the only answer",
        "<think>Let me weigh it. I will answer " + dump({"BTC": btc_entry()}),
        failure=LLMFailureReason.NO_JSON_FOUND,
    ),
    Case(
        "full-width braces and colons",
        '\uff5b"BTC"\uff1a\uff5b"signal"\uff1a"hold"\uff5d\uff5d',
        failure=LLMFailureReason.NO_JSON_FOUND,
    ),
    Case(
        "full-width colon and comma inside ASCII braces",
        '{"BTC"\uff1a{"signal"\uff1a"hold"\uff0c"justification"\uff1a"wait"}}',
        failure=LLMFailureReason.INVALID_JSON,
    ),
    Case(
        "deeply nested junk beyond the recursion limit",
        '{"BTC": {"signal": "hold", "junk": ' + "[" * 5000 + "]" * 5000 + "}}",
        failure=LLMFailureReason.INVALID_JSON,
    ),
    Case("empty fenced block", "```json\n```", failure=LLMFailureReason.NO_JSON_FOUND),
    Case(
        "fenced block with single quotes (Python dict)",
        "```json\n{'BTC': {'signal': 'hold'}}\n```",
        failure=LLMFailureReason.INVALID_JSON,
    ),
    Case(
        "only an unknown coin",
        dump({"PEPE": btc_entry()}),
        failure=LLMFailureReason.ALL_ITEMS_INVALID,
    ),
    Case(
        "only an invented action",
        dump({"BTC": btc_entry(signal="update_stop_loss")}),
        failure=LLMFailureReason.ALL_ITEMS_INVALID,
    ),
    Case(
        "entry with every number null",
        dump(
            {
                "BTC": btc_entry(
                    quantity=None,
                    leverage=None,
                    profit_target=None,
                    stop_loss=None,
                    confidence=None,
                    risk_usd=None,
                )
            }
        ),
        failure=LLMFailureReason.ALL_ITEMS_INVALID,
    ),
    # -- one item is refused, its valid neighbour survives ------------------------------------
    bad_btc("unknown signal", ItemError.UNKNOWN_SIGNAL, "signal", signal="update_stop_loss"),
    bad_btc("signal long", ItemError.UNKNOWN_SIGNAL, "signal", signal="long"),
    bad_btc("signal not a string", ItemError.WRONG_TYPE, "signal", signal=1),
    bad_btc("signal missing", ItemError.MISSING_FIELD, "signal", signal=...),
    bad_btc("quantity as a string", ItemError.WRONG_TYPE, "quantity", quantity="0.5"),
    bad_btc("quantity as the string null", ItemError.WRONG_TYPE, "quantity", quantity="null"),
    bad_btc("leverage as 10x", ItemError.WRONG_TYPE, "leverage", leverage="10x"),
    bad_btc("profit target as 111k", ItemError.WRONG_TYPE, "profit_target", profit_target="111k"),
    bad_btc("confidence NaN", ItemError.NON_FINITE, "confidence", confidence=float("nan")),
    bad_btc("stop loss Infinity", ItemError.NON_FINITE, "stop_loss", stop_loss=float("inf")),
    bad_btc(
        "profit target -Infinity",
        ItemError.NON_FINITE,
        "profit_target",
        profit_target=float("-inf"),
    ),
    bad_btc("quantity true", ItemError.WRONG_TYPE, "quantity", quantity=True),
    bad_btc("leverage false", ItemError.WRONG_TYPE, "leverage", leverage=False),
    bad_btc("leverage 0", ItemError.OUT_OF_RANGE, "leverage", leverage=0),
    bad_btc("leverage 2.5", ItemError.WRONG_TYPE, "leverage", leverage=2.5),
    bad_btc("leverage -3", ItemError.OUT_OF_RANGE, "leverage", leverage=-3),
    bad_btc("negative quantity", ItemError.OUT_OF_RANGE, "quantity", quantity=-0.1),
    bad_btc("zero quantity", ItemError.OUT_OF_RANGE, "quantity", quantity=0),
    bad_btc("confidence 1.5", ItemError.OUT_OF_RANGE, "confidence", confidence=1.5),
    bad_btc("confidence -0.1", ItemError.OUT_OF_RANGE, "confidence", confidence=-0.1),
    bad_btc("confidence as percent", ItemError.OUT_OF_RANGE, "confidence", confidence=72),
    bad_btc("missing stop loss", ItemError.MISSING_FIELD, "stop_loss", stop_loss=...),
    bad_btc("stop loss null", ItemError.MISSING_FIELD, "stop_loss", stop_loss=None),
    bad_btc("stop loss zero", ItemError.OUT_OF_RANGE, "stop_loss", stop_loss=0),
    bad_btc("negative risk", ItemError.OUT_OF_RANGE, "risk_usd", risk_usd=-5),
    bad_btc(
        "missing invalidation condition",
        ItemError.MISSING_FIELD,
        "invalidation_condition",
        invalidation_condition=...,
    ),
    bad_btc(
        "invalidation condition not text",
        ItemError.WRONG_TYPE,
        "invalidation_condition",
        invalidation_condition=42,
    ),
    bad_btc("coin field mismatches its key", ItemError.COIN_MISMATCH, "coin", coin="ETH"),
    Case(
        "unknown coin beside a valid one",
        dump({"PEPE": btc_entry(), "BTC": btc_entry()}),
        valid=(("BTC", BUY),),
        rejected=(("PEPE", ItemError.UNKNOWN_COIN, "coin"),),
    ),
    Case(
        "item as a string beside a valid one",
        dump({"BTC": "buy", "ETH": eth_short()}),
        valid=(("ETH", SELL),),
        rejected=(("BTC", ItemError.NOT_AN_OBJECT, ""),),
    ),
    Case(
        "item null and item list beside a valid one",
        dump({"BTC": None, "SOL": ["hold"], "ETH": eth_short()}),
        valid=(("ETH", SELL),),
        rejected=(("BTC", ItemError.NOT_AN_OBJECT, ""), ("SOL", ItemError.NOT_AN_OBJECT, "")),
    ),
    Case(
        "valid entry beside an invalid entry",
        dump({"BTC": btc_entry(leverage=0), "ETH": eth_short()}),
        valid=(("ETH", SELL),),
        rejected=(("BTC", ItemError.OUT_OF_RANGE, "leverage"),),
    ),
    Case(
        "several defects, two survivors",
        dump(
            {
                "BTC": btc_entry(quantity="0.1"),
                "ETH": eth_short(),
                "SOL": {"signal": "buy"},
                "DOGE": ETH_HOLD,
                "XRP": btc_entry(confidence=float("nan")),
            }
        ),
        valid=(("ETH", SELL), ("DOGE", HOLD)),
        rejected=(
            ("BTC", ItemError.WRONG_TYPE, "quantity"),
            ("SOL", ItemError.UNKNOWN_SIGNAL, "signal"),
            ("XRP", ItemError.NON_FINITE, "confidence"),
        ),
    ),
    # -- tolerated: where the JSON sits and how keys are spelled -------------------------------
    Case(
        "lower case coin keys",
        dump({"btc": btc_entry(), "eth": ETH_HOLD}),
        valid=(("BTC", BUY), ("ETH", HOLD)),
    ),
    Case(
        "mixed case coin key with spaces and mixed case signal",
        dump({" Sol ": {"signal": " HOLD "}, "Eth": eth_short(signal="SELL_TO_ENTER")}),
        valid=(("SOL", HOLD), ("ETH", SELL)),
    ),
    Case(
        "closed think section holding a draft",
        "<think>First idea: "
        + dump({"BTC": btc_entry()})
        + " but no, too risky.</think>\n"
        + dump({"BTC": {"signal": "hold", "justification": "too risky"}}),
        valid=(("BTC", HOLD),),
    ),
    Case(
        "unclosed think section after the answer",
        dump({"BTC": {"signal": "hold"}})
        + "\n<think>on second thought "
        + dump({"BTC": btc_entry()}),
        valid=(("BTC", HOLD),),
    ),
    Case(
        "json fence with prose around it",
        "Here is my decision:\n```json\n"
        + dump({"BTC": btc_entry(), "ETH": ETH_HOLD})
        + "\n```\nI will reassess in three minutes.",
        valid=(("BTC", BUY), ("ETH", HOLD)),
    ),
    Case(
        "empty fence then the JSON unfenced",
        "```json\n```\n" + dump({"ETH": eth_short()}),
        valid=(("ETH", SELL),),
    ),
    Case(
        "two JSON objects, the last wins",
        dump({"BTC": btc_entry()}) + "\nOn reflection:\n" + dump({"BTC": {"signal": "close"}}),
        valid=(("BTC", CLOSE),),
    ),
    Case(
        "two fenced blocks, the last wins",
        "Draft:\n```json\n"
        + dump({"ETH": eth_short()})
        + "\n```\nFinal:\n```json\n"
        + dump({"ETH": ETH_HOLD})
        + "\n```",
        valid=(("ETH", HOLD),),
    ),
    Case(
        "MACD array in the reasoning, then the object (NOFX #570)",
        f"BTC MACD indicators: {MACD}, RSI {MACD}. Decision:\n" + dump({"BTC": btc_entry()}),
        valid=(("BTC", BUY),),
    ),
    Case(
        "MACD array in a fenced block, then the object unfenced",
        f"The MACD series:\n```\n{MACD}\n```\nMy decision:\n" + dump({"BTC": btc_entry()}),
        valid=(("BTC", BUY),),
    ),
    Case(
        "braces in prose before the object",
        "Set {stop} below support and {target} at resistance.\n" + dump({"ETH": ETH_HOLD}),
        valid=(("ETH", HOLD),),
    ),
    Case(
        "decisions wrapper",
        dump({"decisions": {"BTC": btc_entry(), "ETH": ETH_HOLD}, "summary": "one entry"}),
        valid=(("BTC", BUY), ("ETH", HOLD)),
    ),
    Case(
        "nof1 single object with coin and signal",
        dump({"coin": "btc", **btc_entry()}),
        valid=(("BTC", BUY),),
    ),
    Case(
        "hold with junk extras",
        dump(
            {
                "BTC": {
                    "signal": "hold",
                    "quantity": "all of it",
                    "leverage": 2.5,
                    "confidence": 7,
                    "stop_loss": float("nan"),
                    "profit_target": True,
                    "risk_usd": [1, 2],
                    "invalidation_condition": {"if": "price falls"},
                    "justification": 42,
                    "mood": {"deep": [{"deeper": None}]},
                }
            }
        ),
        valid=(("BTC", HOLD),),
    ),
    Case(
        "close with junk extras",
        dump({"ETH": {"signal": "close", "quantity": "100%", "leverage": "max", "extra": []}}),
        valid=(("ETH", CLOSE),),
    ),
    Case(
        "duplicate coin keys, the last wins",
        '{"BTC": {"signal": "hold"}, "BTC": {"signal": "close"}}',
        valid=(("BTC", CLOSE),),
    ),
    Case(
        "duplicate field inside an item, the last wins",
        '{"BTC": {"signal": "buy_to_enter", "signal": "hold"}}',
        valid=(("BTC", HOLD),),
    ),
    Case(
        "nested junk within the recursion limit",
        '{"BTC": {"signal": "hold", "junk": ' + "[" * 50 + "{}" + "]" * 50 + "}}",
        valid=(("BTC", HOLD),),
    ),
    Case(
        "full-width punctuation inside strings",
        dump({"BTC": btc_entry(justification="突破区间，目标１１２０００！")}),
        valid=(("BTC", BUY),),
    ),
    Case(
        "whole-number float leverage",
        dump({"BTC": btc_entry(leverage=10.0)}),
        valid=(("BTC", BUY),),
    ),
    Case(
        "confidence at the bounds",
        dump({"BTC": btc_entry(confidence=0), "ETH": eth_short(confidence=1)}),
        valid=(("BTC", BUY), ("ETH", SELL)),
    ),
)


ENTRY_SIGNALS = (Signal.BUY_TO_ENTER, Signal.SELL_TO_ENTER)


def assert_item_contract(item: DecisionItem, coins: tuple[str, ...] = COINS) -> None:
    """What every item ``parse_decision`` keeps honours, whatever the model wrote."""
    assert isinstance(item, DecisionItem)
    assert item.coin in coins
    assert isinstance(item.signal, Signal)
    if item.confidence is not None:
        assert Decimal(0) <= item.confidence <= Decimal(1)
    for value in (item.quantity, item.profit_target, item.stop_loss, item.risk_usd):
        assert value is None or (isinstance(value, Decimal) and value.is_finite())
    if item.signal in ENTRY_SIGNALS:
        assert item.quantity is not None
        assert item.quantity > 0
        assert type(item.leverage) is int
        assert item.leverage >= 1
        assert item.profit_target is not None
        assert item.profit_target > 0
        assert item.stop_loss is not None
        assert item.stop_loss > 0
        assert item.confidence is not None
        assert item.risk_usd is not None
        assert item.risk_usd >= 0
        assert isinstance(item.invalidation_condition, str)
        assert item.invalidation_condition
