"""Trigger gates with several engines: an engine keeps the gate memory of the traders it
drives only (another engine's memory of a trader would carry a fresh save time over that
engine's stale prices at the last call, and fool the staleness rule after a takeover)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from application.fenced_exchange import FencedExchange
from application.leases import LeaseKeeper, venue_lease
from application.manager import Arena, TraderRuntime
from application.trading import TradingApp
from domain.triggers import TriggerRules
from infrastructure.eventstore import sqlite_env
from infrastructure.prompts.renderer import JinjaPromptRenderer
from tests.support.fakes import REPO, Harness, ScriptedModel, trader_settings
from tests.support.leases import MemoryLeaseStore

TRADERS = ("a", "b")
RULES = TriggerRules(max_interval_s=86400, atr_move=2.0, atr_period=3, bar_s=60)


class DictGateMemory:
    def __init__(self) -> None:
        self.saved: dict[str, str] = {}
        self.writes: dict[str, int] = {}

    def load(self, trader_id: str) -> Any:
        text = self.saved.get(trader_id)
        return None if text is None else json.loads(text)

    def save(self, trader_id: str, data: Any) -> None:
        self.saved[trader_id] = json.dumps(data)
        self.writes[trader_id] = self.writes.get(trader_id, 0) + 1


class Holding(ScriptedModel):
    async def decide(self, request: Any) -> Any:
        if not self.answers:
            self.answers.append({"BTC": {"signal": "hold", "justification": "q"}})
        return await super().decide(request)


def engine(h: Harness, app: TradingApp, store: MemoryLeaseStore, owner: str, memory: Any):
    keeper = LeaseKeeper(
        store,
        owner,
        TRADERS,
        extra=(venue_lease(h.exchange.name),),
        ttl=15,
        monotonic=store.clock,
    )
    exchange = FencedExchange(h.exchange, keeper, margin=5)
    models = {t: Holding([]) for t in TRADERS}
    arena = Arena(
        app=app,
        runtimes=[
            TraderRuntime(
                replace(trader_settings(t, decision_interval_s=86400), triggers=RULES),
                h.market,
                exchange,
                models[t],
            )
            for t in TRADERS
        ],
        renderer=JinjaPromptRenderer(root=REPO / "prompts", schema_version="v1.0.0"),
        clock=h.clock,
        engine=h.engine,
        alerts=h.alerts,
        leases=keeper,
        gate_memory=memory,
    )
    return arena, keeper, models


def test_an_engine_does_not_write_the_memory_of_a_trader_it_does_not_drive(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        env = sqlite_env(tmp_path / "events.sqlite3")
        h = await Harness.create(env, fund=Decimal(30000))
        store = MemoryLeaseStore()
        mem_one, mem_two = DictGateMemory(), DictGateMemory()  # two --data-dirs
        one, keep_one, models_one = engine(h, h.app, store, "one", mem_one)
        two, keep_two, _models_two = engine(h, TradingApp(env=dict(env)), store, "two", mem_two)
        await one.start()
        await two.start()
        store.now += 5
        for arena in (one, two):
            await arena.tick()
            await arena.drain()
        assert keep_one.traders() == {"a"}
        assert keep_two.traders() == {"b"}
        before = dict(mem_one.writes)
        for i in range(10):
            h.clock.advance(60)
            h.market.prices["BTC"] = Decimal(100000 + 100 * (i % 2))
            for arena in (one, two):
                await arena.tick()
                await arena.drain()
        assert len(models_one["b"].requests) == 0  # one never drives b ...
        wrote = mem_one.writes.get("b", 0) - before.get("b", 0)
        assert wrote == 0, f"... yet wrote b's gate memory {wrote} times"

    asyncio.run(scenario())
