"""The operator's listing: a row per configured trader, and the stranded ones."""

from __future__ import annotations

from decimal import Decimal

from application.trader_listing import stranded_traders, trader_rows
from application.trading import TradingApp
from domain.trader import Trader
from domain.values import Liquidity, OrderSide
from tests.support.fakes import T0


def arena() -> TradingApp:
    app = TradingApp(env={"NOF0_PERSISTENCE_MODULE": "eventsourcing.popo"})
    for config_id in ("alpha", "beta", "gone"):
        trader = Trader.register(
            config_id=config_id,
            name=config_id,
            model="m1",
            allocation=Decimal(1000),
            coins=["BTC"],
            at=T0,
        )
        if config_id != "alpha":
            trader.record_fill(
                "oid:1",
                price=Decimal(100000),
                size=Decimal("0.01"),
                fee=Decimal("0.5"),
                liquidity=Liquidity.TAKER,
                at=T0,
                coin="BTC",
                side=OrderSide.BUY,
            )
        app.save_trader(trader)
    return app


def test_a_row_per_configured_trader_in_the_configuration_s_order() -> None:
    rows = trader_rows(arena(), ["beta", "alpha", "new"])
    assert [(r["id"], r["registered"]) for r in rows] == [
        ("beta", True),
        ("alpha", True),
        ("new", False),
    ]
    assert rows[0]["positions"] == ["BTC"]
    assert rows[1] == {
        "id": "alpha",
        "registered": True,
        "model": "m1",
        "cycles": 0,
        "positions": [],
        "trades": 0,
        "paused": False,
        "pause_reason": "",
    }


def test_positions_no_started_trader_manages_are_stranded() -> None:
    lines = stranded_traders(arena(), configured=["alpha", "beta"], started=["alpha"])
    assert len(lines) == 2
    beta, gone = sorted(lines)
    assert "trader beta (auto_start is false) holds BTC" in beta
    assert "`nof0 traders flatten beta` closes them" in beta
    assert "trader gone (not in manager.yaml) holds BTC" in gone
