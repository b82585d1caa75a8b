"""Ports: what the use cases need from the outside world, as Protocols and plain data.

Adapters in ``infrastructure`` implement these; tests use fakes of them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

import msgspec

from application.redaction import redact
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


class CoinSnapshot(msgspec.Struct, frozen=True, omit_defaults=True):
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
    # The venue's mark (margin, liquidation, triggers) and oracle (funding) when the
    # provider has them; left out of the stored snapshot when absent.
    mark_price: Decimal | None = None
    oracle_price: Decimal | None = None


class MarketSnapshot(msgspec.Struct, frozen=True):
    as_of: datetime
    coins: dict[str, CoinSnapshot]

    def marks(self) -> dict[str, Decimal]:
        """Valuation prices: the venue's mark where known, else the mid."""
        return {
            coin: snap.mark_price if snap.mark_price is not None else snap.price
            for coin, snap in self.coins.items()
        }


class MarketDataError(Exception):
    """Base of market data failures; the cycle is skipped, never guessed.

    Like every error a provider raises through a port, its message is redacted when it is
    made: it may quote what a server answered."""

    def __init__(self, message: str = "") -> None:
        super().__init__(redact(message))


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


@runtime_checkable
class FundingFeed(Protocol):
    """A market provider that also knows the hourly funding rate in force (a replay tape,
    Hyperliquid's asset contexts); the in-process simulator settles funding with it."""

    async def funding_rates(self, coins: Sequence[str], as_of: datetime) -> dict[str, Decimal]: ...


@dataclass(frozen=True)
class MinutePath:
    """The prices one minute went through, in the order they are walked: the minute that
    closed at ``closes_at`` (at or before the as-of time it was asked for, never after).

    ``points`` are successive price updates (each coin's price at each), the last one the
    close (the ``mids`` at that as-of time). An in-process venue takes them one after the
    other, so a stop, a target, a resting limit or a liquidation the minute reached
    between two closes sets off there, at that price, not at the next close."""

    closes_at: datetime
    points: tuple[Mapping[str, Decimal], ...]


@runtime_checkable
class IntrabarFeed(Protocol):
    """A market provider that knows each minute's candle (a replay tape), so the in-process
    simulator can walk the minute's price path instead of jumping from close to close."""

    async def minute_path(self, coins: Sequence[str], as_of: datetime) -> MinutePath | None:
        """The newest minute closed at ``as_of`` (None: this provider has no candles, mark
        the mids); raises :class:`MarketDataError` subclasses as ``mids`` does."""
        ...


# -- exchange ---------------------------------------------------------------------------
#
# One ``Exchange`` is one venue account (a Hyperliquid address, real or simulated). The
# traders configured on it are virtual sub-accounts that share it: the venue nets per coin,
# so the application attributes fills and funding to traders and keeps each coin with one
# trader at a time (see ``application.claims``).


class OrderState(StrEnum):
    OPEN = "open"  # resting on the book
    WAITING = "waiting"  # a trigger order waiting for its price (or for its parent to fill)
    FILLED = "filled"  # completely filled
    CANCELED = "canceled"  # finished without filling completely (IOC remainder, canceled...)
    REJECTED = "rejected"  # refused by the venue: nothing happened
    UNKNOWN = "unknown"  # the venue has no order with this cloid

    @property
    def terminal(self) -> bool:
        return self in (OrderState.FILLED, OrderState.CANCELED, OrderState.REJECTED)


class VenueRejection(StrEnum):
    """Typed reasons for what the venue refused (the venue's own words go in ``detail``)."""

    MIN_VALUE = "min_order_value"
    INSUFFICIENT_MARGIN = "insufficient_margin"
    REDUCE_ONLY = "reduce_only_would_increase"
    NO_LIQUIDITY = "no_immediate_match"
    POST_ONLY = "post_only_would_cross"
    INVALID_PRICE = "invalid_price"
    INVALID_SIZE = "invalid_size"
    INVALID_TRIGGER = "invalid_trigger_price"
    DUPLICATE_CLOID = "duplicate_cloid"
    LEVERAGE = "leverage_refused"
    PRICE_BAND = "price_too_far"
    OPEN_INTEREST_CAP = "open_interest_cap"
    TOO_MANY_ORDERS = "too_many_orders"
    UNKNOWN_ASSET = "unknown_asset"
    SIGNER = "signer_not_authorised"
    NONCE = "nonce_refused"
    NO_DEPOSIT = "account_not_funded"
    BUILDER = "builder_fee"
    RATE_LIMITED = "rate_limited"
    NOT_ON_VENUE = "not_on_venue"
    NOT_SENT = "not_sent"  # we gave up before sending (e.g. the leverage could not be set)
    LEASE_LOST = "lease_lost"  # not sent: another engine now acts for this trader
    CANCELED_BY_VENUE = "canceled_by_venue"
    OTHER = "venue_error"


class TimeInForce(StrEnum):
    IOC = "Ioc"
    GTC = "Gtc"
    ALO = "Alo"


class TriggerKind(StrEnum):
    STOP = "sl"
    TARGET = "tp"


@dataclass(frozen=True)
class Trigger:
    kind: TriggerKind
    price: Decimal
    market: bool = True  # a market order once triggered (``limit_price`` is the worst price)


@dataclass(frozen=True)
class OrderTicket:
    """One order as we ask the venue for it (prices and sizes already valid for the venue)."""

    cloid: str
    coin: str
    side: OrderSide
    size: Decimal
    limit_price: Decimal
    reduce_only: bool = False
    tif: TimeInForce = TimeInForce.IOC
    trigger: Trigger | None = None


@dataclass(frozen=True)
class OrderReport:
    """What the venue says about one order."""

    cloid: str
    state: OrderState
    oid: int | None = None
    filled_size: Decimal = Decimal(0)
    avg_price: Decimal = Decimal(0)
    reason: str = ""  # a VenueRejection value for refusals, the venue's status otherwise
    detail: str = ""  # the venue's own words


@dataclass(frozen=True)
class VenueFill:
    fill_id: str  # the venue's trade id: the key that makes recording a fill idempotent
    oid: int
    cloid: str | None
    coin: str
    side: OrderSide
    size: Decimal
    price: Decimal
    fee: Decimal  # paid (+) or rebated (−)
    liquidity: Liquidity
    time: datetime
    closed_pnl: Decimal
    liquidation: bool = False


@dataclass(frozen=True)
class VenueFunding:
    funding_id: str
    coin: str
    amount: Decimal  # received (+) or paid (−)
    rate: Decimal  # hourly
    size: Decimal  # the signed position it was paid on
    time: datetime


@dataclass(frozen=True)
class VenueTransfer:
    """Money that entered or left the account without trading (a deposit, a withdrawal, a
    transfer between accounts): it moves the unallocated part, never a trader's equity."""

    transfer_id: str
    kind: str  # the venue's word for it: deposit, withdraw, accountClassTransfer, ...
    amount: Decimal  # into the account (+) or out of it (−), fees included
    time: datetime


@dataclass(frozen=True)
class VenueOrder:
    """An order open on the venue (resting, or a trigger waiting)."""

    oid: int
    cloid: str | None
    coin: str
    side: OrderSide
    size: Decimal  # remaining
    limit_price: Decimal
    reduce_only: bool
    trigger: Trigger | None
    placed_at: datetime


@dataclass(frozen=True)
class VenuePosition:
    coin: str
    qty: Decimal  # signed
    entry_price: Decimal
    mark_price: Decimal
    liquidation_price: Decimal | None = None
    margin_used: Decimal = Decimal(0)


@dataclass(frozen=True)
class VenueAccountState:
    equity: Decimal  # the account value (cash + unrealised P&L at the venue's marks)
    positions: dict[str, VenuePosition]
    time: datetime


class ExchangeError(Exception):
    """The venue could not be reached or answered ambiguously; nothing is assumed.

    ``ambiguous``: the request may have been carried out (an order must then be looked up
    by its cloid, never simply sent again)."""

    def __init__(self, message: str, *, ambiguous: bool = True) -> None:
        super().__init__(redact(message))
        self.ambiguous = ambiguous


class VenueRefused(Exception):
    """The venue answered and refused an action (not an order: those get an ``OrderReport``)."""

    def __init__(self, reason: str, detail: str) -> None:
        detail = redact(detail)
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class ExchangeSetupError(Exception):
    """The venue account cannot be traded as configured; the message says what to fix."""

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))


class Exchange(Protocol):
    name: str  # the provider id from exchange.yaml
    account_id: str  # the venue account all traders on this provider share
    fee_taker: Decimal
    supports_triggers: bool  # stops and targets can rest on the venue

    async def start(self) -> list[str]:
        """Pre-flight checks; raises :class:`ExchangeSetupError`. Returns notes for the log."""
        ...

    async def assets(self) -> Mapping[str, AssetRules]: ...

    async def set_leverage(self, coin: str, leverage: int) -> None:
        """Cross margin at ``leverage`` for ``coin``; raises ``VenueRefused``/``ExchangeError``."""
        ...

    async def place(self, ticket: OrderTicket) -> OrderReport: ...

    async def modify(self, cloid: str, ticket: OrderTicket) -> OrderReport:
        """Replace the open order ``cloid`` by ``ticket`` (which carries a new cloid)."""
        ...

    async def cancel(self, coin: str, cloid: str) -> bool:
        """True when canceled; False when the venue had no such open order."""
        ...

    async def order_status(self, cloid: str) -> OrderReport: ...

    async def open_orders(self) -> list[VenueOrder]: ...

    async def fills_since(self, since: datetime) -> list[VenueFill]:
        """The account's fills at or after ``since``, oldest first."""
        ...

    async def funding_since(self, since: datetime) -> list[VenueFunding]: ...

    async def transfers_since(self, since: datetime) -> list[VenueTransfer]:
        """Deposits, withdrawals and transfers at or after ``since``, oldest first."""
        ...

    async def account_state(self) -> VenueAccountState: ...


@runtime_checkable
class MarkedToMarket(Protocol):
    """A venue that needs to be told the prices and the time (the in-process simulator)."""

    def mark(
        self,
        prices: Mapping[str, Decimal],
        at: datetime,
        funding: Mapping[str, Decimal] | None = None,
    ) -> None: ...


@runtime_checkable
class PathMarked(Protocol):
    """A venue told the prices that can take a whole minute's path (the simulator)."""

    def mark_path(
        self,
        path: MinutePath,
        at: datetime,
        funding: Mapping[str, Decimal] | None = None,
    ) -> None:
        """Walk ``path`` (the points its venue has not seen yet), the close at ``at``."""
        ...


class GateMemory(Protocol):
    """Where a trader's trigger gates are kept between runs (``domain.trigger_memory``)."""

    def load(self, trader_id: str) -> Mapping[str, Any] | None: ...

    def save(self, trader_id: str, data: Mapping[str, Any]) -> None: ...


# -- decision models --------------------------------------------------------------------


def prompt_digest(system: str, user: str) -> str:
    """A prompt's digest: sha256 of the system and user texts joined by a NUL (the prompt
    cache's key and what ``DecisionRequested`` records)."""
    return hashlib.sha256(f"{system}\x00{user}".encode()).hexdigest()


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
        detail = redact(detail)
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.latency_ms = latency_ms


class DecisionModel(Protocol):
    """A model that decides. One that answers inside this process, at no cost and with no
    effect outside it (a baseline), sets a class attribute ``in_process = True``: a cycle
    asking only such models records its question together with the answer, in one
    transaction (nothing outside could have happened in between)."""

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
    """Alerts kept in memory (and logged by the caller); the default sink. ``forward``:
    other sinks (a webhook) that get every alert too."""

    sent: list[tuple[str, str, str]] = field(default_factory=list)
    forward: list[Alerts] = field(default_factory=list)

    def alert(self, trader: str, kind: str, message: str) -> None:
        self.sent.append((trader, kind, message))
        for sink in self.forward:
            sink.alert(trader, kind, message)
