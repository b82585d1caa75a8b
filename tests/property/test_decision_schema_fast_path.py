"""The decision schema's compiled check against ``jsonschema``: an answer the fast check
passes is valid for the reference validator too, and the verdict the cycle gets
(``DecisionSchema.__call__``) is always the reference validator's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fastjsonschema
from hypothesis import example, given
from hypothesis import strategies as st

from infrastructure.prompts.schema import DecisionSchema

REPO = Path(__file__).resolve().parents[2]
SCHEMA = DecisionSchema(REPO / "prompts" / "decision" / "decision.schema.json")

SIGNALS = ["buy_to_enter", "sell_to_enter", "hold", "close", "Buy", ""]
FIELDS = [
    "coin",
    "quantity",
    "leverage",
    "profit_target",
    "stop_loss",
    "invalidation_condition",
    "confidence",
    "risk_usd",
    "justification",
    "extra",
]
VALUES: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-3, max_value=200),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-5, max_value=1e6),
    st.sampled_from([0, 0.0, 1.0, 2.5, 1e-9, -0.0]),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
ITEMS = st.one_of(
    st.fixed_dictionaries(
        {"signal": st.sampled_from(SIGNALS)},
        optional=dict.fromkeys(FIELDS, VALUES),
    ),
    st.dictionaries(st.sampled_from([*FIELDS, "signal"]), VALUES, max_size=4),
    VALUES,
)
ANSWERS = st.dictionaries(
    st.one_of(st.sampled_from(["BTC", "ETH", "kPEPE", "SOL1"]), st.text(max_size=22)),
    ITEMS,
    max_size=4,
)

ENTRY = {
    "signal": "buy_to_enter",
    "quantity": 0.1,
    "leverage": 5,
    "profit_target": 110.0,
    "stop_loss": 90.0,
    "invalidation_condition": "close below 88",
    "confidence": 0.6,
    "risk_usd": 20,
}


@given(ANSWERS)
@example({"BTC": ENTRY})
@example({"BTC": ENTRY | {"leverage": 5.0}})
@example({"BTC": ENTRY | {"quantity": 0}})
@example({"BTC": ENTRY | {"leverage": True}})
@example({"BTC": {"signal": "hold", "confidence": False}})
@example({"B-C": {"signal": "hold"}})
@example({})
def test_the_fast_check_never_passes_what_jsonschema_refuses(answer: dict[str, Any]) -> None:
    reference = SCHEMA.problems(answer)
    verdict = SCHEMA(answer)
    assert verdict == reference
    try:
        SCHEMA._fast(answer)
    except fastjsonschema.JsonSchemaException:
        pass  # a refusal is always allowed: the reference validator decides
    else:
        assert reference == {}, (answer, reference)


def test_a_valid_entry_passes_and_a_bad_one_is_named() -> None:
    assert SCHEMA({"BTC": ENTRY}) == {}
    problems = SCHEMA({"BTC": ENTRY | {"stop_loss": -1}, "ETH": {"signal": "hold"}})
    assert set(problems) == {"BTC"}
    assert problems["BTC"].startswith("stop_loss:")
