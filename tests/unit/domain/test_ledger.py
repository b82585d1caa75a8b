"""Ledger maths (ARCHITECTURE.md §3): fills, trades, account value and liquidation price,
all compared as exact Decimals."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from domain.ledger import (
    AccountSnapshot,
    ClosedTrade,
    EntryContext,
    ExitPlan,
    FillEffect,
    Position,
    apply_fill,
    liquidation_price,
    maintenance_margin,
    value_account,
)
from domain.values import OrderSide, Side

D = Decimal
T0 = datetime(2025, 10, 17, tzinfo=UTC)
T1 = T0 + timedelta(minutes=3)
T2 = T0 + timedelta(minutes=6)
CTX = EntryContext(
    leverage=5,
    exit_plan=ExitPlan(D(120), D(90), "below 90"),
    confidence=D("0.7"),
    risk_usd=D(10),
    justification="test",
)
OTHER_CTX = EntryContext(leverage=3)
BUY, SELL = OrderSide.BUY, OrderSide.SELL


def fill(
    position: Position | None,
    side: OrderSide,
    size: str,
    price: str,
    fee: str = "0",
    *,
    at: datetime = T0,
    cloid: str = "0xopen",
    context: EntryContext = CTX,
    coin: str = "BTC",
) -> FillEffect:
    return apply_fill(
        position,
        coin=coin,
        side=side,
        size=D(size),
        price=D(price),
        fee=D(fee),
        at=at,
        cloid=cloid,
        context=context,
    )


def opened(side: OrderSide, size: str, price: str, fee: str = "0", **kw: object) -> Position:
    effect = fill(None, side, size, price, fee, **kw)  # type: ignore[arg-type]
    assert effect.position is not None
    return effect.position


# -- apply_fill --------------------------------------------------------------------------------


@pytest.mark.parametrize(("side", "qty"), [(BUY, "0.5"), (SELL, "-0.5")])
def test_a_first_fill_opens_a_position(side: OrderSide, qty: str) -> None:
    effect = fill(None, side, "0.5", "100000", "22.5")
    assert effect == FillEffect(
        position=Position(
            coin="BTC",
            qty=D(qty),
            entry_price=D(100000),
            opened_at=T0,
            entry_cloid="0xopen",
            context=CTX,
            entry_fees=D("22.5"),
            peak_qty=D("0.5"),
        ),
        realized_gross=D(0),
        closed=None,
    )
    assert effect.position is not None
    assert effect.position.side is (Side.LONG if side is BUY else Side.SHORT)
    assert effect.position.size == D("0.5")


@pytest.mark.parametrize("size", ["0", "-1"])
def test_a_fill_must_have_a_positive_size(size: str) -> None:
    with pytest.raises(ValueError, match="positive"):
        fill(None, BUY, size, "100")


def test_an_increase_averages_the_entry_by_size() -> None:
    first = opened(BUY, "1", "100", "0.1")
    effect = fill(first, BUY, "2", "103", "0.2", at=T1, cloid="0xadd", context=OTHER_CTX)
    assert effect.realized_gross == 0
    assert effect.closed is None
    assert effect.position == replace(
        first, qty=D(3), entry_price=D(102), entry_fees=D("0.3"), peak_qty=D(3)
    )
    # The position keeps its opening time, cloid and context.
    assert effect.position is not None
    assert (effect.position.opened_at, effect.position.entry_cloid) == (T0, "0xopen")
    assert effect.position.context == CTX


def test_a_short_increase_averages_the_entry_too() -> None:
    first = opened(SELL, "1", "100")
    effect = fill(first, SELL, "1", "90")
    assert effect.position is not None
    assert (effect.position.qty, effect.position.entry_price) == (D(-2), D(95))


def test_an_uneven_average_is_the_exact_decimal_quotient() -> None:
    effect = fill(opened(BUY, "1", "100"), BUY, "2", "101")
    assert effect.position is not None
    assert effect.position.entry_price == D(302) / D(3)


def test_a_partial_reduce_realises_its_share() -> None:
    first = opened(BUY, "1", "100", "0.5")
    effect = fill(first, SELL, "0.4", "110", "0.2", at=T1, cloid="0xexit1")
    assert effect == FillEffect(
        position=replace(
            first,
            qty=D("0.6"),
            exit_fees=D("0.2"),
            exit_qty=D("0.4"),
            exit_notional=D(44),
            realized_gross=D(4),
        ),
        realized_gross=D(4),
        closed=None,
    )


def test_a_full_close_produces_the_whole_trade() -> None:
    first = replace(opened(BUY, "1", "100", "0.5"), funding=D("-0.3"))
    partial = fill(first, SELL, "0.4", "110", "0.2", at=T1, cloid="0xexit1").position
    effect = fill(partial, SELL, "0.6", "95", "0.3", at=T2, cloid="0xexit2")
    trade = ClosedTrade(
        coin="BTC",
        side=Side.LONG,
        size=D(1),
        entry_price=D(100),
        exit_price=D(101),  # (0.4 × 110 + 0.6 × 95) / 1
        opened_at=T0,
        closed_at=T2,
        leverage=5,
        gross_pnl=D(1),  # +4 then −3
        entry_fees=D("0.5"),
        exit_fees=D("0.5"),
        funding=D("-0.3"),
        entry_cloid="0xopen",
        exit_cloid="0xexit2",
        context=CTX,
    )
    assert effect == FillEffect(position=None, realized_gross=D(-3), closed=trade)
    assert trade.fees == D("1.0")
    assert trade.net_pnl == D("-0.3")  # gross − fees + funding
    assert trade.net_pnl == trade.gross_pnl - trade.entry_fees - trade.exit_fees + trade.funding


def test_a_short_closed_lower_is_a_win() -> None:
    first = replace(opened(SELL, "2", "50", "0.05"), funding=D("0.01"))
    effect = fill(first, BUY, "2", "45", "0.045", at=T1, cloid="0xcover")
    assert effect.position is None
    assert effect.realized_gross == D(10)
    trade = effect.closed
    assert trade is not None
    assert (trade.side, trade.size, trade.exit_price) == (Side.SHORT, D(2), D(45))
    assert (trade.gross_pnl, trade.fees, trade.funding) == (D(10), D("0.095"), D("0.01"))
    assert trade.net_pnl == D("9.915")


def test_a_fill_through_zero_closes_then_opens_the_other_way() -> None:
    first = opened(BUY, "1", "100", "1")
    effect = fill(first, SELL, "3", "90", "3", at=T1, cloid="0xflip", context=OTHER_CTX)
    assert effect.realized_gross == D(-10)
    trade = effect.closed
    assert trade is not None
    assert (trade.side, trade.size, trade.entry_price, trade.exit_price) == (
        Side.LONG,
        D(1),
        D(100),
        D(90),
    )
    # The fee is split by size: a third closes the long, two thirds open the short.
    assert (trade.gross_pnl, trade.entry_fees, trade.exit_fees) == (D(-10), D(1), D(1))
    assert trade.net_pnl == D(-12)
    assert effect.position == Position(
        coin="BTC",
        qty=D(-2),
        entry_price=D(90),
        opened_at=T1,
        entry_cloid="0xflip",
        context=OTHER_CTX,
        entry_fees=D(2),
        peak_qty=D(2),
    )


def test_a_short_flips_to_a_long() -> None:
    first = opened(SELL, "2", "50")
    effect = fill(first, BUY, "2.5", "40", "0.5", cloid="0xflip")
    assert effect.closed is not None
    assert (effect.closed.gross_pnl, effect.closed.exit_fees) == (D(20), D("0.4"))
    assert effect.position is not None
    assert (effect.position.qty, effect.position.entry_fees) == (D("0.5"), D("0.1"))


def test_the_trade_size_is_the_largest_size_held() -> None:
    position = opened(BUY, "2", "100")
    position = fill(position, SELL, "1", "100").position
    position = fill(position, BUY, "0.5", "100").position
    assert position is not None
    assert (position.qty, position.peak_qty) == (D("1.5"), D(2))
    effect = fill(position, SELL, "1.5", "100")
    assert effect.closed is not None
    assert effect.closed.size == D(2)


def test_position_measures() -> None:
    long = opened(BUY, "0.5", "100000")
    short = opened(SELL, "0.5", "100000")
    assert long.unrealized(D(101000)) == D(500)
    assert short.unrealized(D(101000)) == D(-500)
    assert long.notional(D(101000)) == short.notional(D(101000)) == D(50500)
    assert long.margin(D(101000)) == D(10100)  # leverage 5


# -- value_account ------------------------------------------------------------------------------


def test_equity_is_allocation_plus_realised_minus_fees_plus_funding_plus_unrealised() -> None:
    btc = replace(opened(BUY, "0.1", "100000"), context=EntryContext(leverage=10))
    eth = replace(opened(SELL, "2", "4000", coin="ETH"), context=EntryContext(leverage=5))
    sol = replace(opened(BUY, "3", "200", coin="SOL"), context=EntryContext(leverage=2))
    positions = {"BTC": btc, "ETH": eth, "SOL": sol}
    snap = value_account(
        allocation=D(10000),
        realized_pnl=D(150),
        fees_paid=D(20),
        funding=D(-5),
        positions=positions,
        marks={"BTC": D(101000), "ETH": D(4100)},  # SOL has no mark: valued at its entry
    )
    assert snap == AccountSnapshot(
        allocation=D(10000),
        realized_pnl=D(150),
        fees_paid=D(20),
        funding=D(-5),
        unrealized_pnl=D(-100),  # +100 on BTC, −200 on ETH, 0 on SOL
        margin_used=D(2950),  # 1010 + 1640 + 300
        positions=positions,
    )
    assert snap.equity == D(10025)
    assert snap.available == D(7075)
    assert snap.return_pct == D("0.25")


def test_received_funding_adds_to_equity() -> None:
    snap = value_account(
        allocation=D(1000),
        realized_pnl=D(-50),
        fees_paid=D(5),
        funding=D("2.5"),
        positions={},
        marks={},
    )
    assert (snap.equity, snap.available, snap.unrealized_pnl, snap.margin_used) == (
        D("947.5"),
        D("947.5"),
        D(0),
        D(0),
    )
    assert snap.return_pct == D("-5.25")


def test_return_of_an_unfunded_account_is_zero() -> None:
    snap = value_account(
        allocation=D(0), realized_pnl=D(10), fees_paid=D(0), funding=D(0), positions={}, marks={}
    )
    assert snap.equity == D(10)
    assert snap.return_pct == D(0)


# -- liquidation_price --------------------------------------------------------------------------


def hyperliquid_liq(
    mark: Decimal, side: int, available: Decimal, size: Decimal, max_lev: int
) -> Decimal:
    """liq = mark − side × available / |size| / (1 − side × l), l = 1 / (2 × maxLev)."""
    level = D(1) / (2 * D(max_lev))
    return mark - side * available / abs(size) / (1 - side * level)


def book(*positions: Position, allocation: str, marks: dict[str, Decimal]) -> AccountSnapshot:
    return value_account(
        allocation=D(allocation),
        realized_pnl=D(0),
        fees_paid=D(0),
        funding=D(0),
        positions={p.coin: p for p in positions},
        marks=marks,
    )


@pytest.mark.parametrize(
    ("qty", "allocation", "expected"),
    [
        # maxLev 20: l = 1/40; maintenance 100000/40 = 2500.
        ("1", "12250", "90000"),  # available 9750; 100000 − 9750 / 0.975
        ("-1", "12750", "110000"),  # available 10250; 100000 + 10250 / 1.025
        ("2", "14750", "95000"),  # maintenance 5000, available 9750; −9750 / 2 / 0.975
    ],
)
def test_liquidation_price_of_a_single_position(qty: str, allocation: str, expected: str) -> None:
    position = opened(BUY if D(qty) > 0 else SELL, qty.lstrip("-"), "100000")
    marks = {"BTC": D(100000)}
    acct = book(position, allocation=allocation, marks=marks)
    liq = liquidation_price(position, acct, marks, {"BTC": 20})
    assert liq == D(expected)
    # At that price the account is worth exactly its maintenance margin.
    assert liq is not None
    at_liq = book(position, allocation=allocation, marks={"BTC": liq})
    assert at_liq.equity == maintenance_margin(position.notional(liq), 20)


def test_a_long_liquidates_below_the_mark_and_a_short_above() -> None:
    marks = {"BTC": D(100000)}
    long = opened(BUY, "0.5", "100000")
    short = opened(SELL, "0.5", "100000")
    long_liq = liquidation_price(long, book(long, allocation="10000", marks=marks), marks, {})
    short_liq = liquidation_price(short, book(short, allocation="10000", marks=marks), marks, {})
    assert long_liq is not None
    assert long_liq < D(100000)
    assert short_liq is not None
    assert short_liq > D(100000)
    # maxLev defaults to 20 when the venue's table lacks the coin.
    mm = D(50000) / 40
    assert long_liq == hyperliquid_liq(D(100000), 1, D(10000) - mm, D("0.5"), 20)
    assert short_liq == hyperliquid_liq(D(100000), -1, D(10000) - mm, D("0.5"), 20)


def test_cross_margin_liquidation_price_counts_every_position() -> None:
    btc = opened(BUY, "0.5", "100000")
    eth = opened(SELL, "10", "4000", coin="ETH")
    sol = opened(BUY, "20", "150", coin="SOL")  # no mark: valued at its entry
    marks = {"BTC": D(98000), "ETH": D(4100)}
    max_lev = {"BTC": 40, "ETH": 25, "SOL": 20}
    acct = book(btc, eth, sol, allocation="20000", marks=marks)
    assert acct.equity == D(18000)  # −1000 on BTC, −1000 on ETH
    mm = D(49000) / 80 + D(41000) / 50 + D(3000) / 40
    assert mm == D("1507.5")
    available = acct.equity - mm
    assert liquidation_price(btc, acct, marks, max_lev) == hyperliquid_liq(
        D(98000), 1, available, D("0.5"), 40
    )
    assert liquidation_price(eth, acct, marks, max_lev) == hyperliquid_liq(
        D(4100), -1, available, D(10), 25
    )
    # SOL alone could fall to zero: the formula gives a negative price, so there is none.
    assert hyperliquid_liq(D(150), 1, available, D(20), 20) < 0
    assert liquidation_price(sol, acct, marks, max_lev) is None


@pytest.mark.parametrize(
    ("qty", "allocation", "realized"),
    [
        ("1", "100000", "0"),  # liq exactly 0: not a price
        ("0.01", "10000", "0"),  # far more collateral than the position: below zero
        ("-1", "0", "-110000"),  # a short so far under water the formula goes negative
    ],
)
def test_no_liquidation_price_when_none_is_positive(
    qty: str, allocation: str, realized: str
) -> None:
    position = opened(BUY if D(qty) > 0 else SELL, qty.lstrip("-"), "100000")
    marks = {"BTC": D(100000)}
    acct = value_account(
        allocation=D(allocation),
        realized_pnl=D(realized),
        fees_paid=D(0),
        funding=D(0),
        positions={"BTC": position},
        marks=marks,
    )
    assert liquidation_price(position, acct, marks, {"BTC": 20}) is None


def test_an_account_below_maintenance_has_a_liquidation_price_beyond_the_mark() -> None:
    position = opened(BUY, "1", "100000")
    marks = {"BTC": D(100000)}
    acct = book(position, allocation="1525", marks=marks)  # available 1525 − 2500 = −975
    assert liquidation_price(position, acct, marks, {"BTC": 20}) == D(101000)


def test_maintenance_margin_is_half_the_initial_margin_at_max_leverage() -> None:
    assert maintenance_margin(D(100000), 40) == D(1250)
    assert maintenance_margin(D(1000), 3) == D(1000) / D(6)
