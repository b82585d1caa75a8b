"""Reconciliation passes left out as unchanged (VenueSync._unchanged) miss nothing the
venue recorded: a zero funding payment (the state stays as it was) and a transfer undone
(a deposit, then the same withdrawal) change the account revision too."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from application.venue_sync import VenueSync
from infrastructure.simulator.config import SimConfig
from tests.support.fakes import Harness, entry


def _funding_events(skip: bool) -> list[Any]:
    async def scenario() -> list[Any]:
        h = await Harness.create(
            answers=[{"BTC": entry("BTC", quantity=0.02)}],
            venue_config=SimConfig(funding_rate=Decimal(0)),
        )
        await h.run_cycle()
        await h.reconcile()
        for _ in range(3 * 60):  # three funding hours, a pass every minute
            h.clock.advance(60)
            h.mark()
            await h.reconcile()
        return [e for e in h.events() if type(e).__name__ == "FundingSettled"]

    if skip:
        return asyncio.run(scenario())
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(VenueSync, "_unchanged", lambda self, names, full: None)
        return asyncio.run(scenario())


def test_zero_funding_payments_are_booked_as_with_every_pass() -> None:
    every_pass = _funding_events(skip=False)
    skipping = _funding_events(skip=True)
    assert len(every_pass) >= 3
    assert len(skipping) == len(every_pass), (len(skipping), len(every_pass))


def test_a_transfer_undone_is_not_left_out() -> None:
    async def scenario() -> None:
        h = await Harness.create()
        await h.reconcile()
        quiet = await h.reconcile()  # nothing to do: the next unchanged pass is left out
        assert quiet.transfers == 0
        address = h.venue.main_address
        h.venue.gateway.fund(address, Decimal(100))
        with h.venue.gateway.locked() as venue:
            venue.withdraw(address, Decimal(100))
        h.clock.advance(60)
        h.mark()
        report = await h.reconcile()
        assert not report.idle

    asyncio.run(scenario())
