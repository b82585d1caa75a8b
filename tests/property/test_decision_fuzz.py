"""Fuzzing the decision parser: whatever the model writes, ``parse_decision`` either refuses
the answer with a typed ``DecisionParseError`` or returns items that honour the contract."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from domain.decision import DecisionItem, DecisionParseError, ParsedDecision, parse_decision
from domain.values import LLMFailureReason, Signal
from tests.unit.domain.decision_corpus import COINS, assert_item_contract

FIELDS = (
    "signal",
    "coin",
    "quantity",
    "leverage",
    "profit_target",
    "stop_loss",
    "invalidation_condition",
    "confidence",
    "risk_usd",
    "justification",
    "decisions",
)
SIGNALS = tuple(s.value for s in Signal)


def read(raw: str, coins: tuple[str, ...] = COINS) -> ParsedDecision | None:
    """The parse, or None for a typed refusal; any other exception fails the test."""
    try:
        parsed = parse_decision(raw, coins)
    except DecisionParseError as exc:
        reason = exc.reason
    else:
        assert isinstance(parsed, ParsedDecision)
        return parsed
    assert isinstance(reason, LLMFailureReason)
    return None


def check_contract(parsed: ParsedDecision, coins: tuple[str, ...] = COINS) -> None:
    # An answer with no valid item is a refusal, never an empty decision.
    assert parsed.items
    for item in parsed.items:
        assert_item_contract(item, coins)


# -- arbitrary text -------------------------------------------------------------------------------


@given(st.text())
def test_arbitrary_text_is_read_or_refused(raw: str) -> None:
    parsed = read(raw)
    if parsed is not None:
        check_contract(parsed)


JSONISH_CHARS = st.sampled_from(
    list('{}[]":,.-+eE0123456789 \n\t')
    + ["true", "false", "null", "NaN", "Infinity"]
    + [f'"{f}"' for f in FIELDS]
    + [f'"{c}"' for c in COINS]
    + [f'"{s}"' for s in SIGNALS]
    + ["<think>", "</think>", "```json\n", "```", "\uff5b", "\uff1a"]
)


@given(st.lists(JSONISH_CHARS, max_size=80).map("".join))
def test_json_flavoured_noise_is_read_or_refused(raw: str) -> None:
    parsed = read(raw)
    if parsed is not None:
        check_contract(parsed)


# -- JSON-like structures -------------------------------------------------------------------------

KEYS = st.one_of(
    st.sampled_from(FIELDS),
    st.sampled_from(COINS),
    st.sampled_from(COINS).map(str.lower),
    st.text(max_size=8),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(SIGNALS),
    st.sampled_from(["0.5", "null", "NaN", "10x", "", " hold "]),
    st.text(max_size=12),
)
JSONISH = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(KEYS, children, max_size=6),
    ),
    max_leaves=30,
)

NUMBERISH = st.one_of(
    st.decimals(
        allow_nan=False, allow_infinity=False, min_value=-(10**6), max_value=10**6, places=4
    ).map(float),
    st.integers(min_value=-5, max_value=200),
    st.sampled_from([0, 1, 0.5, 1.5, -0.1, 2.5, 1e-9, float("nan"), float("inf")]),
    st.booleans(),
    st.none(),
    st.sampled_from(["1", "0.5", "null"]),
)


@st.composite
def items(draw: st.DrawFn) -> dict[str, Any]:
    """An item that is often nearly valid: each field present or not, sane or not."""
    item: dict[str, Any] = {}
    if draw(st.integers(0, 9)) > 0:
        item["signal"] = draw(
            st.one_of(
                st.sampled_from(SIGNALS),
                st.sampled_from(SIGNALS).map(str.upper),
                st.text(max_size=6),
                st.integers(),
            )
        )
    for name in ("quantity", "leverage", "profit_target", "stop_loss", "confidence", "risk_usd"):
        if draw(st.integers(0, 9)) > 0:
            item[name] = draw(NUMBERISH)
    for name in ("invalidation_condition", "justification"):
        if draw(st.integers(0, 9)) > 0:
            item[name] = draw(st.one_of(st.text(max_size=10), st.integers(), st.none()))
    if draw(st.booleans()):
        item["coin"] = draw(st.one_of(st.sampled_from(COINS), st.text(max_size=4)))
    if draw(st.integers(0, 4)) == 0:
        item[draw(st.text(max_size=5))] = draw(JSONISH)
    return item


DECISION_MAPS = st.one_of(
    st.dictionaries(st.one_of(st.sampled_from(COINS), KEYS), items(), max_size=6),
    items(),  # nof1's single-object shape (when it has a coin)
    st.dictionaries(st.sampled_from(COINS), items(), max_size=6).map(lambda m: {"decisions": m}),
)


@st.composite
def wrapped(draw: st.DrawFn, body: st.SearchStrategy[Any]) -> str:
    """JSON text as a model would write it: bare, fenced, after reasoning, or truncated."""
    text = json.dumps(draw(body), indent=draw(st.sampled_from([None, 1, 2])))
    prose = draw(st.text(alphabet=st.characters(exclude_characters="{}[]`<>"), max_size=20))
    style = draw(st.integers(0, 5))
    if style == 1:
        text = f"{prose}\n```json\n{text}\n```\n{prose}"
    elif style == 2:
        text = f"<think>{prose} [1.5, 2.5]</think>{prose} {text}"
    elif style == 3:
        text = text[: draw(st.integers(0, max(0, len(text) - 1)))]
    elif style == 4:
        text = f"MACD: [10.8, 21.8, 42.2] {prose} {text}"
    elif style == 5:
        text = f"{text}\n{json.dumps(draw(body))}"
    return text


@given(wrapped(JSONISH))
def test_json_like_structures_are_read_or_refused(raw: str) -> None:
    parsed = read(raw)
    if parsed is not None:
        check_contract(parsed)


@given(wrapped(DECISION_MAPS))
def test_near_miss_decisions_are_read_or_refused(raw: str) -> None:
    parsed = read(raw)
    if parsed is not None:
        check_contract(parsed)


@given(wrapped(DECISION_MAPS))
@example('{"BTC": {"": null}, "ETH": {"signal": "hold"}, "eth": {"": null}}')
def test_each_coin_gets_at_most_one_verdict(raw: str) -> None:
    """One decision per coin: a coin is never both kept and refused, nor kept twice (keys
    differing only in case or spaces name the same coin)."""
    parsed = read(raw)
    if parsed is None:
        return
    kept = [item.coin for item in parsed.items]
    assert len(kept) == len(set(kept)), kept
    refused = {r.coin for r in parsed.rejections}
    assert refused.isdisjoint(kept), (kept, refused)


@given(st.dictionaries(st.sampled_from(COINS), items(), min_size=1, max_size=6))
@example(
    {
        "BTC": {
            "signal": "buy_to_enter",
            "quantity": 0.0001,
            "leverage": 1,
            "profit_target": 0.0001,
            "stop_loss": 0.0001,
            "confidence": 0.0,
            "risk_usd": 0.0,
            "invalidation_condition": " ",
        }
    }
)
def test_each_item_is_judged_on_its_own(decisions: dict[str, Any]) -> None:
    """An item's verdict does not depend on its neighbours: parsing the whole map keeps
    exactly the items that parse on their own."""
    alone: dict[str, DecisionItem] = {}
    for coin, body in decisions.items():
        parsed = read(json.dumps({coin: body, "_": {"signal": "x"}}))
        if parsed is not None:
            (item,) = parsed.items
            alone[coin] = item
    together = read(json.dumps(decisions))
    if together is None:
        assert alone == {}
    else:
        check_contract(together)
        assert {item.coin: item for item in together.items} == alone


@given(
    st.dictionaries(
        st.sampled_from(COINS),
        st.one_of(
            items().map(lambda i: {**i, "signal": "update_stop_loss"}),
            items().map(lambda i: {**i, "signal": "buy_to_enter", "leverage": 0}),
            items().map(lambda i: {**i, "signal": "sell_to_enter", "quantity": "0.5"}),
            items().map(lambda i: {**i, "signal": "buy_to_enter", "confidence": 1.5}),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_an_answer_without_a_valid_item_never_yields_items(decisions: dict[str, Any]) -> None:
    with pytest.raises(DecisionParseError) as info:
        parse_decision(json.dumps(decisions), COINS)
    assert info.value.reason is LLMFailureReason.ALL_ITEMS_INVALID


@given(
    st.dictionaries(
        st.text(max_size=6).filter(lambda k: k.strip().upper() not in COINS),
        items(),
        min_size=1,
        max_size=4,
    )
)
def test_unknown_coins_never_yield_items(decisions: dict[str, Any]) -> None:
    assert read(json.dumps({"decisions": decisions})) is None
