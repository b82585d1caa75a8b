"""Hyperliquid's tick and lot rules: at most 5 significant figures and at most
``6 − szDecimals`` decimals for a price (integers always valid); ``szDecimals`` for a size."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from domain.values import floor_to_decimals
from domain.venue import is_valid_price, is_valid_size, round_price

D = Decimal


@pytest.mark.parametrize(
    ("price", "sz_decimals", "valid"),
    [
        # BTC (szDecimals 5): one decimal at most, and 5 significant figures.
        ("80639.5", 5, False),  # 6 significant figures
        ("80639", 5, True),  # an integer is always valid
        ("80640", 5, True),
        ("8063.9", 5, True),
        ("8063.95", 5, False),
        ("123456789", 5, True),  # integers beyond 5 significant figures too
        ("100000.0", 5, True),  # integral value written with a decimal
        ("99999.0000", 5, True),
        # ETH (szDecimals 4): two decimals.
        ("3999.5", 4, True),
        ("3999.55", 4, False),
        ("399.55", 4, True),
        ("39.555", 4, False),  # 3 decimals > 2
        # SOL (szDecimals 2): four decimals.
        ("187.12", 2, True),
        ("187.123", 2, False),
        ("1.2345", 2, True),
        ("1.23456", 2, False),
        # DOGE / XRP (szDecimals 0): six decimals.
        ("0.12345", 0, True),
        ("0.123456", 0, False),  # 6 significant figures
        ("0.012345", 0, True),  # 6 decimals, 5 significant figures
        ("0.0012345", 0, False),  # 7 decimals
        ("0.000001", 0, True),
        ("0.0000001", 0, False),
        ("1.50000", 0, True),  # trailing zeros are not significant
        ("2.3", 5, True),
        ("2.35", 5, False),
        # Not positive.
        ("0", 0, False),
        ("0.0", 3, False),
        ("-1", 0, False),
        ("-0.5", 0, False),
    ],
)
def test_is_valid_price(price: str, sz_decimals: int, valid: bool) -> None:
    assert is_valid_price(D(price), sz_decimals) is valid


@pytest.mark.parametrize(
    ("price", "sz_decimals", "nearest", "down", "up"),
    [
        ("80639.5", 5, "80640", "80639", "80640"),  # half to even
        ("80638.5", 5, "80638", "80638", "80639"),
        ("80639.4", 5, "80639", "80639", "80640"),
        ("8063.97", 5, "8064", "8063.9", "8064"),
        ("123456.7", 5, "123457", "123456", "123457"),
        ("3999.55", 4, "3999.6", "3999.5", "3999.6"),
        ("3999.45", 4, "3999.4", "3999.4", "3999.5"),
        ("187.1234", 2, "187.12", "187.12", "187.13"),
        ("0.1234567", 0, "0.12346", "0.12345", "0.12346"),
        ("0.00123456", 0, "0.001235", "0.001234", "0.001235"),
        ("2.3456", 5, "2.3", "2.3", "2.4"),
        ("80640", 5, "80640", "80640", "80640"),  # a valid price is kept
        ("3999.5", 4, "3999.5", "3999.5", "3999.5"),
        ("100000.00", 5, "100000", "100000", "100000"),
    ],
)
def test_round_price(price: str, sz_decimals: int, nearest: str, down: str, up: str) -> None:
    value = D(price)
    for result, expected in (
        (round_price(value, sz_decimals), nearest),
        (round_price(value, sz_decimals, up=False), down),
        (round_price(value, sz_decimals, up=True), up),
    ):
        assert result == D(expected)
        assert str(result) == expected  # normalised: no trailing zeros, no exponent
        assert is_valid_price(result, sz_decimals)


@pytest.mark.parametrize("price", ["0", "-1", "-0.0001"])
def test_round_price_refuses_a_non_positive_price(price: str) -> None:
    with pytest.raises(ValueError, match="positive"):
        round_price(D(price), 3)


def test_round_price_never_rounds_a_positive_price_to_zero() -> None:
    """The docstring promises the nearest *valid* price; zero is not a price. Below half a
    tick (1e-6 at szDecimals 0) the nearest valid price is the tick itself."""
    assert round_price(D("0.0000001"), 0, up=True) == D("0.000001")
    nearest = round_price(D("0.0000001"), 0)
    assert is_valid_price(nearest, 0), nearest


@pytest.mark.parametrize(
    ("size", "sz_decimals", "valid"),
    [
        ("0.00001", 5, True),
        ("0.000001", 5, False),
        ("0.12345", 5, True),
        ("0.123450", 5, True),  # trailing zero
        ("1.5", 0, False),
        ("150", 0, True),
        ("1E+2", 0, True),
        ("150.0", 0, True),
        ("0.1234", 4, True),
        ("0.12345", 4, False),
        ("0", 3, False),
        ("-1", 3, False),
    ],
)
def test_is_valid_size(size: str, sz_decimals: int, valid: bool) -> None:
    assert is_valid_size(D(size), sz_decimals) is valid


# -- properties ---------------------------------------------------------------------------------


def tick(price: Decimal, sz_decimals: int) -> Decimal:
    """The price step at this magnitude: the coarser of the two rules, at most 1."""
    sig = D(1).scaleb(price.adjusted() - 4)
    dec = D(1).scaleb(-(6 - sz_decimals))
    return min(max(sig, dec), D(1))


@st.composite
def prices(draw: st.DrawFn) -> tuple[Decimal, int]:
    sz = draw(st.integers(min_value=0, max_value=5))
    mantissa = draw(st.integers(min_value=1, max_value=10**9))
    exponent = draw(st.integers(min_value=-14, max_value=2))
    price = D(mantissa).scaleb(exponent)
    # At least one tick of this asset (below it no positive price is valid).
    smallest = D(1).scaleb(-(6 - sz))
    return max(price, smallest), sz


@given(prices())
@example((D("80639.5"), 5))
@example((D("0.000001"), 0))
@example((D("99999.5"), 5))
@example((D("9.99995"), 1))
def test_round_price_is_valid_and_within_one_tick(case: tuple[Decimal, int]) -> None:
    price, sz = case
    step = tick(price, sz)
    nearest = round_price(price, sz)
    down = round_price(price, sz, up=False)
    up = round_price(price, sz, up=True)
    for result in (nearest, down, up):
        assert is_valid_price(result, sz), (price, sz, result)
        assert abs(result - price) <= step
    assert down <= price <= up
    assert up - down <= step
    assert abs(nearest - price) * 2 <= step
    assert down <= nearest <= up
    if is_valid_price(price, sz):
        assert nearest == down == up == price


@given(
    st.integers(min_value=1, max_value=10**12),
    st.integers(min_value=-8, max_value=4),
    st.integers(min_value=0, max_value=5),
)
def test_floored_sizes_are_valid_and_never_larger(mantissa: int, exponent: int, sz: int) -> None:
    size = D(mantissa).scaleb(exponent)
    floored = floor_to_decimals(size, sz)
    assert floored <= size
    assert size - floored < D(1).scaleb(-sz)
    if floored > 0:
        assert is_valid_size(floored, sz)
    else:
        assert size < D(1).scaleb(-sz)
