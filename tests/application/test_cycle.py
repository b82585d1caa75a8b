"""The decision cycle's failure semantics (ARCHITECTURE.md §8), once per event store backend."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from application.cycle import DecisionCycle, single_model_gateway
from application.ports import ExchangeError, ModelError, OrderRequest, OrderResult
from application.reconcile import reconcile_trader
from domain.trader import PausePolicy
from domain.values import OrderSide
from infrastructure.simulator.paper import PaperExchange
from tests.support.fakes import Harness, entry, trader_settings


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def events_after_registration(h: Harness) -> list[str]:
    return h.event_names()[1:]


def test_missing_market_data_skips_the_cycle_without_asking(store_env: dict[str, str]) -> None:
    async def scenario() -> None:
        h = await Harness.create(store_env, answers=[{"BTC": entry("BTC")}])
        h.market.missing.add("ETH")
        outcome = await h.run_cycle()
        assert outcome.status == "skipped"
        assert events_after_registration(h) == ["CycleSkipped"]
        skipped = h.events()[-1]
        assert skipped.reason == "missing_data"
        assert "ETH" in skipped.detail
        assert h.model.requests == []  # no prompt was sent
        assert h.trader().positions == {}

    run(scenario())


def test_stale_market_data_skips_the_cycle(store_env: dict[str, str]) -> None:
    async def scenario() -> None:
        h = await Harness.create(store_env, answers=[{"BTC": entry("BTC")}])
        h.market.lag_s = 120  # older than the 90 s bound
        outcome = await h.run_cycle()
        assert outcome.status == "skipped"
        assert h.events()[-1].reason == "stale_data"
        assert h.model.requests == []

    run(scenario())


def test_a_model_timeout_is_a_typed_failure_and_changes_nothing(
    store_env: dict[str, str],
) -> None:
    class Slow:
        name = "slow"

        async def decide(self, request: Any) -> Any:
            await asyncio.sleep(10)

    async def scenario() -> None:
        h = await Harness.create(store_env, settings=trader_settings(decision_timeout_s=0.05))
        h.cycle.gateway = single_model_gateway(Slow(), deadline_s=0.05)
        outcome = await h.run_cycle()
        assert outcome.status == "failed"
        assert events_after_registration(h) == ["DecisionRequested", "LLMFailed"]
        failed = h.events()[-1]
        assert failed.reason == "timeout"
        assert failed.cycle_id == h.events()[-2].cycle_id
        assert h.trader().positions == {}

    run(scenario())


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (ModelError("rate_limited", "429 Too Many Requests"), "rate_limited"),
        (ModelError("server_error", "503 from the provider"), "server_error"),
    ],
)
def test_model_errors_are_recorded_with_their_reason(
    store_env: dict[str, str], error: ModelError, reason: str
) -> None:
    async def scenario() -> None:
        h = await Harness.create(store_env, answers=[error])
        await h.run_cycle()
        assert h.events()[-1].reason == reason
        assert h.trader().positions == {}

    run(scenario())


def test_an_unreadable_answer_is_never_a_hold(store_env: dict[str, str]) -> None:
    async def scenario() -> None:
        h = await Harness.create(store_env, answers=['{"BTC": {"signal": "buy_to_enter", '])
        outcome = await h.run_cycle()
        assert outcome.status == "failed"
        assert events_after_registration(h) == ["DecisionRequested", "LLMFailed"]
        assert h.events()[-1].reason == "invalid_json"
        assert h.events()[-1].raw_text.startswith('{"BTC"')

    run(scenario())


def test_a_valid_item_survives_an_invalid_neighbour(store_env: dict[str, str]) -> None:
    async def scenario() -> None:
        answer = {"BTC": entry("BTC", quantity=0.02), "ETH": {"signal": "buy_to_enter"}}
        h = await Harness.create(store_env, answers=[answer])
        await h.run_cycle()
        names = events_after_registration(h)
        assert names == [
            "DecisionRequested",
            "LLMResponded",
            "RiskRejected",
            "OrderPlaced",
            "OrderFilled",
        ]
        rejected = h.events()[3]
        assert rejected.coin == "ETH"
        assert rejected.rule == "decision_schema"
        assert set(h.trader().positions) == {"BTC"}

    run(scenario())


def test_a_risk_refusal_sends_no_order(store_env: dict[str, str]) -> None:
    async def scenario() -> None:
        too_levered = entry("BTC", leverage=50)
        h = await Harness.create(store_env, answers=[{"BTC": too_levered}])
        await h.run_cycle()
        assert events_after_registration(h) == [
            "DecisionRequested",
            "LLMResponded",
            "RiskRejected",
        ]
        assert h.events()[-1].rule == "leverage_cap"
        assert await h.exchange.positions("alpha") == {}

    run(scenario())


def test_a_venue_rejection_is_recorded_and_nothing_is_held(store_env: dict[str, str]) -> None:
    async def scenario() -> None:
        h = await Harness.create(store_env, answers=[{"BTC": entry("BTC", quantity=0.02)}])
        h.exchange.slippage = Decimal("0.02")  # fills 2 % away: beyond the 50 bps limit
        await h.run_cycle()
        assert events_after_registration(h)[-1] == "OrderRejected"
        assert h.events()[-1].reason == "no_match"
        assert h.trader().positions == {}
        assert h.trader().pending == {}

    run(scenario())


def test_an_event_store_failure_before_sending_means_no_order(tmp_path: Path) -> None:
    async def scenario() -> None:
        h = await Harness.create(answers=[{"BTC": entry("BTC", quantity=0.02)}])
        original = h.app.save_trader
        calls = {"n": 0}

        def failing_save(trader: Any) -> Any:
            calls["n"] += 1
            if calls["n"] == 2:  # the save that carries OrderPlaced
                raise OSError("disk full")
            return original(trader)

        h.app.save_trader = failing_save  # type: ignore[method-assign]
        with pytest.raises(OSError, match="disk full"):
            await h.run_cycle()
        assert await h.exchange.positions("alpha") == {}
        # Reloaded from the store: nothing was recorded after DecisionRequested.
        assert h.trader().pending == {}
        assert h.event_names()[-1] == "DecisionRequested"

    run(scenario())


def test_an_ambiguous_send_is_looked_up_before_any_resubmission() -> None:
    class LostResponse(PaperExchange):
        """Accepts the order, then loses the answer once (a timeout after acceptance)."""

        lost = 0

        async def place_order(self, order: OrderRequest) -> OrderResult:
            result = await super().place_order(order)
            if self.lost == 0:
                self.lost += 1
                raise ExchangeError("read timeout")
            return result

    async def scenario() -> None:
        h = await Harness.create(answers=[{"BTC": entry("BTC", quantity=0.02)}])
        venue = LostResponse("sim", state_path=None, slippage_bps=Decimal(2))
        await venue.ensure_account("alpha", Decimal(10000))
        venue.mark(h.market.prices, h.clock.now())
        h.cycle.exchange = venue
        h.cycle.desk.exchange = venue
        await h.run_cycle()
        assert events_after_registration(h)[-1] == "OrderFilled"
        positions = await venue.positions("alpha")
        assert positions["BTC"].qty == Decimal("0.02")  # exactly one fill, not two

    run(scenario())


def test_a_stop_is_enforced_and_closes_with_its_reason(store_env: dict[str, str]) -> None:
    from application.protection import enforce_exit_plans

    async def scenario() -> None:
        h = await Harness.create(store_env, answers=[{"BTC": entry("BTC", quantity=0.02)}])
        await h.run_cycle()
        stop = h.trader().positions["BTC"].context.exit_plan.stop_loss  # type: ignore[union-attr]
        h.clock.advance(60)
        h.set_price("BTC", stop - 1)
        fills = await enforce_exit_plans(h.app, h.desk, h.settings, h.market.prices, h.clock.now())
        assert fills == 1
        closed = [e for e in h.events() if type(e).__name__ == "PositionClosed"]
        assert len(closed) == 1
        assert closed[0].reason == "stop"
        assert closed[0].net_pnl < 0
        assert closed[0].net_pnl == closed[0].gross_pnl - closed[0].entry_fees - closed[0].exit_fees
        assert h.trader().positions == {}
        assert await h.exchange.positions("alpha") == {}

    run(scenario())


def test_repeated_failures_pause_the_trader_and_alert(store_env: dict[str, str]) -> None:
    async def scenario() -> None:
        policy = PausePolicy(window=4, min_cycles=4, max_failure_pct=Decimal(10))
        answers: list[Any] = [{"BTC": {"signal": "hold"}}] * 3 + ["not json"]
        h = await Harness.create(store_env, answers=answers, pause_policy=policy)
        for _ in range(4):
            await h.run_cycle()
        assert h.trader().paused
        assert "failure_rate" in h.trader().pause_reason
        assert h.alerts.sent[-1][1] == "paused"
        outcome = await h.run_cycle({"BTC": entry("BTC")})
        assert outcome.status == "paused"
        assert h.trader().positions == {}

    run(scenario())


def test_restart_settles_an_order_sent_but_not_recorded(tmp_path: Path) -> None:
    """Killed between sending an order and recording its fill: on restart the fill is found by
    its cloid and recorded once, and the venue holds exactly one order."""

    async def scenario() -> None:
        state = tmp_path / "sim.json"
        h = await Harness.create(answers=[{"BTC": entry("BTC", quantity=0.02)}], state_path=state)
        original = h.cycle.desk.record

        def crash_before_recording(trader: Any, result: Any) -> int:
            raise SystemExit("killed")

        h.cycle.desk.record = crash_before_recording  # type: ignore[method-assign]
        with pytest.raises(SystemExit):
            await h.run_cycle()
        h.cycle.desk.record = original  # type: ignore[method-assign]
        trader = h.trader()
        assert len(trader.pending) == 1  # placed, sent, never recorded
        cloid = next(iter(trader.pending))

        restarted = PaperExchange("sim", state_path=state, slippage_bps=Decimal(2))
        findings = await reconcile_trader(
            h.app, h.desk, restarted, h.alerts, "alpha", h.clock.now()
        )
        assert any("filled on the venue" in f for f in findings)
        trader = h.trader()
        assert trader.pending == {}
        assert trader.positions["BTC"].qty == Decimal("0.02")
        assert (await restarted.positions("alpha"))["BTC"].qty == Decimal("0.02")
        assert (await restarted.order_status("alpha", cloid)).filled_size == Decimal("0.02")
        assert [type(e).__name__ for e in h.events()].count("OrderFilled") == 1
        assert not trader.paused

    run(scenario())


def test_restart_marks_an_order_the_venue_never_saw(tmp_path: Path) -> None:
    async def scenario() -> None:
        h = await Harness.create(answers=[{"BTC": entry("BTC", quantity=0.02)}])

        async def never_sent(trader: Any, cloids: list[str]) -> int:
            raise SystemExit("killed before sending")

        h.cycle.desk.submit = never_sent  # type: ignore[method-assign]
        with pytest.raises(SystemExit):
            await h.run_cycle()
        findings = await reconcile_trader(
            h.app, h.desk, h.exchange, h.alerts, "alpha", h.clock.now()
        )
        assert any("not on the venue" in f for f in findings)
        assert h.events()[-1].reason == "not_on_venue"
        assert h.trader().pending == {}
        assert h.trader().positions == {}

    run(scenario())


def test_drift_between_books_and_venue_pauses_the_trader() -> None:
    async def scenario() -> None:
        h = await Harness.create(answers=[{"BTC": entry("BTC", quantity=0.02)}])
        await h.run_cycle()
        # Someone closes the position on the venue behind the engine's back.
        await h.exchange.place_order(
            OrderRequest(
                "alpha",
                "0xmanual",
                "BTC",
                side=OrderSide.SELL,
                size=Decimal("0.02"),
                limit_price=Decimal(1),
                reduce_only=True,
                leverage=5,
            )
        )
        findings = await reconcile_trader(
            h.app, h.desk, h.exchange, h.alerts, "alpha", h.clock.now()
        )
        assert any(f.startswith("drift") for f in findings)
        assert h.trader().paused
        assert h.alerts.sent[-1][1] == "drift"

    run(scenario())


def test_one_failing_trader_does_not_stop_the_others(tmp_path: Path) -> None:
    from application.manager import Arena, TraderRuntime
    from infrastructure.prompts.renderer import JinjaPromptRenderer
    from tests.support.fakes import REPO, ScriptedModel

    class Exploding:
        name = "exploding"

        async def decide(self, request: Any) -> Any:
            raise RuntimeError("a bug in one trader's model adapter")

    async def scenario() -> None:
        h = await Harness.create()
        good = trader_settings("good")
        bad = trader_settings("bad")
        arena = Arena(
            app=h.app,
            runtimes=[
                TraderRuntime(bad, h.market, h.exchange, Exploding()),
                TraderRuntime(good, h.market, h.exchange, ScriptedModel([{"BTC": entry("BTC")}])),
            ],
            renderer=JinjaPromptRenderer(root=REPO / "prompts", schema_version="v1.0.0"),
            clock=h.clock,
            engine=h.engine,
            alerts=h.alerts,
        )
        await arena.start()
        h.clock.advance(1)
        await arena.tick()
        await arena.drain()
        assert h.app.get_trader("good").positions  # the good trader traded
        assert ("bad", "cycle_error") in [(t, k) for t, k, _ in h.alerts.sent]
        bad_events = [type(e).__name__ for e in h.app.trader_events("bad")]
        assert "OrderPlaced" not in bad_events

    run(scenario())


def test_cycles_are_deterministic_for_the_same_inputs() -> None:
    """Same snapshot, same answer, same times: the same events (replay-verify's premise)."""

    async def once() -> list[dict[str, Any]]:
        h = await Harness.create(answers=[{"BTC": entry("BTC", quantity=0.02)}])
        await h.run_cycle()
        return [{k: v for k, v in vars(e).items() if k != "originator_id"} for e in h.events()]

    assert run(once()) == run(once())


def test_the_prompt_states_the_limits_the_validator_uses() -> None:
    async def scenario() -> None:
        settings = trader_settings()
        h = await Harness.create(answers=[{"BTC": {"signal": "hold"}}], settings=settings)
        await h.run_cycle()
        prompt = h.model.requests[0].prompt
        limits = settings.limits
        assert f"at most {limits.max_positions} open positions" in prompt.system
        assert f"{limits.major_coin_leverage}x on BTC and ETH" in prompt.system
        assert f"reward/risk at least {limits.min_risk_reward}" in prompt.system
        assert prompt.version == "v1.0.0"
        requested = h.events()[1]
        assert requested.prompt_digest == prompt.digest
        assert requested.user_prompt == prompt.user

    run(scenario())


__all__ = ["DecisionCycle"]


def test_a_pause_written_by_another_process_is_seen_at_the_next_cycle(tmp_path: Path) -> None:
    """The engine keeps traders in memory between cycles; a write by anyone else (the
    ``nof0 traders pause`` command) must still be seen before the next decision."""
    from application.trading import TradingApp
    from infrastructure.eventstore import sqlite_env

    async def scenario() -> None:
        env = sqlite_env(tmp_path / "events.sqlite3")
        h = await Harness.create(env, answers=[{"BTC": {"signal": "hold"}}] * 3)
        await h.run_cycle()
        assert h.trader().paused is False
        operator = TradingApp(env=env)  # another process on the same store
        trader = operator.get_trader("alpha")
        trader.pause("operator", "checking something", h.clock.now())
        operator.save_trader(trader)
        outcome = await h.run_cycle()
        assert outcome.status == "paused"
        assert h.event_names()[-1] == "Paused"

    run(scenario())
