"""Ports: what the use cases need from the outside world, as Protocols and plain data.

Adapters in ``infrastructure`` implement these; tests use fakes of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Protocol, runtime_checkable

import msgspec

from domain.risk import AssetRules
from domain.values import Liquidity, OrderSide

# -- market data ------------------------------------------------------------------------


class IntradaySeries(msgspec.Struct, frozen=True):
    """3-minute series, oldest → newest (the last 10 closed candles)."""

    mid_prices: list[float]
    ema20: list[float]
    macd: list[float]
    rsi7: list[float]
    rsi14: list[float]


class LongTermContext(msgspec.Struct, frozen=True):
    """4-hour context (closed candles)."""

    ema20: float
    ema50: float
    atr3: float
    atr14: float
    volume_current: float
    volume_average: float
    macd: list[float]
    rsi14: list[float]


class CoinSnapshot(msgspec.Struct, frozen=True):
    coin: str
    price: Decimal  # the live mid (also the mark in the simulator)
    data_time: datetime  # when the newest data point was observed
    ema20: float
    macd: float
    rsi7: float
    rsi14: float
    open_interest_latest: float
    open_interest_average: float
    funding_rate: float
    intraday: IntradaySeries
    long_term: LongTermContext


class MarketSnapshot(msgspec.Struct, frozen=True):
    as_of: datetime
    coins: dict[str, CoinSnapshot]

    def marks(self) -> dict[str, Decimal]:
        return {coin: snap.price for coin, snap in self.coins.items()}


class MarketDataError(Exception):
    """Base of market data failures; the cycle is skipped, never guessed."""


class MissingData(MarketDataError):
    pass


class StaleData(MarketDataError):
    pass


class LookAheadError(MarketDataError):
    """Data stamped after the cycle's as-of time was offered (a replay bug, never traded on)."""


class MarketData(Protocol):
    max_staleness_s: float

    async def snapshot(self, coins: Sequence[str], as_of: datetime) -> MarketSnapshot:
        """A point-in-time snapshot; raises :class:`MarketDataError` subclasses."""
        ...

    async def mids(self, coins: Sequence[str], as_of: datetime) -> dict[str, Decimal]:
        """Current mid prices (cheap; used every tick)."""
        ...


# -- exchange ---------------------------------------------------------------------------


class OrderStatus(StrEnum):
    FILLED = "filled"
    REJECTED = "rejected"
    UNKNOWN = "unknown"  # the venue has no order with this cloid


@dataclass(frozen=True)
class OrderRequest:
    account: str  # the virtual sub-account (trader config id)
    cloid: str
    coin: str
    side: OrderSide
    size: Decimal
    limit_price: Decimal
    reduce_only: bool
    leverage: int


@dataclass(frozen=True)
class OrderResult:
    cloid: str
    status: OrderStatus
    filled_size: Decimal = Decimal(0)
    avg_price: Decimal = Decimal(0)
    fee: Decimal = Decimal(0)
    liquidity: Liquidity = Liquidity.TAKER
    error: str = ""
    detail: str = ""


@dataclass(frozen=True)
class VenuePosition:
    coin: str
    qty: Decimal
    entry_price: Decimal


class ExchangeError(Exception):
    """The venue could not be reached or answered ambiguously; nothing is assumed."""


class Exchange(Protocol):
    fee_taker: Decimal

    async def assets(self) -> Mapping[str, AssetRules]: ...

    async def place_order(self, order: OrderRequest) -> OrderResult: ...

    async def order_status(self, account: str, cloid: str) -> OrderResult: ...

    async def positions(self, account: str) -> dict[str, VenuePosition]: ...

    async def ensure_account(self, account: str, allocation: Decimal) -> None:
        """Make sure the sub-account exists (the simulator funds it; live venues check it)."""
        ...


@runtime_checkable
class MarkedToMarket(Protocol):
    """A venue that needs to be told the prices (the in-process simulator)."""

    def mark(self, prices: Mapping[str, Decimal], at: datetime) -> None: ...


# -- decision models --------------------------------------------------------------------


@dataclass(frozen=True)
class RenderedPrompt:
    template: str
    version: str
    schema_version: str
    system: str
    user: str
    digest: str


@dataclass(frozen=True)
class PositionView:
    """What a prompt or model sees of one open position."""

    coin: str
    quantity: Decimal
    entry_price: Decimal
    current_price: Decimal
    liquidation_price: Decimal | None
    unrealized_pnl: Decimal
    leverage: int
    profit_target: Decimal | None
    stop_loss: Decimal | None
    invalidation_condition: str
    confidence: Decimal | None
    risk_usd: Decimal | None
    justification: str
    notional_usd: Decimal


@dataclass(frozen=True)
class AccountView:
    equity: Decimal
    available_cash: Decimal
    return_pct: Decimal
    sharpe_ratio: float
    positions: tuple[PositionView, ...]
    minutes_elapsed: int
    invocations: int


@dataclass(frozen=True)
class PromptLimits:
    """The limits a prompt states: rendered from the same configuration the validator uses."""

    max_positions: int
    major_coin_leverage: int
    altcoin_leverage: int
    min_confidence_pct: Decimal
    min_risk_reward: Decimal
    max_position_size_usd: Decimal


@dataclass(frozen=True)
class DecisionRequest:
    trader: str
    cycle_id: str
    as_of: datetime
    coins: tuple[str, ...]
    snapshot: MarketSnapshot
    account: AccountView
    prompt: RenderedPrompt
    model: str


@dataclass(frozen=True)
class DecisionReply:
    """A model's answer. ``text`` carries any separately returned reasoning first, inside
    ``<think>...</think>``, then the answer. Cost is priced by the gateway, not the client."""

    text: str
    model: str
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: Decimal = Decimal(0)
    latency_ms: int = 0
    cached: bool = False


class ModelFailure(StrEnum):
    """Why a model call produced no answer (the client's typed reasons)."""

    TIMEOUT = "timeout"
    RATE_LIMITED = "rate_limited"
    SERVER_ERROR = "server_error"
    TRANSPORT_ERROR = "transport_error"
    AUTH_ERROR = "auth_error"
    BAD_REQUEST = "bad_request"
    REFUSAL = "refusal"
    EMPTY_OUTPUT = "empty_output"
    MALFORMED_RESPONSE = "malformed_response"


class ModelError(Exception):
    """The model could not answer (timeout, rate limit, server error...).

    ``reason`` is a :class:`ModelFailure` value; ``detail`` never contains secrets."""

    def __init__(self, reason: str, detail: str, latency_ms: int = 0) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.latency_ms = latency_ms


class DecisionModel(Protocol):
    name: str

    async def decide(self, request: DecisionRequest) -> DecisionReply: ...


class PromptRenderer(Protocol):
    def render(
        self,
        *,
        system_template: str,
        user_template: str,
        snapshot: MarketSnapshot,
        account: AccountView,
        limits: PromptLimits,
        as_of: datetime,
    ) -> RenderedPrompt: ...


# -- time and alerts --------------------------------------------------------------------


class Clock(Protocol):
    def now(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None:
        """Sleep for ``seconds`` of this clock's time."""
        ...


class Alerts(Protocol):
    def alert(self, trader: str, kind: str, message: str) -> None: ...


@dataclass
class LogAlerts:
    """Alerts kept in memory (and logged by the caller); the default sink."""

    sent: list[tuple[str, str, str]] = field(default_factory=list)

    def alert(self, trader: str, kind: str, message: str) -> None:
        self.sent.append((trader, kind, message))
