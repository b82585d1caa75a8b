"""The decision contract (ARCHITECTURE.md §4): ``parse_decision`` over a corpus of bad answers,
exact values of what it keeps, and the typed reason of what it refuses."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest

from domain.decision import (
    MAX_OUTPUT_CHARS,
    DecisionItem,
    DecisionParseError,
    ItemError,
    ItemRejection,
    ParsedDecision,
    parse_decision,
)
from domain.values import LLMFailureReason, Signal
from tests.unit.domain.decision_corpus import (
    COINS,
    CORPUS,
    ETH_HOLD,
    Case,
    assert_item_contract,
    btc_entry,
    dump,
    eth_short,
)

# -- the corpus ------------------------------------------------------------------------------


def test_the_corpus_is_large_and_its_names_are_unique() -> None:
    assert len(CORPUS) >= 45
    assert len({case.name for case in CORPUS}) == len(CORPUS)
    failures = [case for case in CORPUS if case.failure is not None]
    partial = [case for case in CORPUS if case.rejected]
    assert len(failures) >= 20
    assert len(partial) >= 20
    for case in CORPUS:
        # A case states either a whole-answer failure or what survives, never both.
        assert (case.failure is None) == bool(case.valid)


@pytest.mark.parametrize("case", CORPUS, ids=[case.name for case in CORPUS])
def test_corpus_case_has_its_exact_typed_outcome(case: Case) -> None:
    if case.failure is not None:
        with pytest.raises(DecisionParseError) as info:
            parse_decision(case.raw, COINS)
        assert info.value.reason is case.failure
        assert str(info.value).startswith(f"{case.failure.value}: ")
        return
    parsed = parse_decision(case.raw, COINS)
    assert [(item.coin, item.signal) for item in parsed.items] == list(case.valid)
    assert [(r.coin, r.error, r.field) for r in parsed.rejections] == list(case.rejected)
    # A refused item is never turned into anything, in particular not into a hold.
    refused = {r.coin for r in parsed.rejections}
    assert refused.isdisjoint(item.coin for item in parsed.items)
    for item in parsed.items:
        assert_item_contract(item)
    for rejection in parsed.rejections:
        assert rejection.detail


def outcome(raw: str) -> ParsedDecision | tuple[LLMFailureReason, str, str]:
    try:
        return parse_decision(raw, COINS)
    except DecisionParseError as exc:
        return exc.reason, exc.detail, exc.cot_trace


@pytest.mark.parametrize("case", CORPUS, ids=[case.name for case in CORPUS])
def test_corpus_outcomes_are_deterministic(case: Case) -> None:
    assert outcome(case.raw) == outcome(case.raw)


# -- exact values of what is kept -----------------------------------------------------------


def test_an_entry_is_read_into_exact_decimals() -> None:
    parsed = parse_decision(dump({"BTC": btc_entry(), "ETH": eth_short()}), COINS)
    assert parsed.items == (
        DecisionItem(
            coin="BTC",
            signal=Signal.BUY_TO_ENTER,
            quantity=Decimal("0.1"),
            leverage=10,
            profit_target=Decimal("112000.0"),
            stop_loss=Decimal("96000.0"),
            confidence=Decimal("0.72"),
            risk_usd=Decimal(400),
            invalidation_condition="4h close below 95000",
            justification="breakout above the range",
        ),
        DecisionItem(
            coin="ETH",
            signal=Signal.SELL_TO_ENTER,
            quantity=Decimal(2),
            leverage=5,
            profit_target=Decimal(3600),
            stop_loss=Decimal(4100),
            confidence=Decimal("0.65"),
            risk_usd=Decimal(200),
            invalidation_condition="1h close above 4100",
            justification="lower highs",
        ),
    )
    assert parsed.rejections == ()
    assert type(parsed.items[0].leverage) is int


def test_numbers_keep_the_digits_the_model_wrote() -> None:
    raw = (
        '{"BTC": {"signal": "buy_to_enter", "quantity": 0.30000000000000004, "leverage": 1E1,'
        ' "profit_target": 1.12e5, "stop_loss": 96000.50, "confidence": 7e-1,'
        ' "risk_usd": 0, "invalidation_condition": "  below 95k  "}}'
    )
    (item,) = parse_decision(raw, COINS).items
    assert item.quantity == Decimal("0.30000000000000004")
    assert str(item.quantity) == "0.30000000000000004"
    assert item.leverage == 10
    assert type(item.leverage) is int
    assert item.profit_target == Decimal(112000)
    assert item.stop_loss == Decimal("96000.5")
    assert item.confidence == Decimal("0.7")
    assert item.risk_usd == Decimal(0)
    assert item.invalidation_condition == "below 95k"
    assert item.justification == ""


def test_a_hold_with_junk_extras_keeps_none_of_the_junk() -> None:
    case = next(c for c in CORPUS if c.name == "hold with junk extras")
    (item,) = parse_decision(case.raw, COINS).items
    assert item == DecisionItem(coin="BTC", signal=Signal.HOLD)


def test_a_close_keeps_the_valid_values_it_states_and_drops_the_rest() -> None:
    raw = dump(
        {
            "SOL": {
                "signal": "close",
                "confidence": 0.8,
                "quantity": "all",
                "leverage": 3,
                "justification": "  target reached ",
            }
        }
    )
    (item,) = parse_decision(raw, COINS).items
    assert item == DecisionItem(
        coin="SOL",
        signal=Signal.CLOSE,
        confidence=Decimal("0.8"),
        leverage=3,
        justification="target reached",
    )


def test_the_published_nof1_output_is_read(shared_dir: Path) -> None:
    path = shared_dir / "contracts/nof1-api/prompts/nof1-real-user-prompt-snippet-and-output.md"
    raw = path.read_text(encoding="utf-8").split("# Model Output", 1)[1]
    parsed = parse_decision(raw, COINS)
    assert parsed.rejections == ()
    assert parsed.items == (
        DecisionItem(
            coin="BTC",
            signal=Signal.BUY_TO_ENTER,
            quantity=Decimal("0.62"),
            leverage=20,
            profit_target=Decimal("111000.0"),
            stop_loss=Decimal("106361.0"),
            confidence=Decimal("0.72"),
            risk_usd=Decimal("997.0"),
            invalidation_condition="4H RSI breaks back below 40, signaling momentum failure",
            justification=json.loads(raw)["justification"],
        ),
    )


def test_the_universe_is_matched_without_regard_to_case() -> None:
    parsed = parse_decision(dump({"BTC": btc_entry()}), ["btc", "eth"])
    assert [item.coin for item in parsed.items] == ["BTC"]


def test_a_default_coin_outside_the_traders_universe_is_refused() -> None:
    parsed = parse_decision(dump({"BTC": btc_entry(), "ETH": eth_short()}), ["BTC"])
    assert [item.coin for item in parsed.items] == ["BTC"]
    assert [(r.coin, r.error, r.field) for r in parsed.rejections] == [
        ("ETH", ItemError.UNKNOWN_COIN, "coin")
    ]


def test_a_rejection_says_which_field_and_what_was_wrong() -> None:
    parsed = parse_decision(dump({"BTC": btc_entry(leverage=0), "ETH": ETH_HOLD}), COINS)
    (rejection,) = parsed.rejections
    assert isinstance(rejection, ItemRejection)
    assert (rejection.coin, rejection.error, rejection.field) == (
        "BTC",
        ItemError.OUT_OF_RANGE,
        "leverage",
    )
    assert ">= 1" in rejection.detail
    assert "0" in rejection.detail


def test_all_items_invalid_names_every_coin_and_error() -> None:
    raw = dump({"BTC": btc_entry(quantity="1"), "PEPE": ETH_HOLD})
    with pytest.raises(DecisionParseError) as info:
        parse_decision(raw, COINS)
    assert info.value.reason is LLMFailureReason.ALL_ITEMS_INVALID
    assert "BTC: wrong_type" in info.value.detail
    assert "PEPE: unknown_coin" in info.value.detail


def test_record_round_trip_keeps_every_field() -> None:
    (item,) = parse_decision(dump({"BTC": btc_entry()}), COINS).items
    record = item.to_record()
    assert record["signal"] == "buy_to_enter"
    assert record["quantity"] == "0.1"  # JSON-native inside events: exact strings
    assert DecisionItem.from_record(record) == item
    hold = DecisionItem(coin="ETH", signal=Signal.HOLD)
    assert DecisionItem.from_record(hold.to_record()) == hold


# -- the reasoning trace ----------------------------------------------------------------------


def test_thinking_and_prose_are_kept_as_the_trace() -> None:
    raw = "<think>weighing RSI</think>Reasoning:  momentum\nis up.\n" + dump({"ETH": ETH_HOLD})
    parsed = parse_decision(raw, COINS)
    assert parsed.cot_trace == "weighing RSI\n\nReasoning: momentum is up."
    assert parsed.items == (DecisionItem(coin="ETH", signal=Signal.HOLD, justification="no edge"),)


def test_an_unclosed_think_section_is_trace_not_decision() -> None:
    raw = dump({"ETH": ETH_HOLD}) + "<THINKING>maybe " + dump({"ETH": eth_short()})
    parsed = parse_decision(raw, COINS)
    assert [(i.coin, i.signal) for i in parsed.items] == [("ETH", Signal.HOLD)]
    assert parsed.cot_trace.startswith("maybe {")


def test_a_refusal_keeps_its_text_for_the_journal() -> None:
    with pytest.raises(DecisionParseError) as info:
        parse_decision("  I can't help with that.  ", COINS)
    assert info.value.reason is LLMFailureReason.REFUSAL
    assert info.value.cot_trace == "I can't help with that."


def test_a_failed_parse_keeps_the_reasoning() -> None:
    with pytest.raises(DecisionParseError) as info:
        parse_decision("<think>hmm</think> MACD [1, 2, 3]", COINS)
    assert info.value.reason is LLMFailureReason.NOT_AN_OBJECT
    assert info.value.cot_trace == "hmm\n\nMACD"


# -- size bound ---------------------------------------------------------------------------------


def test_an_answer_of_exactly_the_maximum_size_is_read() -> None:
    body = dump({"ETH": ETH_HOLD})
    raw = body + " " * (MAX_OUTPUT_CHARS - len(body))
    assert len(raw) == MAX_OUTPUT_CHARS
    assert [i.coin for i in parse_decision(raw, COINS).items] == ["ETH"]
    with pytest.raises(DecisionParseError) as info:
        parse_decision(raw + " ", COINS)
    assert info.value.reason is LLMFailureReason.OUTPUT_TOO_LARGE


# -- suspected gaps -----------------------------------------------------------------------------


def test_case_variant_keys_for_one_coin_give_at_most_one_decision() -> None:
    """``{"btc": hold, "BTC": close}`` names BTC twice; the per-coin map allows one decision
    per coin, so the answer must not yield two contradictory BTC items (which would plan two
    orders for one position)."""
    result = outcome('{"btc": {"signal": "hold"}, "BTC": {"signal": "close"}}')
    if isinstance(result, ParsedDecision):
        coins = [item.coin for item in result.items]
        assert len(coins) == len(set(coins)), coins
    else:
        assert result[0] is LLMFailureReason.ALL_ITEMS_INVALID


def test_an_absurdly_long_integer_is_a_typed_outcome() -> None:
    """Python refuses int literals above 4300 digits with ValueError; the parser must turn
    that into its own typed outcome rather than let it escape."""
    result = outcome('{"BTC": {"signal": "hold", "quantity": ' + "9" * 5000 + "}}")
    if isinstance(result, ParsedDecision):
        assert result == ParsedDecision(items=(DecisionItem(coin="BTC", signal=Signal.HOLD),))
    else:
        assert result[0] is LLMFailureReason.INVALID_JSON


def test_a_cloid_like_hex_in_prose_is_not_json() -> None:
    raw = "Order 0x1f2e placed {pending}. " + dump({"BTC": {"signal": "hold"}})
    parsed = parse_decision(raw, COINS)
    assert parsed.items == (DecisionItem(coin="BTC", signal=Signal.HOLD),)
    assert re.search(r"0x1f2e", parsed.cot_trace)
