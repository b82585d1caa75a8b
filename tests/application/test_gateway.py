"""Routing, budget, cache and deadlines, observed through real decision cycles."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

from application.budget import BudgetGuard, BudgetPolicy, MemoryBudgetStore, Price
from application.gateway import DecisionGateway, ModelSpec
from application.ports import DecisionReply, DecisionRequest, ModelError
from application.routing import ModelChoice, ModelRouter, RouterPolicy
from infrastructure.llm.cache import SQLiteDecisionCache
from tests.support.fakes import Harness, ScriptedModel, entry, trader_settings

HOLD = {"BTC": {"signal": "hold", "confidence": 0.5}}


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def gateway(
    models: dict[str, ScriptedModel | Any],
    *,
    tiers: dict[str, str] | None = None,
    policy: RouterPolicy | None = None,
    budget: BudgetGuard | None = None,
    cache: Any = None,
    deadline_s: float = 5.0,
) -> DecisionGateway:
    tiers = tiers or {}
    chain = [ModelChoice(name, tiers.get(name, "medium"), i + 1) for i, name in enumerate(models)]
    return DecisionGateway(
        models=models,
        specs={
            n: ModelSpec(n, tiers.get(n, "medium"), cacheable=True, sampling="t=0.7")
            for n in models
        },
        router=ModelRouter(
            chain, policy or RouterPolicy(failure_threshold=2, success_window=3, probe_every=2)
        ),
        budget=budget,
        cache=cache,
        deadline_s=deadline_s,
    )


async def harness(gw: DecisionGateway, env: dict[str, str] | None = None) -> Harness:
    """A harness whose trader is registered with the gateway's primary (as in bootstrap)."""
    h = await Harness.create(env, settings=trader_settings(model=gw.router.primary))
    h.cycle.gateway = gw
    return h


def names(h: Harness, since: int = 0) -> list[str]:
    return h.event_names()[since:]


def test_a_failing_primary_falls_back_within_the_cycle_and_then_switches() -> None:
    async def scenario() -> None:
        primary = ScriptedModel([ModelError("server_error", "503")] * 10, name="primary")
        second = ScriptedModel([HOLD] * 10, name="second")
        h = await harness(gateway({"primary": primary, "second": second}))
        outcome = await h.run_cycle()
        assert outcome.status == "decided"
        assert names(h, 1) == ["DecisionRequested", "ModelAttemptFailed", "LLMResponded"]
        attempt, responded = h.events()[2], h.events()[3]
        assert (attempt.model, attempt.reason) == ("primary", "server_error")
        assert responded.model == "second"
        await h.run_cycle()  # the second consecutive failure switches the current model
        switched = [e for e in h.events() if type(e).__name__ == "ModelSwitched"]
        assert len(switched) == 1
        assert (switched[0].from_model, switched[0].to_model) == ("primary", "second")
        assert "2 consecutive failures" in switched[0].reason
        assert h.trader().model == "second"
        assert ("alpha", "model_switched") in [(t, k) for t, k, _ in h.alerts.sent]
        asked_before = len(primary.requests)
        await h.run_cycle()  # on the fallback: the primary is not asked first
        assert len(primary.requests) == asked_before
        assert h.events()[-1].model == "second"

    run(scenario())


def test_probes_bring_the_primary_back_once_it_succeeds_again() -> None:
    async def scenario() -> None:
        answers: list[Any] = [ModelError("rate_limited", "429")] * 2 + [HOLD] * 20
        primary = ScriptedModel(answers, name="primary")
        second = ScriptedModel([HOLD] * 40, name="second")
        h = await harness(gateway({"primary": primary, "second": second}))
        for _ in range(2):
            await h.run_cycle()
        assert h.trader().model == "second"
        for _ in range(10):
            await h.run_cycle()
        switches = [
            (e.from_model, e.to_model, e.reason)
            for e in h.events()
            if type(e).__name__ == "ModelSwitched"
        ]
        assert [s[:2] for s in switches] == [("primary", "second"), ("second", "primary")]
        assert "recovered" in switches[1][2]
        assert h.trader().model == "primary"
        # Every probe was a real, recorded decision by the primary.
        responded_by_primary = [
            e for e in h.events() if type(e).__name__ == "LLMResponded" and e.model == "primary"
        ]
        assert len(responded_by_primary) >= 3

    run(scenario())


def test_an_unreadable_answer_moves_on_to_the_next_model() -> None:
    async def scenario() -> None:
        primary = ScriptedModel(["I think BTC looks good"], name="primary")
        second = ScriptedModel([{"BTC": entry("BTC", quantity=0.02)}], name="second")
        h = await harness(gateway({"primary": primary, "second": second}))
        await h.run_cycle()
        attempt = h.events()[2]
        assert type(attempt).__name__ == "ModelAttemptFailed"
        assert attempt.reason == "no_json_found"
        assert attempt.raw_text == "I think BTC looks good"
        assert h.events()[3].model == "second"
        assert h.trader().positions  # the fallback's decision was acted on

    run(scenario())


def test_when_every_model_fails_the_cycle_fails_with_the_last_reason() -> None:
    async def scenario() -> None:
        primary = ScriptedModel([ModelError("timeout", "60s")], name="primary")
        second = ScriptedModel(['{"BTC": '], name="second")
        h = await harness(gateway({"primary": primary, "second": second}))
        outcome = await h.run_cycle()
        assert outcome.status == "failed"
        assert names(h, 1) == ["DecisionRequested", "ModelAttemptFailed", "LLMFailed"]
        assert (h.events()[-1].model, h.events()[-1].reason) == ("second", "invalid_json")
        assert h.trader().positions == {}

    run(scenario())


def test_cost_is_priced_and_the_budget_steers_then_stops() -> None:
    async def scenario() -> None:
        store = MemoryBudgetStore()
        budget = BudgetGuard(
            BudgetPolicy(
                daily_token_limit=300,
                prices={
                    "gpt": Price(Decimal(15), Decimal(60)),
                    "mini": Price(Decimal("0.15"), Decimal("0.6")),
                },
                alert_threshold_pct=Decimal(50),
                hard_limit_pct=Decimal(150),
            ),
            store,
            today=lambda: "2025-10-17",
        )
        gpt = ScriptedModel([HOLD] * 10, name="gpt")
        mini = ScriptedModel([HOLD] * 10, name="mini")
        gw = gateway(
            {"gpt": gpt, "mini": mini}, tiers={"gpt": "high", "mini": "low"}, budget=budget
        )
        h = await harness(gw)
        await h.run_cycle()  # 150 tokens on gpt: (100 × 15 + 50 × 60) / 1e6
        responded = h.events()[-1]
        assert responded.model == "gpt"
        assert responded.cost_usd == Decimal("0.0045")
        assert ("alpha", "budget") in [(t, k) for t, k, _ in h.alerts.sent]  # 50 % reached
        await h.run_cycle()  # 300 tokens: over the daily limit from now on
        await h.run_cycle()  # cheapest tier only
        switched = [e for e in h.events() if type(e).__name__ == "ModelSwitched"]
        assert [(e.from_model, e.to_model) for e in switched] == [("gpt", "mini")]
        assert "budget" in switched[0].reason
        assert h.events()[-1].model == "mini"
        assert h.events()[-1].cost_usd == Decimal("0.000045")
        await h.run_cycle()  # 450 tokens = 150 % of the limit: exhausted
        skipped = h.events()[-1]
        assert type(skipped).__name__ == "CycleSkipped"
        assert skipped.reason == "budget"
        asked = len(gpt.requests) + len(mini.requests)
        outcome = await h.run_cycle({"BTC": entry("BTC")})
        assert outcome.status == "skipped"
        assert len(gpt.requests) + len(mini.requests) == asked  # no model was asked
        assert h.trader().positions == {}  # and no order was sent
        usage = budget.usage()
        assert usage.tokens == 450
        assert usage.cost_usd == Decimal("0.0045") * 2 + Decimal("0.000045")

    run(scenario())


def test_the_prompt_digest_cache_answers_a_replayed_prompt_for_free(tmp_path: Path) -> None:
    """Run the same cycles twice (a backtest re-run): the second run costs nothing, while
    each new cycle within a run (new time, new data) is never a cache hit."""

    class Counting:
        name = "gpt"

        def __init__(self) -> None:
            self.calls = 0

        async def decide(self, request: DecisionRequest) -> DecisionReply:
            self.calls += 1
            return DecisionReply(
                text='{"BTC": {"signal": "hold"}}',
                model="gpt-x",
                tokens_in=1000,
                tokens_out=100,
                latency_ms=800,
            )

    async def one_run(model: Counting) -> Harness:
        cache = SQLiteDecisionCache(tmp_path / "cache.sqlite3", ttl_s=3600, max_entries=100)
        budget = BudgetGuard(
            BudgetPolicy(10**6, {"gpt": Price(Decimal(1), Decimal(1))}),
            MemoryBudgetStore(),
            today=lambda: "d",
        )
        h = await harness(gateway({"gpt": model}, cache=cache, budget=budget))
        for _ in range(3):
            await h.run_cycle()
        cache.close()
        return h

    first_model, second_model = Counting(), Counting()
    first = run(one_run(first_model))
    assert first_model.calls == 3
    responses = [e for e in first.events() if type(e).__name__ == "LLMResponded"]
    assert [(e.cached, e.cost_usd) for e in responses] == [(False, Decimal("0.0011"))] * 3
    second = run(one_run(second_model))
    assert second_model.calls == 0
    replayed = [e for e in second.events() if type(e).__name__ == "LLMResponded"]
    assert [(e.cached, e.cost_usd, e.latency_ms) for e in replayed] == [(True, 0, 0)] * 3
    assert [e.raw_text for e in replayed] == [e.raw_text for e in responses]


def test_the_decision_deadline_bounds_all_attempts() -> None:
    class Slow:
        def __init__(self, name: str) -> None:
            self.name = name

        async def decide(self, request: DecisionRequest) -> DecisionReply:
            await asyncio.sleep(5)
            raise AssertionError("unreachable")

    async def scenario() -> None:
        gw = gateway({"a": Slow("a"), "b": Slow("b")}, deadline_s=0.2)
        h = await harness(gw)
        started = asyncio.get_running_loop().time()
        outcome = await h.run_cycle()
        elapsed = asyncio.get_running_loop().time() - started
        assert outcome.status == "failed"
        assert elapsed < 1.5
        failed = h.events()[-1]
        assert failed.reason == "timeout"

    run(scenario())
