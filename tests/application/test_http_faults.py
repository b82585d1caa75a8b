"""Fault injection at the HTTP layer (issue 3): the engine trades through the Hyperliquid
adapter over the SDK's HTTP transport to ``SimServer``, whose interceptor breaks the
exchange in each way a live venue can. Every case ends with no duplicate order on the
venue and the right events in the books.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from infrastructure.simulator.config import BookModel, SimConfig
from infrastructure.simulator.server import Fault
from tests.support.fakes import (
    Harness,
    entry,
    manual_cancel,
    venue_fills,
    venue_open_orders,
    venue_positions,
)

D = Decimal
ENTRY = {"BTC": entry("BTC", quantity=0.02)}


@asynccontextmanager
async def http_harness(**kwargs: Any) -> Any:
    h = await Harness.create(answers=[ENTRY], http=True, **kwargs)
    try:
        yield h
    finally:
        h.close()


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(scenario())


def orders_for(h: Harness, cloid: str) -> set[int]:
    """The venue's order ids that carry ``cloid`` (each is one order the venue accepted)."""
    return {f["oid"] for f in venue_fills(h.venue) if f.get("cloid") == cloid}


def entry_cloid(h: Harness) -> str:
    (placed,) = [e for e in h.events() if type(e).__name__ == "OrderPlaced"]
    cloid: str = placed.cloid
    return cloid


def assert_one_filled_entry(h: Harness) -> None:
    cloid = entry_cloid(h)
    assert len(orders_for(h, cloid)) == 1, "exactly one order reached the venue"
    assert venue_positions(h.venue) == {"BTC": D("0.02")}
    filled = [e for e in h.events() if type(e).__name__ == "OrderFilled"]
    assert [e.cloid for e in filled] == [cloid]
    assert h.trader().positions["BTC"].qty == D("0.02")
    assert h.trader().pending == {}
    # ... and the new position is protected, once.
    kinds = sorted(o["orderType"] for o in venue_open_orders(h.venue))
    assert kinds == ["Stop Market", "Take Profit Market"]


AMBIGUOUS = [
    pytest.param(Fault.fail_before(502), id="502-before-processing"),
    pytest.param(Fault.fail_after(500), id="500-after-processing"),
    pytest.param(Fault.delay_after(3.0), id="timeout-after-acceptance"),
    pytest.param(Fault.drop_after(), id="connection-dropped-after-acceptance"),
    pytest.param(Fault.drop_before(), id="connection-dropped-before-processing"),
    pytest.param(Fault.malformed("<html>bad gateway</html>"), id="malformed-body-after-processing"),
    pytest.param(Fault.rate_limit(), id="429"),
]


@pytest.mark.parametrize("fault", AMBIGUOUS)
def test_an_ambiguous_or_refused_request_never_doubles_the_order(fault: Fault) -> None:
    async def scenario() -> None:
        async with http_harness() as h:
            assert h.plan is not None
            h.plan.on_exchange(fault, action="order")
            outcome = await h.run_cycle()
            assert outcome.status == "decided"
            assert h.plan.fired, "the fault was injected"
            assert_one_filled_entry(h)

    run(scenario)


def test_status_err_for_the_whole_action_is_a_refusal_with_its_reason() -> None:
    async def scenario() -> None:
        async with http_harness() as h:
            assert h.plan is not None
            text = (
                "Too many cumulative requests sent (10001 > 10000) for cumulative volume traded $0."
            )
            h.plan.on_exchange(Fault.canned({"status": "err", "response": text}), action="order")
            await h.run_cycle()
            (rejected,) = [e for e in h.events() if type(e).__name__ == "OrderRejected"]
            assert (rejected.reason, rejected.detail) == ("rate_limited", text)
            assert venue_fills(h.venue) == []
            assert h.trader().pending == {}
            assert h.trader().positions == {}

    run(scenario)


def test_an_error_inside_an_ok_answer_is_a_refusal() -> None:
    async def scenario() -> None:
        async with http_harness() as h:
            assert h.plan is not None
            answer = {
                "status": "ok",
                "response": {
                    "type": "order",
                    "data": {
                        "statuses": [{"error": "Insufficient margin to place order. asset=0"}]
                    },
                },
            }
            h.plan.on_exchange(Fault.canned(answer), action="order")
            await h.run_cycle()
            (rejected,) = [e for e in h.events() if type(e).__name__ == "OrderRejected"]
            assert rejected.reason == "insufficient_margin"
            assert rejected.detail == "Insufficient margin to place order. asset=0"
            assert venue_fills(h.venue) == []
            assert h.trader().positions == {}

    run(scenario)


def test_a_partial_fill_books_what_filled_and_protects_it() -> None:
    async def scenario() -> None:
        thin = SimConfig(book=BookModel(levels=2, level_usd={"*": D(400)}, jitter=D(0)))
        async with http_harness(venue_config=thin) as h:
            await h.run_cycle()
            held = venue_positions(h.venue)["BTC"]
            assert D(0) < held < D("0.02")
            cloid = entry_cloid(h)
            assert len(orders_for(h, cloid)) == 1
            tids = sorted(str(f["tid"]) for f in venue_fills(h.venue) if f.get("cloid") == cloid)
            assert len(tids) == 2  # it walked two levels of the book
            recorded = [e.fill_id for e in h.events() if type(e).__name__ == "OrderFilled"]
            assert sorted(recorded) == tids
            (canceled,) = [e for e in h.events() if type(e).__name__ == "OrderCanceled"]
            assert canceled.reason == "ioc_remainder"
            assert h.trader().positions["BTC"].qty == held
            sizes = {D(o["sz"]) for o in venue_open_orders(h.venue)}
            assert sizes == {held}

    run(scenario)


UNKNOWN = Fault.canned({"status": "unknownOid"})


def test_a_lookup_that_lags_is_checked_against_the_fill_feed_before_resending() -> None:
    """The entry's answer is lost and the order-status lookup says "unknown" (a lagging
    index): the fill feed shows the cloid filled, so nothing is sent again (a venue lets a
    terminal order's cloid be reused, so a resend would have been a second order)."""

    async def scenario() -> None:
        async with http_harness() as h:
            assert h.plan is not None
            h.plan.on_exchange(Fault.drop_after(), action="order")
            h.plan.on_info(UNKNOWN, info="orderStatus")
            await h.run_cycle()
            assert [kind.value for _, _, kind in h.plan.fired] == ["drop_after", "canned"]
            assert_one_filled_entry(h)

    run(scenario)


def test_a_resent_stop_that_meets_its_own_open_order_adopts_it() -> None:
    """The stop's answer is lost and the lookup lags: the desk sends the same cloid again,
    the venue refuses a duplicate of an open order, and the desk adopts the open one."""

    async def scenario() -> None:
        async with http_harness() as h:
            assert h.plan is not None
            await h.run_cycle()
            stop = next(g for g in h.trader().protections.values() if g.kind.value == "stop")
            manual_cancel(h.venue, "BTC", stop.cloid)
            h.plan.on_exchange(Fault.drop_after(), action="order")
            h.plan.on_info(UNKNOWN, info="orderStatus", times=3)  # it lags, and lags again
            await h.reconcile()
            await h.reconcile()  # the next pass reads the venue's oid from its open orders
            stops = [o for o in venue_open_orders(h.venue) if o["orderType"] == "Stop Market"]
            assert len(stops) == 1
            current = next(g for g in h.trader().protections.values() if g.kind.value == "stop")
            assert current.generation == 2
            assert stops[0]["cloid"] == current.cloid
            assert current.oid == stops[0]["oid"]

    run(scenario)


def test_a_feed_outage_records_nothing_wrong_and_the_next_pass_catches_up() -> None:
    async def scenario() -> None:
        async with http_harness() as h:
            assert h.plan is not None
            await h.run_cycle()
            target = h.trader().positions["BTC"].context.exit_plan.profit_target  # type: ignore[union-attr]
            h.clock.advance(60)
            h.set_price("BTC", target + 100)  # the take-profit fires on the venue
            # Both of the adapter's attempts fail on this pass.
            h.plan.on_info(Fault.fail_before(502), info="userFillsByTime", times=2)
            report = await h.reconcile()
            assert report.fills == 0
            assert any("unavailable" in f for f in report.findings)
            assert h.trader().positions["BTC"].qty == D("0.02")  # nothing guessed
            assert not h.trader().paused
            report = await h.reconcile()
            assert report.fills == 1
            closed = [e for e in h.events() if type(e).__name__ == "PositionClosed"]
            assert [c.reason for c in closed] == ["target"]
            assert venue_open_orders(h.venue) == []

    run(scenario)


def test_an_order_answer_of_unexpected_shape_is_ambiguous_and_looked_up() -> None:
    async def scenario() -> None:
        async with http_harness() as h:
            assert h.plan is not None
            # The venue processes the order but its answer lacks the oid.
            h.plan.on_exchange(Fault.drop_after(), action="order")
            odd = {
                "status": "ok",
                "response": {
                    "type": "order",
                    "data": {"statuses": [{"filled": {"totalSz": "0.02", "avgPx": "100005"}}]},
                },
            }
            h.plan.on_exchange(Fault.canned(odd), action="order")
            await h.run_cycle()
            assert_one_filled_entry(h)

    run(scenario)


def test_an_order_status_that_is_not_an_answer_is_never_read_as_unknown() -> None:
    """Only ``unknownOid`` means "no such order"; an error body must not let the desk
    send the order again."""

    async def scenario() -> None:
        async with http_harness() as h:
            assert h.plan is not None
            h.plan.on_exchange(Fault.drop_after(), action="order")
            h.plan.on_info(Fault.canned({"error": "internal"}), info="orderStatus", times=10)
            await h.run_cycle()
            cloid = entry_cloid(h)
            assert len(orders_for(h, cloid)) == 1
            h.plan.clear()
            await h.reconcile()
            assert_one_filled_entry(h)

    run(scenario)


def test_a_stop_the_venue_still_holds_is_not_forgotten_after_a_refused_cancel() -> None:
    async def scenario() -> None:
        async with http_harness() as h:
            assert h.plan is not None
            await h.run_cycle()
            h.cycle.sync.settings["alpha"] = replace(h.settings, take_profit_enabled=False)
            refused = {
                "status": "ok",
                "response": {"type": "cancel", "data": {"statuses": [{"error": "busy"}]}},
            }
            h.plan.on_exchange(Fault.canned(refused), action="cancelByCloid")
            await h.reconcile()
            assert any(g.kind.value == "target" for g in h.trader().protections.values())
            assert len(venue_open_orders(h.venue)) == 2
            await h.reconcile()  # now the cancel goes through
            kinds = [o["orderType"] for o in venue_open_orders(h.venue)]
            assert kinds == ["Stop Market"]
            assert all(g.kind.value == "stop" for g in h.trader().protections.values())

    run(scenario)
