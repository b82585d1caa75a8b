"""SimVenue margin: leverage settings, cross and isolated maths, margin checks, liquidation.

The two-position account is the scenario of the research's composed fixture
(``info_clearinghouseState_two_positions_composed.json``): deposit 1000; buy 1 ETH @2400.0
cross 5x; sell 10 SOL @150.0 isolated 10x; marks ETH 2499.93, SOL 148.62.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from infrastructure.simulator.config import SimAsset
from infrastructure.simulator.engine import SimVenue
from infrastructure.simulator.margin import liquidation_price
from tests.unit.infrastructure.simulator.simkit import (
    ALICE,
    BNB,
    BTC,
    ETH,
    SOL,
    T0,
    D,
    config,
    fills,
    limit,
    one,
    position,
    prices,
    status_of,
    venue,
)

TWO_POSITIONS: dict[str, Any] = {
    "marginSummary": {
        "accountValue": "1111.975",
        "totalNtlPos": "3986.13",
        "totalRawUsd": "98.245",
        "totalMarginUsed": "663.786",
    },
    "crossMarginSummary": {
        "accountValue": "948.175",
        "totalNtlPos": "2499.93",
        "totalRawUsd": "-1551.755",
        "totalMarginUsed": "499.986",
    },
    "crossMaintenanceMarginUsed": "49.9986",
    "withdrawable": "448.189",
    "assetPositions": [
        {
            "type": "oneWay",
            "position": {
                "coin": "ETH",
                "szi": "1.0",
                "leverage": {"type": "cross", "value": 5},
                "entryPx": "2400.0",
                "positionValue": "2499.93",
                "unrealizedPnl": "99.93",
                "returnOnEquity": "0.2081875",
                "liquidationPx": "1583.42346939",
                "marginUsed": "499.986",
                "maxLeverage": 25,
                "cumFunding": {"allTime": "0.0", "sinceOpen": "0.0", "sinceChange": "0.0"},
            },
        },
        {
            "type": "oneWay",
            "position": {
                "coin": "SOL",
                "szi": "-10.0",
                "leverage": {"type": "isolated", "value": 10, "rawUsd": "1650.0"},
                "entryPx": "150.0",
                "positionValue": "1486.2",
                "unrealizedPnl": "13.8",
                "returnOnEquity": "0.092",
                "liquidationPx": "160.97560976",
                "marginUsed": "163.8",
                "maxLeverage": 20,
                "cumFunding": {"allTime": "0.0", "sinceOpen": "0.0", "sinceChange": "0.0"},
            },
        },
    ],
}


def leverage(sim: SimVenue, asset: int, value: int, *, cross: bool = True) -> dict[str, Any]:
    return sim.exchange(
        ALICE, {"type": "updateLeverage", "asset": asset, "isCross": cross, "leverage": value}
    )


def isolated_margin(sim: SimVenue, asset: int, ntli: int) -> dict[str, Any]:
    return sim.exchange(
        ALICE, {"type": "updateIsolatedMargin", "asset": asset, "isBuy": True, "ntli": ntli}
    )


OK = {"status": "ok", "response": {"type": "default"}}


def two_positions() -> SimVenue:
    # ETH's best ask is 2398.8 × 1.0005 → 2400.0; SOL's best bid 150.08 × 0.9995 → 150.0
    sim = venue(cash="1000", mids={"ETH": "2398.8", "SOL": "150.08"})
    assert leverage(sim, ETH, 5) == OK
    assert leverage(sim, SOL, 10, cross=False) == OK
    assert "filled" in one(sim, limit(ETH, True, "2400", "1", "Ioc"))
    assert "filled" in one(sim, limit(SOL, False, "150", "10", "Ioc"))
    sim.advance(T0 + 1000, prices({"ETH": "2499.93", "SOL": "148.62"}))
    return sim


def test_the_two_position_account_matches_the_documented_formulas() -> None:
    sim = two_positions()
    state = sim.info({"type": "clearinghouseState", "user": ALICE})
    assert state.pop("time") == T0 + 1000
    assert state == TWO_POSITIONS
    assert sim.account_value(ALICE) == D("1111.975")


def test_the_two_position_account_matches_the_composed_fixture(shared_dir: Any) -> None:
    import json

    path = shared_dir / "contracts/hyperliquid/info_clearinghouseState_two_positions_composed.json"
    expected = json.loads(path.read_text())["response"]
    state = two_positions().info({"type": "clearinghouseState", "user": ALICE})
    expected.pop("time")
    state.pop("time")
    assert state == expected


def test_liquidation_price_reproduces_the_docs_isolated_example() -> None:
    # docs: ETH 0.0335 isolated, marginUsed 4.967826, positionValue 100.02765, maxLeverage 50
    mark = D("100.02765") / D("0.0335")
    spare = D("4.967826") - D("100.02765") / 100
    price = liquidation_price(mark, D("0.0335"), spare, SimAsset("ETH", 4, 50))
    assert price is not None
    assert price.quantize(D("0.0001")) == D("2866.2694")


def test_liquidation_price_is_absent_when_not_a_positive_price() -> None:
    assert liquidation_price(D(100), D(1), D(1000), SimAsset("X", 2, 10)) is None


# -- leverage ------------------------------------------------------------------------------------


def test_default_leverage_is_cross_20_capped_at_the_asset_maximum() -> None:
    sim = venue()
    one(sim, limit(ETH, True, "2001", "1", "Ioc"))
    assert position(sim, "ETH")["leverage"] == {"type": "cross", "value": 20}  # type: ignore[index]
    data = sim.info({"type": "activeAssetData", "user": ALICE, "coin": "BNB"})
    assert data["leverage"] == {"type": "cross", "value": 10}


@pytest.mark.parametrize("value", [0, 26, -1])
def test_leverage_outside_one_to_max_is_refused(value: int) -> None:
    assert leverage(venue(), ETH, value) == {"status": "err", "response": "Invalid leverage value."}


def test_leverage_is_per_asset() -> None:
    sim = venue()
    assert leverage(sim, BTC, 40) == OK
    assert leverage(sim, BNB, 11) == {"status": "err", "response": "Invalid leverage value."}
    one(sim, limit(BTC, True, "80040", "0.01", "Ioc"))
    assert position(sim, "BTC")["leverage"] == {"type": "cross", "value": 40}  # type: ignore[index]


def test_switching_cross_and_isolated_with_an_open_position_is_refused() -> None:
    sim = venue()
    one(sim, limit(ETH, True, "2001", "1", "Ioc"))
    assert leverage(sim, ETH, 10, cross=False) == {
        "status": "err",
        "response": "Cannot switch leverage type with open position.",
    }
    assert leverage(sim, ETH, 10) == OK


def test_lowering_leverage_needs_the_extra_margin() -> None:
    sim = venue(cash="100")
    one(sim, limit(ETH, True, "2001", "0.9", "Ioc"))
    assert leverage(sim, ETH, 2) == {
        "status": "err",
        "response": "Insufficient margin to update leverage.",
    }
    assert position(sim, "ETH")["leverage"]["value"] == 20  # type: ignore[index]
    assert leverage(sim, ETH, 25) == OK
    assert position(sim, "ETH")["leverage"]["value"] == 25  # type: ignore[index]


def test_isolated_only_assets() -> None:
    universe = (SimAsset("BTC", 5, 40), SimAsset("ISO", 2, 10, only_isolated=True))
    sim = SimVenue.open(config(universe=universe), None)
    meta = sim.info({"type": "meta"})
    assert meta["universe"][1] == {
        "szDecimals": 2,
        "name": "ISO",
        "maxLeverage": 10,
        "marginTableId": 10,
        "onlyIsolated": True,
    }
    assert leverage(sim, 1, 5) == {
        "status": "err",
        "response": "Cross margin is not allowed for this asset.",
    }
    data = sim.info({"type": "activeAssetData", "user": ALICE, "coin": "ISO"})
    assert data["leverage"] == {"type": "isolated", "value": 10, "rawUsd": "0.0"}


def test_lowering_isolated_leverage_tops_the_margin_up_from_cross() -> None:
    sim = two_positions()
    assert leverage(sim, SOL, 5, cross=False) == OK
    # initial margin 1486.2 / 5 = 297.24; the position held 163.8: 133.44 moves from cross
    sol = position(sim, "SOL")
    assert sol is not None
    assert sol["leverage"] == {"type": "isolated", "value": 5, "rawUsd": "1783.44"}
    cross = sim.info({"type": "clearinghouseState", "user": ALICE})["crossMarginSummary"]
    assert cross["totalRawUsd"] == "-1685.195"


# -- isolated margin -----------------------------------------------------------------------------


def test_isolated_margin_add_and_remove_down_to_the_transfer_requirement() -> None:
    sim = two_positions()
    assert isolated_margin(sim, SOL, 10_000_000) == OK
    assert position(sim, "SOL")["leverage"]["rawUsd"] == "1660.0"  # type: ignore[index]
    # keep max(1486.2 / 10, 10 % × 1486.2) = 148.62 of the 173.8 margin: 25.18 may go
    assert isolated_margin(sim, SOL, -25_180_001) == {
        "status": "err",
        "response": "Cannot remove that much isolated margin.",
    }
    assert isolated_margin(sim, SOL, -25_180_000) == OK
    sol = position(sim, "SOL")
    assert sol is not None
    assert (sol["leverage"]["rawUsd"], sol["marginUsed"]) == ("1634.82", "148.62")
    assert sim.account_value(ALICE) == D("1111.975")  # moving margin changes no value


def test_isolated_margin_only_on_isolated_positions() -> None:
    sim = two_positions()
    refused = {"status": "err", "response": "Position does not use isolated margin."}
    assert isolated_margin(sim, ETH, 1_000_000) == refused
    assert isolated_margin(sim, BTC, 1_000_000) == refused
    assert isolated_margin(sim, SOL, 10**12) == {
        "status": "err",
        "response": "Insufficient margin to add to isolated position.",
    }


# -- margin checks -------------------------------------------------------------------------------


def test_orders_need_margin_for_what_they_add_fees_included() -> None:
    sim = venue(cash="100")
    # 1 ETH @ 2001 at 20x: 100.05 + fee 0.90045 > 100
    assert one(sim, limit(ETH, True, "2010", "1", "Ioc")) == {
        "error": "Insufficient margin to place order. asset=1"
    }
    assert status_of(sim, 1) == "perpMarginRejected"
    assert "filled" in one(sim, limit(ETH, True, "2010", "0.9", "Ioc"))
    # closing needs no margin
    assert "filled" in one(sim, limit(ETH, False, "1990", "0.9", "Ioc"))


def test_resting_orders_hold_margin() -> None:
    sim = venue(cash="100")
    assert one(sim, limit(ETH, True, "1990", "0.9")) == {"resting": {"oid": 1}}  # holds 89.55
    assert one(sim, limit(ETH, True, "1980", "0.9")) == {
        "error": "Insufficient margin to place order. asset=1"
    }


# -- liquidation ---------------------------------------------------------------------------------


def test_cross_liquidation_closes_at_the_mark_and_keeps_the_rest() -> None:
    sim = venue(cash="100")
    one(sim, limit(ETH, True, "2010", "0.9", "Ioc"))  # cash 100 − 1800.9 − 0.810405
    one(sim, limit(ETH, False, "2100", "0.5", reduce_only=True))
    # liquidated below 1701.710405 / (0.9 × (1 − 1/50)) = 1929.3768764…
    assert position(sim, "ETH")["liquidationPx"] == "1929.37687642"  # type: ignore[index]
    sim.advance(T0 + 1000, prices({"ETH": "1929.4"}))
    assert position(sim, "ETH") is not None
    sim.advance(T0 + 2000, prices({"ETH": "1929.3"}))
    assert position(sim, "ETH") is None
    last = fills(sim)[-1]
    assert {k: last[k] for k in ("px", "sz", "side", "dir", "closedPnl", "fee", "crossed")} == {
        "px": "1929.3",
        "sz": "0.9",
        "side": "A",
        "dir": "Close Long",
        "closedPnl": "-64.53",  # 0.9 × 1929.3 − 1800.9
        "fee": "0.781366",  # 1736.37 × 0.00045 = 0.7813665, half-even
        "crossed": True,
    }
    assert last["liquidation"] == {"liquidatedUser": ALICE, "markPx": "1929.3", "method": "market"}
    assert status_of(sim, 2) == "liquidatedCanceled"
    assert status_of(sim, last["oid"]) == "filled"
    assert sim.account_value(ALICE) == D("33.878229")


def test_isolated_liquidation_leaves_the_cross_position_alone() -> None:
    sim = two_positions()
    # short 10 with 1650 isolated cash: equity 1650 − 10m < m / 4 once m > 160.9756…
    sim.advance(T0 + 2000, prices({"SOL": "160.97"}))
    assert position(sim, "SOL") is not None
    sim.advance(T0 + 3000, prices({"SOL": "160.98"}))
    assert position(sim, "SOL") is None
    assert position(sim, "ETH") is not None
    last = fills(sim)[-1]
    assert (last["coin"], last["px"], last["closedPnl"], last["fee"]) == (
        "SOL",
        "160.98",
        "-109.8",
        "0.72441",
    )
    cross = sim.info({"type": "clearinghouseState", "user": ALICE})["crossMarginSummary"]
    # −1551.755 + what the isolated margin had left (1650 − 1609.8) − the fee
    assert cross["totalRawUsd"] == "-1512.27941"


def test_liquidation_uses_the_mark_not_the_mid() -> None:
    sim = venue(cash="100")
    one(sim, limit(ETH, True, "2010", "0.9", "Ioc"))
    sim.advance(T0 + 1000, prices({"ETH": "1900"}), marks=prices({"ETH": "2000"}))
    assert position(sim, "ETH") is not None
    sim.advance(T0 + 2000, prices({"ETH": "2000"}), marks=prices({"ETH": "1929"}))
    assert position(sim, "ETH") is None


def test_account_value_of_an_unknown_user_is_zero() -> None:
    assert venue().account_value("0x" + "0" * 40) == Decimal(0)
