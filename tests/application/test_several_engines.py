"""Two engines on one event store share the traders through leases (issue 8 part 7).

Each arena drives only the traders it holds leases for; a newcomer is handed a fair share;
when one engine stops renewing, the other takes its traders over (an ``engine_takeover``
alert) and the stalled one neither decides nor sends an order for them again."""

from __future__ import annotations

import asyncio
import contextlib
from decimal import Decimal
from pathlib import Path

from application.fenced_exchange import FencedExchange, acting_for
from application.leases import LeaseKeeper, trader_lease, venue_lease
from application.manager import Arena, TraderRuntime
from application.ports import LogAlerts, OrderState, OrderTicket, VenueRejection
from application.trading import TradingApp
from domain.values import OrderSide
from infrastructure.eventstore import sqlite_env
from infrastructure.prompts.renderer import JinjaPromptRenderer
from tests.support.fakes import REPO, Harness, ScriptedModel, trader_settings
from tests.support.leases import MemoryLeaseStore

TRADERS = ("a", "b")
HOLD = {"BTC": {"signal": "hold"}}


class Engine:
    """One arena over the shared venue; with a lease store, under leases as ``owner``."""

    def __init__(
        self,
        h: Harness,
        app: TradingApp,
        store: MemoryLeaseStore | None = None,
        owner: str = "",
        ttl: float = 15,
    ) -> None:
        self.keeper = (
            None
            if store is None
            else LeaseKeeper(
                store,
                owner,
                TRADERS,
                extra=(venue_lease(h.exchange.name),),
                ttl=ttl,
                monotonic=store.clock,
            )
        )
        self.exchange = (
            h.exchange if self.keeper is None else FencedExchange(h.exchange, self.keeper, margin=5)
        )
        self.models = {t: ScriptedModel([HOLD] * 10) for t in TRADERS}
        self.alerts = LogAlerts()
        self.arena = Arena(
            app=app,
            runtimes=[
                TraderRuntime(trader_settings(t), h.market, self.exchange, self.models[t])
                for t in TRADERS
            ],
            renderer=JinjaPromptRenderer(root=REPO / "prompts", schema_version="v1.0.0"),
            clock=h.clock,
            engine=h.engine,
            alerts=self.alerts,
            leases=self.keeper,
        )

    @property
    def leases(self) -> LeaseKeeper:
        assert self.keeper is not None
        return self.keeper

    def decided(self) -> dict[str, int]:
        return {t: len(m.requests) for t, m in self.models.items()}

    async def tick(self) -> None:
        await self.arena.tick()
        await self.arena.drain()


def test_two_engines_split_the_traders_and_one_takes_over_when_the_other_stalls(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        env = sqlite_env(tmp_path / "events.sqlite3")
        h = await Harness.create(env, fund=Decimal(30000))
        store = MemoryLeaseStore()
        one = Engine(h, h.app, store, "one")
        two = Engine(h, TradingApp(env=dict(env)), store, "two")
        await one.arena.start()  # alone: registers and holds both traders
        await two.arena.start()  # announces itself; holds nothing yet
        assert two.leases.traders() == frozenset()

        store.now += 5  # a renewal is due: one hands back its surplus, two takes it
        await one.tick()
        await two.tick()
        assert one.leases.traders() == {"a"}
        assert two.leases.traders() == {"b"}
        h.clock.advance(1)
        await one.tick()
        await two.tick()
        # Each trader decided in exactly one engine.
        assert one.decided()["b"] == 0  # handed over before its first cycle
        assert two.decided()["a"] == 0
        assert two.decided()["b"] == 1
        decided_before = one.decided()["b"]

        # Two stalls (no more renewals); once its leases expire one takes b over.
        store.now += 16
        h.clock.advance(200)
        await one.tick()
        assert one.leases.traders() == set(TRADERS)
        assert ("b", "engine_takeover") in [(t, k) for t, k, _ in one.alerts.sent]
        # What two may have sent and not recorded is reconciled before b decides again.
        assert one.decided()["b"] == decided_before
        h.clock.advance(1)
        await one.tick()
        assert one.decided()["b"] == decided_before + 1

        # The stalled engine wakes up: its order for b is refused, never sent...
        with acting_for("b"):
            report = await two.exchange.place(
                OrderTicket("0x" + "ab" * 16, "BTC", OrderSide.BUY, Decimal("0.01"), Decimal(1))
            )
        assert report.state is OrderState.REJECTED
        assert report.reason == VenueRejection.LEASE_LOST.value
        # ... and on its next tick it learns it lost b and does not decide for it.
        await two.tick()
        assert two.decided()["b"] == 1
        assert ("b", "lease_lost") in [(t, k) for t, k, _ in two.alerts.sent]
        assert all(o.cloid != "0x" + "ab" * 16 for o in await h.exchange.open_orders())

    asyncio.run(scenario())


def test_a_trader_taken_from_an_engine_that_never_registered_it_is_registered(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        h = await Harness.create(sqlite_env(tmp_path / "events.sqlite3"), fund=Decimal(30000))
        store = MemoryLeaseStore()
        # An engine took b's lease and died before it wrote anything.
        assert store.acquire(trader_lease("b"), "ghost", 15) is not None
        one = Engine(h, h.app, store, "one")
        await one.arena.start()
        assert one.leases.traders() == {"a"}
        assert h.app.find_trader("b") is None

        store.now += 16  # the ghost's lease expires; one takes b over
        h.clock.advance(1)
        await one.tick()
        assert one.leases.traders() == set(TRADERS)
        assert h.app.find_trader("b") is not None
        h.clock.advance(1)
        await one.tick()
        assert one.decided()["b"] == 1
        assert not [a for a in one.alerts.sent if a[1] == "cycle_error"]

    asyncio.run(scenario())


def test_leases_are_renewed_while_a_tick_is_stuck(tmp_path: Path) -> None:
    """A tick can wait long (a venue call waiting out the request budget); the leases are
    renewed meanwhile, so another engine does not take over a live engine's traders."""

    async def scenario() -> None:
        h = await Harness.create(sqlite_env(tmp_path / "events.sqlite3"), fund=Decimal(30000))
        store = MemoryLeaseStore()
        one = Engine(h, h.app, store, "one", ttl=0.6)
        await one.arena.start()
        assert one.leases.traders() == set(TRADERS)
        stuck = asyncio.Event()

        async def slow_mark(now: object) -> None:
            stuck.set()
            await asyncio.Event().wait()  # never answers

        one.arena._mark = slow_mark  # type: ignore[method-assign]
        stop = asyncio.Event()
        running = asyncio.create_task(one.arena.run(stop))
        await stuck.wait()
        started = store.now = 0.0
        loop = asyncio.get_running_loop()
        begun = loop.time()
        while store.now - started < 3 * 0.6:  # three lease lifetimes, on the real clock
            await asyncio.sleep(0.02)
            store.now = loop.time() - begun
        assert one.leases.traders() == set(TRADERS)
        assert {row.owner for row in store.rows.values()} == {"one"}
        assert all(row.expires_at > store.now for row in store.rows.values())
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running

    asyncio.run(scenario())


def test_without_leases_the_arena_drives_every_trader() -> None:
    async def scenario() -> None:
        h = await Harness.create(fund=Decimal(30000))
        alone = Engine(h, h.app)
        await alone.arena.start()
        h.clock.advance(1)
        await alone.tick()
        assert all(alone.arena.owns(t) for t in TRADERS)
        assert alone.decided() == {"a": 1, "b": 1}

    asyncio.run(scenario())
