"""Hyperliquid's error texts, and the few the simulator had to invent.

Texts marked *verified* come from the docs, the testnet transcript or captured venue output
(``shared/contracts/hyperliquid/exchange_responses.json``); the others are the simulator's own
wording for cases no capture shows, kept here so they are easy to find and change.
"""

from __future__ import annotations

# -- verified -----------------------------------------------------------------------------------
DESERIALIZE = "Failed to deserialize the JSON body into the target type"
INVALID_PRICE = "Order has invalid price."
INVALID_SIZE = "Order has invalid size."
MIN_VALUE = "Order must have minimum value of $10. asset={asset}"
MARGIN = "Insufficient margin to place order. asset={asset}"
REDUCE_ONLY = "Reduce only order would increase position. asset={asset}"
IOC_NO_MATCH = "Order could not immediately match against any resting orders. asset={asset}"
ALO_CROSS = "Post only order would have immediately matched, bbo was {bid}@{ask}. asset={asset}"
BAD_TRIGGER = "Invalid TP/SL price. asset={asset}"
CANCEL_MISSING = "Order was never placed, already canceled, or filled."
MODIFY_MISSING = "Cannot modify canceled or filled order"
SWITCH_MARGIN_MODE = "Cannot switch leverage type with open position."
NOT_ISOLATED = "Position does not use isolated margin."
SCHEDULE_VOLUME = (
    "Cannot set scheduled cancel time until enough volume traded. "
    "Required: ${required}. Traded: ${traded}."
)
NONCE_DUPLICATE = "Invalid nonce: duplicate nonce {nonce}"
NONCE_LOW = "Invalid nonce: nonce too low {nonce} < {bound}"
NONCE_HIGH = "Invalid nonce: nonce too high {nonce} > {bound}"

# -- the simulator's wording (no capture available) ---------------------------------------------
BUILDER = "Builder fee has not been approved."
INVALID_ASSET = "Order has invalid asset."
TOO_MANY_OPEN = "Too many open orders. asset={asset}"
TPSL_PARENT_FAILED = "TP/SL parent order was not placed."
TPSL_CHILD_NOT_TRIGGER = "TP/SL orders must be trigger orders."
INVALID_LEVERAGE = "Invalid leverage value."
CROSS_NOT_ALLOWED = "Cross margin is not allowed for this asset."
LEVERAGE_MARGIN = "Insufficient margin to update leverage."
ISOLATED_ADD_MARGIN = "Insufficient margin to add to isolated position."
ISOLATED_REMOVE_MARGIN = "Cannot remove that much isolated margin."
SCHEDULE_TOO_EARLY = "Scheduled cancel time must be at least 5 seconds in the future."
SCHEDULE_TOO_MANY = "Too many scheduled cancels triggered today."
UNSUPPORTED_ACTION = "Action type is not supported by the simulator: {action}"
TOO_MANY_AGENTS = "Too many named agents: at most 3 plus one unnamed."


class InfoRequestError(Exception):
    """An /info request of unknown type or wrong shape (the server answers HTTP 422)."""

    def __init__(self, message: str = DESERIALIZE) -> None:
        super().__init__(message)


class AgentApprovalError(ValueError):
    """``approve_agent`` refused (too many named agents)."""


class ShapeError(ValueError):
    """An /exchange action that does not deserialise (wrong keys or types)."""
