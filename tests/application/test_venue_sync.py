"""Reconciliation with the venue (issue 3, parts 4–6) against the Hyperliquid simulator,
traded through the Hyperliquid adapter.

* Protection: exactly one reduce-only stop and one take-profit cover each position, are
  re-sized after partial fills and partial closes, canceled when it closes, and a retry
  never doubles them.
* Virtual sub-accounts: fills, fees and funding go to the trader that caused them; one
  trader per coin per account; Σ trader equity + unallocated = account equity.
* What happens on the venue (stops, targets, liquidations, manual trades, foreign orders)
  becomes events with price, fee and reason.
"""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

from application.ports import ExchangeError
from application.settings import TraderSettings
from application.venue_sync import VenueSync
from domain.trader import Trader
from domain.values import Liquidity, OrderSide
from infrastructure.hyperliquid.simulated import SimulatedHyperliquid
from infrastructure.hyperliquid.transport import TimedOut
from infrastructure.simulator.config import BookModel, SimConfig
from tests.support.fakes import (
    T0,
    Harness,
    entry,
    limits,
    manual_order,
    trader_settings,
    venue_fills,
    venue_info,
    venue_open_orders,
    venue_positions,
)
from tests.support.shared import SharedAccount

D = Decimal


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def names(trader_events: Sequence[Any]) -> list[str]:
    return [type(e).__name__ for e in trader_events]


def of_type(h_events: Sequence[Any], name: str) -> list[Any]:
    return [e for e in h_events if type(e).__name__ == name]


def protections(exchange: SimulatedHyperliquid, coin: str) -> dict[str, dict[str, Any]]:
    """The trigger orders resting on the venue for ``coin``, by order type."""
    found: dict[str, dict[str, Any]] = {}
    for order in venue_open_orders(exchange):
        if order["coin"] == coin:
            assert order["orderType"] not in found, f"two {order['orderType']} orders for {coin}"
            found[order["orderType"]] = order
    return found


# -- one trader ------------------------------------------------------------------------------


def test_a_take_profit_closes_with_reason_target_and_cancels_the_stop() -> None:
    async def scenario() -> None:
        h = await Harness.create(answers=[{"BTC": entry("BTC", quantity=0.02)}])
        await h.run_cycle()
        target = h.trader().positions["BTC"].context.exit_plan.profit_target  # type: ignore[union-attr]
        h.clock.advance(60)
        h.set_price("BTC", target + 100)
        report = await h.reconcile()
        assert report.fills == 1
        (closed,) = of_type(h.events(), "PositionClosed")
        assert closed.reason == "target"
        assert closed.gross_pnl > 0
        fill = venue_fills(h.exchange)[0]
        assert closed.exit_price == D(fill["px"])
        assert closed.exit_fees == D(fill["fee"])
        assert venue_open_orders(h.exchange) == []
        # The stop went with the position (the venue drops reduce-only orders on a flat
        # position; had it not, the engine would have canceled it).
        (canceled,) = of_type(h.events(), "ProtectionCanceled")
        assert canceled.kind == "stop"
        assert canceled.reason in {"reduceOnlyCanceled", "position_closed"}
        # A second pass finds nothing more to do.
        again = await h.reconcile()
        assert (again.fills, again.protections, again.settled) == (0, 0, 0)

    run(scenario())


def test_liquidation_is_recorded_with_its_price_fee_and_reason() -> None:
    async def scenario() -> None:
        # 1000 USDC on the account, a 5000 USD long at 10x: liquidated near −18.75 %.
        settings = trader_settings(allocation=D(1000))
        order = entry("BTC", quantity=0.05, leverage=10, stop_pct=0.2, reward_risk=3.5)
        h = await Harness.create(answers=[{"BTC": order}], settings=settings)
        await h.run_cycle()
        assert venue_positions(h.exchange) == {"BTC": D("0.05")}
        h.clock.advance(60)
        h.set_price("BTC", 81000)  # above the stop at 80000, below the liquidation price
        await h.reconcile()
        (closed,) = of_type(h.events(), "PositionClosed")
        assert closed.reason == "liquidation"
        liquidation = venue_fills(h.exchange)[0]
        assert liquidation["liquidation"]["method"] == "market"
        assert closed.exit_price == D(liquidation["px"])
        assert closed.exit_fees == D(liquidation["fee"])
        assert venue_positions(h.exchange) == {}
        assert h.trader().positions == {}
        assert venue_open_orders(h.exchange) == []
        assert h.trader().protections == {}
        assert not h.trader().paused  # the books followed the venue: no drift

    run(scenario())


def test_a_partially_filled_entry_is_protected_for_what_filled() -> None:
    async def scenario() -> None:
        thin = SimConfig(book=BookModel(levels=2, level_usd={"*": D(400)}, jitter=D(0)))
        h = await Harness.create(answers=[{"BTC": entry("BTC", quantity=0.02)}], venue_config=thin)
        await h.run_cycle()
        held = venue_positions(h.exchange)["BTC"]
        assert D(0) < held < D("0.02")
        trader = h.trader()
        assert trader.positions["BTC"].qty == held
        (canceled,) = of_type(h.events(), "OrderCanceled")
        assert canceled.reason == "ioc_remainder"
        assert trader.pending == {}
        orders = protections(h.exchange, "BTC")
        assert set(orders) == {"Stop Market", "Take Profit Market"}
        assert all(D(o["sz"]) == held for o in orders.values())

    run(scenario())


def test_protections_are_resized_after_a_partial_close_on_the_venue() -> None:
    async def scenario() -> None:
        h = await Harness.create(answers=[{"BTC": entry("BTC", quantity=0.02)}])
        await h.run_cycle()
        before = {g.kind.value: g.cloid for g in h.trader().protections.values()}
        manual_order(h.exchange, "BTC", buy=False, size="0.005", price="90000", reduce_only=True)
        await h.reconcile()
        trader = h.trader()
        assert trader.positions["BTC"].qty == D("0.015")
        orders = protections(h.exchange, "BTC")
        assert {k: D(o["sz"]) for k, o in orders.items()} == {
            "Stop Market": D("0.015"),
            "Take Profit Market": D("0.015"),
        }
        now = {g.kind.value: g for g in trader.protections.values()}
        assert {k: g.generation for k, g in now.items()} == {"stop": 2, "target": 2}
        assert {o["cloid"] for o in orders.values()} == {g.cloid for g in now.values()}
        replaced = of_type(h.events(), "ProtectionCanceled")
        assert sorted((c.cloid, c.reason) for c in replaced) == sorted(
            (cloid, "replaced") for cloid in before.values()
        )
        assert of_type(h.events(), "PositionClosed") == []

    run(scenario())


def test_a_lost_answer_to_a_stop_is_looked_up_never_doubled() -> None:
    async def scenario() -> None:
        h = await Harness.create(answers=[{"BTC": entry("BTC", quantity=0.02)}])
        transport = h.exchange.transport
        original = transport.post
        lost: list[str] = []

        def lose_trigger_answers(path: str, payload: Any) -> Any:
            answer = original(path, payload)
            action = payload.get("action", {}) if path == "/exchange" else {}
            if action.get("type") == "order" and "trigger" in action["orders"][0]["t"]:
                lost.append(action["orders"][0]["c"])
                raise TimedOut("the answer was lost")
            return answer

        transport.post = lose_trigger_answers  # type: ignore[method-assign]
        await h.run_cycle()
        assert len(lost) == 2  # each placed once; the retries found them by cloid
        orders = protections(h.exchange, "BTC")
        assert set(orders) == {"Stop Market", "Take Profit Market"}
        assert {o["cloid"] for o in orders.values()} == set(lost)
        confirmed = of_type(h.events(), "ProtectionConfirmed")
        assert {c.cloid for c in confirmed} == set(lost)

    run(scenario())


def test_a_stop_canceled_by_hand_is_put_back() -> None:
    async def scenario() -> None:
        h = await Harness.create(answers=[{"BTC": entry("BTC", quantity=0.02)}])
        await h.run_cycle()
        stop = next(g for g in h.trader().protections.values() if g.kind.value == "stop")
        with h.exchange.gateway.locked() as venue:
            answer = venue.exchange(
                h.exchange.account_id,
                {"type": "cancelByCloid", "cancels": [{"asset": 0, "cloid": stop.cloid}]},
            )
        assert answer["response"]["data"]["statuses"] == ["success"]
        await h.reconcile()
        orders = protections(h.exchange, "BTC")
        assert set(orders) == {"Stop Market", "Take Profit Market"}
        current = next(g for g in h.trader().protections.values() if g.kind.value == "stop")
        assert current.generation == 2
        assert orders["Stop Market"]["cloid"] == current.cloid
        gone = of_type(h.events(), "ProtectionCanceled")
        assert [(g.cloid, g.kind) for g in gone] == [(stop.cloid, "stop")]

    run(scenario())


def test_a_gap_through_a_missing_stop_closes_at_market() -> None:
    """The stop was canceled on the venue and the price gapped through its level before the
    next pass: the venue refuses a stop that is already crossed, so the engine closes."""

    async def scenario() -> None:
        h = await Harness.create(answers=[{"BTC": entry("BTC", quantity=0.02)}])
        await h.run_cycle()
        stop = next(g for g in h.trader().protections.values() if g.kind.value == "stop")
        with h.exchange.gateway.locked() as venue:
            venue.exchange(
                h.exchange.account_id,
                {"type": "cancelByCloid", "cancels": [{"asset": 0, "cloid": stop.cloid}]},
            )
        h.clock.advance(60)
        h.set_price("BTC", stop.trigger_price - 500)
        report = await h.reconcile()
        assert report.exits == 1
        (closed,) = of_type(h.events(), "PositionClosed")
        assert closed.reason == "stop"
        assert venue_positions(h.exchange) == {}
        refused = [a for a in h.alerts.sent if a[1] == "protection_refused"]
        assert refused
        assert "invalid_trigger_price" in refused[0][2]
        await h.reconcile()
        assert venue_open_orders(h.exchange) == []

    run(scenario())


def test_funding_goes_to_the_holder_with_the_venue_amount() -> None:
    async def scenario() -> None:
        h = await Harness.create(answers=[{"BTC": entry("BTC", quantity=0.02)}])
        await h.run_cycle()
        for _ in range(60):  # to past the hour
            h.clock.advance(60)
            h.mark()
        await h.reconcile()
        (settled,) = of_type(h.events(), "FundingSettled")
        rows = venue_info(
            h.exchange,
            {"type": "userFunding", "user": h.exchange.account_id, "startTime": 0},
        )
        (row,) = rows
        assert settled.amount == D(row["delta"]["usdc"])
        assert settled.rate == D("0.0000125")
        # Longs pay shorts at a positive rate: −size × oracle × rate.
        assert settled.amount == (-D("0.02") * D(100000) * D("0.0000125")).quantize(D("0.000001"))
        assert h.trader().funding == settled.amount
        await h.reconcile()
        assert len(of_type(h.events(), "FundingSettled")) == 1  # once, however often read

    run(scenario())


def test_a_foreign_order_is_observed_once_and_never_booked() -> None:
    async def scenario() -> None:
        h = await Harness.create()
        manual_order(h.exchange, "ETH", buy=True, size="0.1", price="3000", tif="Gtc")
        await h.reconcile()
        await h.reconcile()
        account = h.cycle.sync.venue_account()
        assert account is not None
        events = list(h.app.events.get(account.id))
        observed = of_type(events, "ForeignOrderObserved")
        assert [(e.coin, e.side, e.size, e.price) for e in observed] == [
            ("ETH", "buy", D("0.1"), D(3000))
        ]
        assert h.trader().pending == {}
        assert [a[1] for a in h.alerts.sent] == ["foreign_order"]

    run(scenario())


def test_a_foreign_fill_on_a_coin_no_trader_holds_is_observed_and_alerted() -> None:
    async def scenario() -> None:
        h = await Harness.create()
        manual_order(h.exchange, "ETH", buy=True, size="0.1", price="4100")
        await h.reconcile()
        report = await h.reconcile()
        account = h.cycle.sync.venue_account()
        assert account is not None
        events = list(h.app.events.get(account.id))
        (fill,) = of_type(events, "ForeignFillObserved")
        assert (fill.coin, fill.side, fill.size) == ("ETH", "buy", D("0.1"))
        assert fill.fee > 0
        assert report.drift == ["ETH: books 0 (none), venue 0.1"]
        assert "position:ETH" in account.drift
        assert h.trader().positions == {}
        # Nobody's books hold ETH, but the account no longer adds up (the trade's fee and
        # its open P&L are no trader's): the account's traders stop until someone looks.
        assert h.trader().paused
        assert h.trader().pause_reason.startswith("equity_drift")
        assert {"foreign_fill", "drift", "equity_drift"} <= {a[1] for a in h.alerts.sent}

    run(scenario())


# -- several traders on one account ------------------------------------------------------------


def two_traders() -> list[TraderSettings]:
    return [
        trader_settings("alpha", allocation=D(4000), limits=limits(max_position_size_usd=D(3000))),
        trader_settings("beta", allocation=D(4000), limits=limits(max_position_size_usd=D(3000))),
    ]


def test_one_trader_per_coin_per_account() -> None:
    async def scenario() -> None:
        shared = await SharedAccount.create(two_traders(), fund=D(10000))
        await shared.decide("alpha", {"BTC": entry("BTC", quantity=0.02)})
        await shared.decide(
            "beta",
            {"BTC": entry("BTC", quantity=0.01), "ETH": entry("ETH", quantity=0.5, price=4000)},
        )
        (refused,) = of_type(shared.events("beta"), "RiskRejected")
        assert (refused.coin, refused.rule) == ("BTC", "coin_held_by_other")
        assert refused.values == {"holder": "alpha"}
        assert venue_positions(shared.exchange) == {"BTC": D("0.02"), "ETH": D("0.5")}
        assert set(shared.app.get_trader("alpha").positions) == {"BTC"}
        assert set(shared.app.get_trader("beta").positions) == {"ETH"}
        # Once alpha is out, beta may trade BTC.
        await shared.decide("alpha", {"BTC": {"signal": "close"}})
        await shared.decide("beta", {"BTC": entry("BTC", quantity=0.01)})
        assert set(shared.app.get_trader("beta").positions) == {"BTC", "ETH"}
        assert venue_positions(shared.exchange) == {"BTC": D("0.01"), "ETH": D("0.5")}

    asyncio.run(scenario())


def test_fills_fees_and_funding_add_up_to_the_account_to_the_cent() -> None:
    async def scenario() -> None:
        shared = await SharedAccount.create(two_traders(), fund=D(10000))

        async def gap() -> Decimal:
            await shared.sync.run(shared.clock.now())
            state = await shared.exchange.account_state()
            equity, traders, unallocated = shared.sync.invariant(state)
            assert unallocated == D(2000)  # 10000 funded, 8000 allocated
            return equity - traders - unallocated

        assert await gap() == 0
        await shared.decide("alpha", {"BTC": entry("BTC", quantity=0.02)})
        await shared.decide("beta", {"ETH": entry("ETH", long=False, quantity=0.5, price=4000)})
        assert abs(await gap()) < D("0.01")
        prices = [("101000", "3950"), ("99500", "4020"), ("100800", "3990")]
        for btc, eth in prices * 10:  # ~ 90 minutes: moves, and funding at the hour
            shared.clock.advance(180)
            shared.market.prices.update({"BTC": D(btc), "ETH": D(eth)})
            shared.mark()
            assert abs(await gap()) < D("0.01")
        await shared.decide("alpha", {"BTC": {"signal": "close"}})
        assert abs(await gap()) < D("0.01")
        alpha, beta = shared.app.get_trader("alpha"), shared.app.get_trader("beta")
        assert alpha.funding < 0 < beta.funding  # the long paid, the short received
        assert alpha.num_trades == 1
        fees = sum(D(f["fee"]) for f in venue_fills(shared.exchange))
        assert alpha.fees_paid + beta.fees_paid == fees

    asyncio.run(scenario())


def test_a_fill_is_recorded_by_exactly_one_trader_however_often_it_is_read() -> None:
    async def scenario() -> None:
        shared = await SharedAccount.create(two_traders(), fund=D(10000))
        await shared.decide("alpha", {"BTC": entry("BTC", quantity=0.02)})
        for _ in range(3):
            await shared.sync.run(shared.clock.now())
        await shared.decide("alpha", {"BTC": {"signal": "close"}})
        await shared.decide("beta", {"BTC": entry("BTC", quantity=0.01)})
        for _ in range(3):
            shared.clock.advance(30)
            await shared.sync.run(shared.clock.now())
        recorded = [
            e.fill_id
            for trader in ("alpha", "beta")
            for e in of_type(shared.events(trader), "OrderFilled")
        ]
        assert sorted(recorded) == sorted(str(f["tid"]) for f in venue_fills(shared.exchange))
        assert len(recorded) == len(set(recorded))

    asyncio.run(scenario())


# -- regressions found in review ----------------------------------------------------------------


def test_a_position_no_trader_holds_claims_its_coin() -> None:
    """Someone else's ETH on the account: a trader's ETH entry would merge into it (and be
    booked with it), so it is refused; the foreign fill stays off every book."""

    async def scenario() -> None:
        h = await Harness.create(answers=[{"ETH": entry("ETH", quantity=0.5, price=4000)}])
        manual_order(h.exchange, "ETH", buy=True, size="0.1", price="4100")
        await h.reconcile()
        await h.run_cycle()
        (refused,) = of_type(h.events(), "RiskRejected")
        assert (refused.coin, refused.rule) == ("ETH", "coin_held_by_other")
        assert refused.values["holder"] == "(outside the arena)"
        assert of_type(h.events(), "OrderFilled") == []
        assert venue_positions(h.exchange) == {"ETH": D("0.1")}

    run(scenario())


def test_a_stop_that_fires_during_a_pass_is_still_booked_as_the_stop() -> None:
    """The stop fires after the pass read the open orders and the fills: it is neither open
    nor in the fills it read. It is not replaced, and the next pass books it as the stop."""

    async def scenario() -> None:
        h = await Harness.create(answers=[{"BTC": entry("BTC", quantity=0.02)}])
        await h.run_cycle()
        stop = next(g for g in h.trader().protections.values() if g.kind.value == "stop")
        read_fills = h.exchange.fills_since
        fired: list[bool] = []

        async def then_the_stop_fires(since: Any) -> Any:
            rows = await read_fills(since)
            if not fired:
                fired.append(True)
                h.clock.advance(60)
                h.set_price("BTC", stop.trigger_price - 100)
            return rows

        h.exchange.fills_since = then_the_stop_fires  # type: ignore[method-assign]
        await h.reconcile()
        await h.reconcile()
        (closed,) = of_type(h.events(), "PositionClosed")
        assert closed.reason == "stop"
        assert of_type(h.events(), "OrderRejected") == []
        assert not [a for a in h.alerts.sent if a[1] == "protection_refused"]
        assert venue_open_orders(h.exchange) == []

    run(scenario())


def test_without_the_asset_list_no_protection_is_canceled() -> None:
    async def scenario() -> None:
        h = await Harness.create(answers=[{"BTC": entry("BTC", quantity=0.02)}])
        await h.run_cycle()

        async def no_assets() -> Any:
            raise ExchangeError("meta unavailable", ambiguous=False)

        h.exchange.assets = no_assets  # type: ignore[method-assign]
        report = await h.reconcile()
        assert report.findings == ["assets unavailable: meta unavailable"]
        assert set(protections(h.exchange, "BTC")) == {"Stop Market", "Take Profit Market"}
        assert of_type(h.events(), "ProtectionCanceled") == []

    run(scenario())


def test_a_position_only_in_the_books_is_not_protected_again_and_again() -> None:
    """The venue is flat but the books are not (its fill never reached the feed): that is
    drift — the trader is paused — not a reason to place stops on every pass."""

    async def scenario() -> None:
        h = await Harness.create(answers=[{"BTC": entry("BTC", quantity=0.02)}])
        await h.run_cycle()
        manual_order(h.exchange, "BTC", buy=False, size="0.02", price="90000", reduce_only=True)
        lost = {str(f["tid"]) for f in venue_fills(h.exchange) if not f.get("cloid")}
        read_fills = h.exchange.fills_since

        async def without_it(since: Any) -> Any:
            return [f for f in await read_fills(since) if f.fill_id not in lost]

        h.exchange.fills_since = without_it  # type: ignore[method-assign]
        before = len(h.events())
        for _ in range(5):
            h.clock.advance(10)
            h.mark()
            await h.reconcile()
        added = names(h.events()[before:])
        assert "ProtectionPlaced" not in added
        assert h.trader().paused
        assert "drift" in h.trader().pause_reason

    run(scenario())


def test_drift_is_not_judged_for_a_trader_whose_cycle_is_running() -> None:
    async def scenario() -> None:
        shared = await SharedAccount.create(two_traders(), fund=D(10000))
        await shared.decide("alpha", {"BTC": entry("BTC", quantity=0.02)})
        lock = asyncio.Lock()
        shared.sync.locks = {"alpha": lock}
        alpha = shared.app.get_trader("alpha")
        stop = next(g for g in alpha.protections.values() if g.kind.value == "stop")
        await lock.acquire()  # alpha's cycle is waiting for its model
        shared.clock.advance(60)
        shared.market.prices["BTC"] = stop.trigger_price - 100
        shared.mark()  # the stop fires; alpha's books cannot be updated now
        first = await shared.sync.run(shared.clock.now())
        second = await shared.sync.run(shared.clock.now())
        assert first.skipped == second.skipped == ["alpha"]
        assert second.drift == []
        assert not [a for a in shared.alerts.sent if a[1] == "drift"]
        lock.release()
        await shared.sync.run(shared.clock.now())
        (closed,) = of_type(shared.events("alpha"), "PositionClosed")
        assert closed.reason == "stop"
        assert not shared.app.get_trader("alpha").paused

    run(scenario())


def test_funding_reported_after_a_position_was_reopened_stays_with_the_old_trade() -> None:
    trader = Trader.register(
        config_id="alpha", name="alpha", model="m", allocation=D(1000), coins=["BTC"], at=T0
    )
    later = T0 + timedelta(hours=2)
    trader.record_fill(
        "0x01",
        price=D(100000),
        size=D("0.01"),
        fee=D(0),
        liquidity=Liquidity.TAKER,
        at=later,
        coin="BTC",
        side=OrderSide.BUY,
    )
    paid_on_an_earlier_position = T0 + timedelta(hours=1)
    trader.settle_funding(
        coin="BTC",
        amount=D("-0.5"),
        rate=D("0.0000125"),
        price=D(100000),
        at=paid_on_an_earlier_position,
        funding_id="f1",
    )
    assert trader.funding == D("-0.5")  # the trader's total counts it
    assert trader.positions["BTC"].funding == 0  # the position opened after it does not


def test_a_dropped_sync_is_freed_at_once_not_by_the_garbage_collector() -> None:
    # No reference cycle through the pass's parts: the store it holds (and, on PostgreSQL,
    # its connections) goes with the last reference.
    async def scenario() -> Harness:
        return await Harness.create()

    h = run(scenario())
    gc.disable()
    try:
        sync = VenueSync(
            app=h.app,
            exchange=h.exchange,
            desk=h.desk,
            clock=h.clock,
            alerts=h.alerts,
            traders=[h.settings],
            engine=h.engine,
        )
        gone = weakref.ref(sync)
        del sync
        assert gone() is None
    finally:
        gc.enable()
        h.close()
