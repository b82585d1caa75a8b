"""Pre-trade risk rules (ARCHITECTURE.md §4): ``plan_orders``, ``protective_exit``,
``close_order`` and ``limit_price``, with exact Decimal values and exact rules."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from domain.decision import DecisionItem
from domain.ledger import AccountSnapshot, EntryContext, ExitPlan, Position, value_account
from domain.risk import (
    AssetRules,
    OrderPlan,
    PlannedOrder,
    Rejection,
    RiskLimits,
    RiskRule,
    close_order,
    limit_price,
    plan_orders,
    protective_exit,
)
from domain.values import CloseReason, OrderIntent, OrderSide, Signal
from tests.support.fakes import limits

D = Decimal
T0 = datetime(2025, 10, 17, tzinfo=UTC)
FEE = D("0.00045")
SLIPPAGE = D(50)

ASSETS: dict[str, AssetRules] = {
    "BTC": AssetRules("BTC", sz_decimals=5, max_leverage=40),
    "ETH": AssetRules("ETH", sz_decimals=4, max_leverage=25),
    "SOL": AssetRules("SOL", sz_decimals=2, max_leverage=20),
    "DOGE": AssetRules("DOGE", sz_decimals=0, max_leverage=10),
}
MARKS: dict[str, Decimal] = {"BTC": D(100000), "ETH": D(4000), "SOL": D(200), "DOGE": D("0.2")}
#: (stop, target) at 4:1 reward/risk around MARKS, for a long and for a short.
LONG_LEVELS = {
    "BTC": (D(99000), D(104000)),
    "ETH": (D(3900), D(4400)),
    "SOL": (D(195), D(220)),
    "DOGE": (D("0.19"), D("0.24")),
}
SHORT_LEVELS = {
    "BTC": (D(101000), D(96000)),
    "ETH": (D(4100), D(3600)),
    "SOL": (D(205), D(180)),
    "DOGE": (D("0.21"), D("0.16")),
}


def enter(
    coin: str,
    quantity: str | Decimal,
    *,
    long: bool = True,
    leverage: int = 5,
    stop: str | Decimal | None = None,
    target: str | Decimal | None = None,
    confidence: str = "0.8",
) -> DecisionItem:
    default_stop, default_target = (LONG_LEVELS if long else SHORT_LEVELS)[coin]
    return DecisionItem(
        coin=coin,
        signal=Signal.BUY_TO_ENTER if long else Signal.SELL_TO_ENTER,
        quantity=D(quantity),
        leverage=leverage,
        profit_target=D(target) if target is not None else default_target,
        stop_loss=D(stop) if stop is not None else default_stop,
        confidence=D(confidence),
        risk_usd=D(100),
        invalidation_condition=f"{coin} invalidated",
        justification=f"{coin} setup",
    )


def close(coin: str) -> DecisionItem:
    return DecisionItem(coin=coin, signal=Signal.CLOSE)


def hold(coin: str) -> DecisionItem:
    return DecisionItem(coin=coin, signal=Signal.HOLD)


def position(
    coin: str,
    qty: str | Decimal,
    entry: str | Decimal,
    *,
    leverage: int = 5,
    stop: str | Decimal | None = None,
    target: str | Decimal | None = None,
) -> Position:
    plan = None
    if stop is not None and target is not None:
        plan = ExitPlan(profit_target=D(target), stop_loss=D(stop), invalidation_condition="x")
    return Position(
        coin=coin,
        qty=D(qty),
        entry_price=D(entry),
        opened_at=T0,
        entry_cloid=f"0x{coin.lower()}",
        context=EntryContext(leverage=leverage, exit_plan=plan),
    )


def account(
    *positions: Position,
    allocation: str | Decimal = "10000",
    realized: str | Decimal = "0",
    marks: Mapping[str, Decimal] = MARKS,
) -> AccountSnapshot:
    return value_account(
        allocation=D(allocation),
        realized_pnl=D(realized),
        fees_paid=D(0),
        funding=D(0),
        positions={p.coin: p for p in positions},
        marks=marks,
    )


def plan(
    items: Sequence[DecisionItem],
    *,
    acct: AccountSnapshot | None = None,
    risk: RiskLimits | None = None,
    marks: Mapping[str, Decimal] = MARKS,
    assets: Mapping[str, AssetRules] = ASSETS,
    fee: Decimal = FEE,
) -> OrderPlan:
    return plan_orders(
        items,
        account=acct or account(),
        marks=marks,
        limits=risk or limits(),
        assets=assets,
        slippage_bps=SLIPPAGE,
        taker_fee_rate=fee,
    )


def rules(result: OrderPlan) -> list[tuple[str, str]]:
    return [(r.coin, r.rule) for r in result.rejections]


def ordered(result: OrderPlan) -> list[tuple[str, OrderSide, Decimal, OrderIntent]]:
    return [(o.coin, o.side, o.size, o.intent) for o in result.orders]


# -- planned entries -----------------------------------------------------------------------


def test_a_long_entry_is_planned_exactly() -> None:
    result = plan([enter("BTC", "0.02")])
    assert result.rejections == ()
    assert result.orders == (
        PlannedOrder(
            coin="BTC",
            side=OrderSide.BUY,
            size=D("0.02"),
            intent=OrderIntent.OPEN_LONG,
            reduce_only=False,
            leverage=5,
            limit_price=D(100500),
            reason=None,
            context=EntryContext(
                leverage=5,
                exit_plan=ExitPlan(D(104000), D(99000), "BTC invalidated"),
                confidence=D("0.8"),
                risk_usd=D(100),
                justification="BTC setup",
            ),
        ),
    )


def test_a_short_entry_is_planned_exactly() -> None:
    result = plan([enter("ETH", "0.5", long=False)])
    assert result.rejections == ()
    (order,) = result.orders
    assert (order.side, order.intent, order.size, order.reduce_only) == (
        OrderSide.SELL,
        OrderIntent.OPEN_SHORT,
        D("0.5"),
        False,
    )
    assert order.limit_price == D(3980)
    assert order.reason is None
    assert order.context.exit_plan == ExitPlan(D(3600), D(4100), "ETH invalidated")


def test_holds_plan_nothing() -> None:
    assert plan([hold("BTC"), hold("ETH")]) == OrderPlan(orders=(), rejections=())


def test_the_same_inputs_give_the_same_plan() -> None:
    items = [enter("BTC", "0.02"), close("ETH"), enter("SOL", "1", long=False), hold("DOGE")]
    acct = account(position("ETH", "-1", "4000"))
    assert plan(items, acct=acct) == plan(items, acct=acct)


# -- each rule ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("confidence", "allowed"), [("0.6", True), ("0.60", True), ("0.5999", False), ("0", False)]
)
def test_confidence_at_the_minimum_passes(confidence: str, allowed: bool) -> None:
    result = plan([enter("BTC", "0.02", confidence=confidence)])
    if allowed:
        assert ordered(result) == [("BTC", OrderSide.BUY, D("0.02"), OrderIntent.OPEN_LONG)]
        return
    assert result.orders == ()
    (rejection,) = result.rejections
    assert rejection.rule == RiskRule.CONFIDENCE.value == "min_confidence"
    assert rejection.coin == "BTC"
    assert rejection.signal == "buy_to_enter"
    assert rejection.values == {"confidence": confidence, "min_confidence_pct": "60"}


def test_no_entry_where_a_position_is_open() -> None:
    acct = account(position("BTC", "0.01", "100000"))
    result = plan([enter("BTC", "0.02"), enter("BTC", "0.02", long=False)], acct=acct)
    assert result.orders == ()
    assert rules(result) == [("BTC", "position_exists"), ("BTC", "position_exists")]


def test_no_second_entry_for_one_coin_in_one_answer() -> None:
    result = plan([enter("SOL", "1"), enter("SOL", "2", long=False)])
    assert ordered(result) == [("SOL", OrderSide.BUY, D(1), OrderIntent.OPEN_LONG)]
    assert rules(result) == [("SOL", "position_exists")]


def test_entries_in_one_answer_add_up_against_max_positions() -> None:
    acct = account(position("ETH", "1", "4000"))
    items = [enter("BTC", "0.02"), enter("SOL", "1"), enter("DOGE", "100")]
    result = plan(items, acct=acct, risk=limits(max_positions=2))
    assert ordered(result) == [("BTC", OrderSide.BUY, D("0.02"), OrderIntent.OPEN_LONG)]
    assert rules(result) == [("SOL", "max_positions"), ("DOGE", "max_positions")]
    assert result.rejections[0].values == {"open_positions": "2", "max_positions": "2"}


def test_closes_come_first_and_free_a_position_slot() -> None:
    acct = account(position("ETH", "1", "4000"))
    items = [enter("BTC", "0.02"), close("ETH")]
    result = plan(items, acct=acct, risk=limits(max_positions=1))
    assert result.rejections == ()
    assert ordered(result) == [
        ("ETH", OrderSide.SELL, D(1), OrderIntent.CLOSE),
        ("BTC", OrderSide.BUY, D("0.02"), OrderIntent.OPEN_LONG),
    ]
    # Without the close the slot is taken.
    assert rules(plan(items[:1], acct=acct, risk=limits(max_positions=1))) == [
        ("BTC", "max_positions")
    ]


@pytest.mark.parametrize(
    ("coin", "overrides", "cap", "config_cap", "venue_cap"),
    [
        ("BTC", {}, 20, 20, 40),  # config cap below the venue's
        ("BTC", {"major_coin_leverage": 50}, 40, 50, 40),  # venue cap below the config's
        ("SOL", {}, 10, 10, 20),  # altcoin cap
        ("DOGE", {"altcoin_leverage": 15}, 10, 15, 10),
        ("SOL", {"major_coins": frozenset({"BTC", "ETH", "SOL"})}, 20, 20, 20),
    ],
)
def test_leverage_cap_is_the_lower_of_config_and_venue(
    coin: str, overrides: dict[str, Any], cap: int, config_cap: int, venue_cap: int
) -> None:
    quantity = {"BTC": "0.001", "SOL": "1", "DOGE": "100"}[coin]
    risk = limits(**overrides)
    at_cap = plan([enter(coin, quantity, leverage=cap)], risk=risk)
    assert at_cap.rejections == ()
    assert [o.leverage for o in at_cap.orders] == [cap]
    above = plan([enter(coin, quantity, leverage=cap + 1)], risk=risk)
    assert above.orders == ()
    (rejection,) = above.rejections
    assert rejection.rule == "leverage_cap"
    assert rejection.values == {
        "leverage": str(cap + 1),
        "config_cap": str(config_cap),
        "venue_cap": str(venue_cap),
    }


@pytest.mark.parametrize(
    ("long", "stop", "rule"),
    [
        (True, "100000", "stop_loss_side"),  # a long's stop at the price
        (True, "100001", "stop_loss_side"),  # above the price
        (False, "100000", "stop_loss_side"),  # a short's stop at the price
        (False, "99999", "stop_loss_side"),  # below the price
    ],
)
def test_stop_must_be_beyond_the_price_on_the_losing_side(long: bool, stop: str, rule: str) -> None:
    result = plan([enter("BTC", "0.02", long=long, stop=stop)])
    assert result.orders == ()
    assert rules(result) == [("BTC", rule)]
    assert result.rejections[0].values == {"stop_loss": stop, "price": "100000"}


@pytest.mark.parametrize(
    ("long", "target"),
    [(True, "100000"), (True, "99000.5"), (False, "100000"), (False, "100500")],
)
def test_target_must_be_beyond_the_price_on_the_winning_side(long: bool, target: str) -> None:
    result = plan([enter("BTC", "0.02", long=long, target=target)])
    assert result.orders == ()
    assert rules(result) == [("BTC", "profit_target_side")]
    assert result.rejections[0].values == {"profit_target": target, "price": "100000"}


@pytest.mark.parametrize(
    ("long", "stop", "target", "ratio"),
    [
        (True, "99000", "103000", None),  # exactly 3:1 passes
        (True, "99000", "102999", "2.9990"),
        (False, "101000", "97000", None),
        (False, "101000", "97001", "2.9990"),
    ],
)
def test_reward_risk_exactly_at_the_minimum_passes(
    long: bool, stop: str, target: str, ratio: str | None
) -> None:
    result = plan([enter("BTC", "0.02", long=long, stop=stop, target=target)])
    if ratio is None:
        assert result.rejections == ()
        assert len(result.orders) == 1
        return
    assert result.orders == ()
    (rejection,) = result.rejections
    assert rejection.rule == "min_reward_risk"
    assert rejection.values == {"reward_risk": ratio, "min_reward_risk": "3"}


@pytest.mark.parametrize(
    ("coin", "quantity", "size"),
    [
        ("BTC", "0.0219999", "0.02199"),
        ("BTC", "0.02", "0.02"),
        ("ETH", "0.123456789", "0.1234"),
        ("SOL", "10.999", "10.99"),
        ("DOGE", "10000.9", "10000"),
        ("DOGE", "99.999999", "99"),
    ],
)
def test_size_is_floored_to_sz_decimals_never_rounded_up(
    coin: str, quantity: str, size: str
) -> None:
    result = plan([enter(coin, quantity)])
    assert result.rejections == ()
    (order,) = result.orders
    assert order.size == D(size)
    assert order.size <= D(quantity)
    assert -order.size.as_tuple().exponent <= ASSETS[coin].sz_decimals  # type: ignore[operator]


@pytest.mark.parametrize(("coin", "quantity"), [("BTC", "0.000009"), ("DOGE", "0.9")])
def test_a_quantity_below_one_lot_is_refused(coin: str, quantity: str) -> None:
    result = plan([enter(coin, quantity)])
    assert result.orders == ()
    assert rules(result) == [(coin, "size_below_lot")]
    assert result.rejections[0].values == {"quantity": quantity}


@pytest.mark.parametrize(
    ("coin", "quantity", "notional"),
    [
        ("BTC", "0.0001", None),  # exactly $10
        ("BTC", "0.0000999", "9.00"),  # $9.99 asked, floored to 0.00009 = $9
        ("DOGE", "50", None),
        ("DOGE", "50.99", None),  # floored to 50 = $10
        ("DOGE", "49.99", "9.80"),
    ],
)
def test_orders_below_ten_dollars_are_refused_after_flooring(
    coin: str, quantity: str, notional: str | None
) -> None:
    result = plan([enter(coin, quantity)])
    if notional is None:
        assert result.rejections == ()
        assert [o.size * MARKS[coin] for o in result.orders] == [D(10)]
        return
    assert result.orders == ()
    assert rules(result) == [(coin, "min_order_value")]
    assert result.rejections[0].values == {"notional": notional}


def test_the_venue_minimum_order_value_is_per_asset() -> None:
    assets = {
        **ASSETS,
        "SOL": AssetRules("SOL", sz_decimals=2, max_leverage=20, min_order_value=D(250)),
    }
    assert rules(plan([enter("SOL", "1.24")], assets=assets)) == [("SOL", "min_order_value")]
    assert len(plan([enter("SOL", "1.25")], assets=assets).orders) == 1


@pytest.mark.parametrize(("quantity", "refused"), [("0.05", False), ("0.05001", True)])
def test_max_position_size(quantity: str, refused: bool) -> None:
    result = plan([enter("BTC", quantity)])
    if not refused:
        assert result.rejections == ()
        return
    assert rules(result) == [("BTC", "max_position_size")]
    assert result.rejections[0].values == {
        "notional": "5001.00",
        "max_position_size_usd": "5000",
    }


def test_an_absurd_quantity_is_refused_not_raised() -> None:
    """A model may write any number; the plan must refuse it with a rule, not crash while
    flooring it (Decimal quantize beyond the context precision)."""
    result = plan([enter("BTC", "1e23")])
    assert result.orders == ()
    assert rules(result) == [("BTC", "max_position_size")]


def test_margin_of_several_entries_adds_up() -> None:
    risk = limits(max_position_size_usd=D(100000))
    items = [
        enter("BTC", "0.3", leverage=10),  # margin 3000
        enter("ETH", "7.5", long=False, leverage=10),  # margin 3000: usage exactly 60 %
        enter("SOL", "1", leverage=10),  # margin 20: 60.2 %
    ]
    result = plan(items, risk=risk)
    assert [o.coin for o in result.orders] == ["BTC", "ETH"]
    (rejection,) = result.rejections
    assert (rejection.coin, rejection.rule) == ("SOL", "max_margin_usage")
    assert rejection.values == {"margin_usage_pct": "60.20", "max_margin_usage_pct": "60"}


def test_margin_of_open_positions_counts() -> None:
    acct = account(position("BTC", "0.5", "100000", leverage=10))  # margin 5000
    result = plan([enter("ETH", "1.1", leverage=4)], acct=acct)  # margin 1100: 61 %
    assert rules(result) == [("ETH", "max_margin_usage")]
    assert result.rejections[0].values["margin_usage_pct"] == "61.00"


def test_a_close_frees_margin_for_an_entry_in_the_same_answer() -> None:
    acct = account(position("ETH", "-11", "4000", leverage=8))  # margin 5500
    entry = enter("BTC", "0.05", leverage=5)  # margin 1000: 65 % without the close
    assert rules(plan([entry], acct=acct)) == [("BTC", "max_margin_usage")]
    result = plan([entry, close("ETH")], acct=acct)
    assert result.rejections == ()
    assert ordered(result) == [
        ("ETH", OrderSide.BUY, D(11), OrderIntent.CLOSE),
        ("BTC", OrderSide.BUY, D("0.05"), OrderIntent.OPEN_LONG),
    ]


def test_no_equity_means_no_entry() -> None:
    acct = account(realized="-10000")
    assert acct.equity == 0
    result = plan([enter("BTC", "0.02")], acct=acct)
    assert rules(result) == [("BTC", "max_margin_usage")]
    assert result.rejections[0].values["margin_usage_pct"] == "10000.00"


@pytest.mark.parametrize(
    ("quantity", "refused"),
    [("1", False), ("1.00001", True)],
)
def test_margin_plus_fee_must_fit_the_available_cash(quantity: str, refused: bool) -> None:
    # Equity 10100; one BTC at 10x needs 10000 margin + 100 fee (0.1 %) = exactly 10100.
    risk = limits(max_margin_usage_pct=D(100), max_position_size_usd=D(10**6))
    result = plan(
        [enter("BTC", quantity, leverage=10)],
        acct=account(allocation="10100"),
        risk=risk,
        fee=D("0.001"),
    )
    if not refused:
        assert result.rejections == ()
        assert ordered(result) == [("BTC", OrderSide.BUY, D(1), OrderIntent.OPEN_LONG)]
        return
    assert result.orders == ()
    (rejection,) = result.rejections
    assert rejection.rule == "insufficient_margin"
    assert rejection.values == {"required": "10100.10", "available": "10100.00"}


def test_insufficient_margin_counts_margin_already_planned() -> None:
    risk = limits(max_margin_usage_pct=D(200), max_position_size_usd=D(10**6))
    items = [enter("BTC", "0.9", leverage=10), enter("ETH", "5", leverage=10)]
    result = plan(items, risk=risk, fee=D(0))  # 9000 then 2000 of 10000
    assert [o.coin for o in result.orders] == ["BTC"]
    assert rules(result) == [("ETH", "insufficient_margin")]
    assert result.rejections[0].values == {"required": "2000.00", "available": "1000.00"}


def test_unknown_asset_and_missing_prices() -> None:
    marks = {**MARKS, "SOL": D(0)}
    del marks["ETH"]
    items = [
        enter("BTC", "0.02"),
        DecisionItem(
            coin="XRP",
            signal=Signal.BUY_TO_ENTER,
            quantity=D(100),
            leverage=5,
            profit_target=D(3),
            stop_loss=D(2),
            confidence=D("0.9"),
            risk_usd=D(10),
            invalidation_condition="x",
        ),
        enter("ETH", "1"),
        enter("SOL", "1"),
    ]
    result = plan(items, marks=marks)
    assert [o.coin for o in result.orders] == ["BTC"]
    assert rules(result) == [("XRP", "unknown_asset"), ("ETH", "no_price"), ("SOL", "no_price")]


def test_a_close_needs_a_position_and_a_price() -> None:
    acct = account(position("ETH", "1", "4000"), position("SOL", "2", "200"))
    marks = {k: v for k, v in MARKS.items() if k != "SOL"}
    result = plan([close("BTC"), close("SOL"), close("ETH")], acct=acct, marks=marks)
    assert ordered(result) == [("ETH", OrderSide.SELL, D(1), OrderIntent.CLOSE)]
    assert rules(result) == [("BTC", "no_position"), ("SOL", "no_price")]
    assert [r.signal for r in result.rejections] == ["close", "close"]


def test_close_rejections_come_before_entry_rejections() -> None:
    result = plan([enter("BTC", "0.02", confidence="0.1"), close("ETH")])
    assert rules(result) == [("ETH", "no_position"), ("BTC", "min_confidence")]


def test_a_planned_close_is_reduce_only_with_the_signal_reason() -> None:
    held = position("ETH", "-2.5", "3900", leverage=3, stop="4100", target="3500")
    (order,) = plan([close("ETH")], acct=account(held)).orders
    assert order == PlannedOrder(
        coin="ETH",
        side=OrderSide.BUY,
        size=D("2.5"),
        intent=OrderIntent.CLOSE,
        reduce_only=True,
        leverage=3,
        limit_price=D(4020),
        reason=CloseReason.SIGNAL,
        context=held.context,
    )


def test_every_risk_rule_value_is_stable() -> None:
    assert {rule.name: rule.value for rule in RiskRule} == {
        "CONFIDENCE": "min_confidence",
        "POSITION_EXISTS": "position_exists",
        "MAX_POSITIONS": "max_positions",
        "LEVERAGE_CAP": "leverage_cap",
        "STOP_SIDE": "stop_loss_side",
        "TARGET_SIDE": "profit_target_side",
        "REWARD_RISK": "min_reward_risk",
        "SIZE_BELOW_LOT": "size_below_lot",
        "MIN_ORDER_VALUE": "min_order_value",
        "MAX_POSITION_SIZE": "max_position_size",
        "MARGIN_USAGE": "max_margin_usage",
        "INSUFFICIENT_MARGIN": "insufficient_margin",
        "NO_POSITION": "no_position",
        "NO_PRICE": "no_price",
        "UNKNOWN_ASSET": "unknown_asset",
        "DECISION_SCHEMA": "decision_schema",
        "COIN_HELD_BY_OTHER": "coin_held_by_other",
    }


def test_a_rejection_is_a_plain_record() -> None:
    (rejection,) = plan([enter("BTC", "0.02", confidence="0.5")]).rejections
    assert isinstance(rejection, Rejection)
    assert rejection.detail == "confidence 0.5 is below the minimum 60%"


# -- limit prices, closes and protective exits ------------------------------------------------


@pytest.mark.parametrize(
    ("side", "bps", "expected"),
    [
        (OrderSide.BUY, "50", "100500"),
        (OrderSide.SELL, "50", "99500"),
        (OrderSide.BUY, "2", "100020"),
        (OrderSide.SELL, "2", "99980"),
        (OrderSide.BUY, "0", "100000"),
        (OrderSide.SELL, "0", "100000"),
    ],
)
def test_limit_price_gives_way_in_the_direction_of_the_trade(
    side: OrderSide, bps: str, expected: str
) -> None:
    price = limit_price(D(100000), side, D(bps))
    assert price == D(expected)
    if bps != "0":
        assert (price > D(100000)) is (side is OrderSide.BUY)


@pytest.mark.parametrize(
    ("qty", "side", "limit"),
    [("0.5", OrderSide.SELL, "99500"), ("-0.5", OrderSide.BUY, "100500")],
)
def test_close_order_flattens_the_whole_position(qty: str, side: OrderSide, limit: str) -> None:
    held = position("BTC", qty, "95000", leverage=7, stop="90000", target="120000")
    order = close_order(held, D(100000), CloseReason.STOP, SLIPPAGE)
    assert order == PlannedOrder(
        coin="BTC",
        side=side,
        size=D("0.5"),
        intent=OrderIntent.CLOSE,
        reduce_only=True,
        leverage=7,
        limit_price=D(limit),
        reason=CloseReason.STOP,
        context=held.context,
    )


LONG = position("BTC", "0.1", "100000", stop="95000", target="110000")
SHORT = position("BTC", "-0.1", "100000", stop="105000", target="90000")


@pytest.mark.parametrize(
    ("held", "mark", "expected"),
    [
        (LONG, "95000", CloseReason.STOP),  # touching the stop triggers it
        (LONG, "94999.9", CloseReason.STOP),
        (LONG, "95000.1", None),
        (LONG, "100000", None),
        (LONG, "109999.9", None),
        (LONG, "110000", CloseReason.TARGET),  # touching the target triggers it
        (LONG, "150000", CloseReason.TARGET),
        (SHORT, "105000", CloseReason.STOP),
        (SHORT, "105000.1", CloseReason.STOP),
        (SHORT, "104999.9", None),
        (SHORT, "100000", None),
        (SHORT, "90000.1", None),
        (SHORT, "90000", CloseReason.TARGET),
        (SHORT, "1", CloseReason.TARGET),
    ],
)
def test_protective_exit(held: Position, mark: str, expected: CloseReason | None) -> None:
    assert protective_exit(held, D(mark)) is expected


def test_no_protective_exit_without_an_exit_plan() -> None:
    bare = position("BTC", "0.1", "100000")
    assert protective_exit(bare, D(1)) is None
    assert protective_exit(bare, D(10**9)) is None
