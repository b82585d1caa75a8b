"""Ledger invariants over random histories of two traders sharing one venue account
(issue 3: virtual sub-accounts, protections, reconciliation), through the Hyperliquid
adapter and the simulator.

After every step and a reconciliation pass:

* Σ trader equity + unallocated = account equity, to the cent, and unallocated is what the
  traders were not given plus deposits minus withdrawals (nobody is paused for them);
* each coin's size on the venue equals the books' (and at most one trader holds it);
* every venue fill is in exactly one book, once;
* every open position has exactly one stop and one target on the venue, for its full size.
"""

from __future__ import annotations

import asyncio
from decimal import ROUND_DOWN, Decimal
from typing import Any

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tests.support.fakes import (
    entry,
    limits,
    manual_order,
    trader_settings,
    venue_fills,
    venue_open_orders,
)
from tests.support.shared import SharedAccount

D = Decimal
TRADERS = ("alpha", "beta")
COINS = {"BTC": D(100000), "ETH": D(4000), "SOL": D(200)}


class SharedAccountMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        cap = limits(max_position_size_usd=D(2500), max_positions=3)
        self.shared: SharedAccount = self.run(
            SharedAccount.create(
                [trader_settings(t, allocation=D(4000), limits=cap) for t in TRADERS],
                fund=D(10000),
            )
        )
        self.unallocated = D(10000) - 2 * D(4000)  # moved by deposits and withdrawals only

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        self.loop.close()

    def reconcile(self) -> None:
        self.run(self.shared.sync.run(self.shared.clock.now()))
        held = sum(len(self.shared.app.get_trader(t).positions) for t in TRADERS)
        event(f"positions held after a step: {held}")

    # -- what can happen ----------------------------------------------------------------------

    @rule(
        trader=st.sampled_from(TRADERS),
        coin=st.sampled_from(sorted(COINS)),
        long=st.booleans(),
        notional=st.integers(min_value=50, max_value=2400),
        stop_pct=st.sampled_from([0.005, 0.01, 0.03]),
    )
    def enter(self, trader: str, coin: str, long: bool, notional: int, stop_pct: float) -> None:
        price = float(self.shared.market.prices[coin])
        quantity = round(notional / price, 4 if coin == "ETH" else 5 if coin == "BTC" else 2)
        if quantity <= 0:
            return
        order = entry(coin, long=long, quantity=quantity, price=price, stop_pct=stop_pct)
        self.run(self.shared.decide(trader, {coin: order}))
        self.reconcile()

    @precondition(lambda self: any(self.shared.app.get_trader(t).positions for t in TRADERS))
    @rule(data=st.data())
    def close(self, data: st.DataObject) -> None:
        held = [(t, c) for t in TRADERS for c in sorted(self.shared.app.get_trader(t).positions)]
        trader, coin = data.draw(st.sampled_from(held))
        self.run(self.shared.decide(trader, {coin: {"signal": "close"}}))
        self.reconcile()

    @precondition(lambda self: any(self.shared.app.get_trader(t).positions for t in TRADERS))
    @rule(data=st.data(), part=st.sampled_from([D("0.25"), D("0.5")]))
    def reduce_by_hand(self, data: st.DataObject, part: Decimal) -> None:
        """Someone trims a position in the venue's UI: the books follow, the stop and the
        target shrink with it."""
        held = [
            (c, p)
            for t in TRADERS
            for c, p in sorted(self.shared.app.get_trader(t).positions.items())
        ]
        coin, position = data.draw(st.sampled_from(held))
        decimals = {"BTC": 5, "ETH": 4, "SOL": 2}[coin]
        size = (abs(position.qty) * part).quantize(D(1).scaleb(-decimals), rounding=ROUND_DOWN)
        if size <= 0:
            return
        far = self.shared.market.prices[coin] * (D("0.8") if position.qty > 0 else D("1.2"))
        manual_order(
            self.shared.exchange,
            coin,
            buy=position.qty < 0,
            size=str(size),
            price=str(far.quantize(D(1))),
            reduce_only=True,
        )
        self.reconcile()

    @rule(coin=st.sampled_from(sorted(COINS)), move_bps=st.integers(min_value=-400, max_value=400))
    def move(self, coin: str, move_bps: int) -> None:
        price = self.shared.market.prices[coin] * (1 + D(move_bps) / 10_000)
        self.shared.market.prices[coin] = price.quantize(D("0.1") if coin == "SOL" else D(1))
        self.shared.clock.advance(60)
        self.shared.mark()
        self.reconcile()

    @rule(minutes=st.integers(min_value=1, max_value=130))
    def wait(self, minutes: int) -> None:
        self.shared.clock.advance(minutes * 60)  # funding is paid at each hour on the way
        self.shared.mark()
        self.reconcile()

    @rule(usdc=st.integers(min_value=1, max_value=3000))
    def deposit(self, usdc: int) -> None:
        self.shared.clock.advance(1)
        self.shared.mark()
        self.shared.exchange.gateway.fund(self.shared.exchange.account_id, D(usdc))
        self.unallocated += usdc
        self.reconcile()

    @rule(share=st.sampled_from([D("0.1"), D("0.5"), D(1)]))
    def withdraw(self, share: Decimal) -> None:
        """The owner takes money out of what no trader was given (never more)."""
        usdc = (self.unallocated * share).quantize(D("0.01"), rounding=ROUND_DOWN)
        if usdc <= 0:
            return
        self.shared.clock.advance(1)
        self.shared.mark()
        with self.shared.exchange.gateway.locked() as venue:
            try:
                venue.withdraw(self.shared.exchange.account_id, usdc)
            except ValueError:
                event("withdrawal refused by the venue (margin in use)")
                return
        self.unallocated -= usdc
        self.reconcile()

    # -- what must always hold ----------------------------------------------------------------

    @invariant()
    def the_account_adds_up(self) -> None:
        state = self.run(self.shared.exchange.account_state())
        equity, traders, unallocated = self.shared.sync.invariant(state)
        assert abs(equity - traders - unallocated) < D("0.01"), (equity, traders, unallocated)
        assert unallocated == self.unallocated
        for t in TRADERS:
            reason = self.shared.app.get_trader(t).pause_reason
            assert not reason.startswith(("equity_drift", "underfunded")), (t, reason)

    @invariant()
    def the_books_hold_what_the_venue_holds(self) -> None:
        state = self.run(self.shared.exchange.account_state())
        books: dict[str, list[tuple[str, Decimal]]] = {}
        for t in TRADERS:
            for coin, position in self.shared.app.get_trader(t).positions.items():
                books.setdefault(coin, []).append((t, position.qty))
        assert all(len(holders) == 1 for holders in books.values()), books
        assert {c: h[0][1] for c, h in books.items()} == {
            c: p.qty for c, p in state.positions.items()
        }

    @invariant()
    def every_fill_is_booked_once(self) -> None:
        booked = [
            e.fill_id
            for t in TRADERS
            for e in self.shared.events(t)
            if type(e).__name__ == "OrderFilled"
        ]
        assert len(booked) == len(set(booked))
        assert set(booked) == {str(f["tid"]) for f in venue_fills(self.shared.exchange)}

    @invariant()
    def every_position_is_protected_once_for_its_size(self) -> None:
        orders = venue_open_orders(self.shared.exchange)
        for t in TRADERS:
            for coin, position in self.shared.app.get_trader(t).positions.items():
                mine = [o for o in orders if o["coin"] == coin]
                kinds = sorted(o["orderType"] for o in mine)
                assert kinds == ["Stop Market", "Take Profit Market"], (t, coin, kinds)
                assert {D(o["sz"]) for o in mine} == {abs(position.qty)}
        held = {c for t in TRADERS for c in self.shared.app.get_trader(t).positions}
        assert {o["coin"] for o in orders} <= held, "a protection outlived its position"


# Each step signs and verifies real actions: half the profile's examples, longer runs.
SharedAccountMachine.TestCase.settings = settings(
    settings.default,
    max_examples=max(25, settings.default.max_examples // 2),
    stateful_step_count=25,
)
test_shared_account = SharedAccountMachine.TestCase
