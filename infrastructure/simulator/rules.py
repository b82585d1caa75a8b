"""Hyperliquid's price and size rules and its wire number format, implemented for the simulator.

Deliberately independent of ``domain.venue`` (which the traders use to round their orders):
if both shared one implementation, a bug in it would be invisible to the tests.

* A price has at most 5 significant figures and at most ``6 − szDecimals`` decimals; an
  integer price is always valid.
* A size is positive with at most ``szDecimals`` decimals.
* On the wire every number is a decimal string; integral values print with ``.0``.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, InvalidOperation

SIG_FIGS = 5
PERP_DECIMALS = 6
USDC = Decimal("0.000001")  # USDC amounts (fees, funding, margin) are in micro-dollars
ZERO = Decimal(0)
ONE = Decimal(1)
HOUR_MS = 3_600_000
DAY_MS = 86_400_000


def is_integral(value: Decimal) -> bool:
    return value == value.to_integral_value()


def price_ok(px: Decimal, sz_decimals: int) -> bool:
    """Whether the venue accepts ``px`` as an order or trigger price."""
    if not px.is_finite() or px <= 0:
        return False
    if is_integral(px):
        return True
    if px.adjusted() >= SIG_FIGS:  # five integer digits plus a fraction: six figures at least
        return False
    leading_at_units = px.scaleb(SIG_FIGS - 1 - px.adjusted())
    within_figures = is_integral(leading_at_units)
    within_decimals = is_integral(px.scaleb(PERP_DECIMALS - sz_decimals))
    return within_figures and within_decimals


def size_ok(sz: Decimal, sz_decimals: int) -> bool:
    return sz.is_finite() and sz > 0 and is_integral(sz.scaleb(sz_decimals))


def tick(px: Decimal, sz_decimals: int) -> Decimal:
    """The price step at ``px``: the last allowed digit, never coarser than 1."""
    by_figures = ONE.scaleb(px.adjusted() - SIG_FIGS + 1)
    by_decimals = ONE.scaleb(sz_decimals - PERP_DECIMALS)
    return min(ONE, max(by_figures, by_decimals))


def to_tick(px: Decimal, sz_decimals: int, *, up: bool) -> Decimal:
    """``px`` rounded to a valid price, towards +∞ (``up``) or −∞; never below one tick."""
    step = tick(px, sz_decimals)
    units = (px / step).to_integral_value(rounding=ROUND_CEILING if up else ROUND_FLOOR)
    rounded = units * step
    if rounded <= 0:
        return step
    if not price_ok(rounded, sz_decimals):  # crossed a power of ten: re-round at the new scale
        return to_tick(rounded, sz_decimals, up=up)
    return rounded


def nearest_price(px: Decimal, sz_decimals: int) -> Decimal:
    step = tick(px, sz_decimals)
    rounded = (px / step).to_integral_value(rounding=ROUND_HALF_EVEN) * step
    return rounded if rounded > 0 else step


def lot(sz_decimals: int) -> Decimal:
    return ONE.scaleb(-sz_decimals)


def floor_size(sz: Decimal, sz_decimals: int) -> Decimal:
    return sz.quantize(lot(sz_decimals), rounding=ROUND_FLOOR)


def usdc(value: Decimal, rounding: str = ROUND_HALF_EVEN) -> Decimal:
    return value.quantize(USDC, rounding=rounding)


def wire(value: Decimal) -> str:
    """The venue's number format: ``"30135.0"``, ``"0.0"``, ``"0.00015"``, ``"-1.5"``."""
    if value.is_zero():
        return "0.0"
    if is_integral(value):
        return f"{value.to_integral_value():f}.0"
    return f"{value.normalize():f}"


def wire_rounded(value: Decimal, decimals: int) -> str:
    """``value`` rounded half-even to ``decimals`` places, in the wire format."""
    return wire(value.quantize(ONE.scaleb(-decimals), rounding=ROUND_HALF_EVEN))


def parse_decimal(text: object) -> Decimal | None:
    """A finite decimal from a wire string (trailing zeros welcome); None otherwise."""
    if not isinstance(text, str):
        return None
    try:
        value = Decimal(text.strip())
    except (InvalidOperation, ValueError):
        return None
    return value if value.is_finite() else None
