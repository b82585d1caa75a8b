"""Helpers for the SimVenue tests: a flat, jitter-free book whose levels are easy to compute by
hand, wire-format order builders, and a venue already funded and priced.

With ``FLAT_BOOK`` (spread 10 bps, step 10 bps, $4002 per level, no growth, no jitter) and the
default mids, the books are:

* ETH (mid 2000): bids 1999.0 × 2.002, 1997.0 × 2.004, ...; asks 2001.0 × 2.0, 2003.0 × 1.998,
  2005.0 × 1.996, ...
* BTC (mid 80000): bids 79960.0, ...; asks 80040.0 × 0.05, 80120.0 × 0.04995, ...
* SOL (mid 100): bids 99.95 × 40.04, ...; asks 100.05 × 40.0, 100.15 × 39.96, ...
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from infrastructure.simulator.engine import BookModel, SimConfig, SimVenue

D = Decimal
HOUR = 3_600_000
HOUR0 = 497_222 * HOUR  # an hour boundary (2026-09-21T...)
T0 = HOUR0 + 60_000  # one minute past it
ALICE = "0x" + "a1" * 20
BOB = "0x" + "b2" * 20
BTC, ETH, SOL, BNB, DOGE, XRP = range(6)

FLAT_BOOK = BookModel(
    spread_bps=D(10),
    levels=5,
    step_bps=D(10),
    level_usd={"*": D(4002)},
    growth=D(1),
    jitter=D(0),
)
MIDS = {"ETH": "2000", "BTC": "80000", "SOL": "100"}


def config(**overrides: Any) -> SimConfig:
    settings: dict[str, Any] = {"book": FLAT_BOOK}
    settings.update(overrides)
    return SimConfig(**settings)


def prices(values: Mapping[str, str]) -> dict[str, Decimal]:
    return {coin: D(px) for coin, px in values.items()}


def venue(
    *,
    cash: str = "10000",
    mids: Mapping[str, str] = MIDS,
    state_dir: Path | None = None,
    users: tuple[str, ...] = (ALICE,),
    **overrides: Any,
) -> SimVenue:
    sim = SimVenue.open(config(**overrides), state_dir)
    for user in users:
        sim.fund(user, D(cash))
    sim.advance(T0, prices(mids))
    return sim


def limit(
    asset: int,
    is_buy: bool,
    px: str,
    sz: str,
    tif: str = "Gtc",
    *,
    reduce_only: bool = False,
    cloid: str | None = None,
) -> dict[str, Any]:
    wire: dict[str, Any] = {
        "a": asset,
        "b": is_buy,
        "p": px,
        "s": sz,
        "r": reduce_only,
        "t": {"limit": {"tif": tif}},
    }
    if cloid is not None:
        wire["c"] = cloid
    return wire


def trigger(
    asset: int,
    is_buy: bool,
    px: str,
    sz: str,
    trigger_px: str,
    tpsl: str,
    *,
    is_market: bool = True,
    reduce_only: bool = True,
    cloid: str | None = None,
) -> dict[str, Any]:
    wire: dict[str, Any] = {
        "a": asset,
        "b": is_buy,
        "p": px,
        "s": sz,
        "r": reduce_only,
        "t": {"trigger": {"isMarket": is_market, "triggerPx": trigger_px, "tpsl": tpsl}},
    }
    if cloid is not None:
        wire["c"] = cloid
    return wire


def order_action(*orders: dict[str, Any], grouping: str = "na") -> dict[str, Any]:
    return {"type": "order", "orders": list(orders), "grouping": grouping}


def place(
    sim: SimVenue, *orders: dict[str, Any], user: str = ALICE, grouping: str = "na"
) -> list[Any]:
    """The per-order statuses of an order action (asserting the action itself succeeded)."""
    response = sim.exchange(user, order_action(*orders, grouping=grouping))
    assert response["status"] == "ok", response
    statuses: list[Any] = response["response"]["data"]["statuses"]
    return statuses


def one(sim: SimVenue, order: dict[str, Any], user: str = ALICE) -> Any:
    return place(sim, order, user=user)[0]


def cloid(n: int) -> str:
    return f"0x{n:032x}"


def position(sim: SimVenue, coin: str, user: str = ALICE) -> dict[str, Any] | None:
    state = sim.info({"type": "clearinghouseState", "user": user})
    for row in state["assetPositions"]:
        if row["position"]["coin"] == coin:
            found: dict[str, Any] = row["position"]
            return found
    return None


def fills(sim: SimVenue, user: str = ALICE) -> list[dict[str, Any]]:
    """Oldest first."""
    rows: list[dict[str, Any]] = sim.info({"type": "userFills", "user": user})
    return rows[::-1]


def status_of(sim: SimVenue, oid: int | str, user: str = ALICE) -> str:
    answer = sim.info({"type": "orderStatus", "user": user, "oid": oid})
    if answer["status"] == "unknownOid":
        return "unknownOid"
    found: str = answer["order"]["status"]
    return found


def open_oids(sim: SimVenue, user: str = ALICE) -> list[int]:
    return sorted(row["oid"] for row in sim.info({"type": "openOrders", "user": user}))
