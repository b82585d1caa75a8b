"""Fakes (not mocks) for the ports, and a small harness that wires a real arena around them."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from eth_account import Account

from application.cycle import DecisionCycle
from application.orders import OrderDesk
from application.ports import (
    CoinSnapshot,
    DecisionReply,
    DecisionRequest,
    Exchange,
    IntradaySeries,
    LogAlerts,
    LongTermContext,
    MarketSnapshot,
    MissingData,
    ModelError,
)
from application.settings import EngineSettings, TraderSettings
from application.trading import TradingApp
from domain.risk import RiskLimits
from domain.trader import PausePolicy, Trader
from infrastructure.clock import ManualClock
from infrastructure.hyperliquid.exchange import HyperliquidExchange, RetryPolicy
from infrastructure.hyperliquid.nonces import NonceManager
from infrastructure.hyperliquid.simulated import SimulatedHyperliquid
from infrastructure.hyperliquid.transport import HttpTransport
from infrastructure.prompts.renderer import JinjaPromptRenderer
from infrastructure.simulator.config import SimConfig
from infrastructure.simulator.engine import SimVenue
from infrastructure.simulator.gateway import SimGateway
from infrastructure.simulator.server import SimServer
from tests.support.hl_faults import FaultPlan

REPO = Path(__file__).resolve().parents[2]
PROMPTS = REPO / "prompts" / "decision"
T0 = datetime(2025, 10, 17, tzinfo=UTC)


def coin_snapshot(coin: str, price: Decimal | str | float, at: datetime) -> CoinSnapshot:
    p = float(price)
    series = [p] * 10
    return CoinSnapshot(
        coin=coin,
        price=Decimal(str(price)),
        data_time=at,
        ema20=p,
        macd=0.0,
        rsi7=50.0,
        rsi14=50.0,
        open_interest_latest=1000.0,
        open_interest_average=1000.0,
        funding_rate=0.0000125,
        intraday=IntradaySeries(series, series, [0.0] * 10, [50.0] * 10, [50.0] * 10),
        long_term=LongTermContext(p, p, p * 0.01, p * 0.01, 10.0, 10.0, [0.0] * 10, [50.0] * 10),
    )


class FixedMarket:
    """A market whose prices the test sets; ``missing`` coins raise ``MissingData``."""

    def __init__(self, prices: Mapping[str, Decimal | str], max_staleness_s: float = 90.0) -> None:
        self.prices = {c: Decimal(str(p)) for c, p in prices.items()}
        self.max_staleness_s = max_staleness_s
        self.missing: set[str] = set()
        self.lag_s = 0.0

    async def snapshot(self, coins: Sequence[str], as_of: datetime) -> MarketSnapshot:
        result = {}
        for coin in coins:
            if coin in self.missing or coin not in self.prices:
                raise MissingData(f"no data for {coin}")
            stamp = as_of - timedelta(seconds=self.lag_s)
            result[coin] = coin_snapshot(coin, self.prices[coin], stamp)
        return MarketSnapshot(as_of=as_of, coins=result)

    async def mids(self, coins: Sequence[str], as_of: datetime) -> dict[str, Decimal]:
        return {c: self.prices[c] for c in coins if c in self.prices and c not in self.missing}


@dataclass
class ScriptedModel:
    """Answers from a script: strings become replies, exceptions are raised."""

    answers: list[str | Exception | dict[str, Any]]
    name: str = "scripted"
    requests: list[DecisionRequest] = field(default_factory=list)

    async def decide(self, request: DecisionRequest) -> DecisionReply:
        self.requests.append(request)
        if not self.answers:
            return DecisionReply(text="{}", model=self.name)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, dict):
            answer = json.dumps(answer)
        return DecisionReply(
            text=answer,
            model=self.name,
            tokens_in=100,
            tokens_out=50,
            cost_usd=Decimal("0.0012"),
            latency_ms=5,
        )


def limits(**overrides: Any) -> RiskLimits:
    values: dict[str, Any] = {
        "max_positions": 4,
        "max_position_size_usd": Decimal(5000),
        "max_margin_usage_pct": Decimal(60),
        "major_coin_leverage": 20,
        "altcoin_leverage": 10,
        "min_risk_reward": Decimal(3),
        "min_confidence_pct": Decimal(60),
    }
    values.update(overrides)
    return RiskLimits(**values)


def trader_settings(config_id: str = "alpha", **overrides: Any) -> TraderSettings:
    values: dict[str, Any] = {
        "config_id": config_id,
        "name": config_id,
        "model": "scripted",
        "allocation": Decimal(10000),
        "coins": ("BTC", "ETH", "SOL"),
        "decision_interval_s": 180.0,
        "decision_timeout_s": 5.0,
        "limits": limits(),
        "slippage_bps": Decimal(50),
        "system_template": str(PROMPTS / "system.j2"),
        "user_template": str(PROMPTS / "user.j2"),
        "exchange": "sim",
        "market": "fixed",
    }
    values.update(overrides)
    return TraderSettings(**values)


def entry(
    coin: str,
    *,
    long: bool = True,
    quantity: float = 0.01,
    price: float = 100_000.0,
    leverage: int = 5,
    confidence: float = 0.8,
    stop_pct: float = 0.01,
    reward_risk: float = 3.5,
) -> dict[str, Any]:
    distance = price * stop_pct
    stop = price - distance if long else price + distance
    target = price + distance * reward_risk if long else price - distance * reward_risk
    return {
        "signal": "buy_to_enter" if long else "sell_to_enter",
        "quantity": quantity,
        "leverage": leverage,
        "profit_target": round(target, 6),
        "stop_loss": round(stop, 6),
        "invalidation_condition": "a test condition",
        "confidence": confidence,
        "risk_usd": 50,
        "justification": "a test entry",
    }


def sim_exchange(
    clock: ManualClock,
    *,
    state_dir: Path | None = None,
    fund: Decimal = Decimal(10000),
    name: str = "sim",
    config: SimConfig | None = None,
) -> SimulatedHyperliquid:
    """The in-process Hyperliquid simulator behind the Hyperliquid adapter (call ``start``)."""
    venue = SimVenue.open(config or SimConfig(), state_dir)
    return SimulatedHyperliquid(
        name,
        SimGateway(venue),
        fund_usdc=fund,
        clock_ms=lambda: int(clock.now().timestamp() * 1000),
        fee_taker=Decimal("0.00045"),
    )


@dataclass
class Harness:
    """A real decision cycle (application + domain + simulator + renderer) over fakes."""

    app: TradingApp
    market: FixedMarket
    exchange: Exchange  # what the engine trades through
    model: ScriptedModel
    settings: TraderSettings
    clock: ManualClock
    alerts: LogAlerts
    cycle: DecisionCycle
    desk: OrderDesk
    engine: EngineSettings
    venue: SimulatedHyperliquid  # the in-process venue (prices, time, inspection)
    venue_prices: dict[str, Decimal] = field(default_factory=dict)
    server: SimServer | None = None  # with ``http=True``: the venue over HTTP
    plan: FaultPlan | None = None  # ... and its scripted faults

    @classmethod
    async def create(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        prices: Mapping[str, str] | None = None,
        answers: list[Any] | None = None,
        settings: TraderSettings | None = None,
        state_path: Path | None = None,
        pause_policy: PausePolicy | None = None,
        venue_config: SimConfig | None = None,
        fund: Decimal | None = None,
        http: bool = False,
    ) -> Harness:
        """``http``: the engine trades through the Hyperliquid adapter over HTTP (the SDK's
        transport) to the simulator's server, which can inject faults (``plan``); call
        ``close()`` at the end."""
        app = TradingApp(env=dict(env or {"NOF0_PERSISTENCE_MODULE": "eventsourcing.popo"}))
        market = FixedMarket(prices or {"BTC": "100000", "ETH": "4000", "SOL": "200"})
        model = ScriptedModel(list(answers or []))
        settings = settings or trader_settings()
        clock = ManualClock(T0)
        venue = sim_exchange(
            clock,
            state_dir=state_path,
            fund=settings.allocation if fund is None else fund,
            config=venue_config,
        )
        exchange: Exchange = venue
        server = plan = None
        if http:
            plan = FaultPlan()
            server = SimServer(venue.gateway, interceptor=plan)
            agent = Account.create()
            exchange = HyperliquidExchange(
                "sim-http",
                HttpTransport(server.start(), timeout_s=1.0),
                wallet=agent,
                account_address=venue.account_id,
                nonces=NonceManager(lambda: int(clock.now().timestamp() * 1000)),
                retry=RetryPolicy(attempts=2, backoff_s=0.0),
            )
        alerts = LogAlerts()
        engine = EngineSettings(
            schema_version="v1.0.0",
            pause_policy=pause_policy or PausePolicy(),
            order_retries=2,
            order_backoff_s=0.0,
        )
        renderer = JinjaPromptRenderer(root=REPO / "prompts", schema_version="v1.0.0")
        cycle = DecisionCycle(
            app=app,
            settings=settings,
            engine=engine,
            market=market,
            exchange=exchange,
            model=model,
            renderer=renderer,
            clock=clock,
            alerts=alerts,
        )
        desk = cycle.desk
        trader = Trader.register(
            config_id=settings.config_id,
            name=settings.name,
            model=settings.model,
            allocation=settings.allocation,
            coins=list(settings.coins),
            at=clock.now(),
        )
        app.save_trader(trader)
        harness = cls(
            app, market, exchange, model, settings, clock, alerts, cycle, desk, engine, venue
        )
        harness.server, harness.plan = server, plan
        harness.mark()
        await venue.start()
        if http:
            venue.gateway.approve_agent_trusted(venue.account_id, agent.address, "http-client")
            await exchange.start()
        await cycle.sync.register(clock.now())
        return harness

    def close(self) -> None:
        if self.server is not None:
            transport = getattr(self.exchange, "transport", None)
            if isinstance(transport, HttpTransport):
                transport.close()
            self.server.stop()

    def mark(self) -> None:
        """Tell the venue the market's prices (``venue_prices`` overrides some: a venue
        that trades away from the prompt's data)."""
        self.venue.mark({**self.market.prices, **self.venue_prices}, self.clock.now())

    async def reconcile(self) -> Any:
        """One reconciliation pass of the venue account (what the arena runs every tick)."""
        return await self.cycle.sync.run(self.clock.now())

    def set_price(self, coin: str, price: str | Decimal) -> None:
        self.market.prices[coin] = Decimal(str(price))
        self.mark()

    def trader(self) -> Trader:
        return self.app.get_trader(self.settings.config_id)

    def events(self) -> list[Any]:
        return list(self.app.trader_events(self.settings.config_id))

    def event_names(self) -> list[str]:
        return [type(e).__name__ for e in self.events()]

    async def run_cycle(self, *answers: Any, advance_s: float = 180.0) -> Any:
        self.model.answers.extend(answers)
        self.clock.advance(advance_s)
        self.mark()
        return await self.cycle.run(self.clock.now())


ModelErrorType = ModelError


# -- looking at (and acting on) the simulated venue directly ---------------------------------


def venue_info(exchange: SimulatedHyperliquid, request: dict[str, Any]) -> Any:
    with exchange.gateway.locked() as venue:
        return venue.info(request)


def venue_positions(exchange: SimulatedHyperliquid) -> dict[str, Decimal]:
    state = venue_info(exchange, {"type": "clearinghouseState", "user": exchange.account_id})
    return {
        p["position"]["coin"]: Decimal(p["position"]["szi"])
        for p in state["assetPositions"]
        if Decimal(p["position"]["szi"]) != 0
    }


def venue_open_orders(exchange: SimulatedHyperliquid) -> list[dict[str, Any]]:
    orders: list[dict[str, Any]] = venue_info(
        exchange, {"type": "frontendOpenOrders", "user": exchange.account_id}
    )
    return orders


def venue_fills(exchange: SimulatedHyperliquid) -> list[dict[str, Any]]:
    fills: list[dict[str, Any]] = venue_info(
        exchange, {"type": "userFills", "user": exchange.account_id}
    )
    return fills


ASSET_IDS = {"BTC": 0, "ETH": 1, "SOL": 2, "BNB": 3, "DOGE": 4, "XRP": 5}


def manual_order(
    exchange: SimulatedHyperliquid,
    coin: str,
    *,
    buy: bool,
    size: str,
    price: str,
    reduce_only: bool = False,
    tif: str = "Ioc",
    cloid: str | None = None,
) -> dict[str, Any]:
    """An order placed on the account by someone else (a person in the venue's UI)."""
    wire: dict[str, Any] = {
        "a": ASSET_IDS[coin],
        "b": buy,
        "p": price,
        "s": size,
        "r": reduce_only,
        "t": {"limit": {"tif": tif}},
    }
    if cloid is not None:
        wire["c"] = cloid
    action = {"type": "order", "orders": [wire], "grouping": "na"}
    with exchange.gateway.locked() as venue:
        answer: dict[str, Any] = venue.exchange(exchange.account_id, action)
    return answer


def manual_cancel(exchange: SimulatedHyperliquid, coin: str, cloid: str) -> dict[str, Any]:
    """Someone cancels one of the account's orders in the venue's UI."""
    action = {"type": "cancelByCloid", "cancels": [{"asset": ASSET_IDS[coin], "cloid": cloid}]}
    with exchange.gateway.locked() as venue:
        answer: dict[str, Any] = venue.exchange(exchange.account_id, action)
    return answer
