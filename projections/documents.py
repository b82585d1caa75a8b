"""The view documents, in nof1.ai's JSON shapes (``shared/contracts/nof1-api``).

Times: ``serverTime`` and price timestamps are unix milliseconds; every other time is unix
seconds with a fraction. Money is a JSON number. The API adds ``serverTime``.
Fields beyond nof1's (``close_reason`` on trades, the cost fields on conversations) are
additions, never renames.
"""

from __future__ import annotations

import msgspec

from projections.status import ControlRecord, TraderStatus, VenueStatus

# -- crypto-prices ----------------------------------------------------------------------


class Price(msgspec.Struct):
    symbol: str
    price: float
    timestamp: int  # unix ms


class CryptoPricesDocument(msgspec.Struct):
    prices: dict[str, Price]


# -- positions and account-totals ------------------------------------------------------


class ExitPlanDoc(msgspec.Struct):
    profit_target: float
    stop_loss: float
    invalidation_condition: str


class PositionDoc(msgspec.Struct):
    entry_oid: int
    risk_usd: float
    confidence: float
    index_col: None
    exit_plan: ExitPlanDoc
    entry_time: float
    symbol: str
    entry_price: float
    tp_oid: int
    margin: float
    wait_for_fill: bool
    sl_oid: int
    oid: int
    current_price: float
    closed_pnl: float
    liquidation_price: float
    commission: float
    leverage: float
    slippage: float
    quantity: float
    unrealized_pnl: float


class AccountTotal(msgspec.Struct):
    id: str
    model_id: str
    timestamp: float
    dollar_equity: float
    realized_pnl: float
    total_unrealized_pnl: float
    cum_pnl_pct: float
    sharpe_ratio: float
    since_inception_hourly_marker: int
    since_inception_minute_marker: int
    positions: dict[str, PositionDoc]


class AccountTotalsDocument(msgspec.Struct):
    accountTotals: list[AccountTotal]
    lastHourlyMarkerRead: int


class TraderPositions(msgspec.Struct):
    model_id: str
    positions: dict[str, PositionDoc]


class PositionsDocument(msgspec.Struct):
    accountTotals: list[TraderPositions]


# -- leaderboard and since-inception ---------------------------------------------------


class LeaderboardEntry(msgspec.Struct):
    id: str
    num_trades: int
    sharpe: float
    win_dollars: float
    num_losses: int
    lose_dollars: float
    return_pct: float
    equity: float
    num_wins: int


class LeaderboardDocument(msgspec.Struct):
    leaderboard: list[LeaderboardEntry]


class SinceInceptionValue(msgspec.Struct):
    id: str
    model_id: str
    nav_since_inception: float
    inception_date: float
    num_invocations: int


class SinceInceptionDocument(msgspec.Struct):
    sinceInceptionValues: list[SinceInceptionValue]


# -- trades ---------------------------------------------------------------------------


class LiquidationDoc(msgspec.Struct):
    method: str
    mark_px: float


class TradeDoc(msgspec.Struct):
    id: str
    model_id: str
    symbol: str
    side: str
    trade_type: str
    trade_id: str
    quantity: float
    leverage: float
    confidence: float
    entry_price: float
    entry_time: float
    entry_human_time: str
    entry_sz: float
    entry_tid: int
    entry_oid: int
    entry_crossed: bool
    entry_liquidation: LiquidationDoc | None
    entry_commission_dollars: float
    entry_closed_pnl: float
    exit_price: float
    exit_time: float
    exit_human_time: str
    exit_sz: float
    exit_tid: int
    exit_oid: int
    exit_crossed: bool
    exit_liquidation: LiquidationDoc | None
    exit_commission_dollars: float
    exit_closed_pnl: float
    exit_plan: dict[str, float | str]  # {} when the position had no exit plan
    realized_gross_pnl: float
    realized_net_pnl: float
    total_commission_dollars: float
    close_reason: str


class TradesDocument(msgspec.Struct):
    trades: list[TradeDoc]


# -- analytics --------------------------------------------------------------------------


class ModelAnalytics(msgspec.Struct):
    id: str
    model_id: str
    updated_at: float
    last_trade_exit_time: float
    last_convo_doc_id: str
    last_convo_timestamp: float
    last_trade_doc_id: str
    fee_pnl_moves_breakdown_table: dict[str, float | int]
    winners_losers_breakdown_table: dict[str, float | int]
    signals_breakdown_table: dict[str, float | int]
    longs_shorts_breakdown_table: dict[str, float | int]
    overall_trades_overview_table: dict[str, float | int]
    invocation_breakdown_table: dict[str, float | int]


class AnalyticsDocument(msgspec.Struct):
    analytics: list[ModelAnalytics]


# -- conversations ----------------------------------------------------------------------


class DecisionDoc(msgspec.Struct):
    """One coin's decision as nof1 shows it; a number the model did not state is 0
    (the raw answer is kept in ``raw_response``)."""

    coin: str
    signal: str
    quantity: float
    leverage: int
    profit_target: float
    stop_loss: float
    invalidation_condition: str
    confidence: float
    risk_usd: float
    justification: str


class ConversationError(msgspec.Struct):
    reason: str
    detail: str


class Conversation(msgspec.Struct):
    id: str
    model_id: str
    timestamp: float
    cycle_id: int
    user_prompt: str
    cot_trace: str
    cot_trace_summary: str
    llm_response: dict[str, DecisionDoc]
    model: str
    raw_response: str
    error: ConversationError | None
    tokens_in: int
    tokens_out: int
    cost_usd: float
    latency_ms: int
    prompt_version: str
    prompt_digest: str


class ConversationsDocument(msgspec.Struct):
    conversations: list[Conversation]


class StatusDocument(msgspec.Struct):
    """nof0's own (``/api/status``): see ``projections.status``."""

    traders: list[TraderStatus]
    venues: list[VenueStatus]
    control_actions: list[ControlRecord] = []  # the newest operator actions, newest last


#: The nine MCP files, nof0's status, and the document type each holds.
FILES: dict[str, type[msgspec.Struct]] = {
    "crypto-prices.json": CryptoPricesDocument,
    "account-totals.json": AccountTotalsDocument,
    "positions.json": PositionsDocument,
    "leaderboard.json": LeaderboardDocument,
    "since-inception-values.json": SinceInceptionDocument,
    "trades.json": TradesDocument,
    "analytics.json": AnalyticsDocument,
    "conversations.json": ConversationsDocument,
    "status.json": StatusDocument,
}
ANALYTICS_MODEL_FILE = "analytics-{model_id}.json"
