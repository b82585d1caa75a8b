"""The live arena's statistics: the report's KPIs with intervals, and each trader against
BTC buy-and-hold only where the intervals say so."""

from __future__ import annotations

import msgspec

from projections.documents import TradesDocument
from projections.live_statistics import StatisticsDocument, live_statistics
from projections.report import BASELINE
from tests.unit.projections.test_report import row, totals, trade

HOURS = 200


def curve(model: str, drift: float, wiggle: float) -> list:
    equity, rows = 1000.0, []
    for hour in range(HOURS):
        equity *= 1 + drift + (wiggle if hour % 2 else -wiggle)
        rows.append(row(model, hour, equity))
    return rows


def test_intervals_per_trader_and_a_verdict_against_btc() -> None:
    doc = totals(
        *curve("steady", 0.002, 0.001),  # far above BTC, little noise
        *curve("noisy", 0.0, 0.03),  # zero drift, wide interval
        *curve("bleeding", -0.002, 0.001),
        *curve(BASELINE, 0.0, 0.001),
    )
    trades = TradesDocument(trades=[trade("steady", 1, 5, 10.0, 1.0, 9.0)])
    stats = live_statistics(doc, trades, seed=3)
    by_id = {t.model_id: t for t in stats.traders}
    assert set(by_id) == {"steady", "noisy", "bleeding"}
    assert stats.baseline is not None
    assert stats.baseline.model_id == BASELINE
    assert by_id["steady"].against_btc == "better"
    assert by_id["bleeding"].against_btc == "worse"
    assert by_id["noisy"].against_btc == "not distinguishable"
    steady = by_id["steady"]
    assert steady.total_return.low is not None
    assert steady.total_return.high is not None
    assert steady.total_return.low < steady.total_return.estimate < steady.total_return.high
    assert steady.num_trades == 1
    assert steady.hourly_returns == HOURS - 2  # the unfinished newest hour is left out
    # Deterministic (seeded), and the wire form names the return "return".
    again = live_statistics(doc, trades, seed=3)
    assert msgspec.json.encode(again) == msgspec.json.encode(stats)
    wire = msgspec.json.decode(msgspec.json.encode(stats))
    assert "return" in wire["traders"][0]
    assert msgspec.convert(wire, StatisticsDocument) == stats


def test_without_a_baseline_nobody_is_called_better() -> None:
    stats = live_statistics(totals(*curve("steady", 0.002, 0.001)), TradesDocument(trades=[]))
    assert stats.baseline is None
    assert [t.against_btc for t in stats.traders] == ["not distinguishable"]
