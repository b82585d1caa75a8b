"""Breakers and throttles: limits on losses and on trading pace that refuse new entries.

Pure functions over a trader's books and the cycle's valuation. A breaker that trips
(daily loss, peak-to-trough drawdown) refuses every new entry while it holds, and is
recorded once per trip (``Trader.BreakerTripped``) so that it alerts once; a throttle
(re-entry cooldown per coin, new positions per hour, minimum holding time) refuses the
orders it applies to. Every refusal is a ``RiskRejected`` with its own rule. Closes are
never refused by a loss breaker: getting out is always allowed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from domain.risk import OrderPlan, PlannedOrder, Rejection
from domain.values import OrderIntent

HUNDRED = Decimal(100)


class BreakerRule(StrEnum):
    DAILY_LOSS = "daily_loss"
    DRAWDOWN = "max_drawdown"
    REENTRY_COOLDOWN = "reentry_cooldown"
    NEW_POSITIONS_PER_HOUR = "max_new_positions_per_hour"
    MIN_HOLDING = "min_holding_time"


class TripAction(StrEnum):
    REFUSE_ENTRIES = "refuse_entries"  # keep deciding; every new entry is refused
    PAUSE = "pause"  # pause the trader (an operator resumes it)
    FLATTEN = "flatten"  # pause and flatten it


@dataclass(frozen=True)
class BreakerLimits:
    max_daily_loss_pct: Decimal | None = None  # of the equity at the start of the UTC day
    max_drawdown_pct: Decimal | None = None  # from the highest equity recorded
    reentry_cooldown_s: float | None = None  # after a coin's position closed
    max_new_positions_per_hour: int | None = None
    min_holding_s: float | None = None  # a model's close before it is refused
    on_trip: TripAction = TripAction.REFUSE_ENTRIES
    #: After this many losing trades in a row, no cycle for ``loss_cooldown_s``.
    cooldown_after_losses: int | None = None
    loss_cooldown_s: float = 3600.0
    #: Below this Sharpe (after ``sharpe_min_returns`` hourly returns) a trader decides
    #: ``sharpe_slowdown`` times less often.
    min_sharpe: float | None = None
    sharpe_min_returns: int = 24
    sharpe_slowdown: float = 3.0


@dataclass(frozen=True)
class Trip:
    rule: BreakerRule
    detail: str
    values: dict[str, str]


def tripped(
    limits: BreakerLimits, *, equity: Decimal, day_base: Decimal, peak: Decimal
) -> list[Trip]:
    """The loss breakers that hold at this valuation."""
    trips: list[Trip] = []
    if limits.max_daily_loss_pct is not None and day_base > 0:
        loss_pct = (day_base - equity) / day_base * HUNDRED
        if loss_pct >= limits.max_daily_loss_pct:
            trips.append(
                Trip(
                    BreakerRule.DAILY_LOSS,
                    f"down {loss_pct:.2f}% today (limit {limits.max_daily_loss_pct}%)",
                    {"equity": str(equity), "day_start_equity": str(day_base)},
                )
            )
    if limits.max_drawdown_pct is not None and peak > 0:
        drawdown = (peak - equity) / peak * HUNDRED
        if drawdown >= limits.max_drawdown_pct:
            trips.append(
                Trip(
                    BreakerRule.DRAWDOWN,
                    f"{drawdown:.2f}% below the peak (limit {limits.max_drawdown_pct}%)",
                    {"equity": str(equity), "peak_equity": str(peak)},
                )
            )
    return trips


def _is_entry(order: PlannedOrder) -> bool:
    return order.intent is not OrderIntent.CLOSE


def throttle(
    plan: OrderPlan,
    limits: BreakerLimits,
    *,
    trips: list[Trip],
    now: datetime,
    closed_at: dict[str, datetime],
    opened_at: dict[str, datetime],
    opened_last_hour: int,
) -> OrderPlan:
    """``plan`` with the orders the breakers and throttles refuse moved to rejections."""
    kept: list[PlannedOrder] = []
    refused = list(plan.rejections)
    new_positions = opened_last_hour

    def refuse(order: PlannedOrder, rule: BreakerRule, detail: str, **values: object) -> None:
        signal = "close" if order.intent is OrderIntent.CLOSE else order.intent.value
        refused.append(
            Rejection(
                coin=order.coin,
                signal=signal,
                rule=rule.value,
                detail=detail,
                values={k: str(v) for k, v in values.items()},
            )
        )

    for order in plan.orders:
        if _is_entry(order):
            if trips:
                trip = trips[0]
                refuse(order, trip.rule, f"breaker tripped: {trip.detail}", **trip.values)
                continue
            closed = closed_at.get(order.coin)
            cooldown = limits.reentry_cooldown_s
            if cooldown is not None and closed is not None:
                wait = timedelta(seconds=cooldown) - (now - closed)
                if wait > timedelta(0):
                    refuse(
                        order,
                        BreakerRule.REENTRY_COOLDOWN,
                        f"{order.coin} closed {int((now - closed).total_seconds())}s ago; "
                        f"re-entry allowed after {cooldown:g}s",
                        closed_at=closed.isoformat(),
                    )
                    continue
            cap = limits.max_new_positions_per_hour
            if cap is not None and new_positions >= cap:
                refuse(
                    order,
                    BreakerRule.NEW_POSITIONS_PER_HOUR,
                    f"{new_positions} positions opened in the last hour (limit {cap})",
                    opened=new_positions,
                )
                continue
            new_positions += 1
        elif limits.min_holding_s is not None and order.reason is not None:
            opened = opened_at.get(order.coin)
            held = (now - opened).total_seconds() if opened is not None else None
            if held is not None and held < limits.min_holding_s and order.reason.value == "signal":
                refuse(
                    order,
                    BreakerRule.MIN_HOLDING,
                    f"held {held:.0f}s; a model's close is allowed after {limits.min_holding_s:g}s",
                    held_s=int(held),
                )
                continue
        kept.append(order)
    return OrderPlan(tuple(kept), tuple(refused))


def due_after(
    limits: BreakerLimits,
    *,
    interval_s: float,
    last_cycle_at: datetime,
    loss_streak: int,
    last_loss_at: datetime | None,
    sharpe: float,
    returns: int,
) -> tuple[datetime, str]:
    """When the next cycle is due, and why if later than the decision interval: a cooldown
    after consecutive losses, or Sharpe gating (a trader doing badly decides less often)."""
    due = last_cycle_at + timedelta(seconds=interval_s)
    why = ""
    if (
        limits.min_sharpe is not None
        and returns >= limits.sharpe_min_returns
        and sharpe < limits.min_sharpe
    ):
        due = last_cycle_at + timedelta(seconds=interval_s * limits.sharpe_slowdown)
        why = f"sharpe {sharpe:.2f} below {limits.min_sharpe:g}"
    after = limits.cooldown_after_losses
    if after is not None and loss_streak >= after and last_loss_at is not None:
        until = last_loss_at + timedelta(seconds=limits.loss_cooldown_s)
        if until > due:
            due, why = until, f"{loss_streak} losing trades in a row"
    return due, why
