"""Replay property of the Trader aggregate (ARCHITECTURE.md §3, §8).

A Hypothesis state machine drives one trader through random commands (decision cycles,
answers and failures, orders, fills, rejections, funding, pauses). After every step:

* each command emitted exactly the events a simple model expects, stamped with its time;
* the trader rebuilt from its stored events, and from a snapshot, has the same state;
* the ledger adds up: positions equal the signed sum of fills, fees and funding equal their
  sums, equity = allocation + realised − fees + funding + unrealised, wins + losses = trades,
  and the realised result splits exactly into closed trades plus what open positions hold.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import event as note
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from application.trading import TradingApp
from domain.decision import DecisionItem, ItemError, ItemRejection, ParsedDecision
from domain.ledger import EntryContext, ExitPlan
from domain.risk import PlannedOrder, limit_price
from domain.trader import PausePolicy, PromptRecord, Trader, TraderError, make_cloid
from domain.values import (
    CloseReason,
    Liquidity,
    OrderIntent,
    OrderSide,
    Signal,
    SkipReason,
)

D = Decimal
T0 = datetime(2025, 10, 17, tzinfo=UTC)
COINS = ("BTC", "ETH")
POLICY = PausePolicy(window=6, min_cycles=3, max_failure_pct=D(34))
PROMPT = PromptRecord("decision/user.j2", "v1.0.0", "sha256:p", "v1.0.0", "prompt")
PRICES = {
    "BTC": st.decimals(min_value=90000, max_value=110000, places=1),
    "ETH": st.decimals(min_value=3000, max_value=5000, places=2),
}
SIZES = st.decimals(min_value=D("0.001"), max_value=D(2), places=3)
FEES = st.decimals(min_value=0, max_value=50, places=4)
TOLERANCE = D("1e-12")  # Decimal context rounding of average prices and split fees


def state(trader: Trader) -> dict[str, Any]:
    return {k: v for k, v in vars(trader).items() if k != "_pending_events"}


class TraderMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.app = TradingApp(env={"NOF0_PERSISTENCE_MODULE": "eventsourcing.popo"})
        self.trader = Trader.register(
            config_id="prop",
            name="Prop",
            model="m1",
            allocation=D(10000),
            coins=list(COINS),
            at=T0,
        )
        self.now = T0
        self.version = 0
        self.legs = 0
        self.snapshot_version = 0
        # The model.
        self.qty = {coin: D(0) for coin in COINS}
        self.marks = {"BTC": D(100000), "ETH": D(4000)}
        self.pending: dict[str, tuple[str, OrderSide, Decimal, Decimal]] = {}
        self.fees = D(0)
        self.funding = D(0)
        self.unattributed_funding = D(0)
        self.closed_net: list[Decimal] = []
        self.cycles = 0
        self.paused = False
        self.outcomes: list[int] = []
        self.commit(["Registered"], T0)

    # -- plumbing ---------------------------------------------------------------------------

    def tick(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now

    def commit(self, expected: list[str], at: datetime) -> list[Any]:
        """Save, and check the new events against what the model expects."""
        self.app.save(self.trader)
        events = list(self.app.events.get(self.trader.id, gt=self.version))
        self.version = self.trader.version
        assert [type(e).__name__ for e in events] == expected
        assert all(e.timestamp == at for e in events)
        for event in events:
            if isinstance(event, Trader.PositionClosed):
                # net = gross − fees + funding, fees = entry + exit (in that order: a fee
                # split by a partial fill has 28 digits, so the grouping decides the rounding).
                fees = event.entry_fees + event.exit_fees
                assert event.net_pnl == event.gross_pnl - fees + event.funding
                self.closed_net.append(event.net_pnl)
        return events

    def remember(self, failed: bool) -> bool:
        """Record an answer's outcome; whether the failure policy now pauses the trader."""
        self.outcomes = [*self.outcomes, int(failed)][-20:]
        recent = self.outcomes[-POLICY.window :]
        return (
            failed
            and not self.paused
            and len(recent) >= POLICY.min_cycles
            and D(sum(recent)) * 100 > POLICY.max_failure_pct * len(recent)
        )

    # -- decision cycles --------------------------------------------------------------------

    @rule()
    def request_decision(self) -> None:
        at = self.tick()
        if self.paused:
            with pytest.raises(TraderError):
                self.trader.request_decision(
                    as_of=at,
                    model="m1",
                    snapshot="{}",
                    snapshot_digest="d",
                    marks=dict(self.marks),
                    prompt=PROMPT,
                )
            self.commit([], at)
            return
        cycle_id = self.trader.request_decision(
            as_of=at,
            model="m1",
            snapshot="{}",
            snapshot_digest="d",
            marks=dict(self.marks),
            prompt=PROMPT,
        )
        self.cycles += 1
        assert cycle_id == f"prop#{self.cycles}"
        self.commit(["DecisionRequested"], at)

    @rule(
        holds=st.lists(st.sampled_from(COINS), max_size=2, unique=True),
        rejected=st.lists(st.sampled_from([*COINS, "PEPE"]), max_size=3),
    )
    def record_response(self, holds: list[str], rejected: list[str]) -> None:
        at = self.tick()
        parsed = ParsedDecision(
            items=tuple(DecisionItem(coin=c, signal=Signal.HOLD) for c in holds),
            rejections=tuple(
                ItemRejection(coin=c, error=ItemError.UNKNOWN_SIGNAL, field="signal", detail="x")
                for c in rejected
            ),
            cot_trace="thinking",
        )
        self.trader.record_response(
            cycle_id=self.trader.cycle_id(self.trader.cycle_no),
            model="m1",
            raw_text="{}",
            parsed=parsed,
            tokens_in=10,
            tokens_out=5,
            cost_usd=D("0.001"),
            latency_ms=7,
            at=at,
        )
        self.remember(failed=False)
        events = self.commit(["LLMResponded"] + ["RiskRejected"] * len(rejected), at)
        assert [e.coin for e in events[1:]] == rejected
        assert all(e.rule == "decision_schema" for e in events[1:])

    @rule()
    def record_failure(self) -> None:
        at = self.tick()
        self.trader.record_failure(
            cycle_id=self.trader.cycle_id(self.trader.cycle_no),
            model="m1",
            reason="invalid_json",
            detail="truncated",
            raw_text="{",
            latency_ms=9,
            at=at,
            policy=POLICY,
        )
        pauses = self.remember(failed=True)
        self.commit(["LLMFailed", "Paused"] if pauses else ["LLMFailed"], at)
        if pauses:
            note("the failure policy paused the trader")
        self.paused = self.paused or pauses

    @rule(reason=st.sampled_from(list(SkipReason)))
    def skip_cycle(self, reason: SkipReason) -> None:
        at = self.tick()
        self.trader.skip_cycle(reason=reason, detail="skipped", as_of=at)
        self.commit(["CycleSkipped"], at)

    @rule()
    def pause(self) -> None:
        at = self.tick()
        self.trader.pause("operator", "test", at)
        self.commit([] if self.paused else ["Paused"], at)
        self.paused = True

    @rule()
    def resume(self) -> None:
        at = self.tick()
        self.trader.resume("operator", at)
        self.commit(["Resumed"] if self.paused else [], at)
        if self.paused:
            self.outcomes = []
        self.paused = False

    # -- orders -----------------------------------------------------------------------------

    @rule(
        coin=st.sampled_from(COINS),
        buy=st.booleans(),
        size=SIZES,
        reason=st.sampled_from([CloseReason.SIGNAL, CloseReason.STOP, CloseReason.TARGET]),
    )
    def place(self, coin: str, buy: bool, size: Decimal, reason: CloseReason) -> None:
        at = self.tick()
        side = OrderSide.BUY if buy else OrderSide.SELL
        held = self.qty[coin]
        closing = held != 0 and (held > 0) != buy
        if closing:
            size = abs(held)
        mark = self.marks[coin]
        order = PlannedOrder(
            coin=coin,
            side=side,
            size=size,
            intent=OrderIntent.CLOSE
            if closing
            else (OrderIntent.OPEN_LONG if buy else OrderIntent.OPEN_SHORT),
            reduce_only=closing,
            leverage=3,
            limit_price=limit_price(mark, side, D(20)),
            reason=reason if closing else None,
            context=EntryContext(
                leverage=3,
                exit_plan=ExitPlan(mark * D("1.1"), mark * D("0.9"), "x")
                if buy
                else ExitPlan(mark * D("0.9"), mark * D("1.1"), "x"),
                confidence=D("0.7"),
                risk_usd=D(100),
            ),
        )
        cloid = make_cloid(self.trader.id, "prop#orders", str(self.legs))
        self.legs += 1
        assert self.trader.place(cycle_id="prop#orders", cloid=cloid, order=order, at=at) == cloid
        self.pending[cloid] = (coin, side, size, D(0))
        self.commit(["OrderPlaced"], at)
        # The same cloid cannot be placed twice while pending.
        with pytest.raises(TraderError):
            self.trader.place(cycle_id="prop#orders", cloid=cloid, order=order, at=at)

    def _fill(
        self,
        cloid: str,
        coin: str,
        side: OrderSide,
        size: Decimal,
        price: Decimal,
        fee: Decimal,
        final: bool,
        *,
        venue: bool = False,
        reason: CloseReason | None = None,
    ) -> None:
        at = self.tick()
        before = self.qty[coin]
        if venue:
            self.trader.record_fill(
                cloid,
                price=price,
                size=size,
                fee=fee,
                liquidity=Liquidity.TAKER,
                at=at,
                final=final,
                coin=coin,
                side=side,
                reason=reason,
            )
        else:
            self.trader.record_fill(
                cloid,
                price=price,
                size=size,
                fee=fee,
                liquidity=Liquidity.TAKER,
                at=at,
                final=final,
            )
        after = before + (size if side is OrderSide.BUY else -size)
        through_zero = before != 0 and (after == 0 or (after > 0) != (before > 0))
        self.qty[coin] = after
        self.marks[coin] = price
        self.fees += fee
        events = self.commit(
            ["OrderFilled", "PositionClosed"] if through_zero else ["OrderFilled"], at
        )
        if through_zero:
            note("a position closed")
            # The reason a caller states, else the order's, else "external".
            expected = (
                reason
                or (self.placed_reason(cloid) if cloid in self.pending else None)
                or CloseReason.EXTERNAL
            )
            assert events[1].reason == expected.value

    def placed_reason(self, cloid: str) -> CloseReason | None:
        placed = [
            e
            for e in self.app.events.get(self.trader.id)
            if isinstance(e, Trader.OrderPlaced) and e.cloid == cloid
        ]
        return CloseReason(placed[-1].reason) if placed[-1].reason else None

    @precondition(lambda self: bool(self.pending))
    @rule(data=st.data(), fee=FEES, final=st.booleans(), whole=st.booleans())
    def record_fill(self, data: st.DataObject, fee: Decimal, final: bool, whole: bool) -> None:
        cloid = data.draw(st.sampled_from(sorted(self.pending)))
        coin, side, size, filled = self.pending[cloid]
        remaining = size - filled
        part = (
            remaining
            if whole
            else data.draw(st.decimals(min_value=D("0.001"), max_value=remaining, places=3))
        )
        price = data.draw(PRICES[coin])
        self._fill(cloid, coin, side, part, price, fee, final)
        if final or filled + part >= size:
            del self.pending[cloid]
        else:
            self.pending[cloid] = (coin, side, size, filled + part)

    @rule(
        data=st.data(),
        coin=st.sampled_from(COINS),
        buy=st.booleans(),
        size=SIZES,
        fee=FEES,
        reason=st.sampled_from([None, CloseReason.LIQUIDATION, CloseReason.EXTERNAL]),
    )
    def venue_fill(
        self,
        data: st.DataObject,
        coin: str,
        buy: bool,
        size: Decimal,
        fee: Decimal,
        reason: CloseReason | None,
    ) -> None:
        """A fill the venue reports for an order we did not place (liquidation, manual)."""
        side = OrderSide.BUY if buy else OrderSide.SELL
        price = data.draw(PRICES[coin])
        cloid = f"0xvenue{self.legs}"
        self.legs += 1
        self._fill(cloid, coin, side, size, price, fee, True, venue=True, reason=reason)

    @rule(cloid=st.just("0xunknown"))
    def fill_of_an_unknown_order(self, cloid: str) -> None:
        with pytest.raises(TraderError):
            self.trader.record_fill(
                cloid, price=D(1), size=D(1), fee=D(0), liquidity=Liquidity.TAKER, at=self.now
            )
        self.commit([], self.now)

    @precondition(lambda self: bool(self.pending))
    @rule(data=st.data())
    def record_order_rejected(self, data: st.DataObject) -> None:
        at = self.tick()
        cloid = data.draw(st.sampled_from(sorted(self.pending)))
        self.trader.record_order_rejected(cloid, reason="venue", detail="refused", at=at)
        del self.pending[cloid]
        self.commit(["OrderRejected"], at)
        with pytest.raises(TraderError):
            self.trader.record_order_rejected(cloid, reason="venue", detail="again", at=at)

    @rule(coin=st.sampled_from(COINS), amount=st.decimals(min_value=-5, max_value=5, places=4))
    def settle_funding(self, coin: str, amount: Decimal) -> None:
        at = self.tick()
        self.trader.settle_funding(
            coin=coin, amount=amount, rate=D("0.0000125"), price=self.marks[coin], at=at
        )
        self.funding += amount
        if self.qty[coin] == 0:
            self.unattributed_funding += amount
        self.commit(["FundingSettled"], at)

    # -- invariants -------------------------------------------------------------------------

    @invariant()
    def replay_gives_the_same_state(self) -> None:
        replayed: Trader | None = None
        for event in self.app.events.get(self.trader.id):
            replayed = event.mutate(replayed)
        assert replayed is not None
        assert state(replayed) == state(self.trader)
        # Through the repository (which starts from the latest snapshot, if any).
        assert state(self.app.repository.get(self.trader.id)) == state(self.trader)

    @invariant()
    def a_snapshot_reloads_to_the_same_state(self) -> None:
        if self.snapshot_version != self.trader.version:  # one snapshot per version
            self.app.take_snapshot(self.trader.id)
            self.snapshot_version = self.trader.version
        assert self.app.snapshots is not None
        (snapshot,) = self.app.snapshots.get(self.trader.id, desc=True, limit=1)
        assert snapshot.originator_version == self.trader.version
        reloaded = self.app.repository.get(self.trader.id)
        assert state(reloaded) == state(self.trader)

    @invariant()
    def state_matches_the_model(self) -> None:
        trader = self.trader
        assert {c: p.qty for c, p in trader.positions.items()} == {
            c: q for c, q in self.qty.items() if q != 0
        }
        assert set(trader.pending) == set(self.pending)
        for cloid, (coin, side, size, filled) in self.pending.items():
            order = trader.pending[cloid]
            assert (order.coin, order.side, order.size, order.filled) == (coin, side, size, filled)
        assert trader.fees_paid == self.fees
        assert trader.funding == self.funding
        assert trader.cycle_no == self.cycles
        assert trader.paused is self.paused
        assert trader.num_trades == len(self.closed_net)

    @invariant()
    def the_ledger_adds_up(self) -> None:
        trader = self.trader
        account = trader.account(self.marks)
        unrealized = D(0)
        for coin, position in trader.positions.items():
            unrealized += position.unrealized(self.marks[coin])
        assert account.unrealized_pnl == unrealized
        assert account.equity == (
            trader.allocation + trader.realized_pnl - trader.fees_paid + trader.funding + unrealized
        )
        assert trader.num_wins + trader.num_losses == trader.num_trades
        assert trader.num_wins == sum(1 for net in self.closed_net if net > 0)
        # The realised result is exactly what closed trades and open positions account for.
        held = D(0)
        for position in trader.positions.values():
            held += (
                position.realized_gross
                - position.entry_fees
                - position.exit_fees
                + position.funding
            )
        split = sum(self.closed_net, D(0)) + held + self.unattributed_funding
        assert abs(trader.realized_pnl - trader.fees_paid + trader.funding - split) <= TOLERANCE


TraderMachine.TestCase.settings = settings(stateful_step_count=40)
TestTraderReplay = TraderMachine.TestCase
