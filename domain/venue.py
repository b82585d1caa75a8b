"""Hyperliquid's tick and lot rules for perpetuals, as pure functions.

* A price has at most 5 significant figures and at most ``6 − szDecimals`` decimals;
  an integer price is always valid.
* A size has at most ``szDecimals`` decimals.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_UP, Decimal

MAX_SIG_FIGS = 5
PERP_MAX_DECIMALS = 6


def _decimals(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


def _sig_figs(value: Decimal) -> int:
    digits = value.normalize().as_tuple().digits
    return len(digits)


def is_valid_price(price: Decimal, sz_decimals: int) -> bool:
    if price <= 0:
        return False
    if price == price.to_integral_value():
        return True
    return _sig_figs(price) <= MAX_SIG_FIGS and _decimals(price) <= PERP_MAX_DECIMALS - sz_decimals


def round_price(price: Decimal, sz_decimals: int, *, up: bool | None = None) -> Decimal:
    """The nearest valid price (``up`` True/False rounds towards +/− infinity instead)."""
    if price <= 0:
        raise ValueError(f"price must be positive, got {price}")
    rounding = ROUND_HALF_EVEN if up is None else (ROUND_UP if up else ROUND_DOWN)
    adjusted = price.adjusted()  # exponent of the leading digit
    sig_quantum = Decimal(1).scaleb(adjusted - MAX_SIG_FIGS + 1)
    max_decimals = PERP_MAX_DECIMALS - sz_decimals
    dec_quantum = Decimal(1).scaleb(-max_decimals)
    quantum = max(sig_quantum, dec_quantum)
    if quantum < 1:
        rounded = price.quantize(quantum, rounding=rounding)
    else:
        # Five or more integer digits: any integer is valid.
        rounded = price.quantize(Decimal(1), rounding=rounding)
    if rounded <= 0:
        rounded = min(quantum, Decimal(1))  # below the smallest tick: the tick is nearest
    return (
        rounded.normalize()
        if rounded != rounded.to_integral_value()
        else rounded.quantize(Decimal(1))
    )


def is_valid_size(size: Decimal, sz_decimals: int) -> bool:
    return size > 0 and _decimals(size) <= sz_decimals
