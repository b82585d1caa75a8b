"""/info about orders, fills and funding payments."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from infrastructure.simulator.actions import CLOID
from infrastructure.simulator.errors import InfoRequestError
from infrastructure.simulator.info_fields import (
    Request,
    int_field,
    optional_int_field,
    user_field,
)
from infrastructure.simulator.rules import wire
from infrastructure.simulator.state import Fill, Order, UserFunding
from infrastructure.simulator.trading import Venue

MAX_ROWS = 2000  # userFills, userFillsByTime, historicalOrders
MAX_TIME_ROWS = 500  # userFunding

_Timed = TypeVar("_Timed", Fill, UserFunding)


def order_type(order: Order) -> str:
    if order.liquidation:
        return "Market"
    if order.trigger is None:
        return "Limit"
    kind = "Take Profit" if order.trigger.tpsl == "tp" else "Stop"
    return f"{kind} {'Market' if order.trigger.is_market else 'Limit'}"


def basic_order(order: Order) -> dict[str, Any]:
    row: dict[str, Any] = {
        "coin": order.coin,
        "side": "B" if order.is_buy else "A",
        "limitPx": wire(order.limit_px),
        "sz": wire(order.sz),
        "oid": order.oid,
        "timestamp": order.timestamp,
        "origSz": wire(order.orig_sz),
    }
    if order.cloid is not None:
        row["cloid"] = order.cloid
    if order.reduce_only:
        row["reduceOnly"] = True
    return row


def frontend_order(order: Order, children: list[Order]) -> dict[str, Any]:
    trigger = order.trigger
    condition = "N/A"
    if trigger is not None:
        above = trigger.fires_above(order.is_buy)
        condition = f"Price {'above' if above else 'below'} {wire(trigger.px)}"
    return {
        "coin": order.coin,
        "side": "B" if order.is_buy else "A",
        "limitPx": wire(order.limit_px),
        "sz": wire(order.sz),
        "oid": order.oid,
        "timestamp": order.timestamp,
        "triggerCondition": condition,
        "isTrigger": trigger is not None,
        "triggerPx": wire(trigger.px) if trigger is not None else "0.0",
        "children": [frontend_order(child, []) for child in children],
        "isPositionTpsl": order.position_tpsl,
        "reduceOnly": order.reduce_only,
        "orderType": order_type(order),
        "origSz": wire(order.orig_sz),
        "tif": order.tif,
        "cloid": order.cloid,
    }


def _open_newest_first(venue: Venue, user: str) -> list[Order]:
    acct = venue.core.accounts.get(user)
    if acct is None:
        return []
    return sorted(acct.open_orders.values(), key=lambda order: order.oid, reverse=True)


def _children(orders: list[Order], parent: Order) -> list[Order]:
    return sorted((o for o in orders if o.parent == parent.oid), key=lambda o: o.oid)


def open_orders(venue: Venue, request: Request) -> list[dict[str, Any]]:
    return [basic_order(order) for order in _open_newest_first(venue, user_field(request))]


def frontend_open_orders(venue: Venue, request: Request) -> list[dict[str, Any]]:
    orders = _open_newest_first(venue, user_field(request))
    return [frontend_order(order, _children(orders, order)) for order in orders]


def _with_status(order: Order, children: list[Order]) -> dict[str, Any]:
    return {
        "order": frontend_order(order, children),
        "status": order.status,
        "statusTimestamp": order.status_ts,
    }


def historical_orders(venue: Venue, request: Request) -> list[dict[str, Any]]:
    user = user_field(request)
    live = _open_newest_first(venue, user)
    finished = list(venue.journal.done.get(user, {}).values())
    everything = sorted(live + finished, key=lambda o: (o.status_ts, o.oid), reverse=True)
    return [_with_status(order, _children(live, order)) for order in everything[:MAX_ROWS]]


def order_status(venue: Venue, request: Request) -> dict[str, Any]:
    user = user_field(request)
    ref = request.get("oid")
    if isinstance(ref, str):
        if not CLOID.fullmatch(ref):
            raise InfoRequestError()
        ref = ref.lower()
    elif isinstance(ref, bool) or not isinstance(ref, int):
        raise InfoRequestError()
    order = venue.find_any(user, ref)
    if order is None:
        return {"status": "unknownOid"}
    return {
        "status": "order",
        "order": _with_status(order, _children(_open_newest_first(venue, user), order)),
    }


# -- fills and funding ---------------------------------------------------------------------------


def fill_row(fill: Fill) -> dict[str, Any]:
    row: dict[str, Any] = {
        "coin": fill.coin,
        "px": wire(fill.px),
        "sz": wire(fill.sz),
        "side": "B" if fill.is_buy else "A",
        "time": fill.time,
        "startPosition": wire(fill.start),
        "dir": fill.dir,
        "closedPnl": wire(fill.closed_pnl),
        "hash": fill.hash,
        "oid": fill.oid,
        "crossed": fill.crossed,
        "fee": wire(fill.fee),
        "tid": fill.tid,
        "feeToken": "USDC",
    }
    if fill.cloid is not None:
        row["cloid"] = fill.cloid
    if fill.liquidation_mark is not None:
        row["liquidation"] = {
            "liquidatedUser": fill.user,
            "markPx": wire(fill.liquidation_mark),
            "method": "market",
        }
    return row


def user_fills(venue: Venue, request: Request) -> list[dict[str, Any]]:
    fills = venue.journal.fills.get(user_field(request), ())
    newest = [fills[i] for i in range(len(fills) - 1, max(-1, len(fills) - 1 - MAX_ROWS), -1)]
    return [fill_row(fill) for fill in newest]


def _since(rows: Sequence[_Timed], start: int) -> list[_Timed]:
    """The rows stamped at or after ``start``, oldest first. The journal appends them in
    venue time, which never goes back, so they are the newest ones: read from the end
    (a reconciliation asks for the last few of a long history, pass after pass)."""
    found = []
    for row in reversed(rows):
        if row.time < start:
            break
        found.append(row)
    found.reverse()
    return found


def user_fills_by_time(venue: Venue, request: Request) -> list[dict[str, Any]]:
    user = user_field(request)
    start = int_field(request, "startTime")
    end = optional_int_field(request, "endTime")
    rows = [
        fill_row(fill)
        for fill in _since(venue.journal.fills.get(user, ()), start)
        if end is None or fill.time <= end
    ]
    return rows[:MAX_ROWS]


def user_funding(venue: Venue, request: Request) -> list[dict[str, Any]]:
    user = user_field(request)
    start = int_field(request, "startTime")
    end = optional_int_field(request, "endTime")
    rows = [
        {
            "time": row.time,
            "hash": row.hash,
            "delta": {
                "type": "funding",
                "coin": row.coin,
                "usdc": wire(row.usdc),
                "szi": wire(row.szi),
                "fundingRate": wire(row.rate),
                "nSamples": None,
            },
        }
        for row in _since(venue.journal.user_funding.get(user, ()), start)
        if end is None or row.time <= end
    ]
    return rows[:MAX_TIME_ROWS]


def user_ledger(venue: Venue, request: Request) -> list[dict[str, Any]]:
    """userNonFundingLedgerUpdates: the deposits and withdrawals (the simulator has no
    other transfers)."""
    user = user_field(request)
    start = int_field(request, "startTime")
    end = optional_int_field(request, "endTime")
    rows = []
    for row in venue.journal.ledger.get(user, ()):
        if row.time < start or (end is not None and row.time > end):
            continue
        delta: dict[str, Any] = {"type": row.kind, "usdc": wire(row.usdc)}
        if row.kind == "withdraw":
            delta.update(nonce=row.nonce, fee="0.0")
        rows.append({"time": row.time, "hash": row.hash, "delta": delta})
    return rows[:MAX_ROWS]
