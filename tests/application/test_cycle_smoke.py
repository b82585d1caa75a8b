from __future__ import annotations

import asyncio

from tests.support.fakes import Harness, entry


def test_a_cycle_opens_a_position_and_records_every_step(store_env: dict[str, str]) -> None:
    async def scenario() -> None:
        h = await Harness.create(store_env)
        outcome = await h.run_cycle({"BTC": entry("BTC", quantity=0.02)})
        assert outcome.status == "decided"
        assert h.event_names() == [
            "Registered",
            "DecisionRequested",
            "LLMResponded",
            "OrderPlaced",
            "OrderFilled",
            "ProtectionPlaced",
            "ProtectionConfirmed",
            "ProtectionPlaced",
            "ProtectionConfirmed",
        ]
        trader = h.trader()
        assert trader.positions["BTC"].qty > 0
        kinds = sorted(g.kind.value for g in trader.protections.values())
        assert kinds == ["stop", "target"]

    asyncio.run(scenario())
