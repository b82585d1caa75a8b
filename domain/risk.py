"""Pre-trade risk rules, in code, before any order (ARCHITECTURE.md §4).

:func:`plan_orders` turns validated decision items into order plans and typed
rejections. It is pure and deterministic: the same items, account, marks and limits
always give the same plan, which is what makes replay-verify meaningful.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from domain.decision import DecisionItem
from domain.ledger import AccountSnapshot, EntryContext, ExitPlan, Position
from domain.values import (
    HUNDRED,
    MAJOR_COINS,
    ONE,
    ZERO,
    CloseReason,
    OrderIntent,
    OrderSide,
    Side,
    Signal,
    floor_to_decimals,
)

BPS = Decimal(10_000)


class RiskRule(StrEnum):
    CONFIDENCE = "min_confidence"
    POSITION_EXISTS = "position_exists"
    MAX_POSITIONS = "max_positions"
    LEVERAGE_CAP = "leverage_cap"
    STOP_SIDE = "stop_loss_side"
    TARGET_SIDE = "profit_target_side"
    REWARD_RISK = "min_reward_risk"
    SIZE_BELOW_LOT = "size_below_lot"
    MIN_ORDER_VALUE = "min_order_value"
    MAX_POSITION_SIZE = "max_position_size"
    MARGIN_USAGE = "max_margin_usage"
    INSUFFICIENT_MARGIN = "insufficient_margin"
    NO_POSITION = "no_position"
    NO_PRICE = "no_price"
    UNKNOWN_ASSET = "unknown_asset"
    DECISION_SCHEMA = "decision_schema"
    COIN_HELD_BY_OTHER = "coin_held_by_other"


@dataclass(frozen=True)
class RiskLimits:
    max_positions: int
    max_position_size_usd: Decimal
    max_margin_usage_pct: Decimal
    major_coin_leverage: int
    altcoin_leverage: int
    min_risk_reward: Decimal
    min_confidence_pct: Decimal  # 0..100; decisions state confidence in 0..1
    major_coins: frozenset[str] = MAJOR_COINS

    def leverage_cap(self, coin: str) -> int:
        return self.major_coin_leverage if coin in self.major_coins else self.altcoin_leverage


@dataclass(frozen=True)
class AssetRules:
    """What the venue allows for one asset."""

    coin: str
    sz_decimals: int
    max_leverage: int
    min_order_value: Decimal = Decimal(10)


@dataclass(frozen=True)
class Rejection:
    coin: str
    signal: str
    rule: str
    detail: str
    values: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PlannedOrder:
    coin: str
    side: OrderSide
    size: Decimal
    intent: OrderIntent
    reduce_only: bool
    leverage: int
    limit_price: Decimal
    reason: CloseReason | None
    context: EntryContext


@dataclass(frozen=True)
class OrderPlan:
    orders: tuple[PlannedOrder, ...]
    rejections: tuple[Rejection, ...]


def limit_price(mark: Decimal, side: OrderSide, slippage_bps: Decimal) -> Decimal:
    """Worst acceptable price of a market (IOC) order."""
    factor = slippage_bps / BPS
    return mark * (ONE + factor) if side is OrderSide.BUY else mark * (ONE - factor)


def close_order(
    position: Position, mark: Decimal, reason: CloseReason, slippage_bps: Decimal
) -> PlannedOrder:
    side = OrderSide.SELL if position.qty > 0 else OrderSide.BUY
    return PlannedOrder(
        coin=position.coin,
        side=side,
        size=position.size,
        intent=OrderIntent.CLOSE,
        reduce_only=True,
        leverage=position.context.leverage,
        limit_price=limit_price(mark, side, slippage_bps),
        reason=reason,
        context=position.context,
    )


def _reject(item: DecisionItem, rule: RiskRule, detail: str, **values: object) -> Rejection:
    return Rejection(
        coin=item.coin,
        signal=item.signal.value,
        rule=rule.value,
        detail=detail,
        values={k: str(v) for k, v in values.items()},
    )


@dataclass
class _Budget:
    """The account as the plan goes, so several entries in one answer add up."""

    equity: Decimal
    margin_used: Decimal
    open_coins: set[str]


def plan_orders(
    items: Sequence[DecisionItem],
    *,
    account: AccountSnapshot,
    marks: Mapping[str, Decimal],
    limits: RiskLimits,
    assets: Mapping[str, AssetRules],
    slippage_bps: Decimal,
    taker_fee_rate: Decimal,
    claimed: Mapping[str, str] | None = None,
) -> OrderPlan:
    """Closes first (they free margin and position slots), then entries, in answer order.

    ``claimed``: coins another trader on the same venue account holds (coin → trader). The
    venue nets positions per coin, so a second trader entering one would merge into the
    first trader's position and fight over its stop and target: such entries are refused.
    """
    claimed = claimed or {}
    orders: list[PlannedOrder] = []
    rejections: list[Rejection] = []
    budget = _Budget(
        equity=account.equity,
        margin_used=account.margin_used,
        open_coins=set(account.positions),
    )
    for item in items:
        if item.signal is not Signal.CLOSE:
            continue
        position = account.positions.get(item.coin)
        mark = marks.get(item.coin)
        if position is None:
            rejections.append(
                _reject(item, RiskRule.NO_POSITION, f"no open {item.coin} position to close")
            )
            continue
        if mark is None:
            rejections.append(_reject(item, RiskRule.NO_PRICE, f"no price for {item.coin}"))
            continue
        orders.append(close_order(position, mark, CloseReason.SIGNAL, slippage_bps))
        budget.margin_used -= position.margin(mark)
        budget.open_coins.discard(item.coin)
    for item in items:
        if item.signal not in (Signal.BUY_TO_ENTER, Signal.SELL_TO_ENTER):
            continue
        holder = claimed.get(item.coin)
        if holder is not None:
            rejections.append(
                _reject(
                    item,
                    RiskRule.COIN_HELD_BY_OTHER,
                    f"{item.coin} is held by trader {holder} on the same venue account "
                    "(one trader per coin per account)",
                    holder=holder,
                )
            )
            continue
        verdict = _check_entry(item, account, budget, marks, limits, assets, taker_fee_rate)
        if isinstance(verdict, Rejection):
            rejections.append(verdict)
            continue
        size, mark, _ = verdict
        side = OrderSide.BUY if item.signal is Signal.BUY_TO_ENTER else OrderSide.SELL
        assert item.leverage is not None
        assert item.profit_target is not None
        assert item.stop_loss is not None
        context = EntryContext(
            leverage=item.leverage,
            exit_plan=ExitPlan(item.profit_target, item.stop_loss, item.invalidation_condition),
            confidence=item.confidence,
            risk_usd=item.risk_usd,
            justification=item.justification,
        )
        orders.append(
            PlannedOrder(
                coin=item.coin,
                side=side,
                size=size,
                intent=OrderIntent.OPEN_LONG if side is OrderSide.BUY else OrderIntent.OPEN_SHORT,
                reduce_only=False,
                leverage=item.leverage,
                limit_price=limit_price(mark, side, slippage_bps),
                reason=None,
                context=context,
            )
        )
        budget.margin_used += size * mark / Decimal(item.leverage)
        budget.open_coins.add(item.coin)
    return OrderPlan(orders=tuple(orders), rejections=tuple(rejections))


def _check_entry(
    item: DecisionItem,
    account: AccountSnapshot,
    budget: _Budget,
    marks: Mapping[str, Decimal],
    limits: RiskLimits,
    assets: Mapping[str, AssetRules],
    taker_fee_rate: Decimal,
) -> Rejection | tuple[Decimal, Decimal, AssetRules]:
    # The parser guarantees these for entries.
    assert item.quantity is not None
    assert item.leverage is not None
    assert item.profit_target is not None
    assert item.stop_loss is not None
    assert item.confidence is not None
    coin = item.coin
    asset = assets.get(coin)
    if asset is None:
        return _reject(item, RiskRule.UNKNOWN_ASSET, f"the venue does not list {coin}")
    mark = marks.get(coin)
    if mark is None or mark <= 0:
        return _reject(item, RiskRule.NO_PRICE, f"no price for {coin}")
    confidence_pct = item.confidence * HUNDRED
    if confidence_pct < limits.min_confidence_pct:
        return _reject(
            item,
            RiskRule.CONFIDENCE,
            f"confidence {item.confidence} is below the minimum {limits.min_confidence_pct}%",
            confidence=item.confidence,
            min_confidence_pct=limits.min_confidence_pct,
        )
    if coin in account.positions or coin in budget.open_coins:
        return _reject(
            item,
            RiskRule.POSITION_EXISTS,
            f"already positioned in {coin}: no pyramiding or hedging",
        )
    if len(budget.open_coins) >= limits.max_positions:
        return _reject(
            item,
            RiskRule.MAX_POSITIONS,
            f"{len(budget.open_coins)} positions open, the maximum is {limits.max_positions}",
            open_positions=len(budget.open_coins),
            max_positions=limits.max_positions,
        )
    cap = min(limits.leverage_cap(coin), asset.max_leverage)
    if item.leverage > cap:
        return _reject(
            item,
            RiskRule.LEVERAGE_CAP,
            f"leverage {item.leverage} is above the cap {cap} for {coin}",
            leverage=item.leverage,
            config_cap=limits.leverage_cap(coin),
            venue_cap=asset.max_leverage,
        )
    long = item.signal is Signal.BUY_TO_ENTER
    stop_ok = item.stop_loss < mark if long else item.stop_loss > mark
    if not stop_ok:
        return _reject(
            item,
            RiskRule.STOP_SIDE,
            f"stop {item.stop_loss} is on the wrong side of the price {mark} for a "
            f"{'long' if long else 'short'}",
            stop_loss=item.stop_loss,
            price=mark,
        )
    target_ok = item.profit_target > mark if long else item.profit_target < mark
    if not target_ok:
        return _reject(
            item,
            RiskRule.TARGET_SIDE,
            f"target {item.profit_target} is on the wrong side of the price {mark} for a "
            f"{'long' if long else 'short'}",
            profit_target=item.profit_target,
            price=mark,
        )
    reward = abs(item.profit_target - mark)
    risk = abs(mark - item.stop_loss)
    ratio = reward / risk
    if ratio < limits.min_risk_reward:
        return _reject(
            item,
            RiskRule.REWARD_RISK,
            f"reward/risk {ratio:.2f} is below the minimum {limits.min_risk_reward}",
            reward_risk=f"{ratio:.4f}",
            min_reward_risk=limits.min_risk_reward,
        )
    if item.quantity * mark > limits.max_position_size_usd * 1_000_000:
        # Far beyond any limit (and beyond Decimal's precision once rounded to the lot).
        return _reject(
            item,
            RiskRule.MAX_POSITION_SIZE,
            f"quantity {item.quantity} is absurdly large for the maximum "
            f"{limits.max_position_size_usd}",
            quantity=item.quantity,
            max_position_size_usd=limits.max_position_size_usd,
        )
    size = floor_to_decimals(item.quantity, asset.sz_decimals)
    if size <= 0:
        return _reject(
            item,
            RiskRule.SIZE_BELOW_LOT,
            f"quantity {item.quantity} rounds to zero at {asset.sz_decimals} decimals",
            quantity=item.quantity,
        )
    notional = size * mark
    if notional < asset.min_order_value:
        return _reject(
            item,
            RiskRule.MIN_ORDER_VALUE,
            f"order value {notional:.2f} is below the venue minimum {asset.min_order_value}",
            notional=f"{notional:.2f}",
        )
    if notional > limits.max_position_size_usd:
        return _reject(
            item,
            RiskRule.MAX_POSITION_SIZE,
            f"position value {notional:.2f} is above the maximum {limits.max_position_size_usd}",
            notional=f"{notional:.2f}",
            max_position_size_usd=limits.max_position_size_usd,
        )
    margin = notional / Decimal(item.leverage)
    equity = budget.equity
    usage_pct = (budget.margin_used + margin) / equity * HUNDRED if equity > 0 else HUNDRED * 100
    if usage_pct > limits.max_margin_usage_pct:
        return _reject(
            item,
            RiskRule.MARGIN_USAGE,
            f"margin usage would be {usage_pct:.1f}%, above {limits.max_margin_usage_pct}%",
            margin_usage_pct=f"{usage_pct:.2f}",
            max_margin_usage_pct=limits.max_margin_usage_pct,
        )
    fee = notional * taker_fee_rate
    available = equity - budget.margin_used
    if margin + fee > available:
        return _reject(
            item,
            RiskRule.INSUFFICIENT_MARGIN,
            f"needs {margin + fee:.2f} (margin + fee), {available:.2f} available",
            required=f"{margin + fee:.2f}",
            available=f"{available:.2f}",
        )
    return size, mark, asset


def protective_exit(position: Position, mark: Decimal) -> CloseReason | None:
    """Whether the mark has crossed the position's stop or target."""
    plan = position.context.exit_plan
    if plan is None:
        return None
    if position.side is Side.LONG:
        if mark <= plan.stop_loss:
            return CloseReason.STOP
        if mark >= plan.profit_target:
            return CloseReason.TARGET
        return None
    if mark >= plan.stop_loss:
        return CloseReason.STOP
    if mark <= plan.profit_target:
        return CloseReason.TARGET
    return None


__all__ = [
    "ZERO",
    "AssetRules",
    "OrderPlan",
    "PlannedOrder",
    "Rejection",
    "RiskLimits",
    "RiskRule",
    "close_order",
    "limit_price",
    "plan_orders",
    "protective_exit",
]
