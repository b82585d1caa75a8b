"""Deposits, withdrawals and transfers on a shared venue account.

Money that enters or leaves the account without trading is the account's, not a trader's:
it moves the unallocated part, the equity invariant keeps holding, and nobody is paused for
it. A withdrawal that takes part of the traders' allocations leaves their sizing without
real money behind it: they pause, with an alert, until someone looks.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from eventsourcing.domain import Snapshot

from domain.venue_account import VenueAccount
from infrastructure.simulator.server import Fault
from tests.support.fakes import Harness, entry, venue_info

D = Decimal


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def account(h: Harness) -> VenueAccount:
    found = h.cycle.sync.venue_account()
    assert found is not None
    return found


async def gap_and_unallocated(h: Harness) -> tuple[Decimal, Decimal]:
    state = await h.exchange.account_state()
    equity, traders, unallocated = h.cycle.sync.invariant(state)
    return equity - traders - unallocated, unallocated


def account_events(h: Harness) -> list[str]:
    recorded = h.app.repository.get(account(h).id)
    return [type(e).__name__ for e in h.app.events.get(recorded.id)]  # type: ignore[attr-defined]


async def later(h: Harness, seconds: float = 60) -> None:
    h.clock.advance(seconds)
    h.mark()


def test_the_funding_before_registration_is_in_the_baseline_not_counted_again() -> None:
    async def scenario() -> None:
        h = await Harness.create(fund=D(10500))  # the trader is given 10000
        ledger = venue_info(
            h.venue,
            {"type": "userNonFundingLedgerUpdates", "user": h.venue.account_id, "startTime": 0},
        )
        assert [row["delta"] for row in ledger] == [{"type": "deposit", "usdc": "10500.0"}]
        await later(h)
        report = await h.reconcile()
        assert report.transfers == 0
        assert await gap_and_unallocated(h) == (D(0), D(500))
        assert account(h).transfers_after is not None

    run(scenario())


def test_a_deposit_is_unallocated_and_pauses_nobody() -> None:
    async def scenario() -> None:
        h = await Harness.create(answers=[{"BTC": entry("BTC", quantity=0.02)}])
        await h.run_cycle()  # a position open while the money arrives
        await later(h)
        h.venue.gateway.fund(h.venue.account_id, D(750))
        await later(h)
        report = await h.reconcile()
        assert report.transfers == 1
        assert report.drift == []
        gap, unallocated = await gap_and_unallocated(h)
        assert abs(gap) <= D("0.01")
        assert unallocated == D(750)
        assert not h.trader().paused
        assert h.alerts.sent == []
        # Seen once, however often the ledger is read again.
        await later(h)
        assert (await h.reconcile()).transfers == 0
        assert account(h).baseline_equity == D(10000) + D(750)

    run(scenario())


def test_withdrawing_what_is_unallocated_changes_nothing_for_the_traders() -> None:
    async def scenario() -> None:
        h = await Harness.create(fund=D(12000))
        await later(h)
        h.venue.gateway.venue.withdraw(h.venue.account_id, D(1500))
        await later(h)
        report = await h.reconcile()
        assert report.transfers == 1
        assert await gap_and_unallocated(h) == (D(0), D(500))
        assert not h.trader().paused
        assert report.drift == []

    run(scenario())


def test_withdrawing_part_of_the_allocations_pauses_the_traders_until_refunded() -> None:
    async def scenario() -> None:
        h = await Harness.create()  # funded with exactly the trader's allocation
        await later(h)
        h.venue.gateway.venue.withdraw(h.venue.account_id, D(2500))
        await later(h)
        report = await h.reconcile()
        assert report.transfers == 1
        gap, unallocated = await gap_and_unallocated(h)
        assert gap == 0  # the books explain the account ...
        assert unallocated == D(-2500)  # ... which no longer backs the allocation
        trader = h.trader()
        assert trader.paused
        assert trader.pause_reason.startswith("underfunded")
        assert [a[1] for a in h.alerts.sent] == ["underfunded"]
        assert "2500.00 USDC less" in account(h).drift["underfunded"]
        # Someone looked and resumed: the same shortfall does not pause again.
        trader.resume("operator", h.clock.now())
        h.app.save_trader(trader)
        await later(h)
        await h.reconcile()
        assert not h.trader().paused
        # Money back: the finding clears.
        h.venue.gateway.fund(h.venue.account_id, D(2500))
        await later(h)
        await h.reconcile()
        assert "underfunded" not in account(h).drift
        assert [a[1] for a in h.alerts.sent] == ["underfunded"]

    run(scenario())


def test_no_ledger_answer_means_the_equity_is_not_judged_this_pass() -> None:
    async def scenario() -> None:
        h = await Harness.create(http=True)
        try:
            await later(h)
            h.venue.gateway.fund(h.venue.account_id, D(300))
            await later(h)
            assert h.plan is not None
            h.plan.on_info(Fault.fail_before(502), info="userNonFundingLedgerUpdates", times=5)
            report = await h.reconcile()
            assert any("transfers unavailable" in f for f in report.findings)
            assert report.equity_gap is None  # not judged: a deposit would look like drift
            assert not h.trader().paused
            h.plan.clear()
            await later(h)
            report = await h.reconcile()
            assert report.transfers == 1
            assert report.equity_gap is not None
            assert abs(report.equity_gap) <= D("0.01")
            assert not h.trader().paused
        finally:
            h.close()

    run(scenario())


def test_a_venue_account_from_before_transfer_tracking_starts_tracking_on_its_next_pass() -> None:
    async def scenario() -> None:
        h = await Harness.create()
        current = account(h)
        # A snapshot as an older version wrote it: class version 1, no transfer tracking.
        taken = Snapshot.take(current)
        dropped = ("transfers_after", "class_version")
        state = {k: v for k, v in taken.state.items() if k not in dropped}
        old = Snapshot(
            originator_id=taken.originator_id,
            originator_version=taken.originator_version,
            timestamp=taken.timestamp,
            topic=taken.topic,
            state=state,
        )
        mapper = h.app.mapper
        restored = mapper.to_domain_event(mapper.to_stored_event(old)).mutate(None)
        assert isinstance(restored, VenueAccount)
        assert restored.transfers_after is None
        # Untracked, a transfer is not counted: the baseline was read without knowing.
        assert not restored.observe_transfer(
            transfer_id="0x1:deposit",
            kind="deposit",
            amount=D(1),
            venue_time=h.clock.now(),
            at=h.clock.now(),
        )
        # The next pass starts tracking from the venue's time; later money is counted.
        h.app.save_venue_account(restored)  # nothing new to save: the same aggregate
        restored.track_transfers(h.clock.now(), h.clock.now())
        assert restored.transfers_after == h.clock.now()
        restored.track_transfers(h.clock.now().replace(year=2030), h.clock.now())
        assert restored.transfers_after == h.clock.now()  # set once

    run(scenario())
