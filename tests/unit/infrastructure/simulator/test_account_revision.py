"""The simulator's account revision: what lets a reconciliation pass with nothing new be left
out. Prices alone never change it; a deposit, an order, a fill or any history record does."""

from __future__ import annotations

from decimal import Decimal

from infrastructure.simulator.config import SimConfig
from infrastructure.simulator.engine import SimVenue
from infrastructure.simulator.gateway import SimGateway
from tests.support.sim_server import MIDS

USER = "0x" + "ab" * 20
T = 1_760_000_000_000


def test_prices_leave_it_and_a_deposit_changes_it() -> None:
    gateway = SimGateway(SimVenue.open(SimConfig(), None))
    gateway.advance(T, MIDS)
    assert gateway.account_revision(USER) == b""  # no account yet
    gateway.fund(USER, Decimal(1000))
    funded = gateway.account_revision(USER)
    assert funded
    moved = {coin: price * Decimal("1.01") for coin, price in MIDS.items()}
    hour = T - T % 3_600_000
    gateway.advance(hour + 3_600_000 + 1_000, moved)  # a funding hour: a history record
    recorded = gateway.account_revision(USER)
    assert recorded != funded  # (a zero payment leaves the state as it was; not the history)
    gateway.advance(hour + 3_600_000 + 60_000, MIDS)  # a price, within the hour
    gateway.advance(hour + 3_600_000 + 120_000, moved)
    assert gateway.account_revision(USER) == recorded
    funded = recorded
    gateway.fund(USER, Decimal(1))
    assert gateway.account_revision(USER) != funded
    assert gateway.account_revision(USER.upper().replace("0X", "0x")) == (
        gateway.account_revision(USER)
    )
