"""Every malformed or adversarial answer of the corpus, through a whole decision cycle.

Each ends in a typed ``LLMFailed`` (the whole answer) or ``RiskRejected`` (one item) with
no order for it; a valid neighbour is still acted on.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from domain.values import Signal
from infrastructure.prompts.schema import DecisionSchema
from tests.support.fakes import REPO, Harness, trader_settings
from tests.unit.domain.decision_corpus import COINS, CORPUS, Case

PRICES = {"BTC": "100000", "ETH": "4000", "SOL": "200", "BNB": "1100", "DOGE": "0.2", "XRP": "2.4"}
SCHEMA = DecisionSchema(Path(REPO) / "prompts" / "decision" / "decision.schema.json")


@pytest.mark.parametrize("case", CORPUS, ids=[c.name for c in CORPUS])
def test_each_answer_ends_typed_with_no_order_for_what_was_refused(case: Case) -> None:
    async def scenario() -> Harness:
        settings = trader_settings(coins=COINS)
        h = await Harness.create(prices=PRICES, settings=settings, answers=[case.raw])
        h.cycle.schema = SCHEMA
        await h.run_cycle()
        return h

    h = asyncio.run(scenario())
    events = h.events()[1:]
    kinds = [type(e).__name__ for e in events]
    if case.failure is not None:
        assert kinds == ["DecisionRequested", "LLMFailed"], kinds
        assert events[-1].reason == case.failure.value
        assert events[-1].raw_text == case.raw[: len(events[-1].raw_text)]
        assert h.trader().positions == {}
        return
    assert kinds[:2] == ["DecisionRequested", "LLMResponded"], kinds
    responded = events[1]
    assert [(d["coin"], Signal(d["signal"])) for d in responded.decisions] == list(case.valid)
    schema_refusals = [
        e.coin for e in events if type(e).__name__ == "RiskRejected" and e.rule == "decision_schema"
    ]
    assert schema_refusals == [coin for coin, _, _ in case.rejected]
    placed = {e.coin for e in events if type(e).__name__ == "OrderPlaced"}
    refused = {coin for coin, _, _ in case.rejected}
    assert placed.isdisjoint(refused)  # nothing refused is ever ordered
    entries = {
        coin for coin, signal in case.valid if signal in (Signal.BUY_TO_ENTER, Signal.SELL_TO_ENTER)
    }
    risk_refused = {
        e.coin for e in events if type(e).__name__ == "RiskRejected" and e.rule != "decision_schema"
    }
    # Each valid entry is acted on, unless the risk desk refused it with its own rule.
    assert entries - risk_refused <= placed


def test_a_tightened_schema_binds_without_a_code_change(tmp_path: Path) -> None:
    """Operators may narrow the published contract (here: leverage at most 3)."""
    import json

    document = json.loads(SCHEMA.path.read_text())
    document["$defs"]["item"]["properties"]["leverage"]["maximum"] = 3
    tight = tmp_path / "decision.schema.json"
    tight.write_text(json.dumps(document))
    from tests.support.fakes import entry

    async def scenario() -> Harness:
        h = await Harness.create(
            prices=PRICES,
            settings=trader_settings(coins=COINS),
            answers=[
                {
                    "BTC": entry("BTC", leverage=5),
                    "ETH": entry("ETH", price=4000.0, quantity=0.5, leverage=3),
                }
            ],
        )
        h.cycle.schema = DecisionSchema(tight)
        await h.run_cycle()
        return h

    h = asyncio.run(scenario())
    refused = [e for e in h.events() if type(e).__name__ == "RiskRejected"]
    assert [(e.coin, e.rule) for e in refused] == [("BTC", "decision_schema")]
    assert "leverage" in refused[0].detail
    assert set(h.trader().positions) == {"ETH"}
