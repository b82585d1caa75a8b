"""The simulator's records. ``Core`` is everything that changes in place (accounts, open orders,
nonces, agents, counters); the history records (fills, funding, finished orders) are appended
once and never change. All money is ``Decimal``; every time is integer milliseconds."""

from __future__ import annotations

from decimal import Decimal

import msgspec

ZERO = Decimal(0)


class Trigger(msgspec.Struct):
    is_market: bool
    px: Decimal
    tpsl: str  # "tp" | "sl"

    def fires_above(self, is_buy: bool) -> bool:
        """A sell take-profit or a buy stop fires when the mark rises to the trigger."""
        return (self.tpsl == "tp") != is_buy


class Order(msgspec.Struct):
    oid: int
    user: str
    asset: int
    coin: str
    is_buy: bool
    limit_px: Decimal
    orig_sz: Decimal
    sz: Decimal  # remaining
    reduce_only: bool
    timestamp: int
    tif: str | None = None  # Gtc | Ioc | Alo; None for an untriggered trigger order
    trigger: Trigger | None = None
    cloid: str | None = None
    position_tpsl: bool = False
    parent: int | None = None  # normalTpsl child: its parent's oid
    group: int | None = None  # TP/SL siblings share it
    waiting: bool = False  # normalTpsl child whose parent has not filled yet
    triggered: bool = False
    filled: Decimal = ZERO
    status: str = "open"
    status_ts: int = 0
    liquidation: bool = False


class Position(msgspec.Struct):
    szi: Decimal
    basis: Decimal  # signed cost of the open size: Σ size × price of what is still open
    isolated: bool = False
    iso_raw: Decimal = ZERO  # isolated cash (HL's leverage.rawUsd)
    funding_open: Decimal = ZERO  # paid since the position opened (HL sign: + = paid)
    funding_change: Decimal = ZERO  # paid since the size last changed


class Leverage(msgspec.Struct):
    cross: bool
    value: int


class Account(msgspec.Struct):
    cash: Decimal = ZERO  # cross rawUsd
    funded: bool = False
    positions: dict[str, Position] = {}
    leverage: dict[str, Leverage] = {}
    open_orders: dict[int, Order] = {}
    funding_all: dict[str, Decimal] = {}  # paid per coin, all time
    volume: Decimal = ZERO  # USD traded, all time
    daily_volume: dict[str, list[Decimal]] = {}  # UTC date -> [taker USD, maker USD]
    requests: int = 0
    cancel_at: int | None = None
    cancels_fired: dict[str, int] = {}  # UTC date -> scheduled cancels that fired


class MarketPrices(msgspec.Struct):
    mid: Decimal | None = None
    mark: Decimal | None = None
    oracle: Decimal | None = None
    funding_rate: Decimal | None = None  # fed hourly rate; None = the configured one
    taken_bids: dict[int, Decimal] = {}  # level index -> size taken since the last advance
    taken_asks: dict[int, Decimal] = {}


class Agent(msgspec.Struct):
    master: str
    name: str  # "" = the unnamed agent
    valid_until: int | None = None


class Core(msgspec.Struct):
    version: int = 1
    seq: int = 0  # last history record this core state includes
    now_ms: int = 0
    next_oid: int = 1
    next_tid: int = 1
    epoch: int = 0  # price updates so far: seeds the synthetic book
    funding_hour: int | None = None  # last settled hour boundary (ms)
    markets: dict[str, MarketPrices] = {}
    accounts: dict[str, Account] = {}
    agents: dict[str, Agent] = {}
    vaults: dict[str, str] = {}  # vault -> leader
    nonces: dict[str, list[int]] = {}  # signer -> the 100 highest, ascending


# -- history ------------------------------------------------------------------------------------


class Fill(msgspec.Struct, tag="fill"):
    seq: int
    user: str
    coin: str
    px: Decimal
    sz: Decimal
    is_buy: bool
    time: int
    start: Decimal
    dir: str
    closed_pnl: Decimal
    hash: str
    oid: int
    crossed: bool
    fee: Decimal
    tid: int
    cloid: str | None = None
    liquidation_mark: Decimal | None = None


class UserFunding(msgspec.Struct, tag="funding"):
    seq: int
    user: str
    coin: str
    time: int
    usdc: Decimal  # + = received
    szi: Decimal
    rate: Decimal
    hash: str


class LedgerUpdate(msgspec.Struct, tag="ledger"):
    """Money in or out of an account without trading (userNonFundingLedgerUpdates)."""

    seq: int
    user: str
    time: int
    kind: str  # "deposit" | "withdraw"
    usdc: Decimal  # the amount, always positive
    hash: str
    nonce: int = 0


class FundingRate(msgspec.Struct, tag="rate"):
    seq: int
    coin: str
    time: int
    rate: Decimal
    premium: Decimal


class OrderDone(msgspec.Struct, tag="order"):
    seq: int
    order: Order


Record = Fill | UserFunding | LedgerUpdate | FundingRate | OrderDone
