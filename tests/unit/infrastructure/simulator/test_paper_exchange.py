"""The paper exchange: Hyperliquid's price/size rules, fees, margin, reduce-only, idempotency."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from application.ports import OrderRequest, OrderResult, OrderStatus, VenuePosition
from domain.values import Liquidity, OrderSide
from domain.venue import is_valid_price
from infrastructure.simulator.paper import HYPERLIQUID_ASSETS, TAKER_FEE, PaperExchange

D = Decimal
T0 = datetime(2025, 10, 17, tzinfo=UTC)
BUY, SELL = OrderSide.BUY, OrderSide.SELL
ACCOUNT = "alpha"


T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def exchange(
    path: Path | None,
    *,
    cash: str = "10000",
    slippage_bps: str = "0",
    marks: dict[str, str] | None = None,
) -> PaperExchange:
    ex = PaperExchange("sim", state_path=path, slippage_bps=D(slippage_bps))
    run(ex.ensure_account(ACCOUNT, D(cash)))
    ex.mark({c: D(p) for c, p in (marks or {"BTC": "100000", "ETH": "4000"}).items()}, T0)
    return ex


_counter = iter(range(1, 10**9))


def order(
    coin: str,
    side: OrderSide,
    size: str,
    *,
    leverage: int = 10,
    reduce_only: bool = False,
    limit: str | None = None,
    cloid: str | None = None,
    account: str = ACCOUNT,
) -> OrderRequest:
    if limit is None:
        limit = "1000000000" if side is BUY else "0.000001"
    return OrderRequest(
        account=account,
        cloid=cloid or f"0x{next(_counter):032x}",
        coin=coin,
        side=side,
        size=D(size),
        limit_price=D(limit),
        reduce_only=reduce_only,
        leverage=leverage,
    )


def place(ex: PaperExchange, request: OrderRequest) -> OrderResult:
    result: OrderResult = run(ex.place_order(request))
    return result


def positions(ex: PaperExchange) -> dict[str, VenuePosition]:
    result: dict[str, VenuePosition] = run(ex.positions(ACCOUNT))
    return result


def assert_rejected(result: OrderResult, error: str, detail_part: str = "") -> None:
    assert result.status is OrderStatus.REJECTED
    assert result.error == error
    assert detail_part in result.detail
    assert result.filled_size == 0
    assert result.avg_price == 0
    assert result.fee == 0


# -- rejections -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "error", "detail"),
    [
        (order("BTC", BUY, "0.01", account="nobody"), "unknown_account", "no sub-account nobody"),
        (order("PEPE", BUY, "1000"), "unknown_asset", "PEPE is not listed"),
        (order("SOL", BUY, "1"), "no_price", "no mark price for SOL"),
        (order("BTC", BUY, "0.000001"), "invalid_size", "size 0.000001"),  # 6 decimals > 5
        (order("ETH", BUY, "0.00001"), "invalid_size", "lot"),  # 5 decimals > 4
        (order("BTC", BUY, "0"), "invalid_size", "size 0"),
        (order("BTC", BUY, "-0.01"), "invalid_size", "size -0.01"),
        (order("BTC", BUY, "0.01", leverage=41), "invalid_leverage", "outside 1..40 for BTC"),
        (order("ETH", BUY, "0.01", leverage=26), "invalid_leverage", "outside 1..25 for ETH"),
        (order("BTC", BUY, "0.01", leverage=0), "invalid_leverage", "leverage 0"),
        (order("BTC", SELL, "0.01", reduce_only=True), "reduce_only", "would increase position"),
        (order("BTC", BUY, "0.01", limit="99999"), "no_match", "price=100000 limit=99999"),
        (order("BTC", SELL, "0.01", limit="100001"), "no_match", "price=100000 limit=100001"),
        (order("BTC", BUY, "0.00009"), "min_value", "minimum value of $10"),  # $9
        (order("BTC", BUY, "0.2", leverage=1), "insufficient_margin", "needed 20009.00"),
    ],
)
def test_rejections_carry_their_error_code(
    tmp_path: Path, request_: OrderRequest, error: str, detail: str
) -> None:
    ex = exchange(tmp_path / "sim.json")
    result = place(ex, request_)
    assert_rejected(result, error, detail)
    assert result.cloid == request_.cloid
    # Nothing moved.
    assert positions(ex) == {}
    assert ex.account_value(ACCOUNT) == D(10000)


def test_bnb_leverage_cap_is_10(tmp_path: Path) -> None:
    ex = exchange(tmp_path / "sim.json", marks={"BNB": "1100"})
    assert_rejected(place(ex, order("BNB", BUY, "0.1", leverage=11)), "invalid_leverage")
    assert place(ex, order("BNB", BUY, "0.1", leverage=10)).status is OrderStatus.FILLED


def test_leverage_caps_are_hyperliquids() -> None:
    caps = {c: (r.sz_decimals, r.max_leverage) for c, r in HYPERLIQUID_ASSETS.items()}
    assert caps == {
        "BTC": (5, 40),
        "ETH": (4, 25),
        "SOL": (2, 20),
        "BNB": (3, 10),
        "DOGE": (0, 10),
        "XRP": (0, 20),
    }
    assert all(r.min_order_value == 10 for r in HYPERLIQUID_ASSETS.values())


def test_reduce_only_on_the_same_side_is_refused(tmp_path: Path) -> None:
    ex = exchange(tmp_path / "sim.json")
    assert place(ex, order("BTC", BUY, "0.01")).status is OrderStatus.FILLED
    assert_rejected(place(ex, order("BTC", BUY, "0.01", reduce_only=True)), "reduce_only")
    assert positions(ex)["BTC"].qty == D("0.01")


def test_margin_boundary_counts_margin_in_use(tmp_path: Path) -> None:
    # 1000 USDC, BTC at 100000, no slippage, 20x.
    ex = exchange(tmp_path / "sim.json", cash="1000")
    # 0.2 BTC: margin 1000 + fee 9 > 1000.
    assert_rejected(
        place(ex, order("BTC", BUY, "0.2", leverage=20)), "insufficient_margin", "needed 1009.00"
    )
    # 0.19 BTC: margin 950 + fee 8.55 fits.
    first = place(ex, order("BTC", BUY, "0.19", leverage=20))
    assert first.status is OrderStatus.FILLED
    assert first.fee == D("8.55")
    # Available is now 1000 − 8.55 − 950 = 41.45: 0.008 BTC needs 40 + 0.36.
    assert place(ex, order("BTC", BUY, "0.008", leverage=20)).status is OrderStatus.FILLED
    assert_rejected(
        place(ex, order("BTC", BUY, "0.001", leverage=20)),
        "insufficient_margin",
        "available 1.09",
    )


def test_margin_needs_the_fee_too(tmp_path: Path) -> None:
    # Exactly the cash as margin at 1x: the fee no longer fits.
    ex = exchange(tmp_path / "sim.json", cash="1000", marks={"ETH": "4000"})
    assert_rejected(place(ex, order("ETH", BUY, "0.25", leverage=1)), "insufficient_margin")
    assert place(ex, order("ETH", BUY, "0.2498", leverage=1)).status is OrderStatus.FILLED


# -- prices and fees ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("coin", "mark", "bps", "buy_price", "sell_price"),
    [
        # BTC (szDecimals 5): five or more integer digits → whole dollars.
        ("BTC", "100003.7", "2", "100024", "99983"),  # 100023.70074 / 99983.69926
        ("BTC", "100000", "10", "100100", "99900"),  # exact: no rounding
        # ETH (szDecimals 4): 5 significant figures → 0.1 at 3930.
        ("ETH", "3901.23", "75", "3930.5", "3871.9"),  # 3930.489225 / 3871.970775
        # SOL (szDecimals 2): 5 significant figures → 0.01 at 190.
        ("SOL", "190.123", "50", "191.08", "189.17"),  # 191.073615 / 189.172385
        # DOGE (szDecimals 0): 5 significant figures → 0.00001 at 0.19.
        ("DOGE", "0.191234", "2", "0.19128", "0.19119"),  # 0.1912722468 / 0.1911957532
        # XRP (szDecimals 0) below 1: 6 decimals are allowed, 5 significant figures bind.
        ("XRP", "2.41", "1", "2.4103", "2.4097"),  # 2.410241 / 2.409759
    ],
)
def test_fills_at_mark_plus_slippage_rounded_against_the_taker(
    tmp_path: Path, coin: str, mark: str, bps: str, buy_price: str, sell_price: str
) -> None:
    sz = HYPERLIQUID_ASSETS[coin].sz_decimals
    size = str((D(1000) / D(mark)).quantize(D(1).scaleb(-sz)))  # about $1000
    buyer = exchange(tmp_path / "buy.json", slippage_bps=bps, marks={coin: mark})
    bought = place(buyer, order(coin, BUY, size, leverage=5))
    assert bought.status is OrderStatus.FILLED
    assert bought.avg_price == D(buy_price)
    assert bought.avg_price >= D(mark) * (1 + D(bps) / 10_000)  # rounded UP
    assert is_valid_price(bought.avg_price, sz)
    assert bought.filled_size == D(size)
    assert bought.liquidity is Liquidity.TAKER

    seller = exchange(tmp_path / "sell.json", slippage_bps=bps, marks={coin: mark})
    sold = place(seller, order(coin, SELL, size, leverage=5))
    assert sold.status is OrderStatus.FILLED
    assert sold.avg_price == D(sell_price)
    assert sold.avg_price <= D(mark) * (1 - D(bps) / 10_000)  # rounded DOWN
    assert is_valid_price(sold.avg_price, sz)
    assert positions(seller)[coin].qty == -D(size)
    assert positions(seller)[coin].entry_price == D(sell_price)


def test_limit_is_checked_against_the_rounded_fill_price(tmp_path: Path) -> None:
    # 100003.7 × 1.0002 = 100023.7 rounds up to 100024: a limit of 100023.8 does not match.
    ex = exchange(tmp_path / "sim.json", slippage_bps="2", marks={"BTC": "100003.7"})
    assert_rejected(place(ex, order("BTC", BUY, "0.01", limit="100023.8")), "no_match")
    assert place(ex, order("BTC", BUY, "0.01", limit="100024")).avg_price == D(100024)


def test_fee_is_taker_rate_on_notional_quantized_to_micro_dollars(tmp_path: Path) -> None:
    assert D("0.00045") == TAKER_FEE
    ex = exchange(tmp_path / "sim.json", slippage_bps="2", marks={"BTC": "100003.7"})
    result = place(ex, order("BTC", BUY, "0.01234", leverage=5))
    # 0.01234 × 100024 = 1234.29616; × 0.00045 = 0.555433272 → 0.555433
    assert result.avg_price == D(100024)
    assert result.fee == D("0.555433")
    assert result.fee.as_tuple().exponent == -6
    # Cash pays the fee; the position is marked at BTC 100003.7.
    expected = D(10000) - D("0.555433") + (D("100003.7") - D(100024)) * D("0.01234")
    assert ex.account_value(ACCOUNT) == expected


@pytest.mark.parametrize(
    ("coin", "size", "mark", "fee"),
    [
        ("XRP", "101", "2.4111", "0.109584"),  # 243.5211 × 0.00045 = 0.109584495
        ("SOL", "0.37", "33.337", "0.005551"),  # 12.33469 × 0.00045 = 0.0055506105
        ("ETH", "0.0157", "4012.7", "0.02835"),  # 62.99939 × 0.00045 = 0.0283497255
        ("DOGE", "125", "0.2", "0.01125"),  # exact
    ],
)
def test_fee_examples(tmp_path: Path, coin: str, size: str, mark: str, fee: str) -> None:
    ex = exchange(tmp_path / "sim.json", marks={coin: mark})
    result = place(ex, order(coin, BUY, size, leverage=3))
    assert result.avg_price == D(mark)
    assert result.fee == D(fee)
    assert ex.account_value(ACCOUNT) == D(10000) - D(fee)


# -- reduce-only ----------------------------------------------------------------------------


def test_reduce_only_close_is_clamped_to_the_position(tmp_path: Path) -> None:
    ex = exchange(tmp_path / "sim.json")
    place(ex, order("BTC", BUY, "0.02"))
    ex.mark({"BTC": D(101000)}, T0)
    result = place(ex, order("BTC", SELL, "0.05", reduce_only=True))
    assert result.status is OrderStatus.FILLED
    assert result.filled_size == D("0.02")
    assert result.avg_price == D(101000)
    assert result.fee == D("0.909")  # 0.02 × 101000 × 0.00045
    assert positions(ex) == {}
    # 10000 − 0.9 (open fee) − 0.909 (close fee) + 0.02 × 1000
    assert ex.account_value(ACCOUNT) == D("10018.191")


def test_reduce_only_short_cover_is_clamped(tmp_path: Path) -> None:
    ex = exchange(tmp_path / "sim.json")
    place(ex, order("ETH", SELL, "0.5"))
    ex.mark({"ETH": D(3900)}, T0)
    result = place(ex, order("ETH", BUY, "2", reduce_only=True))
    assert result.filled_size == D("0.5")
    assert positions(ex) == {}
    # 10000 − 0.9 − 0.8775 + 0.5 × 100
    assert ex.account_value(ACCOUNT) == D("10048.2225")


def test_reduce_only_is_exempt_from_the_10_dollar_minimum(tmp_path: Path) -> None:
    ex = exchange(tmp_path / "sim.json")
    place(ex, order("BTC", BUY, "0.001"))  # $100
    # $5: a plain order is refused, a reduce-only one fills.
    assert_rejected(place(ex, order("BTC", SELL, "0.00005")), "min_value")
    result = place(ex, order("BTC", SELL, "0.00005", reduce_only=True))
    assert result.status is OrderStatus.FILLED
    assert result.filled_size == D("0.00005")
    assert positions(ex)["BTC"].qty == D("0.00095")
    # A dust remainder closes reduce-only too, whatever the size asked.
    tail = place(ex, order("BTC", SELL, "1", reduce_only=True))
    assert tail.filled_size == D("0.00095")
    assert positions(ex) == {}


def test_reduce_only_needs_no_margin(tmp_path: Path) -> None:
    ex = exchange(tmp_path / "sim.json", cash="1000")
    place(ex, order("BTC", BUY, "0.19", leverage=20))
    ex.mark({"BTC": D(96000)}, T0)  # 760 lost: the account is nearly used up
    result = place(ex, order("BTC", SELL, "0.19", reduce_only=True, leverage=20))
    assert result.status is OrderStatus.FILLED
    assert positions(ex) == {}


# -- idempotency ----------------------------------------------------------------------------


def test_same_cloid_returns_the_first_outcome_without_a_second_fill(tmp_path: Path) -> None:
    ex = exchange(tmp_path / "sim.json")
    request = order("BTC", BUY, "0.01", cloid="0xabc")
    first = place(ex, request)
    value = ex.account_value(ACCOUNT)
    again = place(ex, request)
    assert again == first
    # Even a different order under the same cloid: the first outcome, no fill.
    other = place(ex, order("BTC", BUY, "0.05", cloid="0xabc"))
    assert other == first
    assert positions(ex)["BTC"].qty == D("0.01")
    assert ex.account_value(ACCOUNT) == value
    assert run(ex.order_status(ACCOUNT, "0xabc")) == first


def test_a_rejected_cloid_stays_rejected(tmp_path: Path) -> None:
    ex = exchange(tmp_path / "sim.json")
    first = place(ex, order("BTC", BUY, "0.01", leverage=50, cloid="0xbad"))
    assert_rejected(first, "invalid_leverage")
    assert place(ex, order("BTC", BUY, "0.01", leverage=5, cloid="0xbad")) == first
    assert positions(ex) == {}


def test_cloids_are_per_account(tmp_path: Path) -> None:
    ex = exchange(tmp_path / "sim.json")
    run(ex.ensure_account("beta", D(5000)))
    a = place(ex, order("BTC", BUY, "0.01", cloid="0x1"))
    b = place(ex, order("ETH", SELL, "0.1", cloid="0x1", account="beta"))
    assert a.status is b.status is OrderStatus.FILLED
    assert run(ex.positions("beta"))["ETH"].qty == D("-0.1")
    assert positions(ex)["BTC"].qty == D("0.01")


def test_order_status_of_an_unknown_cloid_is_unknown(tmp_path: Path) -> None:
    ex = exchange(tmp_path / "sim.json")
    status = run(ex.order_status(ACCOUNT, "0xnever"))
    assert status == OrderResult(cloid="0xnever", status=OrderStatus.UNKNOWN)
    assert run(ex.order_status("nobody", "0xnever")).status is OrderStatus.UNKNOWN


def test_ensure_account_funds_once(tmp_path: Path) -> None:
    ex = exchange(tmp_path / "sim.json", cash="10000")
    run(ex.ensure_account(ACCOUNT, D(99999)))
    assert ex.account_value(ACCOUNT) == D(10000)
    assert run(ex.positions("nobody")) == {}


# -- account value and positions ------------------------------------------------------------


def test_account_value_after_open_partial_close_and_flip(tmp_path: Path) -> None:
    ex = exchange(tmp_path / "sim.json", cash="10000")
    # Open long 0.02 at 100000 (fee 0.9), add 0.01 at 103000 (fee 0.4635).
    place(ex, order("BTC", BUY, "0.02"))
    ex.mark({"BTC": D(103000)}, T0)
    place(ex, order("BTC", BUY, "0.01"))
    pos = positions(ex)["BTC"]
    assert pos.qty == D("0.03")
    assert pos.entry_price == D(101000)  # size-weighted
    assert ex.account_value(ACCOUNT) == D(10000) - D("1.3635") + D(2000) * D("0.03")

    # Partial close 0.01 at 104000 (fee 0.468): realises 30, entry unchanged.
    ex.mark({"BTC": D(104000)}, T0)
    place(ex, order("BTC", SELL, "0.01"))
    pos = positions(ex)["BTC"]
    assert pos.qty == D("0.02")
    assert pos.entry_price == D(101000)
    cash = D(10000) - D("1.3635") - D("0.468") + D(30)
    assert ex.account_value(ACCOUNT) == cash + D(3000) * D("0.02")

    # Flip: sell 0.05 at 102000 (fee 2.295) closes 0.02 (+20) and opens a 0.03 short there.
    ex.mark({"BTC": D(102000)}, T0)
    place(ex, order("BTC", SELL, "0.05"))
    pos = positions(ex)["BTC"]
    assert pos.qty == D("-0.03")
    assert pos.entry_price == D(102000)
    cash += D(20) - D("2.295")
    assert ex.account_value(ACCOUNT) == cash
    ex.mark({"BTC": D(99000)}, T0)
    assert ex.account_value(ACCOUNT) == cash + D(3000) * D("0.03")

    # A second coin: unrealised adds up across positions.
    ex.mark({"ETH": D(4000)}, T0)
    place(ex, order("ETH", BUY, "0.5"))  # fee 0.9
    cash -= D("0.9")
    ex.mark({"ETH": D(4100)}, T0)
    assert ex.account_value(ACCOUNT) == cash + D(90) + D(50)
    assert set(positions(ex)) == {"BTC", "ETH"}


def test_a_flip_is_margin_checked_for_the_new_side(tmp_path: Path) -> None:
    # 1000 USDC; long 0.001 BTC ($100). Selling 1 BTC at 40x would close it and open a
    # 0.999 BTC short worth $99,900, whose margin (2497.50) does not fit in ~1000: the
    # venue must refuse it like any order that increases exposure.
    ex = exchange(tmp_path / "sim.json", cash="1000")
    assert place(ex, order("BTC", BUY, "0.001", leverage=40)).status is OrderStatus.FILLED
    result = place(ex, order("BTC", SELL, "1", leverage=40))
    assert_rejected(result, "insufficient_margin")
    assert positions(ex)["BTC"].qty == D("0.001")


def test_a_flipped_position_takes_the_orders_leverage(tmp_path: Path) -> None:
    # Leverage is per asset and the order sets it (as for an order that adds to a position):
    # after flipping into a 0.005 BTC short at 20x, that short ties up 500 / 20 = 25 of margin.
    ex = exchange(tmp_path / "sim.json", cash="1000")
    assert place(ex, order("BTC", BUY, "0.001", leverage=1)).status is OrderStatus.FILLED
    flip = place(ex, order("BTC", SELL, "0.006", leverage=20))
    assert flip.status is OrderStatus.FILLED
    assert positions(ex)["BTC"].qty == D("-0.005")
    # Available: 1000 − 0.045 − 0.27 (fees) − 25 (margin) = 974.685; ETH 0.225 at 1x needs
    # 900 + 0.405.
    result = place(ex, order("ETH", BUY, "0.225", leverage=1))
    assert result.status is OrderStatus.FILLED, result.detail


# -- persistence ----------------------------------------------------------------------------


def test_state_survives_a_new_exchange_on_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "venue" / "sim.json"
    ex = exchange(path, slippage_bps="2", marks={"BTC": "100003.7", "ETH": "3901.23"})
    run(ex.ensure_account("beta", D(5000)))
    opened = place(ex, order("BTC", BUY, "0.01234", cloid="0xa1", leverage=5))
    shorted = place(ex, order("ETH", SELL, "0.5", cloid="0xa2", account="beta"))
    value = ex.account_value(ACCOUNT)
    beta_value = ex.account_value("beta")
    assert path.is_file()
    assert [p.name for p in path.parent.iterdir()] == ["sim.json"]  # no temp file left
    json.loads(path.read_bytes())

    again = PaperExchange("sim", state_path=path, slippage_bps=D(2))
    assert positions(again) == positions(ex)
    assert run(again.positions("beta")) == run(ex.positions("beta"))
    assert again.account_value(ACCOUNT) == value
    assert again.account_value("beta") == beta_value
    assert run(again.order_status(ACCOUNT, "0xa1")) == opened
    assert run(again.order_status("beta", "0xa2")) == shorted
    # A resubmitted cloid after the restart: the first outcome, no second fill.
    assert place(again, order("BTC", BUY, "0.01234", cloid="0xa1", leverage=5)) == opened
    assert positions(again)["BTC"].qty == D("0.01234")
    # The reloaded venue goes on trading from where it was.
    closed = place(again, order("BTC", SELL, "1", reduce_only=True, leverage=5))
    assert closed.filled_size == D("0.01234")
    third = PaperExchange("sim", state_path=path)
    assert positions(third) == {}
    assert run(third.order_status(ACCOUNT, closed.cloid)) == closed


def test_without_a_state_path_nothing_is_written(tmp_path: Path) -> None:
    ex = exchange(None)
    assert place(ex, order("BTC", BUY, "0.01")).status is OrderStatus.FILLED
    assert list(tmp_path.iterdir()) == []


# -- the ledger property --------------------------------------------------------------------

INITIAL = D(10_000_000)
BASE_MARKS = {"BTC": D(100_000), "ETH": D(4_000), "DOGE": D("0.2")}
LOT = {"BTC": D("0.00001"), "ETH": D("0.0001"), "DOGE": D(1)}
# Lots so that any fill is worth at least $10.5 at a mark down 30 % and at most ~$20k.
MIN_LOTS = {"BTC": 15, "ETH": 38, "DOGE": 75}
MAX_LOTS = {"BTC": 20_000, "ETH": 50_000, "DOGE": 100_000}


@dataclass
class Step:
    coin: str
    buy: bool
    lots: int
    reduce_only: bool
    leverage: int
    move_bp: int  # mark move before the order, in basis points of the base mark


def steps() -> st.SearchStrategy[Step]:
    def build(coin: str) -> st.SearchStrategy[Step]:
        return st.builds(
            Step,
            coin=st.just(coin),
            buy=st.booleans(),
            lots=st.integers(MIN_LOTS[coin], MAX_LOTS[coin]),
            reduce_only=st.booleans(),
            leverage=st.integers(1, HYPERLIQUID_ASSETS[coin].max_leverage),
            move_bp=st.integers(-3000, 3000),
        )

    return st.sampled_from(sorted(BASE_MARKS)).flatmap(build)


@given(
    script=st.lists(steps(), min_size=1, max_size=25),
    slippage=st.sampled_from(["0", "2", "7.5", "75"]),
)
def test_ledger_value_is_cash_minus_fees_plus_realised_plus_unrealised(
    script: list[Step], slippage: str
) -> None:
    async def play() -> None:
        ex = PaperExchange("prop", state_path=None, slippage_bps=D(slippage))
        await ex.ensure_account(ACCOUNT, INITIAL)
        marks = dict(BASE_MARKS)
        qty = dict.fromkeys(BASE_MARKS, D(0))
        cost = dict.fromkeys(BASE_MARKS, D(0))  # |qty| × average entry, per coin
        fees = D(0)
        realised = D(0)
        raw_usd = INITIAL  # Hyperliquid's rawUsd: each fill adds −szi × px, minus fees
        for n, step in enumerate(script):
            marks[step.coin] = BASE_MARKS[step.coin] * (1 + D(step.move_bp) / 10_000)
            ex.mark(marks, T0)
            side = BUY if step.buy else SELL
            request = OrderRequest(
                account=ACCOUNT,
                cloid=f"0x{n:032x}",
                coin=step.coin,
                side=side,
                size=step.lots * LOT[step.coin],
                limit_price=D(10**9) if step.buy else D("0.000001"),
                reduce_only=step.reduce_only,
                leverage=step.leverage,
            )
            result = await ex.place_order(request)
            held = qty[step.coin]
            if step.reduce_only and (held == 0 or (held > 0) == step.buy):
                assert result.status is OrderStatus.REJECTED
                assert result.error == "reduce_only"
                continue
            assert result.status is OrderStatus.FILLED, result
            size = result.filled_size
            expected_size = min(request.size, abs(held)) if step.reduce_only else request.size
            assert size == expected_size
            price = result.avg_price
            assert result.fee == (size * price * D("0.00045")).quantize(D("0.000001"))
            fees += result.fee
            signed = size if step.buy else -size
            raw_usd -= signed * price + result.fee
            # Average-cost bookkeeping, independent of the exchange's.
            if held == 0 or (held > 0) == step.buy:
                cost[step.coin] += size * price
            else:
                closing = min(size, abs(held))
                avg = cost[step.coin] / abs(held)
                direction = 1 if held > 0 else -1
                realised += (price - avg) * closing * direction
                cost[step.coin] -= avg * closing
                opened = size - closing
                if opened > 0:
                    cost[step.coin] = opened * price
            qty[step.coin] = held + signed
            if qty[step.coin] == 0:
                cost[step.coin] = D(0)

            venue = await ex.positions(ACCOUNT)
            assert {c: p.qty for c, p in venue.items()} == {c: q for c, q in qty.items() if q}
            unrealised = sum(
                ((marks[c] * abs(q) - cost[c]) * (1 if q > 0 else -1) for c, q in qty.items() if q),
                D(0),
            )
            value = ex.account_value(ACCOUNT)
            tolerance = D("1e-12")
            assert abs(value - (INITIAL - fees + realised + unrealised)) <= tolerance
            by_hyperliquid = raw_usd + sum((q * marks[c] for c, q in qty.items()), D(0))
            assert abs(value - by_hyperliquid) <= tolerance

    asyncio.run(play())
