"""Several traders on one simulated Hyperliquid account (virtual sub-accounts)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from application.cycle import DecisionCycle
from application.orders import OrderDesk
from application.ports import LogAlerts
from application.settings import EngineSettings, TraderSettings
from application.trading import TradingApp
from application.venue_sync import VenueSync
from domain.trader import Trader
from infrastructure.clock import ManualClock
from infrastructure.hyperliquid.simulated import SimulatedHyperliquid
from infrastructure.prompts.renderer import JinjaPromptRenderer
from tests.support.fakes import REPO, T0, FixedMarket, ScriptedModel, sim_exchange


@dataclass
class SharedAccount:
    app: TradingApp
    market: FixedMarket
    clock: ManualClock
    exchange: SimulatedHyperliquid
    sync: VenueSync
    cycles: dict[str, DecisionCycle]
    models: dict[str, ScriptedModel]
    alerts: LogAlerts

    @classmethod
    async def create(cls, traders: Sequence[TraderSettings], fund: Decimal) -> SharedAccount:
        app = TradingApp(env={"NOF0_PERSISTENCE_MODULE": "eventsourcing.popo"})
        market = FixedMarket({"BTC": "100000", "ETH": "4000", "SOL": "200"})
        clock = ManualClock(T0)
        alerts = LogAlerts()
        engine = EngineSettings(schema_version="v1.0.0", order_retries=2, order_backoff_s=0.0)
        exchange = sim_exchange(clock, fund=fund)
        desk = OrderDesk(app, exchange, clock, engine, alerts)
        sync = VenueSync(
            app=app,
            exchange=exchange,
            desk=desk,
            clock=clock,
            alerts=alerts,
            traders=traders,
            engine=engine,
        )
        renderer = JinjaPromptRenderer(root=REPO / "prompts", schema_version="v1.0.0")
        models = {t.config_id: ScriptedModel([]) for t in traders}
        cycles = {
            t.config_id: DecisionCycle(
                app=app,
                settings=t,
                engine=engine,
                market=market,
                exchange=exchange,
                model=models[t.config_id],
                renderer=renderer,
                clock=clock,
                alerts=alerts,
                desk=desk,
                sync=sync,
            )
            for t in traders
        }
        for t in traders:
            app.save_trader(
                Trader.register(
                    config_id=t.config_id,
                    name=t.name,
                    model=t.model,
                    allocation=t.allocation,
                    coins=list(t.coins),
                    at=clock.now(),
                )
            )
        shared = cls(app, market, clock, exchange, sync, cycles, models, alerts)
        shared.mark()
        await exchange.start()
        await sync.register(clock.now())
        return shared

    def mark(self) -> None:
        self.exchange.mark(self.market.prices, self.clock.now())

    async def decide(self, trader: str, answer: dict[str, Any]) -> Any:
        self.models[trader].answers.append(answer)
        self.clock.advance(60)
        self.mark()
        return await self.cycles[trader].run(self.clock.now())

    def events(self, trader: str) -> list[Any]:
        return list(self.app.trader_events(trader))
