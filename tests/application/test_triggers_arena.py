"""The arena with event-driven calls: a trader with triggers is called when a gate fires
(price moved k ATR, a fill or stop outside a decision, its max interval) and not on the
ticks between, which it records in aggregate (``DecisionTriggered``)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from decimal import Decimal
from typing import Any

from application.manager import Arena, TraderRuntime
from domain.trader import Trader
from domain.triggers import TriggerRules
from infrastructure.prompts.renderer import JinjaPromptRenderer
from projections.status import StatusProjector
from tests.support.fakes import REPO, Harness, ScriptedModel, entry, trader_settings


class HoldingModel(ScriptedModel):
    """The script first, then "hold" on BTC."""

    async def decide(self, request: Any) -> Any:
        if not self.answers:
            self.answers.append({"BTC": {"signal": "hold", "justification": "quiet"}})
        return await super().decide(request)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def arena_for(
    rules: TriggerRules | None, *, coins: tuple[str, ...] = ("BTC",), interval_s: float = 180.0
) -> tuple[Harness, Arena, ScriptedModel]:
    settings = trader_settings("trig", coins=coins, decision_interval_s=interval_s)
    settings = replace(settings, triggers=rules)
    h = await Harness.create(settings=settings)
    model = HoldingModel([])
    arena = Arena(
        app=h.app,
        runtimes=[TraderRuntime(settings, h.market, h.exchange, model)],
        renderer=JinjaPromptRenderer(root=REPO / "prompts", schema_version="v1.0.0"),
        clock=h.clock,
        engine=h.engine,
        alerts=h.alerts,
    )
    await arena.start()
    return h, arena, model


async def minute(h: Harness, arena: Arena, price: str | None = None) -> None:
    h.clock.advance(60)
    if price is not None:
        h.market.prices["BTC"] = Decimal(price)
    await arena.tick()
    await arena.drain()


def triggered(h: Harness) -> list[Any]:
    return [e for e in h.events() if isinstance(e, Trader.DecisionTriggered)]


ZIGZAG = ["100000", "100100"] * 4  # one-minute bars with a true range of 100


def test_a_price_move_of_k_atr_calls_the_model_and_quiet_minutes_do_not() -> None:
    rules = TriggerRules(max_interval_s=86400, atr_move=2.0, atr_period=3, bar_s=60)

    async def scenario() -> None:
        h, arena, model = await arena_for(rules, interval_s=86400)
        for price in ZIGZAG:
            await minute(h, arena, price)
        assert len(model.requests) == 1  # the first call; the zigzag moves 1 ATR at most
        base = model.requests[0].snapshot.coins["BTC"].price
        assert arena.needs_every_tick()
        await minute(h, arena, str(base + 150))  # 1.5 ATR (the ATR is 100)
        assert len(model.requests) == 1
        await minute(h, arena, str(base + 260))  # over 2 ATR from the price at the call
        assert len(model.requests) == 2
        fired = triggered(h)
        assert [e.fired for e in fired] == [["first_call"], ["atr_move:BTC"]]
        last = fired[-1]
        assert last.ticks_gated == len(ZIGZAG) - 1 + 1  # every minute after the first call
        assert last.quiet.get("atr_move", 0) + last.unavailable.get("atr_move", 0) == (
            last.ticks_gated
        )
        assert last.unavailable["atr_move"] >= 1  # warming up at first
        # Recorded with the call it explains, just before it.
        names = h.event_names()
        second = [i for i, n in enumerate(names) if n == "DecisionTriggered"][1]
        assert names[second + 1] == "DecisionRequested"

    run(scenario())


def test_without_triggers_the_trader_keeps_its_timer() -> None:
    async def scenario() -> None:
        h, arena, model = await arena_for(None, interval_s=180)
        for price in ZIGZAG:
            await minute(h, arena, price)
        assert len(model.requests) == 3  # minutes 1, 4, 7
        assert triggered(h) == []
        assert not arena.needs_every_tick()

    run(scenario())


def test_the_max_interval_calls_a_quiet_trader() -> None:
    rules = TriggerRules(max_interval_s=600, on_fill=True)

    async def scenario() -> None:
        h, arena, model = await arena_for(rules, interval_s=60)
        for _ in range(10):
            await minute(h, arena, "100000")
        assert len(model.requests) == 1
        await minute(h, arena)  # 10 minutes since the first call
        assert len(model.requests) == 2
        record = triggered(h)[-1]
        assert record.fired == ["max_interval"]
        assert record.ticks_gated == 9
        assert record.quiet == {"fill": 9}
        assert record.timer_calls == 10  # a one-minute timer: ten calls instead of one

    run(scenario())


def test_a_stop_filled_on_the_venue_calls_the_model() -> None:
    rules = TriggerRules(max_interval_s=86400, on_fill=True, on_stop_or_target=True)

    async def scenario() -> None:
        h, arena, model = await arena_for(rules, interval_s=86400)
        model.answers.append({"BTC": entry("BTC", quantity=0.02)})
        await minute(h, arena, "100000")  # the first call opens a position
        assert h.trader().positions
        for _ in range(3):
            await minute(h, arena, "100000")
        assert len(model.requests) == 1  # its own fill is not news
        plan = h.trader().positions["BTC"].context.exit_plan
        assert plan is not None
        assert plan.stop_loss is not None
        h.clock.advance(60)
        h.set_price("BTC", plan.stop_loss - 1)  # the venue's stop fires
        await arena.tick()
        await arena.drain()
        await minute(h, arena)  # the reconciliation has booked it: the gates see it
        assert not h.trader().positions
        assert len(model.requests) == 2
        assert triggered(h)[-1].fired == ["fill", "stop_or_target"]

    run(scenario())


def test_the_status_view_sums_the_records() -> None:
    rules = TriggerRules(max_interval_s=300, on_fill=True)

    async def scenario() -> None:
        h, arena, _ = await arena_for(rules, interval_s=60)
        for _ in range(11):
            await minute(h, arena, "100000")
        projector = StatusProjector()
        state = projector.initial()
        for event in h.events():
            projector.apply(state, event)
        status = state.traders[0].triggers
        assert status is not None
        assert status.calls == 3  # minutes 1, 6 and 11
        assert status.fired == {"first_call": 1, "max_interval": 2}
        assert status.ticks_gated == 8
        assert status.quiet == {"fill": 8}
        assert status.timer_calls == 1 + 5 + 5
        assert status.last_fired == ["max_interval"]

    run(scenario())


def test_a_paused_trader_with_triggers_is_not_called_and_does_not_need_every_tick() -> None:
    rules = TriggerRules(max_interval_s=60, on_fill=True)

    async def scenario() -> None:
        h, arena, model = await arena_for(rules)
        trader = h.trader()
        trader.pause("operator", "test", h.clock.now())
        h.app.save_trader(trader)
        for _ in range(3):
            await minute(h, arena, "100000")
        assert model.requests == []
        assert not arena.needs_every_tick()

    run(scenario())


class DictGateMemory:
    """The gates' memory in a dict (what the files hold, through JSON)."""

    def __init__(self) -> None:
        self.saved: dict[str, str] = {}

    def load(self, trader_id: str) -> Any:
        text = self.saved.get(trader_id)
        return None if text is None else json.loads(text)

    def save(self, trader_id: str, data: Any) -> None:
        self.saved[trader_id] = json.dumps(data)


def restarted(h: Harness, model: ScriptedModel, memory: DictGateMemory | None) -> Arena:
    settings = h.settings
    return Arena(
        app=h.app,
        runtimes=[TraderRuntime(settings, h.market, h.exchange, model)],
        renderer=JinjaPromptRenderer(root=REPO / "prompts", schema_version="v1.0.0"),
        clock=h.clock,
        engine=h.engine,
        alerts=h.alerts,
        gate_memory=memory,
    )


def test_after_a_restart_the_gates_continue_from_their_memory() -> None:
    rules = TriggerRules(max_interval_s=86400, atr_move=2.0, atr_period=3, bar_s=60)

    async def scenario(memory: DictGateMemory | None) -> list[list[str]]:
        h, _, model = await arena_for(rules, interval_s=86400)
        first = restarted(h, model, memory)
        await first.start()
        for price in ZIGZAG:
            await minute(h, first, price)
        await first.drain()
        # The engine restarts: a new arena over the same store, a quiet minute, a move.
        second = restarted(h, model, memory)
        await second.start()
        base = model.requests[0].snapshot.coins["BTC"].price
        for price in ("100000", "100100", "100000", "100100"):
            await minute(h, second, price)
        await minute(h, second, str(base + 260))  # over 2 ATR from the price at the call
        return [e.fired for e in triggered(h)]

    remembered = run(scenario(DictGateMemory()))
    # The ATR and the price at the last call survived: quiet minutes stay quiet, the move
    # calls the model at once.
    assert remembered == [["first_call"], ["atr_move:BTC"]]
    # Without the memory the ATR warms up again: the move finds the gate unavailable.
    assert run(scenario(None)) == [["first_call"]]
