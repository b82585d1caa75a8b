"""The arena's statistics with error bars: what ``nof0 report`` says of a backtest, for the
live arena (``/api/statistics``).

Each trader's hourly returns give total return, Sharpe and Sortino with stationary-bootstrap
intervals, beside the trade KPIs and the P&L split against BTC (the buy-and-hold baseline).
A ranking by one season's Sharpe says little when the intervals overlap: each trader is also
compared with the baseline, and called better or worse only when their return intervals do
not overlap. Pure: the three view documents in, one document out.
"""

from __future__ import annotations

import msgspec

from projections.documents import AccountTotalsDocument, AnalyticsDocument, TradesDocument
from projections.report import TraderReport, build_report, trader_summary

#: Resamples per statistic: enough for stable 95 % bounds, small enough to refresh often.
LIVE_RESAMPLES = 1000


class IntervalDoc(msgspec.Struct):
    estimate: float | None
    low: float | None
    high: float | None


class TraderStatistics(msgspec.Struct):
    model_id: str
    total_return: IntervalDoc = msgspec.field(name="return")
    sharpe: IntervalDoc
    sortino: IntervalDoc
    max_drawdown: float
    hourly_returns: int
    bootstrap_block_hours: float
    num_trades: int
    win_rate: float | None
    profit_factor: float | None
    avg_hold_hours: float | None
    turnover: float | None
    turnover_per_day: float | None
    gross_pnl: float
    net_pnl: float
    fees_share_of_gross: float | None
    funding_share_of_gross: float | None
    ai_cost_usd: float
    ai_cost_per_trade: float | None
    ai_cost_per_pnl_dollar: float | None
    final_equity: float | None
    rows_left_out: int
    pnl_split: dict[str, float] | None
    #: Against BTC buy-and-hold by the return intervals: "better", "worse", or "not
    #: distinguishable" (they overlap, or one is undefined); None for the baseline itself.
    against_btc: str | None = None


class StatisticsDocument(msgspec.Struct):
    traders: list[TraderStatistics]
    baseline: TraderStatistics | None
    confidence: float
    resamples: int
    seed: int


def _verdict(trader: TraderReport, baseline: TraderReport | None) -> str:
    if baseline is None:
        return "not distinguishable"
    mine, btc = trader.kpis.returns.total_return, baseline.kpis.returns.total_return
    if mine.low is None or mine.high is None or btc.low is None or btc.high is None:
        return "not distinguishable"
    if mine.low > btc.high:
        return "better"
    if mine.high < btc.low:
        return "worse"
    return "not distinguishable"


def _row(trader: TraderReport, verdict: str | None) -> TraderStatistics:
    summary = trader_summary(trader)
    row = msgspec.convert(summary, TraderStatistics, from_attributes=False)
    return msgspec.structs.replace(row, against_btc=verdict)


def live_statistics(
    account_totals: AccountTotalsDocument,
    trades: TradesDocument,
    analytics: AnalyticsDocument | None = None,
    *,
    seed: int = 0,
    resamples: int = LIVE_RESAMPLES,
) -> StatisticsDocument:
    """Same documents and seed, same answer (the bootstrap is seeded)."""
    report = build_report(account_totals, trades, analytics, seed=seed, resamples=resamples)
    baseline = report.baseline
    return StatisticsDocument(
        traders=[_row(t, _verdict(t, baseline)) for t in report.traders],
        baseline=None if baseline is None else _row(baseline, None),
        confidence=0.95,
        resamples=resamples,
        seed=seed,
    )
