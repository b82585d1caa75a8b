"""SimVenue trigger orders: TP/SL on the mark, market/limit execution, normalTpsl and
positionTpsl lifecycles, sibling and reduce-only cancels."""

from __future__ import annotations

from typing import Any

import pytest

from infrastructure.simulator.engine import SimVenue
from tests.unit.infrastructure.simulator.simkit import (
    ALICE,
    ETH,
    T0,
    fills,
    limit,
    one,
    open_oids,
    place,
    position,
    prices,
    status_of,
    trigger,
    venue,
)


def with_position(szi: str, cash: str = "10000") -> SimVenue:
    sim = venue(cash=cash)
    if szi.startswith("-"):
        one(sim, limit(ETH, False, "1990", szi[1:], "Ioc"))
    else:
        one(sim, limit(ETH, True, "2010", szi, "Ioc"))
    return sim


def mark(sim: SimVenue, at: int, mark_px: str, mid: str = "2000") -> None:
    sim.advance(at, prices({"ETH": mid}), marks=prices({"ETH": mark_px}))


def frontend(sim: SimVenue) -> dict[int, dict[str, Any]]:
    return {row["oid"]: row for row in sim.info({"type": "frontendOpenOrders", "user": ALICE})}


@pytest.mark.parametrize(
    ("szi", "is_buy", "tpsl", "trigger_px", "quiet_mark", "firing_mark", "fill_px"),
    [
        ("1", False, "sl", "1900", "1900.1", "1900", "1999.0"),  # sell stop: mark ≤ trigger
        ("1", False, "tp", "2100", "2099.9", "2100", "1999.0"),  # sell take-profit: mark ≥
        ("-1", True, "sl", "2100", "2099.9", "2100", "2001.0"),  # buy stop: mark ≥
        ("-1", True, "tp", "1900", "1900.1", "1900", "2001.0"),  # buy take-profit: mark ≤
    ],
)
def test_triggers_fire_on_the_mark_not_the_mid(
    szi: str,
    is_buy: bool,
    tpsl: str,
    trigger_px: str,
    quiet_mark: str,
    firing_mark: str,
    fill_px: str,
) -> None:
    sim = with_position(szi)
    worst = "2010" if is_buy else "1990"
    assert one(sim, trigger(ETH, is_buy, worst, "1", trigger_px, tpsl)) == "waitingForTrigger"
    mark(sim, T0 + 1000, quiet_mark)
    sim.advance(T0 + 2000, prices({"ETH": firing_mark}), marks=prices({"ETH": "2000"}))
    assert status_of(sim, 2) == "open"  # the mid alone does not fire it
    mark(sim, T0 + 3000, firing_mark)
    assert status_of(sim, 2) == "filled"
    last = fills(sim)[-1]
    assert (last["oid"], last["px"], last["sz"], last["crossed"]) == (2, fill_px, "1.0", True)
    assert position(sim, "ETH") is None


@pytest.mark.parametrize(
    ("is_buy", "tpsl", "trigger_px"),
    [(False, "sl", "2050"), (False, "tp", "1950"), (True, "sl", "1950"), (True, "tp", "2050")],
)
def test_a_trigger_already_satisfied_at_placement_is_refused(
    is_buy: bool, tpsl: str, trigger_px: str
) -> None:
    sim = with_position("-1" if is_buy else "1")
    status = one(sim, trigger(ETH, is_buy, "2000", "1", trigger_px, tpsl))
    assert status == {"error": "Invalid TP/SL price. asset=1"}
    assert status_of(sim, 2) == "badTriggerPxRejected"


def test_trigger_rows_in_frontend_open_orders() -> None:
    sim = with_position("1")
    one(sim, trigger(ETH, False, "1800", "1", "1900", "sl"))
    one(sim, trigger(ETH, False, "2090", "1", "2100", "tp", is_market=False))
    rows = frontend(sim)
    assert {k: rows[2][k] for k in ("orderType", "triggerCondition", "triggerPx", "tif")} == {
        "orderType": "Stop Market",
        "triggerCondition": "Price below 1900.0",
        "triggerPx": "1900.0",
        "tif": None,
    }
    assert (rows[2]["isTrigger"], rows[2]["reduceOnly"], rows[2]["limitPx"]) == (
        True,
        True,
        "1800.0",
    )
    assert (rows[3]["orderType"], rows[3]["triggerCondition"]) == (
        "Take Profit Limit",
        "Price above 2100.0",
    )


def test_a_market_trigger_uses_its_price_as_the_worst_fill() -> None:
    sim = with_position("1")
    one(sim, trigger(ETH, False, "2005", "1", "1900", "sl"))  # the best bid is 1999 < 2005
    mark(sim, T0 + 1000, "1900")
    assert status_of(sim, 2) == "canceled"
    assert position(sim, "ETH") is not None


def test_a_fired_limit_trigger_takes_what_it_can_and_rests_the_rest() -> None:
    sim = with_position("1")
    one(sim, trigger(ETH, False, "2000", "1", "1900", "sl", is_market=False))
    mark(sim, T0 + 1000, "1900")
    assert status_of(sim, 2) == "triggered"
    row = frontend(sim)[2]
    assert (row["tif"], row["orderType"], row["sz"]) == ("Gtc", "Stop Limit", "1.0")
    sim.advance(T0 + 2000, prices({"ETH": "2000.1"}))  # the mid passes the resting sell
    assert status_of(sim, 2) == "filled"
    last = fills(sim)[-1]
    assert (last["px"], last["crossed"], last["dir"]) == ("2000.0", False, "Close Long")


def test_a_reduce_only_trigger_closes_at_most_the_position() -> None:
    sim = with_position("1")
    one(sim, trigger(ETH, False, "1800", "5", "1900", "sl"))
    mark(sim, T0 + 1000, "1900")
    assert [f["sz"] for f in fills(sim)] == ["1.0", "1.0"]
    assert position(sim, "ETH") is None


def test_a_stop_entry_opens_a_position_when_margin_allows() -> None:
    sim = venue()
    status = one(sim, trigger(ETH, True, "2200", "1", "2100", "sl", reduce_only=False))
    assert status == "waitingForTrigger"
    mark(sim, T0 + 1000, "2100")
    assert position(sim, "ETH")["szi"] == "1.0"  # type: ignore[index]


def test_a_stop_entry_without_margin_is_margin_canceled() -> None:
    sim = venue(cash="50")  # 1 ETH at 20x needs 100.05 + fee
    one(sim, trigger(ETH, True, "2200", "1", "2100", "sl", reduce_only=False))
    mark(sim, T0 + 1000, "2100")
    assert status_of(sim, 1) == "marginCanceled"
    assert fills(sim) == []


def test_a_non_reduce_only_trigger_below_ten_dollars_is_refused() -> None:
    sim = venue()
    status = one(sim, trigger(ETH, True, "2200", "0.004", "2100", "sl", reduce_only=False))
    assert status == {"error": "Order must have minimum value of $10. asset=1"}  # 0.004 × 2100


# -- normalTpsl ----------------------------------------------------------------------------------


def bracket(sim: SimVenue, parent: dict[str, Any]) -> list[Any]:
    return place(
        sim,
        parent,
        trigger(ETH, False, "1990", "1", "2100", "tp"),
        trigger(ETH, False, "1800", "1", "1900", "sl"),
        grouping="normalTpsl",
    )


def test_normal_tpsl_children_wait_for_the_parent_then_one_fill_cancels_the_other() -> None:
    sim = venue()
    assert bracket(sim, limit(ETH, True, "1995", "1")) == [
        {"resting": {"oid": 1}},
        "waitingForFill",
        "waitingForFill",
    ]
    rows = frontend(sim)
    assert [child["oid"] for child in rows[1]["children"]] == [2, 3]
    assert rows[2]["reduceOnly"]
    assert rows[3]["reduceOnly"]
    mark(sim, T0 + 1000, "2100")  # the take-profit's level, but its parent has not filled
    assert open_oids(sim) == [1, 2, 3]
    sim.advance(T0 + 2000, prices({"ETH": "1994"}))  # the parent fills as maker at 1995
    assert status_of(sim, 1) == "filled"
    assert frontend(sim)[2]["sz"] == "1.0"
    mark(sim, T0 + 3000, "2100")
    assert status_of(sim, 2) == "filled"
    assert status_of(sim, 3) == "siblingFilledCanceled"
    assert position(sim, "ETH") is None
    assert open_oids(sim) == []


def test_normal_tpsl_children_are_sized_to_what_the_parent_filled() -> None:
    sim = venue()
    statuses = bracket(sim, limit(ETH, True, "2001", "3"))  # 2.0 fills at once, 1.0 rests
    # Active for what filled: they wait for their trigger, as after a parent that filled
    # at once (a third-party venue capture); only children of an unfilled parent wait
    # for the fill.
    assert statuses[1:] == ["waitingForTrigger", "waitingForTrigger"]
    assert frontend(sim)[2]["sz"] == "2.0"
    sim.advance(T0 + 1000, prices({"ETH": "2000"}))  # mid below the resting 2001 bid: it fills
    assert status_of(sim, 1) == "filled"
    assert frontend(sim)[2]["sz"] == frontend(sim)[3]["sz"] == "3.0"


def test_children_of_a_parent_that_filled_at_once_wait_for_their_trigger() -> None:
    """A third-party venue capture: an IOC parent that fills in the same action answers
    ``waitingForTrigger`` for its children (they are live at once)."""
    sim = venue()
    statuses = bracket(sim, limit(ETH, True, "2010", "1", "Ioc"))
    assert "filled" in statuses[0]
    assert statuses[1:] == ["waitingForTrigger", "waitingForTrigger"]
    assert [status_of(sim, oid) for oid in (2, 3)] == ["open", "open"]


def test_canceling_an_unfilled_parent_cancels_its_children() -> None:
    sim = venue()
    bracket(sim, limit(ETH, True, "1995", "1"))
    sim.exchange(ALICE, {"type": "cancel", "cancels": [{"a": ETH, "o": 1}]})
    assert [status_of(sim, oid) for oid in (1, 2, 3)] == ["canceled"] * 3


def test_children_of_a_refused_parent_are_not_placed() -> None:
    sim = venue()
    statuses = bracket(sim, limit(ETH, True, "2000", "1", "Ioc"))
    assert statuses[0]["error"].startswith("Order could not immediately match")
    assert statuses[1:] == [{"error": "TP/SL parent order was not placed."}] * 2
    assert open_oids(sim) == []


# -- positionTpsl --------------------------------------------------------------------------------


def position_tpsl(sim: SimVenue, size: str = "5") -> list[Any]:
    return place(
        sim,
        trigger(ETH, False, "1990", size, "2100", "tp"),
        trigger(ETH, False, "1800", size, "1900", "sl"),
        grouping="positionTpsl",
    )


def test_position_tpsl_needs_a_position() -> None:
    sim = venue()
    assert (
        position_tpsl(sim) == [{"error": "Reduce only order would increase position. asset=1"}] * 2
    )


def test_position_tpsl_closes_the_position_and_cancels_its_sibling() -> None:
    sim = with_position("1")
    assert position_tpsl(sim) == ["waitingForTrigger", "waitingForTrigger"]
    rows = frontend(sim)
    assert rows[2]["isPositionTpsl"]
    assert rows[3]["isPositionTpsl"]
    mark(sim, T0 + 1000, "1900")
    assert status_of(sim, 3) == "filled"
    assert status_of(sim, 2) == "siblingFilledCanceled"
    assert fills(sim)[-1]["sz"] == "1.0"


def test_tpsl_orders_are_canceled_when_the_position_closes() -> None:
    sim = with_position("1")
    position_tpsl(sim)
    one(sim, limit(ETH, False, "1990", "1", "Ioc"))
    assert [status_of(sim, oid) for oid in (2, 3)] == ["reduceOnlyCanceled"] * 2


def test_standalone_tp_and_sl_are_not_siblings() -> None:
    sim = with_position("2")
    one(sim, trigger(ETH, False, "1990", "1", "2100", "tp"))
    one(sim, trigger(ETH, False, "1800", "1", "1900", "sl"))
    mark(sim, T0 + 1000, "1900")
    assert status_of(sim, 3) == "filled"
    assert status_of(sim, 2) == "open"
