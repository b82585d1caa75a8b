"""Hyperliquid's error texts, mapped to typed reasons.

The venue's words are kept as the detail; the reason is what the engine acts on. Matching
is on stable fragments (live texts append `` asset=N``, the bbo, amounts).
"""

from __future__ import annotations

from application.ports import VenueRejection

_FRAGMENTS: tuple[tuple[str, VenueRejection], ...] = (
    ("minimum value", VenueRejection.MIN_VALUE),
    ("insufficient margin", VenueRejection.INSUFFICIENT_MARGIN),
    ("reduce only order would increase", VenueRejection.REDUCE_ONLY),
    ("could not immediately match", VenueRejection.NO_LIQUIDITY),
    ("no liquidity", VenueRejection.NO_LIQUIDITY),
    ("post only", VenueRejection.POST_ONLY),
    ("tick size", VenueRejection.INVALID_PRICE),
    ("invalid price", VenueRejection.INVALID_PRICE),
    ("invalid size", VenueRejection.INVALID_SIZE),
    ("invalid tp/sl", VenueRejection.INVALID_TRIGGER),
    ("cloid", VenueRejection.DUPLICATE_CLOID),
    ("leverage", VenueRejection.LEVERAGE),
    ("margin tier", VenueRejection.LEVERAGE),
    ("too far", VenueRejection.PRICE_BAND),
    ("away from the reference price", VenueRejection.PRICE_BAND),
    ("open interest", VenueRejection.OPEN_INTEREST_CAP),
    ("too many", VenueRejection.TOO_MANY_ORDERS),
    ("does not exist", VenueRejection.SIGNER),
    ("unable to recover signer", VenueRejection.SIGNER),
    ("nonce", VenueRejection.NONCE),
    ("must deposit", VenueRejection.NO_DEPOSIT),
    ("builder", VenueRejection.BUILDER),
)

#: orderStatus values for orders the venue refused or took off the book itself.
_STATUS_REASONS: dict[str, VenueRejection] = {
    "tickRejected": VenueRejection.INVALID_PRICE,
    "minTradeNtlRejected": VenueRejection.MIN_VALUE,
    "perpMarginRejected": VenueRejection.INSUFFICIENT_MARGIN,
    "reduceOnlyRejected": VenueRejection.REDUCE_ONLY,
    "badAloPxRejected": VenueRejection.POST_ONLY,
    "iocCancelRejected": VenueRejection.NO_LIQUIDITY,
    "badTriggerPxRejected": VenueRejection.INVALID_TRIGGER,
    "marketOrderNoLiquidityRejected": VenueRejection.NO_LIQUIDITY,
    "oracleRejected": VenueRejection.PRICE_BAND,
    "perpMaxPositionRejected": VenueRejection.OPEN_INTEREST_CAP,
}


def classify(message: str) -> VenueRejection:
    text = message.lower()
    # "Too many cumulative requests" is the address-based rate limit.
    if "cumulative requests" in text:
        return VenueRejection.RATE_LIMITED
    for fragment, reason in _FRAGMENTS:
        if fragment in text:
            return reason
    return VenueRejection.OTHER


def status_reason(status: str) -> str:
    """A typed reason for an orderStatus value (the value itself when it has none)."""
    known = _STATUS_REASONS.get(status)
    if known is not None:
        return known.value
    if status.endswith("Rejected"):
        return VenueRejection.OTHER.value
    return status
