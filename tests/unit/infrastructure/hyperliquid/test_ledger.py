"""userNonFundingLedgerUpdates rows → what they did to the perp account's USDC."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from infrastructure.hyperliquid.ledger import UnreadableDelta, perp_usdc_change

D = Decimal
ME = "0x" + "a" * 40
OTHER = "0x" + "b" * 40


@pytest.mark.parametrize(
    ("delta", "change"),
    [
        ({"type": "deposit", "usdc": "250.5"}, D("250.5")),
        ({"type": "withdraw", "usdc": "100.0", "nonce": 7, "fee": "1.0"}, D("-100.0")),
        ({"type": "accountClassTransfer", "usdc": "40", "toPerp": True}, D(40)),
        ({"type": "accountClassTransfer", "usdc": "40", "toPerp": False}, D(-40)),
        (
            {"type": "internalTransfer", "usdc": "10", "user": ME, "destination": OTHER, "fee": 1},
            D(-11),
        ),
        (
            {"type": "internalTransfer", "usdc": "10", "user": OTHER, "destination": ME, "fee": 1},
            D(10),
        ),
        ({"type": "subAccountTransfer", "usdc": "5", "user": ME, "destination": OTHER}, D(-5)),
        ({"type": "subAccountTransfer", "usdc": "5", "user": OTHER, "destination": ME}, D(5)),
        ({"type": "vaultDeposit", "vault": OTHER, "usdc": "30"}, D(-30)),
        (
            {
                "type": "vaultWithdraw",
                "vault": OTHER,
                "user": ME,
                "requestedUsd": "30",
                "commission": "1",
                "closingCost": "0",
                "basis": "29",
                "netWithdrawnUsd": "29",
            },
            D(29),
        ),
        ({"type": "vaultCreate", "vault": OTHER, "usdc": "100", "fee": "100"}, D(-200)),
        ({"type": "vaultLeaderCommission", "user": ME, "usdc": "3"}, D(3)),
        (
            {
                "type": "send",
                "user": ME,
                "destination": OTHER,
                "sourceDex": "",
                "destinationDex": "",
                "token": "USDC",
                "amount": "8",
                "usdcValue": "8",
                "fee": "0.5",
            },
            D("-8.5"),
        ),
        (
            {
                "type": "send",
                "user": ME,
                "destination": OTHER,
                "sourceDex": "spot",
                "destinationDex": "",
                "token": "USDC",
                "amount": "8",
                "usdcValue": "8",
                "fee": "0",
            },
            D(0),
        ),
        ({"type": "send", "user": OTHER, "destination": ME, "token": "HYPE", "amount": "8"}, D(0)),
        ({"type": "spotTransfer", "token": "USDC", "amount": "9", "usdcValue": "9"}, D(0)),
        ({"type": "liquidation", "accountValue": "12", "liquidatedPositions": []}, D(0)),
    ],
    ids=lambda value: value["type"] if isinstance(value, dict) else str(value),
)
def test_each_kind_moves_the_perp_account_as_the_venue_does(
    delta: dict[str, Any], change: Decimal
) -> None:
    assert perp_usdc_change(delta, ME.upper().replace("0X", "0x")) == change


def test_an_unknown_kind_is_not_guessed() -> None:
    assert perp_usdc_change({"type": "somethingNew", "usdc": "5"}, ME) is None


@pytest.mark.parametrize(
    "delta",
    [
        {"type": "deposit"},
        {"type": "deposit", "usdc": "abc"},
        {"type": "deposit", "usdc": "-5"},
        {"type": "deposit", "usdc": "NaN"},
        {"type": "withdraw", "usdc": None},
        {"type": "accountClassTransfer", "usdc": "5"},
        {"type": "accountClassTransfer", "usdc": "5", "toPerp": "yes"},
        {"type": "vaultWithdraw", "vault": OTHER, "requestedUsd": "5"},
    ],
)
def test_an_unreadable_delta_is_an_error_never_zero(delta: dict[str, Any]) -> None:
    with pytest.raises(UnreadableDelta):
        perp_usdc_change(delta, ME)
