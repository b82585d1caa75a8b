"""The decision cycle's failure semantics (ARCHITECTURE.md §8), once per event store backend."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError

from application.cycle import DecisionCycle, single_model_gateway
from application.orders import OrderDesk
from application.ports import ModelError
from application.venue_sync import VenueSync
from domain.trader import PausePolicy
from infrastructure.hyperliquid.transport import TimedOut
from tests.support.fakes import (
    Harness,
    entry,
    manual_order,
    sim_exchange,
    trader_settings,
    venue_fills,
    venue_open_orders,
    venue_positions,
)


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
        assert names[:5] == [
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
        assert venue_positions(h.exchange) == {}
        assert venue_fills(h.exchange) == []

    run(scenario())


def test_a_venue_rejection_is_recorded_and_nothing_is_held(store_env: dict[str, str]) -> None:
    async def scenario() -> None:
        h = await Harness.create(store_env, answers=[{"BTC": entry("BTC", quantity=0.02)}])
        # The venue trades 2 % above the prompt's price: beyond the 50 bps limit.
        h.venue_prices["BTC"] = Decimal(102000)
        await h.run_cycle()
        assert events_after_registration(h)[-1] == "OrderRejected"
        rejected = h.events()[-1]
        assert rejected.reason == "no_immediate_match"
        assert "could not immediately match" in rejected.detail
        assert h.trader().positions == {}
        assert h.trader().pending == {}
        assert venue_positions(h.exchange) == {}

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
        assert venue_positions(h.exchange) == {}
        assert venue_fills(h.exchange) == []
        # Reloaded from the store: nothing was recorded after DecisionRequested.
        assert h.trader().pending == {}
        assert h.event_names()[-1] == "DecisionRequested"

    run(scenario())


def test_an_ambiguous_send_is_looked_up_before_any_resubmission() -> None:
    """The venue accepts the order and the answer is lost (a timeout after acceptance): the
    desk looks the cloid up and finds the fill instead of sending a second order."""

    async def scenario() -> None:
        h = await Harness.create(answers=[{"BTC": entry("BTC", quantity=0.02)}])
        transport = h.exchange.transport
        original = transport.post
        lost: list[str] = []

        def lose_first_order_answer(path: str, payload: Any) -> Any:
            answer = original(path, payload)
            if path == "/exchange" and payload["action"]["type"] == "order" and not lost:
                lost.append(payload["action"]["orders"][0]["c"])
                raise TimedOut("read timeout after the venue accepted the order")
            return answer

        transport.post = lose_first_order_answer  # type: ignore[method-assign]
        await h.run_cycle()
        assert lost, "the fault was injected"
        fills = venue_fills(h.exchange)
        assert [f["cloid"] for f in fills] == lost  # exactly one order reached the venue
        assert venue_positions(h.exchange) == {"BTC": Decimal("0.02")}
        assert h.event_names().count("OrderFilled") == 1
        assert h.trader().positions["BTC"].qty == Decimal("0.02")

    run(scenario())


def test_a_stop_rests_on_the_venue_and_its_fill_closes_with_its_reason(
    store_env: dict[str, str],
) -> None:
    async def scenario() -> None:
        h = await Harness.create(store_env, answers=[{"BTC": entry("BTC", quantity=0.02)}])
        await h.run_cycle()
        trader = h.trader()
        stop = trader.positions["BTC"].context.exit_plan.stop_loss  # type: ignore[union-attr]
        triggers = {o["orderType"]: o for o in venue_open_orders(h.exchange)}
        assert set(triggers) == {"Stop Market", "Take Profit Market"}
        assert Decimal(triggers["Stop Market"]["triggerPx"]) == stop
        assert all(
            o["reduceOnly"] and Decimal(o["sz"]) == Decimal("0.02") for o in triggers.values()
        )
        h.clock.advance(60)
        h.set_price("BTC", stop - 1)  # the venue's mark crosses the stop: it fires there
        await h.reconcile()
        closed = [e for e in h.events() if type(e).__name__ == "PositionClosed"]
        assert len(closed) == 1
        assert closed[0].reason == "stop"
        assert closed[0].net_pnl < 0
        assert closed[0].net_pnl == closed[0].gross_pnl - closed[0].entry_fees - closed[0].exit_fees
        assert h.trader().positions == {}
        assert venue_positions(h.exchange) == {}
        # The take-profit is canceled with the position: nothing is left on the book.
        assert venue_open_orders(h.exchange) == []
        assert h.trader().protections == {}

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


def restarted_sync(h: Harness, state: Path) -> tuple[VenueSync, Any]:
    """The engine after a restart: the same event store, the venue reopened from its files."""
    exchange = sim_exchange(h.clock, state_dir=state, fund=h.settings.allocation)
    desk = OrderDesk(h.app, exchange, h.clock, h.engine, h.alerts)
    sync = VenueSync(
        app=h.app,
        exchange=exchange,
        desk=desk,
        clock=h.clock,
        alerts=h.alerts,
        traders=[h.settings],
        engine=h.engine,
    )
    return sync, exchange


def test_restart_settles_an_order_sent_but_not_recorded(tmp_path: Path) -> None:
    """Killed between sending an order and recording its fill: on restart the fill is found by
    its cloid and recorded once, and the venue holds exactly one order."""

    async def scenario() -> None:
        state = tmp_path / "venue"
        h = await Harness.create(answers=[{"BTC": entry("BTC", quantity=0.02)}], state_path=state)

        async def killed(*args: Any, **kwargs: Any) -> Any:
            raise SystemExit("killed")

        h.cycle.sync.run = killed  # type: ignore[method-assign]
        with pytest.raises(SystemExit):
            await h.run_cycle()
        trader = h.trader()
        assert len(trader.pending) == 1  # placed, sent, never recorded
        cloid = next(iter(trader.pending))

        sync, exchange = restarted_sync(h, state)
        await exchange.start()
        await sync.register(h.clock.now())
        report = await sync.run(h.clock.now(), startup=True)
        assert report.fills == 1
        trader = h.trader()
        assert trader.pending == {}
        assert trader.positions["BTC"].qty == Decimal("0.02")
        assert venue_positions(exchange) == {"BTC": Decimal("0.02")}
        assert [f["cloid"] for f in venue_fills(exchange)] == [cloid]
        assert h.event_names().count("OrderFilled") == 1
        assert not trader.paused
        # ... and the new position got its stop and target.
        assert {g.kind.value for g in trader.protections.values()} == {"stop", "target"}

    run(scenario())


def test_restart_marks_an_order_the_venue_never_saw(tmp_path: Path) -> None:
    async def scenario() -> None:
        h = await Harness.create(answers=[{"BTC": entry("BTC", quantity=0.02)}])

        async def never_sent(*args: Any, **kwargs: Any) -> Any:
            raise SystemExit("killed before sending")

        h.cycle.desk.submit = never_sent  # type: ignore[method-assign]
        with pytest.raises(SystemExit):
            await h.run_cycle()
        report = await h.reconcile()
        assert report.settled == 1
        assert h.events()[-1].reason == "not_on_venue"
        assert h.trader().pending == {}
        assert h.trader().positions == {}
        assert venue_fills(h.exchange) == []

    run(scenario())


def test_a_manual_close_on_the_venue_is_recorded_as_external() -> None:
    async def scenario() -> None:
        h = await Harness.create(answers=[{"BTC": entry("BTC", quantity=0.02)}])
        await h.run_cycle()
        # Someone closes the position in the venue's UI.
        answer = manual_order(
            h.exchange, "BTC", buy=False, size="0.02", price="90000", reduce_only=True
        )
        assert "filled" in answer["response"]["data"]["statuses"][0]
        report = await h.reconcile()
        assert report.fills == 1
        closed = [e for e in h.events() if type(e).__name__ == "PositionClosed"]
        assert [c.reason for c in closed] == ["external"]
        manual = venue_fills(h.exchange)[0]  # newest first
        assert closed[0].exit_price == Decimal(manual["px"])
        assert closed[0].exit_fees == Decimal(manual["fee"])
        assert h.trader().positions == {}
        assert not h.trader().paused
        # Its stop and target are canceled: nothing orphaned on the book.
        assert venue_open_orders(h.exchange) == []

    run(scenario())


def test_drift_between_books_and_venue_pauses_the_trader() -> None:
    """A fill the venue's feed never reports: the books and the venue disagree on two passes
    in a row, so the trader is paused and an alert raised."""

    async def scenario() -> None:
        h = await Harness.create(answers=[{"BTC": entry("BTC", quantity=0.02)}])
        await h.run_cycle()
        transport = h.exchange.transport
        original = transport.post

        def feed_without_fills(path: str, payload: Any) -> Any:
            answer = original(path, payload)
            if path == "/info" and payload.get("type") == "userFillsByTime":
                return []
            return answer

        transport.post = feed_without_fills  # type: ignore[method-assign]
        manual_order(h.exchange, "BTC", buy=True, size="0.01", price="110000")
        first = await h.reconcile()
        assert first.drift == []  # one sighting may be a fill in flight
        assert not h.trader().paused
        second = await h.reconcile()
        assert second.drift == ["BTC: books 0.02 (alpha 0.02), venue 0.03"]
        assert h.trader().paused
        assert "drift" in h.trader().pause_reason
        kinds = [(trader, kind) for trader, kind, _ in h.alerts.sent]
        assert ("alpha", "drift") in kinds
        assert ("venue", "equity_drift") in kinds  # the account no longer adds up either

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
        h = await Harness.create(fund=Decimal(20000))  # both traders' allocations
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


class _StoreWatch:
    """Wraps the harness's model: the store's head each time the model is asked."""

    def __init__(self, h: Harness, *, in_process: bool) -> None:
        self.inner = h.model
        self.name = h.model.name
        self.app = h.app
        self.heads: list[int] = []
        if in_process:
            self.in_process = True

    async def decide(self, request: Any) -> Any:
        self.heads.append(self.app.recorder.max_notification_id() or 0)
        return await self.inner.decide(request)


def _watched(h: Harness, *, in_process: bool) -> _StoreWatch:
    watch = _StoreWatch(h, in_process=in_process)
    h.cycle.gateway = single_model_gateway(watch)  # type: ignore[arg-type]
    return watch


def test_a_question_to_a_model_outside_is_recorded_before_it_is_asked(
    store_env: dict[str, str],
) -> None:
    async def scenario() -> None:
        h = await Harness.create(store_env)
        watch = _watched(h, in_process=False)
        before = h.app.recorder.max_notification_id() or 0
        outcome = await h.run_cycle({"BTC": {"signal": "hold"}})
        assert outcome.status == "decided"
        assert watch.heads == [before + 1]  # DecisionRequested is stored while it answers
        assert events_after_registration(h)[-2:] == ["DecisionRequested", "LLMResponded"]

    run(scenario())


def test_an_in_process_models_question_is_stored_first_when_others_may_write(
    store_env: dict[str, str],
) -> None:
    async def scenario() -> None:
        h = await Harness.create(store_env)
        watch = _watched(h, in_process=True)
        before = h.app.recorder.max_notification_id() or 0

        async def pause_meanwhile(request: Any) -> Any:  # an operator, while it answers
            other = h.app.repository.get(h.trader().id)
            other.pause("operator", "lunch", h.clock.now())
            h.app.save(other)
            return await watch.inner.decide(request)

        watch.decide = pause_meanwhile  # type: ignore[method-assign]
        # The answer's save meets the operator's write (the arena alerts a cycle error) ...
        with pytest.raises(IntegrityError):
            await h.run_cycle({"BTC": {"signal": "hold"}})
        # ... but the question was stored before the model was asked, and the pause stands.
        assert (h.app.recorder.max_notification_id() or 0) == before + 2
        assert events_after_registration(h)[-2:] == ["DecisionRequested", "Paused"]

    run(scenario())


def test_an_in_process_models_question_is_stored_with_its_answer_in_a_sole_writers_store(
    store_env: dict[str, str],
) -> None:
    async def scenario() -> None:
        h = await Harness.create(store_env)
        h.app.sole_writer = True  # a backtest's own store
        watch = _watched(h, in_process=True)
        before = h.app.recorder.max_notification_id() or 0
        saves: list[int] = []
        save = h.app.save_trader
        h.app.save_trader = lambda t: saves.append(1) or save(t)  # type: ignore[method-assign]
        outcome = await h.run_cycle({"BTC": {"signal": "hold"}})
        assert outcome.status == "decided"
        assert watch.heads == [before]  # nothing written before it answered ...
        assert len(saves) == 1  # ... and the decision is one transaction
        assert events_after_registration(h)[-2:] == ["DecisionRequested", "LLMResponded"]
        # A failure of an in-process model is recorded with its question too.
        watch.inner.answers.append(ModelError("server_error", "503 from the provider"))
        failed = await h.run_cycle()
        assert failed.status == "failed"
        assert events_after_registration(h)[-2:] == ["DecisionRequested", "LLMFailed"]

    run(scenario())


def test_a_blindfolded_trader_shows_no_coin_or_date_and_trades_the_real_coin(
    store_env: dict[str, str],
) -> None:
    import dataclasses

    async def scenario() -> None:
        settings = dataclasses.replace(trader_settings(), blindfold=True)
        h = await Harness.create(store_env, settings=settings)
        alias = f"ASSET{settings.coins.index('BTC') + 1}"
        outcome = await h.run_cycle({alias: entry("BTC") | {"coin": alias}})
        assert outcome.status == "decided", outcome
        shown = h.model.requests[-1].prompt
        for coin in settings.coins:
            assert f'"{coin}"' not in shown.user
            assert f" {coin} " not in shown.user
        assert str(h.clock.now().year) not in shown.user
        assert outcome.orders  # the alias's order went out for BTC
        assert "BTC" in h.trader().positions

    run(scenario())
