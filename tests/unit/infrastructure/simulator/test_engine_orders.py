"""SimVenue orders: validation, fees, taker/maker, depth, time in force, cloids, cancel, modify.

Book levels used below are listed in ``simkit`` (ETH asks 2001.0 × 2.0, 2003.0 × 1.998, ...;
bids 1999.0 × 2.002, 1997.0 × 2.004, ...).
"""

from __future__ import annotations

from typing import Any

import pytest

from infrastructure.simulator.config import DEFAULT_DUPLICATE_CLOID_ERROR
from tests.unit.infrastructure.simulator.simkit import (
    ALICE,
    BOB,
    BTC,
    DOGE,
    ETH,
    SOL,
    T0,
    D,
    cloid,
    fills,
    limit,
    one,
    open_oids,
    order_action,
    place,
    position,
    prices,
    status_of,
    venue,
)

# -- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("asset", "px", "sz", "error"),
    [
        (BTC, "80040.5", "0.001", "Order has invalid price."),  # six significant figures
        (ETH, "2001.05", "0.1", "Order has invalid price."),  # six figures, three decimals
        (SOL, "100.055", "1", "Order has invalid price."),  # 6 − 2 = 4 decimals ok, 6 figures not
        (DOGE, "0.1234567", "100", "Order has invalid price."),  # seven decimals > 6 − 0
        (ETH, "0", "0.1", "Order has invalid price."),
        (ETH, "-2001", "0.1", "Order has invalid price."),
        (ETH, "abc", "0.1", "Order has invalid price."),
        (ETH, "2001", "0.00001", "Order has invalid size."),  # five decimals > szDecimals 4
        (SOL, "100.05", "1.001", "Order has invalid size."),
        (DOGE, "0.2", "10.5", "Order has invalid size."),  # DOGE trades whole coins
        (ETH, "2001", "0", "Order has invalid size."),
        (ETH, "2001", "-1", "Order has invalid size."),
        (17, "2001", "1", "Order has invalid asset."),
    ],
)
def test_prices_and_sizes_breaking_the_rules_are_refused(
    asset: int, px: str, sz: str, error: str
) -> None:
    sim = venue()
    assert one(sim, limit(asset, True, px, sz, "Ioc")) == {"error": error}
    assert fills(sim) == []


@pytest.mark.parametrize(
    ("asset", "px", "sz"),
    [
        (BTC, "80040", "0.001"),
        (BTC, "123456", "0.001"),  # integers are always valid, whatever their figures
        (BTC, "80040.0", "0.00100"),  # trailing zeros on the wire are accepted
        (ETH, "2001.0", "0.0050"),
        (SOL, "100.05", "0.1"),
        (DOGE, "0.20001", "100"),
    ],
)
def test_valid_prices_and_sizes_get_past_validation(asset: int, px: str, sz: str) -> None:
    sim = venue(mids={"BTC": "80000", "ETH": "2000", "SOL": "100", "DOGE": "0.2"})
    status = one(sim, limit(asset, True, px, sz, "Alo"))
    assert "resting" in status or "Post only" in status.get("error", "")


def test_ten_dollar_minimum_except_for_orders_that_only_reduce() -> None:
    sim = venue()
    # 0.004 × 2001 = 8.004 USD
    assert one(sim, limit(ETH, True, "2001", "0.004", "Ioc")) == {
        "error": "Order must have minimum value of $10. asset=1"
    }
    assert status_of(sim, 1) == "minTradeNtlRejected"
    one(sim, limit(ETH, True, "2001", "1", "Ioc"))
    # reduce-only, and a plain order that only reduces, are exempt
    assert "filled" in one(sim, limit(ETH, False, "1999", "0.004", "Ioc", reduce_only=True))
    assert "filled" in one(sim, limit(ETH, False, "1999", "0.004", "Ioc"))
    assert position(sim, "ETH") is not None
    assert position(sim, "ETH")["szi"] == "0.992"  # type: ignore[index]


def test_reduce_only_that_would_increase_is_refused() -> None:
    sim = venue()
    assert one(sim, limit(ETH, False, "1999", "1", "Ioc", reduce_only=True)) == {
        "error": "Reduce only order would increase position. asset=1"
    }
    one(sim, limit(ETH, True, "2001", "1", "Ioc"))
    assert one(sim, limit(ETH, True, "2001", "0.5", "Ioc", reduce_only=True)) == {
        "error": "Reduce only order would increase position. asset=1"
    }
    assert status_of(sim, 1) == status_of(sim, 3) == "reduceOnlyRejected"


def test_reduce_only_ioc_larger_than_the_position_is_capped() -> None:
    sim = venue()
    one(sim, limit(ETH, True, "2001", "1", "Ioc"))
    status = one(sim, limit(ETH, False, "1990", "3", "Ioc", reduce_only=True))
    assert status == {"filled": {"totalSz": "1.0", "avgPx": "1999.0", "oid": 2}}
    assert position(sim, "ETH") is None


# -- fees, taker and maker -----------------------------------------------------------------------


def test_taker_fill_pays_the_taker_fee_on_notional() -> None:
    sim = venue()
    status = one(sim, limit(ETH, True, "2010", "1", "Ioc"))
    assert status == {"filled": {"totalSz": "1.0", "avgPx": "2001.0", "oid": 1}}
    (fill,) = fills(sim)
    # 2001 × 0.00045 = 0.90045
    assert fill["fee"] == "0.90045"
    assert fill["crossed"] is True
    assert fill["feeToken"] == "USDC"
    assert fill["dir"] == "Open Long"
    assert fill["startPosition"] == "0.0"
    assert fill["side"] == "B"
    assert sim.account_value(ALICE) == D("10000") - D("0.90045") + (D(2000) - D(2001))


def test_fee_is_quantised_to_micro_dollars() -> None:
    sim = venue()
    one(sim, limit(ETH, True, "2010", "0.0055", "Ioc"))
    # 0.0055 × 2001 × 0.00045 = 0.004952475 -> 0.004952
    assert fills(sim)[0]["fee"] == "0.004952"


def test_resting_order_fills_as_maker_at_its_limit_when_the_mid_passes_it() -> None:
    sim = venue()
    assert one(sim, limit(ETH, True, "1995", "1")) == {"resting": {"oid": 1}}
    sim.advance(T0 + 1000, prices({"ETH": "1995"}))  # touching is not enough
    assert fills(sim) == []
    sim.advance(T0 + 2000, prices({"ETH": "1994.9"}))
    (fill,) = fills(sim)
    assert (fill["px"], fill["sz"], fill["crossed"], fill["time"]) == (
        "1995.0",
        "1.0",
        False,
        T0 + 2000,
    )
    assert fill["fee"] == "0.29925"  # 1995 × 0.00015
    assert status_of(sim, 1) == "filled"
    assert open_oids(sim) == []


def test_resting_sell_fills_when_the_mid_rises_above_it() -> None:
    sim = venue()
    one(sim, limit(ETH, False, "2005", "0.5"))
    sim.advance(T0 + 1000, prices({"ETH": "2005"}))
    assert fills(sim) == []
    sim.advance(T0 + 2000, prices({"ETH": "2005.1"}))
    assert [(f["px"], f["sz"], f["side"], f["dir"]) for f in fills(sim)] == [
        ("2005.0", "0.5", "A", "Open Short")
    ]


def test_users_never_trade_with_each_other() -> None:
    sim = venue(users=(ALICE, BOB))
    assert one(sim, limit(ETH, False, "2000.5", "1"), user=ALICE) == {"resting": {"oid": 1}}
    # Bob's buy at 2000.5 crosses Alice's offer but only meets the synthetic book (2001 ask)
    assert one(sim, limit(ETH, True, "2000.5", "1", "Ioc"), user=BOB) == {
        "error": "Order could not immediately match against any resting orders. asset=1"
    }
    assert fills(sim, ALICE) == []
    assert fills(sim, BOB) == []
    assert status_of(sim, 2, BOB) == "iocCancelRejected"


# -- depth, partial fills, time in force ---------------------------------------------------------


def test_ioc_walks_the_levels_up_to_its_limit() -> None:
    sim = venue()
    status = one(sim, limit(ETH, True, "2003", "3", "Ioc"))
    # 2.0 @ 2001 + 1.0 @ 2003: (4002 + 2003) / 3 = 2001.666…
    assert status == {"filled": {"totalSz": "3.0", "avgPx": "2001.66666667", "oid": 1}}
    rows = fills(sim)
    assert [(r["px"], r["sz"], r["startPosition"]) for r in rows] == [
        ("2001.0", "2.0", "0.0"),
        ("2003.0", "1.0", "2.0"),
    ]
    assert rows[0]["hash"] == rows[1]["hash"]  # one order, one transaction
    assert rows[1]["tid"] == rows[0]["tid"] + 1
    assert rows[0]["fee"] == "1.8009"  # 4002 × 0.00045


def test_ioc_fills_what_the_book_holds_within_the_limit_and_cancels_the_rest() -> None:
    sim = venue()
    status = one(sim, limit(ETH, True, "2003", "5", "Ioc"))
    assert status["filled"]["totalSz"] == "3.998"  # 2.0 + 1.998
    assert position(sim, "ETH")["szi"] == "3.998"  # type: ignore[index]
    assert open_oids(sim) == []


def test_ioc_with_nothing_to_match_is_an_error() -> None:
    sim = venue()
    assert one(sim, limit(ETH, True, "2000", "1", "Ioc")) == {
        "error": "Order could not immediately match against any resting orders. asset=1"
    }


def test_taken_depth_stays_taken_until_the_next_price_update() -> None:
    sim = venue()
    one(sim, limit(ETH, True, "2001", "2", "Ioc"))
    asks = sim.info({"type": "l2Book", "coin": "ETH"})["levels"][1]
    assert asks[0] == {"px": "2003.0", "sz": "1.998", "n": 5}
    assert one(sim, limit(ETH, True, "2001", "1", "Ioc"))["error"].startswith("Order could not")
    sim.advance(T0 + 1000, prices({"ETH": "2000"}))
    asks = sim.info({"type": "l2Book", "coin": "ETH"})["levels"][1]
    assert (asks[0]["px"], asks[0]["sz"]) == ("2001.0", "2.0")  # rebuilt: n is re-drawn


def test_gtc_that_crosses_takes_then_rests_and_answers_resting() -> None:
    sim = venue()
    assert one(sim, limit(ETH, True, "2001", "3")) == {"resting": {"oid": 1}}
    assert [(f["px"], f["sz"]) for f in fills(sim)] == [("2001.0", "2.0")]
    (row,) = sim.info({"type": "openOrders", "user": ALICE})
    assert (row["sz"], row["origSz"], row["limitPx"]) == ("1.0", "3.0", "2001.0")
    bids = sim.info({"type": "l2Book", "coin": "ETH"})["levels"][0]
    assert bids[0] == {"px": "2001.0", "sz": "1.0", "n": 1}  # the user's order shows in the book


def test_gtc_filled_entirely_answers_filled() -> None:
    sim = venue()
    assert one(sim, limit(ETH, True, "2003", "2.5")) == {
        "filled": {"totalSz": "2.5", "avgPx": "2001.4", "oid": 1}  # (4002 + 1001.5) / 2.5
    }


def test_alo_that_would_cross_is_refused_with_the_bbo() -> None:
    sim = venue()
    assert one(sim, limit(ETH, True, "2001", "1", "Alo")) == {
        "error": "Post only order would have immediately matched, bbo was 1999.0@2001.0. asset=1"
    }
    assert status_of(sim, 1) == "badAloPxRejected"
    assert one(sim, limit(ETH, False, "1999", "1", "Alo"))["error"].startswith("Post only")
    assert one(sim, limit(ETH, True, "2000.9", "1", "Alo")) == {"resting": {"oid": 3}}


def test_resting_orders_merge_with_synthetic_levels_in_the_book() -> None:
    sim = venue(users=(ALICE, BOB))
    one(sim, limit(ETH, True, "1999", "1"), user=ALICE)
    one(sim, limit(ETH, True, "1999", "0.5"), user=BOB)
    bids = sim.info({"type": "l2Book", "coin": "ETH"})["levels"][0]
    assert bids[0] == {"px": "1999.0", "sz": "3.502", "n": 3}


# -- positions from fills ------------------------------------------------------------------------


def test_entry_is_size_weighted_on_opening_and_kept_on_closing() -> None:
    sim = venue()
    one(sim, limit(ETH, True, "2001", "1", "Ioc"))
    sim.advance(T0 + 1000, prices({"ETH": "2200"}))  # asks from 2201.1
    one(sim, limit(ETH, True, "2202", "1", "Ioc"))
    assert position(sim, "ETH")["entryPx"] == "2101.05"  # type: ignore[index]
    sim.advance(T0 + 2000, prices({"ETH": "2000"}))
    one(sim, limit(ETH, False, "1999", "0.5", "Ioc"))
    pos = position(sim, "ETH")
    assert pos is not None
    assert (pos["szi"], pos["entryPx"]) == ("1.5", "2101.05")
    # closing 0.5 of a 2-lot costing 4202.1: 0.5 × 1999 − 1050.525 = −51.025
    assert fills(sim)[-1]["closedPnl"] == "-51.025"
    assert fills(sim)[-1]["dir"] == "Close Long"


def test_a_flip_closes_then_opens_in_one_fill_row() -> None:
    sim = venue()
    one(sim, limit(ETH, True, "2001", "1", "Ioc"))
    one(sim, limit(ETH, False, "1997", "3", "Ioc"))  # 2.002 @ 1999 + 0.998 @ 1997
    _, flip, more = fills(sim)
    assert (flip["dir"], flip["startPosition"], flip["closedPnl"]) == (
        "Long > Short",
        "1.0",
        "-2.0",
    )
    assert (more["dir"], more["startPosition"], more["closedPnl"]) == (
        "Open Short",
        "-1.002",
        "0.0",
    )
    pos = position(sim, "ETH")
    assert pos is not None
    # short 2: 1.002 @ 1999 + 0.998 @ 1997 = 3996.004 -> entry 1998.002
    assert (pos["szi"], pos["entryPx"]) == ("-2.0", "1998.002")
    sim.advance(T0 + 1000, prices({"ETH": "2000"}))
    one(sim, limit(ETH, True, "2001", "2", "Ioc"))
    last = fills(sim)[-1]
    assert (last["dir"], last["closedPnl"]) == ("Close Short", "-5.996")  # 3996.004 − 4002


# -- cloids --------------------------------------------------------------------------------------


def test_a_cloid_in_use_by_an_open_order_is_refused_and_free_again_once_terminal() -> None:
    sim = venue()
    c = cloid(7)
    assert one(sim, limit(ETH, True, "1990", "1", cloid=c)) == {"resting": {"oid": 1, "cloid": c}}
    assert one(sim, limit(ETH, True, "1980", "1", cloid=c)) == {
        "error": DEFAULT_DUPLICATE_CLOID_ERROR
    }
    sim.exchange(ALICE, {"type": "cancelByCloid", "cancels": [{"asset": ETH, "cloid": c}]})
    assert one(sim, limit(ETH, True, "2010", "1", "Ioc", cloid=c)) == {
        "filled": {"totalSz": "1.0", "avgPx": "2001.0", "oid": 2, "cloid": c}
    }
    assert fills(sim)[-1]["cloid"] == c
    answer = sim.info({"type": "orderStatus", "user": ALICE, "oid": c})
    assert (answer["order"]["order"]["oid"], answer["order"]["status"]) == (2, "filled")
    assert status_of(sim, 1) == "canceled"


def test_the_duplicate_cloid_text_is_configurable() -> None:
    sim = venue(duplicate_cloid_error="dup!")
    one(sim, limit(ETH, True, "1990", "1", cloid=cloid(1)))
    assert one(sim, limit(ETH, True, "1990", "1", cloid=cloid(1).upper().replace("0X", "0x"))) == {
        "error": "dup!"
    }


def test_open_order_cap() -> None:
    sim = venue(max_open_orders=2)
    place(sim, limit(ETH, True, "1990", "1"), limit(ETH, True, "1980", "1"))
    assert one(sim, limit(ETH, True, "1970", "1")) == {"error": "Too many open orders. asset=1"}
    assert "filled" in one(sim, limit(ETH, True, "2001", "0.5", "Ioc"))  # an IOC never rests


# -- cancel and modify ---------------------------------------------------------------------------


def test_cancel_by_oid_and_errors() -> None:
    sim = venue()
    one(sim, limit(ETH, True, "1990", "1"))
    cancel = {"type": "cancel", "cancels": [{"a": ETH, "o": 1}]}
    assert sim.exchange(ALICE, cancel) == {
        "status": "ok",
        "response": {"type": "cancel", "data": {"statuses": ["success"]}},
    }
    assert sim.exchange(ALICE, cancel)["response"]["data"]["statuses"] == [
        {"error": "Order was never placed, already canceled, or filled."}
    ]
    one(sim, limit(ETH, True, "1990", "1"))
    wrong_asset = {"type": "cancel", "cancels": [{"a": BTC, "o": 2}]}
    assert "error" in sim.exchange(ALICE, wrong_asset)["response"]["data"]["statuses"][0]
    assert status_of(sim, 1) == "canceled"
    assert status_of(sim, 2) == "open"


def test_cancel_by_cloid() -> None:
    sim = venue()
    one(sim, limit(ETH, True, "1990", "1", cloid=cloid(3)))
    action = {"type": "cancelByCloid", "cancels": [{"asset": ETH, "cloid": cloid(3)}]}
    assert sim.exchange(ALICE, action)["response"]["data"]["statuses"] == ["success"]
    assert sim.exchange(ALICE, action)["response"]["data"]["statuses"][0] == {
        "error": "Order was never placed, already canceled, or filled."
    }


def test_batch_modify_replaces_the_order_under_a_new_oid() -> None:
    sim = venue()
    one(sim, limit(ETH, True, "1990", "1"))
    action = {
        "type": "batchModify",
        "modifies": [{"oid": 1, "order": limit(ETH, True, "1985", "2")}],
    }
    assert sim.exchange(ALICE, action) == {
        "status": "ok",
        "response": {"type": "order", "data": {"statuses": [{"resting": {"oid": 2}}]}},
    }
    assert status_of(sim, 1) == "canceled"
    (row,) = sim.info({"type": "openOrders", "user": ALICE})
    assert (row["oid"], row["limitPx"], row["sz"]) == (2, "1985.0", "2.0")
    assert sim.exchange(ALICE, action) == {
        "status": "err",
        "response": "Cannot modify canceled or filled order",
    }


def test_a_refused_modification_leaves_the_old_order_alone() -> None:
    sim = venue()
    one(sim, limit(ETH, True, "1990", "1", cloid=cloid(5)))
    action = {"type": "modify", "oid": cloid(5), "order": limit(ETH, True, "1990", "0.001")}
    assert sim.exchange(ALICE, action) == {
        "status": "err",
        "response": "Order must have minimum value of $10. asset=1",
    }
    assert open_oids(sim) == [1]
    ok = {"type": "modify", "oid": 1, "order": limit(ETH, True, "1980", "1")}
    assert sim.exchange(ALICE, ok) == {"status": "ok", "response": {"type": "default"}}


# -- whole-action errors -------------------------------------------------------------------------


def test_builder_fees_are_never_approved() -> None:
    sim = venue()
    action = order_action(limit(ETH, True, "2001", "1", "Ioc"))
    action["builder"] = {"b": "0x" + "9" * 40, "f": 10}
    assert sim.exchange(ALICE, action) == {
        "status": "err",
        "response": "Builder fee has not been approved.",
    }
    assert fills(sim) == []


@pytest.mark.parametrize(
    "action",
    [
        {"type": "order", "orders": [{"a": ETH, "b": True}], "grouping": "na"},
        {"type": "order", "orders": [limit(ETH, True, "2001", "1", "Fok")], "grouping": "na"},
        {"type": "order", "orders": [limit(ETH, True, "2001", "1") | {"c": "0x12"}]},
        {"type": "order", "orders": [limit(ETH, True, "2001", "1") | {"p": 2001}]},
        {"type": "cancel", "cancels": [{"a": ETH}]},
        {"type": "updateLeverage", "asset": ETH, "isCross": "yes", "leverage": 5},
        {"orders": []},
        [],
    ],
)
def test_malformed_actions_get_the_deserialisation_error(action: object) -> None:
    sim = venue()
    assert sim.exchange(ALICE, action) == {  # type: ignore[arg-type]
        "status": "err",
        "response": "Failed to deserialize the JSON body into the target type",
    }


def test_noop_and_unsupported_actions() -> None:
    sim = venue()
    assert sim.exchange(ALICE, {"type": "noop"}) == {
        "status": "ok",
        "response": {"type": "default"},
    }
    assert sim.exchange(ALICE, {"type": "usdSend"})["status"] == "err"


@pytest.mark.parametrize("kind", ["modify", "batchModify"])
def test_an_order_keeps_its_cloid_across_a_modify_that_names_none(kind: str) -> None:
    sim = venue()
    one(sim, limit(ETH, True, "1990", "1", cloid=cloid(9)))
    new = limit(ETH, True, "1985", "2")  # no "c", as ccxt's editOrder sends it
    if kind == "modify":
        action: dict[str, Any] = {"type": "modify", "oid": 1, "order": new}
    else:
        action = {"type": "batchModify", "modifies": [{"oid": cloid(9), "order": new}]}
    assert sim.exchange(ALICE, action)["status"] == "ok"
    (row,) = sim.info({"type": "openOrders", "user": ALICE})
    assert (row["oid"], row["cloid"]) == (2, cloid(9))
    status = sim.info({"type": "orderStatus", "user": ALICE, "oid": cloid(9)})
    assert status["order"]["order"]["oid"] == 2
    assert status["order"]["status"] == "open"
    cancel = {"type": "cancelByCloid", "cancels": [{"asset": ETH, "cloid": cloid(9)}]}
    assert sim.exchange(ALICE, cancel)["response"]["data"]["statuses"] == ["success"]
    assert open_oids(sim) == []


def test_a_modify_that_names_a_new_cloid_takes_it() -> None:
    sim = venue()
    one(sim, limit(ETH, True, "1990", "1", cloid=cloid(9)))
    action = {"type": "modify", "oid": 1, "order": limit(ETH, True, "1985", "2", cloid=cloid(10))}
    assert sim.exchange(ALICE, action)["status"] == "ok"
    (row,) = sim.info({"type": "openOrders", "user": ALICE})
    assert row["cloid"] == cloid(10)
