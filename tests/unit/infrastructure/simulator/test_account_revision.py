"""The simulator's account revision: what lets a reconciliation pass with nothing new be left
out. Prices alone never change it; a deposit, an order, a fill or any record of the user's
history does (a zero funding payment too); the market's own records (each coin's hourly
funding rate) do not: no read of the account shows them."""

from __future__ import annotations

from decimal import Decimal

from infrastructure.simulator.config import SimConfig
from infrastructure.simulator.engine import SimVenue
from infrastructure.simulator.gateway import SimGateway
from tests.support.sim_server import MIDS
from tests.unit.infrastructure.simulator.simkit import (
    ALICE,
    ETH,
    HOUR,
    HOUR0,
    T0,
    limit,
    one,
    prices,
    venue,
)

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
    gateway.advance(hour + 3_600_000 + 1_000, moved)  # a funding hour: rates, no payment
    assert gateway.account_revision(USER) == funded  # a flat account: nothing of its own
    gateway.advance(hour + 3_600_000 + 60_000, MIDS)  # a price, within the hour
    gateway.advance(hour + 3_600_000 + 120_000, moved)
    assert gateway.account_revision(USER) == funded
    gateway.fund(USER, Decimal(1))
    assert gateway.account_revision(USER) != funded
    assert gateway.account_revision(USER.upper().replace("0X", "0x")) == (
        gateway.account_revision(USER)
    )


def test_a_zero_funding_payment_changes_it_and_another_users_record_does_not() -> None:
    # A held position at a zero rate: the payment leaves cash and positions as they were,
    # but it is in the user's funding history (a pass books it), so the revision moves.
    bob = "0x" + "cd" * 20
    sim = venue(users=(ALICE, bob))
    gateway = SimGateway(sim)
    assert one(sim, limit(ETH, True, "2010", "1", "Ioc"))["filled"]
    zero = {"ETH": Decimal(0), "BTC": Decimal(0), "SOL": Decimal(0)}
    gateway.advance(T0 + 1_000, prices(MIDS), funding_rates=zero)
    held, bobs = gateway.account_revision(ALICE), gateway.account_revision(bob)
    gateway.advance(HOUR0 + HOUR, prices(MIDS), funding_rates=zero)  # the hour: paid 0
    payments = sim.info({"type": "userFunding", "user": ALICE, "startTime": 0})
    assert [p["delta"]["usdc"] for p in payments] == ["0.0"]
    assert gateway.account_revision(ALICE) != held
    assert gateway.account_revision(bob) == bobs  # flat: the hour is not in its history
    # Bob's own record moves his revision, not Alice's.
    alices = gateway.account_revision(ALICE)
    gateway.fund(bob, Decimal(5))
    assert gateway.account_revision(bob) != bobs
    assert gateway.account_revision(ALICE) == alices
