"""The run report from view documents: curves, KPIs with intervals, the fingerprint."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from projections.documents import (
    AccountTotal,
    AccountTotalsDocument,
    AnalyticsDocument,
    ModelAnalytics,
    PositionDoc,
    TradeDoc,
    TradesDocument,
)
from projections.report import (
    BASELINE,
    build_report,
    longest_hourly_run,
    report_document,
    trade_record,
    trades_fingerprint,
)

T0 = datetime(2025, 10, 17, tzinfo=UTC).timestamp()


def position(quantity: float, price: float) -> PositionDoc:
    fields = {f.name: f.type for f in msgspec.structs.fields(PositionDoc)}
    values: dict[str, object] = {}
    for name, kind in fields.items():
        values[name] = 0 if kind in (int, float) else (False if kind is bool else None)
    values.update(
        symbol="BTC",
        quantity=quantity,
        current_price=price,
        exit_plan={"profit_target": 0.0, "stop_loss": 0.0, "invalidation_condition": ""},
    )
    return msgspec.convert(values, PositionDoc)


def row(
    model: str, hour: int, equity: float, *, minute: int = 58, **positions: PositionDoc
) -> AccountTotal:
    return AccountTotal(
        id=f"{model}_{hour}",
        model_id=model,
        timestamp=T0 + hour * 3600 + minute * 60,
        dollar_equity=equity,
        realized_pnl=0.0,
        total_unrealized_pnl=0.0,
        cum_pnl_pct=0.0,
        sharpe_ratio=0.0,
        since_inception_hourly_marker=hour,
        since_inception_minute_marker=hour * 60 + minute,
        positions=dict(positions),
    )


def trade(
    model: str,
    opened_h: float,
    closed_h: float,
    gross: float,
    fees: float,
    net: float,
    **extra: object,
) -> TradeDoc:
    values: dict[str, object] = {f.name: 0 for f in msgspec.structs.fields(TradeDoc)}
    values.update(
        id=f"{model}-{opened_h}",
        model_id=model,
        symbol="BTC",
        side="long",
        trade_type="long",
        trade_id="t",
        entry_time=T0 + opened_h * 3600,
        exit_time=T0 + closed_h * 3600,
        entry_human_time="",
        exit_human_time="",
        entry_crossed=True,
        exit_crossed=True,
        entry_liquidation=None,
        exit_liquidation=None,
        entry_price=100.0,
        exit_price=110.0,
        entry_sz=1.0,
        exit_sz=1.0,
        quantity=1.0,
        exit_plan={},
        realized_gross_pnl=gross,
        total_commission_dollars=fees,
        realized_net_pnl=net,
        close_reason="signal",
    )
    values.update(extra)
    return msgspec.convert(values, TradeDoc)


def totals(*rows: AccountTotal) -> AccountTotalsDocument:
    return AccountTotalsDocument(accountTotals=list(rows), lastHourlyMarkerRead=0)


CURVE = [1000.0, 1010.0, 1005.0, 1020.0, 1030.0, 1025.0, 1040.0, 1050.0]


def test_the_kpis_leave_out_the_unfinished_newest_hour() -> None:
    rows = [row("a", h, e) for h, e in enumerate(CURVE)]
    rows.append(row("a", len(CURVE), 5000.0, minute=1))  # an hour just begun, far off
    report = build_report(totals(*rows), TradesDocument(trades=[]))
    (trader,) = report.traders
    assert trader.kpis.returns.num_returns == len(CURVE) - 1
    assert trader.kpis.returns.total_return.estimate == pytest.approx(1050 / 1000 - 1)
    assert len(trader.points) == len(CURVE) + 1  # the chart still shows it
    assert trader.points[-1].equity == 5000.0


def test_a_missing_hour_is_not_bridged() -> None:
    hours = [0, 1, 2, 5, 6, 7, 8, 9, 10]  # 3 and 4 are missing
    rows = longest_hourly_run([row("a", h, 1000.0 + h) for h in hours])
    assert [r.since_inception_hourly_marker for r in rows] == [5, 6, 7, 8, 9, 10]
    report = build_report(
        totals(*[row("a", h, 1000.0 + h) for h in hours]), TradesDocument(trades=[])
    )
    assert report.traders[0].rows_left_out == 4  # 0-2, and the unfinished newest hour


def test_drawdown_and_exposure_of_each_point() -> None:
    rows = [
        row("a", 0, 1000.0),
        row("a", 1, 1200.0, BTC=position(0.01, 60_000.0)),
        row("a", 2, 900.0, BTC=position(-0.02, 45_000.0)),
    ]
    points = build_report(totals(*rows), TradesDocument(trades=[])).traders[0].points
    assert [p.drawdown for p in points] == pytest.approx([0.0, 0.0, 0.25])
    assert [p.exposure for p in points] == pytest.approx([0.0, 0.5, 1.0])


def test_funding_is_what_net_pnl_holds_beyond_gross_and_fees() -> None:
    record = trade_record(trade("a", 0, 2, gross=10.0, fees=1.5, net=7.5))
    assert record.funding == pytest.approx(-1.0)  # paid funding
    assert record.net_pnl == pytest.approx(7.5)
    assert float(record.traded_notional) == pytest.approx(100.0 + 110.0)


def test_the_baseline_is_reported_apart_and_costs_come_from_analytics() -> None:
    rows = [row(m, h, e) for m in ("a", BASELINE) for h, e in enumerate(CURVE)]
    tables: dict[str, dict[str, float | int]] = {
        name: {}
        for name in (
            "fee_pnl_moves_breakdown_table",
            "winners_losers_breakdown_table",
            "signals_breakdown_table",
            "longs_shorts_breakdown_table",
            "overall_trades_overview_table",
        )
    }
    analytics = AnalyticsDocument(
        analytics=[
            ModelAnalytics(
                id="a",
                model_id="a",
                updated_at=0,
                last_trade_exit_time=0,
                last_convo_doc_id="",
                last_convo_timestamp=0,
                last_trade_doc_id="",
                invocation_breakdown_table={"total_cost_usd": 0.42},
                **tables,
            )
        ]
    )
    trades = [trade("a", 0, 1, 5.0, 1.0, 4.0), trade("a", 2, 3, -2.0, 1.0, -3.0)]
    report = build_report(totals(*rows), TradesDocument(trades=trades), analytics)
    assert [t.model_id for t in report.traders] == ["a"]
    assert report.baseline is not None
    assert report.baseline.model_id == BASELINE
    (a,) = report.traders
    assert a.ai_cost_usd == pytest.approx(0.42)
    assert a.kpis.trades.ai_cost_per_trade == pytest.approx(0.21)
    assert a.kpis.trades.win_rate == pytest.approx(0.5)
    document = report_document(report)
    assert document["baseline"]["model_id"] == BASELINE  # type: ignore[index]
    assert len(document["trades"]) == 2  # type: ignore[arg-type]


def test_the_same_documents_and_seed_give_the_same_intervals() -> None:
    rows = [row("a", h, e) for h, e in enumerate(CURVE * 4)]
    first = report_document(build_report(totals(*rows), TradesDocument(trades=[]), seed=3))
    again = report_document(build_report(totals(*rows), TradesDocument(trades=[]), seed=3))
    other = report_document(build_report(totals(*rows), TradesDocument(trades=[]), seed=4))
    assert first == again
    sharpe = first["traders"][0]["sharpe"]  # type: ignore[index]
    assert sharpe["low"] < sharpe["estimate"] < sharpe["high"]
    assert other["traders"][0]["sharpe"] != sharpe  # type: ignore[index]


def test_the_fingerprint_is_the_trades_not_their_order_or_venue_ids() -> None:
    one, two = trade("a", 0, 1, 5.0, 1.0, 4.0), trade("b", 1, 2, -2.0, 1.0, -3.0)
    renumbered = msgspec.structs.replace(one, entry_tid=99, exit_oid=7, id="other")
    assert trades_fingerprint([one, two]) == trades_fingerprint([two, renumbered])
    moved = msgspec.structs.replace(one, exit_price=110.5)
    assert trades_fingerprint([one, two]) != trades_fingerprint([moved, two])
    assert trades_fingerprint([one]) != trades_fingerprint([one, two])
