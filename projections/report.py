"""A run's report, from its view documents: per trader the equity curve against BTC
buy-and-hold, drawdown, exposure, the KPIs with bootstrap intervals, and the trades.

Pure: documents in, plain data out (rendering to HTML and PNG is the infrastructure's).
The inputs are the documents the API serves, so a report of a backtest and of a live arena
are made the same way, and a report never reads the event store.

* The equity curve is a trader's hourly account rows (``account-totals``: each the last
  sample of its hour). The newest row belongs to an hour still under way, so the KPIs leave
  it out (the charts show it); a missing hour (an arena stopped for a while) is not bridged:
  the KPIs use the longest run of consecutive hours, on the grid of the run's first row,
  and the report says how many rows it left out.
* Exposure is the gross notional of the open positions (|quantity| × mark) over equity.
* A trade's funding is what its net P&L holds beyond gross P&L and commissions.
* The fingerprint is a SHA-256 over the trades in a canonical order and encoding: two runs
  with the same inputs must print the same one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import msgspec

from projections.documents import (
    AccountTotal,
    AccountTotalsDocument,
    AnalyticsDocument,
    TradeDoc,
    TradesDocument,
)
from projections.statistics import (
    HOUR,
    BootstrapSettings,
    EquityCurve,
    Kpis,
    TradeRecord,
    compute_kpis,
)

#: The buy-and-hold baseline's model id in the account rows.
BASELINE = "buynhold_btc"


@dataclass(frozen=True)
class Point:
    time: datetime
    equity: float
    drawdown: float  # below the running peak, as a positive fraction
    exposure: float  # gross notional of open positions / equity


@dataclass(frozen=True)
class TraderReport:
    model_id: str
    points: list[Point]
    kpis: Kpis
    ai_cost_usd: float
    rows_left_out: int  # account rows outside the longest run of consecutive hours
    num_trades: int


@dataclass(frozen=True)
class RunReport:
    traders: list[TraderReport]
    baseline: TraderReport | None
    trades: list[TradeDoc]
    fingerprint: str
    generated_from: dict[str, int] = field(default_factory=dict)  # document: rows read


def _money(value: float) -> Decimal:
    return Decimal(repr(value))


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def longest_hourly_run(rows: list[AccountTotal]) -> list[AccountTotal]:
    """The longest stretch of rows one hourly marker apart (the earliest on a tie)."""
    ordered = sorted(rows, key=lambda row: row.since_inception_hourly_marker)
    best: list[AccountTotal] = []
    current: list[AccountTotal] = []
    for row in ordered:
        if current and row.since_inception_hourly_marker != (
            current[-1].since_inception_hourly_marker + 1
        ):
            current = []
        current.append(row)
        if len(current) > len(best):
            best = list(current)
    return best


def _exposure(row: AccountTotal) -> float:
    if row.dollar_equity <= 0:
        return 0.0
    gross = sum(abs(p.quantity) * p.current_price for p in row.positions.values())
    return gross / row.dollar_equity


def _points(rows: list[AccountTotal]) -> list[Point]:
    points = []
    peak = 0.0
    for row in rows:
        peak = max(peak, row.dollar_equity)
        drawdown = 0.0 if peak <= 0 else max(0.0, 1.0 - row.dollar_equity / peak)
        points.append(Point(_at(row.timestamp), row.dollar_equity, drawdown, _exposure(row)))
    return points


def trade_record(trade: TradeDoc) -> TradeRecord:
    gross = _money(trade.realized_gross_pnl)
    fees = _money(trade.total_commission_dollars)
    net = _money(trade.realized_net_pnl)
    notional = abs(trade.entry_sz) * trade.entry_price + abs(trade.exit_sz) * trade.exit_price
    return TradeRecord(
        opened_at=_at(trade.entry_time),
        closed_at=_at(trade.exit_time),
        gross_pnl=gross,
        fees=fees,
        funding=net - gross + fees,
        traded_notional=_money(notional),
    )


def _trader(
    model_id: str,
    rows: list[AccountTotal],
    trades: list[TradeDoc],
    ai_cost: float,
    settings: BootstrapSettings,
) -> TraderReport:
    ordered = sorted(rows, key=lambda row: row.since_inception_hourly_marker)
    run = longest_hourly_run(ordered[:-1] if len(ordered) > 1 else ordered)
    first = _at(run[0].timestamp) if run else _at(0)
    curve = EquityCurve(
        # On the hourly grid by marker: a tick a few seconds late does not unhour a row.
        times=[
            first
            + HOUR * (row.since_inception_hourly_marker - run[0].since_inception_hourly_marker)
            for row in run
        ],
        equity=[_money(row.dollar_equity) for row in run],
    )
    kpis = compute_kpis(
        curve,
        [trade_record(t) for t in trades],
        ai_cost=_money(ai_cost),
        period=HOUR,
        settings=settings,
    )
    return TraderReport(
        model_id=model_id,
        points=_points(ordered),
        kpis=kpis,
        ai_cost_usd=ai_cost,
        rows_left_out=len(rows) - len(run),
        num_trades=len(trades),
    )


class _FingerprintTrade(msgspec.Struct, array_like=True):
    model_id: str
    symbol: str
    side: str
    quantity: float
    entry_time: float
    entry_price: float
    exit_time: float
    exit_price: float
    realized_net_pnl: float
    close_reason: str


def trades_fingerprint(trades: list[TradeDoc]) -> str:
    """SHA-256 of the trades (what was traded, when, at what price, for what P&L), in a
    canonical order; venue order and fill ids are left out, as a venue numbers them."""
    rows = sorted(
        (
            _FingerprintTrade(
                t.model_id,
                t.symbol,
                t.side,
                t.quantity,
                t.entry_time,
                t.entry_price,
                t.exit_time,
                t.exit_price,
                t.realized_net_pnl,
                t.close_reason,
            )
            for t in trades
        ),
        key=lambda r: (r.model_id, r.entry_time, r.symbol, r.exit_time, r.side),
    )
    return hashlib.sha256(msgspec.json.encode(rows)).hexdigest()


def build_report(
    account_totals: AccountTotalsDocument,
    trades: TradesDocument,
    analytics: AnalyticsDocument | None = None,
    *,
    seed: int = 0,
    resamples: int = 2000,
) -> RunReport:
    """The report of one run. ``seed`` fixes the bootstrap: the same documents and seed
    give the same intervals."""
    settings = BootstrapSettings(seed=seed, resamples=resamples)
    by_model: dict[str, list[AccountTotal]] = {}
    for row in account_totals.accountTotals:
        by_model.setdefault(row.model_id, []).append(row)
    trades_by_model: dict[str, list[TradeDoc]] = {}
    for trade in trades.trades:
        trades_by_model.setdefault(trade.model_id, []).append(trade)
    cost: dict[str, float] = {}
    for item in analytics.analytics if analytics is not None else []:
        cost[item.model_id] = float(item.invocation_breakdown_table.get("total_cost_usd", 0.0))
    reports = {
        model: _trader(model, rows, trades_by_model.get(model, []), cost.get(model, 0.0), settings)
        for model, rows in sorted(by_model.items())
    }
    baseline = reports.pop(BASELINE, None)
    return RunReport(
        traders=list(reports.values()),
        baseline=baseline,
        trades=sorted(trades.trades, key=lambda t: (t.exit_time, t.model_id, t.symbol)),
        fingerprint=trades_fingerprint(trades.trades),
        generated_from={
            "account-totals.json": len(account_totals.accountTotals),
            "trades.json": len(trades.trades),
        },
    )


def span(report: RunReport) -> tuple[datetime, datetime] | None:
    """The first and last account row of any trader (None: no rows)."""
    times = [p.time for t in [*report.traders, *filter(None, [report.baseline])] for p in t.points]
    return (min(times), max(times)) if times else None


def _interval(value: object) -> dict[str, float | None]:
    estimate, low, high = (getattr(value, name) for name in ("estimate", "low", "high"))
    return {"estimate": estimate, "low": low, "high": high}


def trader_summary(trader: TraderReport) -> dict[str, object]:
    """One trader's KPIs as JSON-ready values (intervals as estimate/low/high)."""
    returns, trades = trader.kpis.returns, trader.kpis.trades
    return {
        "model_id": trader.model_id,
        "return": _interval(returns.total_return),
        "sharpe": _interval(returns.sharpe),
        "sortino": _interval(returns.sortino),
        "max_drawdown": returns.max_drawdown,
        "hourly_returns": returns.num_returns,
        "bootstrap_block_hours": returns.block_length,
        "num_trades": trades.num_trades,
        "win_rate": trades.win_rate,
        "profit_factor": trades.profit_factor,
        "avg_hold_hours": trades.avg_hold_hours,
        "turnover": trader.kpis.turnover,
        "turnover_per_day": trader.kpis.turnover_per_day,
        "gross_pnl": trades.gross_pnl,
        "net_pnl": trades.net_pnl,
        "fees_share_of_gross": trades.fees_share_of_gross,
        "funding_share_of_gross": trades.funding_share_of_gross,
        "ai_cost_usd": trader.ai_cost_usd,
        "ai_cost_per_trade": trades.ai_cost_per_trade,
        "ai_cost_per_pnl_dollar": trades.ai_cost_per_pnl_dollar,
        "final_equity": trader.points[-1].equity if trader.points else None,
        "rows_left_out": trader.rows_left_out,
    }


def report_document(report: RunReport) -> dict[str, object]:
    """The report's JSON: KPIs per trader and baseline, the trades, the fingerprint."""
    window = span(report)
    return {
        "fingerprint": report.fingerprint,
        "from": window[0].isoformat() if window else None,
        "to": window[1].isoformat() if window else None,
        "period": str(timedelta(hours=1)),
        "traders": [trader_summary(t) for t in report.traders],
        "baseline": trader_summary(report.baseline) if report.baseline else None,
        "trades": [msgspec.to_builtins(t) for t in report.trades],
        "generated_from": report.generated_from,
    }
