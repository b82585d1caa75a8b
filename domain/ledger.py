"""Ledger maths for one virtual sub-account, in Decimal.

A trader's equity = allocation + realised price P&L − fees ± funding + unrealised P&L.
Fills are the only thing that changes positions; a fill that brings a position to zero
closes a *trade* (entry legs + exit legs), which carries gross and net P&L.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from domain.values import ONE, ZERO, OrderSide, Side, side_of


@dataclass(frozen=True)
class ExitPlan:
    profit_target: Decimal
    stop_loss: Decimal
    invalidation_condition: str

    def to_record(self) -> dict[str, Any]:
        """JSON-native (Decimals as exact strings), as stored inside events."""
        return {
            "profit_target": str(self.profit_target),
            "stop_loss": str(self.stop_loss),
            "invalidation_condition": self.invalidation_condition,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any] | None) -> ExitPlan | None:
        if not record:
            return None
        return cls(
            profit_target=Decimal(str(record["profit_target"])),
            stop_loss=Decimal(str(record["stop_loss"])),
            invalidation_condition=str(record.get("invalidation_condition", "")),
        )


@dataclass(frozen=True)
class EntryContext:
    """What the decision said when a position was opened (kept for the books and prompts)."""

    leverage: int
    exit_plan: ExitPlan | None = None
    confidence: Decimal | None = None
    risk_usd: Decimal | None = None
    justification: str = ""


@dataclass(frozen=True)
class Position:
    coin: str
    qty: Decimal  # signed: negative is short; never zero
    entry_price: Decimal  # size-weighted average of the opening fills
    opened_at: datetime
    entry_cloid: str
    context: EntryContext
    entry_fees: Decimal = ZERO
    exit_fees: Decimal = ZERO
    exit_qty: Decimal = ZERO  # size closed so far by partial exits
    exit_notional: Decimal = ZERO
    realized_gross: Decimal = ZERO  # price P&L realised by partial exits
    funding: Decimal = ZERO  # received (+) or paid (−) while open
    peak_qty: Decimal = ZERO  # largest absolute size held

    @property
    def side(self) -> Side:
        return side_of(self.qty)

    @property
    def size(self) -> Decimal:
        return abs(self.qty)

    def unrealized(self, mark: Decimal) -> Decimal:
        return (mark - self.entry_price) * self.qty

    def notional(self, mark: Decimal) -> Decimal:
        return abs(self.qty) * mark

    def margin(self, mark: Decimal) -> Decimal:
        return abs(self.qty) * mark / Decimal(self.context.leverage)


@dataclass(frozen=True)
class ClosedTrade:
    coin: str
    side: Side
    size: Decimal  # the largest size the position reached
    entry_price: Decimal
    exit_price: Decimal  # size-weighted average of the closing fills
    opened_at: datetime
    closed_at: datetime
    leverage: int
    gross_pnl: Decimal
    entry_fees: Decimal
    exit_fees: Decimal
    funding: Decimal
    entry_cloid: str
    exit_cloid: str
    context: EntryContext

    @property
    def fees(self) -> Decimal:
        return self.entry_fees + self.exit_fees

    @property
    def net_pnl(self) -> Decimal:
        return self.gross_pnl - self.fees + self.funding


@dataclass(frozen=True)
class FillEffect:
    position: Position | None  # the position after the fill
    realized_gross: Decimal  # price P&L realised by this fill
    closed: ClosedTrade | None = None  # set when the fill ends a position


def apply_fill(
    position: Position | None,
    *,
    coin: str,
    side: OrderSide,
    size: Decimal,
    price: Decimal,
    fee: Decimal,
    at: datetime,
    cloid: str,
    context: EntryContext,
) -> FillEffect:
    """The effect of one fill on one coin's position (increase, reduce, close or flip)."""
    if size <= 0:
        raise ValueError(f"fill size must be positive, got {size}")
    signed = size if side is OrderSide.BUY else -size
    if position is None:
        opened = Position(
            coin=coin,
            qty=signed,
            entry_price=price,
            opened_at=at,
            entry_cloid=cloid,
            context=context,
            entry_fees=fee,
            peak_qty=size,
        )
        return FillEffect(position=opened, realized_gross=ZERO)
    if position.qty * signed > 0:
        total = position.size + size
        entry = (position.size * position.entry_price + size * price) / total
        grown = replace(
            position,
            qty=position.qty + signed,
            entry_price=entry,
            entry_fees=position.entry_fees + fee,
            peak_qty=max(position.peak_qty, total),
            # A position begun without a plan (a trade from outside) takes the plan of the
            # first order that adds to it with one, so its stop and target are known.
            context=context
            if position.context.exit_plan is None and context.exit_plan is not None
            else position.context,
        )
        return FillEffect(position=grown, realized_gross=ZERO)

    closing = min(size, position.size)
    direction = ONE if position.qty > 0 else -ONE
    realized = (price - position.entry_price) * closing * direction
    closing_fee = fee if closing == size else fee * closing / size
    remaining = position.qty + (signed if closing == size else -position.qty)
    after = replace(
        position,
        qty=remaining,
        exit_fees=position.exit_fees + closing_fee,
        exit_qty=position.exit_qty + closing,
        exit_notional=position.exit_notional + closing * price,
        realized_gross=position.realized_gross + realized,
    )
    if remaining != 0:
        return FillEffect(position=after, realized_gross=realized)
    trade = ClosedTrade(
        coin=coin,
        side=position.side,
        size=position.peak_qty,
        entry_price=position.entry_price,
        exit_price=after.exit_notional / after.exit_qty,
        opened_at=position.opened_at,
        closed_at=at,
        leverage=position.context.leverage,
        gross_pnl=after.realized_gross,
        entry_fees=position.entry_fees,
        exit_fees=after.exit_fees,
        funding=position.funding,
        entry_cloid=position.entry_cloid,
        exit_cloid=cloid,
        context=position.context,
    )
    excess = size - closing
    if excess == 0:
        return FillEffect(position=None, realized_gross=realized, closed=trade)
    # A flip: the rest of the fill opens the other way.
    flipped = Position(
        coin=coin,
        qty=signed / size * excess,
        entry_price=price,
        opened_at=at,
        entry_cloid=cloid,
        context=context,
        entry_fees=fee - closing_fee,
        peak_qty=excess,
    )
    return FillEffect(position=flipped, realized_gross=realized, closed=trade)


@dataclass(frozen=True)
class AccountSnapshot:
    """A virtual sub-account valued at given marks."""

    allocation: Decimal
    realized_pnl: Decimal
    fees_paid: Decimal
    funding: Decimal
    unrealized_pnl: Decimal
    margin_used: Decimal
    positions: Mapping[str, Position]

    @property
    def equity(self) -> Decimal:
        return (
            self.allocation
            + self.realized_pnl
            - self.fees_paid
            + self.funding
            + self.unrealized_pnl
        )

    @property
    def available(self) -> Decimal:
        return self.equity - self.margin_used

    @property
    def return_pct(self) -> Decimal:
        if self.allocation == 0:
            return ZERO
        return (self.equity - self.allocation) / self.allocation * 100


def value_account(
    *,
    allocation: Decimal,
    realized_pnl: Decimal,
    fees_paid: Decimal,
    funding: Decimal,
    positions: Mapping[str, Position],
    marks: Mapping[str, Decimal],
) -> AccountSnapshot:
    """Value the sub-account; a position without a mark is valued at its entry price."""
    unrealized = ZERO
    margin = ZERO
    for coin, position in positions.items():
        mark = marks.get(coin, position.entry_price)
        unrealized += position.unrealized(mark)
        margin += position.margin(mark)
    return AccountSnapshot(
        allocation=allocation,
        realized_pnl=realized_pnl,
        fees_paid=fees_paid,
        funding=funding,
        unrealized_pnl=unrealized,
        margin_used=margin,
        positions=positions,
    )


def maintenance_margin(notional: Decimal, max_leverage: int) -> Decimal:
    """Hyperliquid's maintenance margin: notional / (2 × the asset's max leverage)."""
    return notional / (2 * Decimal(max_leverage))


def liquidation_price(
    position: Position,
    account: AccountSnapshot,
    marks: Mapping[str, Decimal],
    max_leverage: Mapping[str, int],
) -> Decimal | None:
    """Cross-margin liquidation price of one position, other marks held fixed.

    ``liq = mark − side × available / |size| / (1 − side × l)`` with
    ``l = 1 / (2 × maxLev)`` and ``available = equity − Σ maintenance margin``.
    ``None`` when no finite positive price exists.
    """
    total_mm = ZERO
    for coin, other in account.positions.items():
        mark_other = marks.get(coin, other.entry_price)
        total_mm += maintenance_margin(other.notional(mark_other), max_leverage.get(coin, 20))
    available = account.equity - total_mm
    mark = marks.get(position.coin, position.entry_price)
    side = ONE if position.qty > 0 else -ONE
    level = ONE / (2 * Decimal(max_leverage.get(position.coin, 20)))
    denominator = ONE - side * level
    if denominator <= 0:
        return None
    price = mark - side * available / position.size / denominator
    if price <= 0:
        return None
    return price


def add_return(stats: tuple[int, float, float], value: float) -> tuple[int, float, float]:
    """Welford's update of (count, mean, M2) with one more return."""
    count, mean, m2 = stats
    count += 1
    delta = value - mean
    mean += delta / count
    m2 += delta * (value - mean)
    return count, mean, m2


def sharpe_ratio(stats: tuple[int, float, float]) -> float:
    """Mean over sample standard deviation of the hourly returns (not annualised); 0 until
    two returns exist or while they do not vary."""
    count, mean, m2 = stats
    if count < 2:
        return 0.0
    variance = m2 / (count - 1)
    if variance <= 0:
        return 0.0
    return round(mean / math.sqrt(variance), 6)


def total(values: Iterable[Decimal]) -> Decimal:
    result = ZERO
    for value in values:
        result += value
    return result
