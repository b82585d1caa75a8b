"""The status view: paused traders and why, refusals, venue findings and transfers."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import msgspec

from application.trading import TradingApp
from domain.trader import Trader
from domain.values import SkipReason
from domain.venue_account import VenueAccount
from projections.engine import CatchUp, ViewOutput
from projections.status import StatusProjector, StatusState
from tests.support.fakes import T0

D = Decimal


class Files:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def read(self, filename: str) -> bytes | None:
        return self.files.get(filename)

    def write(self, output: ViewOutput) -> None:
        self.files.update(output.files)


def status(app: TradingApp) -> dict[str, Any]:
    files = Files()
    CatchUp(app, files, [StatusProjector()], batch_size=7).run_until()
    decoded: dict[str, Any] = msgspec.json.decode(files.files["status.json"])
    msgspec.json.decode(files.files["status.json"], type=StatusState)  # reads back typed
    return decoded


def test_a_trader_s_pause_skips_and_model_switches_show() -> None:
    app = TradingApp(env={"NOF0_PERSISTENCE_MODULE": "eventsourcing.popo"})
    trader = Trader.register(
        config_id="alpha", name="Alpha", model="m1", allocation=D(1000), coins=["BTC"], at=T0
    )
    later = T0 + timedelta(minutes=3)
    trader.skip_cycle(reason=SkipReason.BUDGET, detail="over the daily cap", as_of=later)
    trader.switch_model("m2", "failures", later)
    trader.pause("underfunded", "the account holds 5.00 USDC less", later)
    app.save_trader(trader)
    (row,) = status(app)["traders"]
    assert row["model_id"] == "alpha"
    assert row["model"] == "m2"
    assert row["model_switches"] == 1
    assert row["paused"] is True
    assert row["pause_reason"] == "underfunded: the account holds 5.00 USDC less"
    assert row["paused_at"] == later.timestamp()
    assert row["cycles_skipped"] == 1
    assert row["last_skip"] == {
        "reason": "budget",
        "detail": "over the daily cap",
        "time": later.timestamp(),
    }
    trader.resume("operator", later)
    app.save_trader(trader)
    (row,) = status(app)["traders"]
    assert (row["paused"], row["pause_reason"], row["paused_at"]) == (False, "", None)


def test_venue_findings_open_and_clear_and_transfers_move_the_baseline() -> None:
    app = TradingApp(env={"NOF0_PERSISTENCE_MODULE": "eventsourcing.popo"})
    venue = VenueAccount.register(
        provider="sim", address="0x" + "ab" * 20, baseline_equity=D(10_000), at=T0
    )
    venue.track_transfers(T0, T0)
    at = T0 + timedelta(minutes=1)
    venue.detect_drift("equity", "the account equity is +3.00 USDC off", ["alpha"], at)
    venue.detect_drift("position:BTC", "BTC: books 0.1, venue 0", ["alpha"], at)
    venue.clear_drift("position:BTC", at)
    venue.observe_transfer(
        transfer_id="0x1:deposit", kind="deposit", amount=D(250), venue_time=at, at=at
    )
    venue.observe_transfer(
        transfer_id="0x2:withdraw", kind="withdraw", amount=D(-100), venue_time=at, at=at
    )
    for oid in (7, 8):
        venue.observe_order(
            oid=oid,
            cloid=None,
            coin="ETH",
            side="B",
            size=D(1),
            price=D(3000),
            trigger_price=None,
            reduce_only=False,
            at=at,
        )
    venue.order_gone(7, at)
    venue.observe_fill(
        fill_id="55",
        oid=9,
        cloid=None,
        coin="SOL",
        side="A",
        size=D(2),
        price=D(150),
        fee=D("0.1"),
        liquidation=False,
        at=at,
    )
    app.save_venue_account(venue)
    (row,) = status(app)["venues"]
    assert row["provider"] == "sim"
    assert row["baseline_equity"] == 10_150
    assert [f["key"] for f in row["findings"]] == ["equity"]
    assert row["findings"][0]["traders"] == ["alpha"]
    assert [(t["kind"], t["amount"]) for t in row["transfers"]] == [
        ("deposit", 250),
        ("withdraw", -100),
    ]
    assert row["foreign_orders_open"] == 1
    assert row["foreign_fills"] == 1
