"""What a userNonFundingLedgerUpdates row did to the perp account's USDC.

Only the kinds that move USDC in or out of the perp (cross) account count: deposits,
withdrawals, transfers between spot and perp, between accounts and sub-accounts, and vault
deposits and withdrawals. Spot-only kinds (spotTransfer, spotGenesis, rewardsClaim, ...) and
``liquidation`` (its money moves through the liquidation fills) move nothing here. A kind
this table does not know is reported as ``None`` for the caller to log; if it did move
money, the equity invariant finds it.

Signs follow the account: + into it, − out of it. A withdrawal counts its ``usdc`` (the
bridge's $1 fee comes out of what is received); an outgoing transfer counts its fee too.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

ZERO = Decimal(0)

#: Kinds that never move the perp account's USDC.
NO_PERP_MONEY = frozenset(
    {"liquidation", "spotTransfer", "spotGenesis", "rewardsClaim", "cStakingTransfer"}
)


class UnreadableDelta(ValueError):
    """A field the kind needs is missing or not a number."""


def _amount(delta: Mapping[str, Any], key: str, default: Decimal | None = None) -> Decimal:
    raw = delta.get(key)
    if raw is None:
        if default is not None:
            return default
        raise UnreadableDelta(f"{delta.get('type')} without {key}")
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        raise UnreadableDelta(f"{key} is not a number: {raw!r}") from None
    if not value.is_finite() or value < 0:
        raise UnreadableDelta(f"{key} is not a non-negative amount: {raw!r}")
    return value


def _between(delta: Mapping[str, Any], account: str, amount: Decimal, fee: Decimal) -> Decimal:
    """A transfer from ``user`` to ``destination``: out of ours, or into it."""
    source = str(delta.get("user") or "").lower()
    destination = str(delta.get("destination") or "").lower()
    if source == destination:
        return ZERO
    if source == account:
        return -(amount + fee)
    if destination == account:
        return amount
    return ZERO


def perp_usdc_change(delta: Mapping[str, Any], account: str) -> Decimal | None:
    """The change to ``account``'s perp USDC (``None``: a kind this table does not know)."""
    kind = delta.get("type")
    account = account.lower()
    if kind == "deposit":
        return _amount(delta, "usdc")
    if kind == "vaultWithdraw":
        return _amount(delta, "netWithdrawnUsd")
    if kind in ("vaultDistribution", "vaultLeaderCommission"):
        return _amount(delta, "usdc")
    if kind == "withdraw":
        return -_amount(delta, "usdc")
    if kind == "vaultDeposit":
        return -_amount(delta, "usdc")
    if kind == "vaultCreate":
        return -(_amount(delta, "usdc") + _amount(delta, "fee", ZERO))
    if kind == "accountClassTransfer":
        to_perp = delta.get("toPerp")
        if not isinstance(to_perp, bool):
            raise UnreadableDelta("accountClassTransfer without toPerp")
        usdc = _amount(delta, "usdc")
        return usdc if to_perp else -usdc
    if kind in ("internalTransfer", "subAccountTransfer"):
        return _between(delta, account, _amount(delta, "usdc"), _amount(delta, "fee", ZERO))
    if kind == "send":
        # Only USDC between perp balances (the default dex, written ""): the rest is spot.
        if delta.get("token") != "USDC":
            return ZERO
        source_perp = delta.get("sourceDex", "") == ""
        destination_perp = delta.get("destinationDex", "") == ""
        amount, fee = _amount(delta, "amount"), _amount(delta, "fee", ZERO)
        change = _between(delta, account, amount, fee)
        if (change < 0 and not source_perp) or (change > 0 and not destination_perp):
            return ZERO
        return change
    if kind in NO_PERP_MONEY:
        return ZERO
    return None
