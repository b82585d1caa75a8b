"""The simulator's own price/size rules and wire number format."""

from __future__ import annotations

from decimal import Decimal

import pytest

from infrastructure.simulator.rules import (
    nearest_price,
    parse_decimal,
    price_ok,
    size_ok,
    tick,
    to_tick,
    wire,
)

D = Decimal


@pytest.mark.parametrize(
    ("px", "sz_decimals", "ok"),
    [
        ("80639", 5, True),
        ("80639.5", 5, False),  # six figures
        ("8063.9", 5, True),
        ("8063.95", 5, False),
        ("123456789", 5, True),  # integers always
        ("100000.0", 5, True),
        ("2499.95", 4, False),  # six figures
        ("2499.9", 4, True),
        ("148.62", 2, True),
        ("148.625", 2, False),
        ("1.2345", 2, True),
        ("1.23456", 2, False),  # five figures but five decimals > 6 − 2
        ("0.20387", 0, True),
        ("0.203875", 0, False),  # six figures
        ("0.000012", 0, True),  # two figures, six decimals
        ("0.0000123", 0, False),  # seven decimals
        ("0.0001", 5, False),  # four decimals > 6 − 5
        ("0", 2, False),
        ("-1", 2, False),
    ],
)
def test_price_rule(px: str, sz_decimals: int, ok: bool) -> None:
    assert price_ok(D(px), sz_decimals) is ok


@pytest.mark.parametrize(
    ("sz", "sz_decimals", "ok"),
    [
        ("0.00015", 5, True),
        ("0.000151", 5, False),
        ("12.5", 1, True),
        ("12.55", 1, False),
        ("3", 0, True),
        ("3.0", 0, True),
        ("0", 2, False),
        ("-1", 2, False),
    ],
)
def test_size_rule(sz: str, sz_decimals: int, ok: bool) -> None:
    assert size_ok(D(sz), sz_decimals) is ok


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("30135", "30135.0"),
        ("30135.000", "30135.0"),
        ("0", "0.0"),
        ("-0", "0.0"),
        ("0.00015", "0.00015"),
        ("1E+3", "1000.0"),
        ("1E-8", "0.00000001"),
        ("-1.50", "-1.5"),
        ("4490636711.4322738647", "4490636711.4322738647"),
    ],
)
def test_wire_format(value: str, text: str) -> None:
    assert wire(D(value)) == text


def test_ticks_and_rounding_to_them() -> None:
    assert tick(D("80639.5"), 5) == D(1)
    assert tick(D("123456"), 5) == D(1)  # integers are always valid: the step is never above 1
    assert tick(D("2499.95"), 4) == D("0.1")
    assert tick(D("0.2"), 0) == D("0.00001")
    assert to_tick(D("80639.5"), 5, up=True) == D(80640)
    assert to_tick(D("80639.5"), 5, up=False) == D(80639)
    assert to_tick(D("9.99995"), 2, up=True) == D(10)
    assert to_tick(D("0.0000001"), 0, up=False) == D("0.000001")  # never below one tick
    assert nearest_price(D("1929.34"), 4) == D("1929.3")


def test_parse_decimal() -> None:
    assert parse_decimal("1100.0") == D("1100.0")
    assert parse_decimal("nan") is None
    assert parse_decimal("Infinity") is None
    assert parse_decimal("x") is None
    assert parse_decimal(1100) is None
