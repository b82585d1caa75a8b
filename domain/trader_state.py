"""What a Trader holds besides its ledger (orders in flight, protections on the venue),
the bookkeeping every valuation-changing event does (hourly returns, the day's base, the
peak), and how a state of an older class version is brought up to date."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from domain.ledger import EntryContext, add_return
from domain.values import ZERO, CloseReason, OrderIntent, OrderSide

if TYPE_CHECKING:
    from domain.trader import Trader

#: Entry times kept for the pace throttle (new positions per hour).
RECENT_ENTRIES = 100
#: Cycle outcomes kept for the failure-rate pause (the longest window configurable).
RECENT_WINDOW = 1000
#: Venue fill and funding ids remembered to record each exactly once (far more than a
#: reconciliation window can hold).
SEEN_IDS = 2000


@dataclass(frozen=True)
class PendingOrder:
    cloid: str
    cycle_id: str
    coin: str
    side: OrderSide
    size: Decimal
    intent: OrderIntent
    reduce_only: bool
    leverage: int
    limit_price: Decimal
    reason: CloseReason | None
    context: EntryContext
    placed_at: datetime
    filled: Decimal = ZERO


@dataclass(frozen=True)
class Protection:
    """A reduce-only stop or take-profit trigger order that covers a position on the venue."""

    cloid: str
    coin: str
    kind: CloseReason  # STOP or TARGET
    side: OrderSide
    size: Decimal
    trigger_price: Decimal
    limit_price: Decimal  # the worst price once triggered
    generation: int
    placed_at: datetime
    oid: int | None = None  # the venue's order id, once it confirmed the order


# -- older states -------------------------------------------------------------------------


def upcast_v1_v2(state: dict[str, Any]) -> None:
    """v2: venue protections, fill/funding de-duplication."""
    state["protections"] = {}
    state["protection_gen"] = {}
    state["fill_ids"] = []
    state["funding_ids"] = []
    state["last_fill_at"] = None
    state["last_funding_at"] = None
    state["closed_at"] = {}


def upcast_v2_v3(state: dict[str, Any]) -> None:
    """v3: operator controls, breakers, pace and cost."""
    state["flatten_requested"] = False
    state["last_control"] = None
    equity = state.get("last_equity", ZERO)
    state["day"] = ""
    state["day_base"] = equity
    state["peak_equity"] = equity
    state["breakers"] = {}
    state["recent_entries"] = []
    state["loss_streak"] = 0
    state["model_cost"] = ZERO
    state["reallocated"] = False
    state["last_loss_at"] = None


# -- valuation bookkeeping ----------------------------------------------------------------


def hour_turns(trader: Trader, at: datetime) -> None:
    """Before a valuation-changing event: when it starts a new hour, the equity at the end
    of the previous hour closes that hour's return (the same rule as the views')."""
    day_turns(trader, at)
    marker = int(max(0.0, (at - trader.created_on).total_seconds()) // 3600)
    if marker <= trader.hour:
        return
    if trader.hour >= 0:
        if trader.hour_base > 0:
            trader.returns_n, trader.returns_mean, trader.returns_m2 = add_return(
                (trader.returns_n, trader.returns_mean, trader.returns_m2),
                float(trader.last_equity / trader.hour_base - 1),
            )
        trader.hour_base = trader.last_equity
    trader.hour = marker


def revalue(trader: Trader) -> None:
    trader.last_equity = trader.account(trader.marks).equity
    trader.peak_equity = max(trader.peak_equity, trader.last_equity)


def day_turns(trader: Trader, at: datetime) -> None:
    """Before a valuation-changing event: a new UTC day starts from the last equity."""
    day = at.date().isoformat()
    if day != trader.day:
        trader.day = day
        trader.day_base = trader.last_equity


def remember_outcome(trader: Trader, *, ok: bool) -> None:
    trader.recent_outcomes = [*trader.recent_outcomes[-(RECENT_WINDOW - 1) :], 0 if ok else 1]
