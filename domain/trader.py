"""The Trader aggregate: one virtual sub-account and everything that happened to it.

Every command takes the time it happens at (``at`` / ``as_of``) and stamps its events with
it, so the same inputs always give the same events: the domain reads no clock.
Commands validate first and then trigger events; each event's ``apply`` is a pure state
change that also runs when the aggregate is rebuilt from the store.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.decision import ItemRejection, ParsedDecision
from domain.ledger import (
    AccountSnapshot,
    EntryContext,
    ExitPlan,
    Position,
    add_return,
    apply_fill,
    sharpe_ratio,
    value_account,
)
from domain.risk import PlannedOrder, Rejection, RiskRule
from domain.values import ZERO, CloseReason, Liquidity, OrderIntent, OrderSide, SkipReason

#: Entry times kept for the pace throttle (new positions per hour).
RECENT_ENTRIES = 100
#: Cycle outcomes kept for the failure-rate pause (the longest window configurable).
RECENT_WINDOW = 1000
#: Venue fill and funding ids remembered to record each exactly once (far more than a
#: reconciliation window can hold).
SEEN_IDS = 2000


@lru_cache(maxsize=4096)  # asked for every trader on every reconciliation pass
def trader_id(config_id: str) -> UUID:
    """Aggregate id of a configured trader: stable across restarts and machines."""
    return uuid5(NAMESPACE_URL, f"nof0/trader/{config_id}")


def make_cloid(trader: UUID, cycle_id: str, leg: str) -> str:
    """Hyperliquid-style client order id (16 bytes hex), deterministic per order leg,
    so that a retry of the same leg can never become a second order."""
    digest = hashlib.sha256(f"{trader}|{cycle_id}|{leg}".encode()).hexdigest()
    return "0x" + digest[:32]


@dataclass(frozen=True)
class PendingOrder:
    cloid: str
    cycle_id: str
    coin: str
    side: OrderSide
    size: Decimal
    intent: OrderIntent
    reduce_only: bool
    leverage: int
    limit_price: Decimal
    reason: CloseReason | None
    context: EntryContext
    placed_at: datetime
    filled: Decimal = ZERO


@dataclass(frozen=True)
class Protection:
    """A reduce-only stop or take-profit trigger order that covers a position on the venue."""

    cloid: str
    coin: str
    kind: CloseReason  # STOP or TARGET
    side: OrderSide
    size: Decimal
    trigger_price: Decimal
    limit_price: Decimal  # the worst price once triggered
    generation: int
    placed_at: datetime
    oid: int | None = None  # the venue's order id, once it confirmed the order


@dataclass(frozen=True)
class PausePolicy:
    """Pause when more than ``max_failure_pct`` of the last ``window`` cycles failed
    (once at least ``min_cycles`` have run)."""

    window: int = 20
    min_cycles: int = 10
    max_failure_pct: Decimal = Decimal(10)


@dataclass(frozen=True)
class PromptRecord:
    template: str
    version: str
    digest: str
    schema_version: str
    user_prompt: str


class TraderError(Exception):
    """A command that the trader's state does not allow."""


class Trader(Aggregate):
    TOPIC = "nof0/Trader"
    class_version = 3  # v2: venue protections, fill/funding de-duplication; v3: controls

    config_id: str
    name: str
    model: str
    allocation: Decimal
    coins: list[str]
    cycle_no: int
    last_cycle_at: datetime | None
    open_cycle: str | None
    positions: dict[str, Position]
    pending: dict[str, PendingOrder]
    realized_pnl: Decimal
    fees_paid: Decimal
    funding: Decimal
    num_trades: int
    num_wins: int
    num_losses: int
    paused: bool
    pause_reason: str
    recent_outcomes: list[int]
    marks: dict[str, Decimal]  # the newest recorded price of each coin
    hour: int  # hourly marker (since registration) of the newest valuation
    hour_base: Decimal  # equity at the end of the previous completed hour
    last_equity: Decimal
    returns_n: int  # hourly returns: count, mean and M2 (Welford)
    returns_mean: float
    returns_m2: float
    protections: dict[str, Protection]  # by cloid
    protection_gen: dict[str, int]  # "COIN:kind" → generation of the newest protection
    fill_ids: list[str]  # venue fills recorded lately (for exactly-once recording)
    funding_ids: list[str]
    last_fill_at: datetime | None
    last_funding_at: datetime | None
    closed_at: dict[str, datetime]  # when each coin's last position closed
    flatten_requested: bool  # an operator asked to flatten; the engine carries it out
    last_control: dict[str, str] | None  # the newest operator action (action, reason, by, at)
    day: str  # the UTC date of the newest valuation (YYYY-MM-DD)
    day_base: Decimal  # the equity when that day began
    peak_equity: Decimal  # the highest equity recorded
    breakers: dict[str, str]  # tripped breaker rule → the detail of its trip
    recent_entries: list[datetime]  # when entries were placed lately (pace throttle)
    loss_streak: int  # losing trades in a row
    model_cost: Decimal  # what its model calls cost (USD)
    reallocated: bool  # its allocation is set by performance, not by the configuration
    last_loss_at: datetime | None

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["protections"] = {}
        state["protection_gen"] = {}
        state["fill_ids"] = []
        state["funding_ids"] = []
        state["last_fill_at"] = None
        state["last_funding_at"] = None
        state["closed_at"] = {}

    @staticmethod
    def upcast_v2_v3(state: dict[str, Any]) -> None:
        state["flatten_requested"] = False
        state["last_control"] = None
        equity = state.get("last_equity", ZERO)
        state["day"] = ""
        state["day_base"] = equity
        state["peak_equity"] = equity
        state["breakers"] = {}
        state["recent_entries"] = []
        state["loss_streak"] = 0
        state["model_cost"] = ZERO
        state["reallocated"] = False
        state["last_loss_at"] = None

    class Event(Aggregate.Event):
        TOPIC = "nof0/Trader.Event"

    class Created(Aggregate.Created):
        TOPIC = "nof0/Trader.Created"

    class Registered(Aggregate.Created):
        TOPIC = "nof0/Trader.Registered"
        config_id: str
        name: str
        model: str
        allocation: Decimal
        coins: list[str]

        def apply(self, aggregate: Any) -> None:
            trader: Trader = aggregate
            trader.config_id = self.config_id
            trader.name = self.name
            trader.model = self.model
            trader.allocation = self.allocation
            trader.coins = list(self.coins)
            trader.cycle_no = 0
            trader.last_cycle_at = None
            trader.open_cycle = None
            trader.positions = {}
            trader.pending = {}
            trader.realized_pnl = ZERO
            trader.fees_paid = ZERO
            trader.funding = ZERO
            trader.num_trades = 0
            trader.num_wins = 0
            trader.num_losses = 0
            trader.paused = False
            trader.pause_reason = ""
            trader.recent_outcomes = []
            trader.marks = {}
            trader.hour = -1
            trader.hour_base = self.allocation
            trader.last_equity = self.allocation
            trader.returns_n, trader.returns_mean, trader.returns_m2 = 0, 0.0, 0.0
            Trader.upcast_v1_v2(trader.__dict__)
            Trader.upcast_v2_v3(trader.__dict__)

    class CapitalAllocated(Aggregate.Event):
        TOPIC = "nof0/Trader.CapitalAllocated"
        allocation: Decimal
        previous: Decimal

        def apply(self, aggregate: Any) -> None:
            _hour_turns(aggregate, self.timestamp)
            # Capital moved in or out is not a gain or a loss: the bases move with it.
            delta = self.allocation - self.previous
            aggregate.allocation = self.allocation
            aggregate.hour_base += delta
            aggregate.day_base += delta
            aggregate.peak_equity += delta
            _revalue(aggregate)

    class CapitalReallocated(Aggregate.Event):
        """Capital moved by ``allocation_strategy: performance_based``, with the inputs that
        decided it (so a replay shows why)."""

        TOPIC = "nof0/Trader.CapitalReallocated"
        allocation: Decimal
        previous: Decimal
        inputs: dict[str, str]

        def apply(self, aggregate: Any) -> None:
            _hour_turns(aggregate, self.timestamp)
            delta = self.allocation - self.previous
            aggregate.allocation = self.allocation
            aggregate.hour_base += delta
            aggregate.day_base += delta
            aggregate.peak_equity += delta
            aggregate.reallocated = True
            _revalue(aggregate)

    class DecisionRequested(Aggregate.Event):
        TOPIC = "nof0/Trader.DecisionRequested"
        cycle_id: str
        cycle_no: int
        as_of: datetime
        model: str
        snapshot: str  # canonical JSON of the market snapshot the prompt was rendered from
        snapshot_digest: str
        marks: dict[str, Decimal]
        prompt_template: str
        prompt_version: str
        prompt_digest: str
        schema_version: str
        user_prompt: str

        def apply(self, aggregate: Any) -> None:
            _hour_turns(aggregate, self.timestamp)
            aggregate.cycle_no = self.cycle_no
            aggregate.last_cycle_at = self.as_of
            aggregate.open_cycle = self.cycle_id
            aggregate.marks.update(self.marks)
            _revalue(aggregate)

    class LLMResponded(Aggregate.Event):
        TOPIC = "nof0/Trader.LLMResponded"
        class_version = 2
        cycle_id: str
        model: str
        raw_text: str
        decisions: list[dict[str, Any]]
        cot_trace: str
        tokens_in: int
        tokens_out: int
        cost_usd: Decimal
        latency_ms: int
        cached: bool  # answered from the prompt digest cache (v2)

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["cached"] = False

        def apply(self, aggregate: Any) -> None:
            aggregate.open_cycle = None
            aggregate.model_cost += self.cost_usd
            _remember_outcome(aggregate, ok=True)

    class ModelAttemptFailed(Aggregate.Event):
        """One model failed within a cycle and the next one is tried (the cycle goes on)."""

        TOPIC = "nof0/Trader.ModelAttemptFailed"
        cycle_id: str
        model: str
        reason: str
        detail: str
        raw_text: str
        latency_ms: int

    class LLMFailed(Aggregate.Event):
        TOPIC = "nof0/Trader.LLMFailed"
        cycle_id: str
        model: str
        reason: str
        detail: str
        raw_text: str
        latency_ms: int

        def apply(self, aggregate: Any) -> None:
            aggregate.open_cycle = None
            _remember_outcome(aggregate, ok=False)

    class RiskRejected(Aggregate.Event):
        TOPIC = "nof0/Trader.RiskRejected"
        cycle_id: str
        coin: str
        signal: str
        rule: str
        detail: str
        values: dict[str, str]

    class OrderPlaced(Aggregate.Event):
        TOPIC = "nof0/Trader.OrderPlaced"
        cycle_id: str
        cloid: str
        coin: str
        side: str
        size: Decimal
        intent: str
        reduce_only: bool
        leverage: int
        limit_price: Decimal
        reason: str | None
        exit_plan: dict[str, Any] | None
        confidence: Decimal | None
        risk_usd: Decimal | None
        justification: str

        def apply(self, aggregate: Any) -> None:
            if self.intent != OrderIntent.CLOSE.value:
                recent = [*aggregate.recent_entries, self.timestamp]
                aggregate.recent_entries = recent[-RECENT_ENTRIES:]
            aggregate.pending[self.cloid] = PendingOrder(
                cloid=self.cloid,
                cycle_id=self.cycle_id,
                coin=self.coin,
                side=OrderSide(self.side),
                size=self.size,
                intent=OrderIntent(self.intent),
                reduce_only=self.reduce_only,
                leverage=self.leverage,
                limit_price=self.limit_price,
                reason=CloseReason(self.reason) if self.reason else None,
                context=EntryContext(
                    leverage=self.leverage,
                    exit_plan=ExitPlan.from_record(self.exit_plan),
                    confidence=self.confidence,
                    risk_usd=self.risk_usd,
                    justification=self.justification,
                ),
                placed_at=self.timestamp,
            )

    class OrderFilled(Aggregate.Event):
        TOPIC = "nof0/Trader.OrderFilled"
        class_version = 2
        cloid: str
        coin: str
        side: str
        size: Decimal
        price: Decimal
        fee: Decimal
        liquidity: str
        final: bool
        fill_id: str  # the venue's trade id ("" before v2)
        oid: int | None  # the venue's order id (None before v2)

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["fill_id"] = ""
            state["oid"] = None

        def apply(self, aggregate: Any) -> None:
            trader: Trader = aggregate
            _hour_turns(trader, self.timestamp)
            if self.fill_id:
                trader.fill_ids = [*trader.fill_ids[-(SEEN_IDS - 1) :], self.fill_id]
            if trader.last_fill_at is None or self.timestamp > trader.last_fill_at:
                trader.last_fill_at = self.timestamp
            guard = trader.protections.get(self.cloid)
            if guard is not None:
                left = guard.size - self.size
                if left > 0:
                    trader.protections[self.cloid] = replace(guard, size=left)
                else:
                    del trader.protections[self.cloid]
            pending = trader.pending.get(self.cloid)
            context = pending.context if pending else EntryContext(leverage=1)
            effect = apply_fill(
                trader.positions.get(self.coin),
                coin=self.coin,
                side=OrderSide(self.side),
                size=self.size,
                price=self.price,
                fee=self.fee,
                at=self.timestamp,
                cloid=self.cloid,
                context=context,
            )
            if effect.position is None:
                trader.positions.pop(self.coin, None)
            else:
                trader.positions[self.coin] = effect.position
            trader.realized_pnl += effect.realized_gross
            trader.fees_paid += self.fee
            if pending is not None:
                filled = pending.filled + self.size
                if self.final or filled >= pending.size:
                    del trader.pending[self.cloid]
                else:
                    trader.pending[self.cloid] = replace(pending, filled=filled)
            trader.marks.setdefault(self.coin, self.price)
            _revalue(trader)

    class OrderRejected(Aggregate.Event):
        TOPIC = "nof0/Trader.OrderRejected"
        cloid: str
        coin: str
        reason: str
        detail: str

        def apply(self, aggregate: Any) -> None:
            aggregate.pending.pop(self.cloid, None)

    class OrderCanceled(Aggregate.Event):
        """The venue finished an order without filling it completely (an IOC remainder, a
        cancel); what did fill was recorded by ``OrderFilled`` before this."""

        TOPIC = "nof0/Trader.OrderCanceled"
        class_version = 2
        cloid: str
        coin: str
        reason: str
        detail: str  # v2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["detail"] = ""

        def apply(self, aggregate: Any) -> None:
            aggregate.pending.pop(self.cloid, None)

    class PositionClosed(Aggregate.Event):
        """A position went back to zero. Carries the whole trade, net of fees and funding."""

        TOPIC = "nof0/Trader.PositionClosed"
        coin: str
        reason: str
        side: str
        size: Decimal
        entry_price: Decimal
        exit_price: Decimal
        opened_at: datetime
        closed_at: datetime
        leverage: int
        gross_pnl: Decimal
        entry_fees: Decimal
        exit_fees: Decimal
        funding: Decimal
        net_pnl: Decimal
        entry_cloid: str
        exit_cloid: str
        confidence: Decimal | None
        exit_plan: dict[str, Any] | None

        def apply(self, aggregate: Any) -> None:
            aggregate.closed_at[self.coin] = self.closed_at
            aggregate.num_trades += 1
            if self.net_pnl > 0:
                aggregate.num_wins += 1
                aggregate.loss_streak = 0
            else:
                aggregate.num_losses += 1
                aggregate.loss_streak += 1
                aggregate.last_loss_at = self.closed_at

    class FundingSettled(Aggregate.Event):
        TOPIC = "nof0/Trader.FundingSettled"
        class_version = 2
        coin: str
        amount: Decimal  # received (+) or paid (−)
        rate: Decimal
        price: Decimal
        funding_id: str  # the venue's id of the payment ("" before v2)

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["funding_id"] = ""

        def apply(self, aggregate: Any) -> None:
            trader: Trader = aggregate
            _hour_turns(trader, self.timestamp)
            if self.funding_id:
                trader.funding_ids = [*trader.funding_ids[-(SEEN_IDS - 1) :], self.funding_id]
            if trader.last_funding_at is None or self.timestamp > trader.last_funding_at:
                trader.last_funding_at = self.timestamp
            trader.funding += self.amount
            position = trader.positions.get(self.coin)
            # A payment reported late belongs to the position it was paid on, not to one
            # opened since (the trader's total counts it either way).
            if position is not None and position.opened_at <= self.timestamp:
                trader.positions[self.coin] = replace(
                    position, funding=position.funding + self.amount
                )
            _revalue(trader)

    class ProtectionPlaced(Aggregate.Event):
        """A stop or take-profit for a position is about to be sent (saved first, so a
        restart finds it and looks it up by cloid instead of sending a second one)."""

        TOPIC = "nof0/Trader.ProtectionPlaced"
        cloid: str
        coin: str
        kind: str  # "stop" | "target"
        side: str
        size: Decimal
        trigger_price: Decimal
        limit_price: Decimal
        generation: int
        replaces: str | None  # the cloid of the order it resizes (a modify), if any

        def apply(self, aggregate: Any) -> None:
            # A replaced order stays known until the venue confirms the replacement (an
            # ambiguous modify can leave either one live).
            trader: Trader = aggregate
            trader.protections[self.cloid] = Protection(
                cloid=self.cloid,
                coin=self.coin,
                kind=CloseReason(self.kind),
                side=OrderSide(self.side),
                size=self.size,
                trigger_price=self.trigger_price,
                limit_price=self.limit_price,
                generation=self.generation,
                placed_at=self.timestamp,
            )
            trader.protection_gen[f"{self.coin}:{self.kind}"] = self.generation

    class ProtectionConfirmed(Aggregate.Event):
        TOPIC = "nof0/Trader.ProtectionConfirmed"
        cloid: str
        oid: int

        def apply(self, aggregate: Any) -> None:
            guard = aggregate.protections.get(self.cloid)
            if guard is not None:
                aggregate.protections[self.cloid] = replace(guard, oid=self.oid)

    class ProtectionCanceled(Aggregate.Event):
        """A protection is gone: canceled by us (position closed, replaced), refused by the
        venue, or found missing on the venue."""

        TOPIC = "nof0/Trader.ProtectionCanceled"
        cloid: str
        coin: str
        kind: str
        reason: str
        detail: str

        def apply(self, aggregate: Any) -> None:
            aggregate.protections.pop(self.cloid, None)

    class CycleSkipped(Aggregate.Event):
        TOPIC = "nof0/Trader.CycleSkipped"
        cycle_no: int
        as_of: datetime
        reason: str
        detail: str

        def apply(self, aggregate: Any) -> None:
            aggregate.last_cycle_at = self.as_of

    class Paused(Aggregate.Event):
        TOPIC = "nof0/Trader.Paused"
        reason: str
        detail: str

        def apply(self, aggregate: Any) -> None:
            aggregate.paused = True
            aggregate.pause_reason = f"{self.reason}: {self.detail}" if self.detail else self.reason

    class Resumed(Aggregate.Event):
        TOPIC = "nof0/Trader.Resumed"
        reason: str

        def apply(self, aggregate: Any) -> None:
            aggregate.paused = False
            aggregate.pause_reason = ""
            aggregate.recent_outcomes = []

    class VenueSwitched(Aggregate.Event):
        """The trader's decisions moved to the in-process simulator (``to="paper"``, made
        by its paper twin) because its venue was failing, or back (``to="venue"``) after the
        venue passed its health check and was reconciled. Positions on the venue are left
        as they are, protected by their stops and targets there."""

        TOPIC = "nof0/Trader.VenueSwitched"
        venue: str
        to: str  # "paper" or "venue"
        failure_pct: Decimal  # of the venue's requests in the window
        requests: int
        paper_trader: str  # the config id of the paper twin

        def apply(self, aggregate: Any) -> None:
            pass  # the arena holds the binding; the event is the record of it

    class OperatorActed(Aggregate.Event):
        """An operator's control action, with the reason given and which credential asked
        (a token id or the command line's user and host, never a secret)."""

        TOPIC = "nof0/Trader.OperatorActed"
        action: str  # a ControlAction value
        reason: str
        credential: str

        def apply(self, aggregate: Any) -> None:
            aggregate.last_control = {
                "action": self.action,
                "reason": self.reason,
                "credential": self.credential,
                "at": self.timestamp.isoformat(),
            }
            if self.action in ("flatten", "kill_flatten"):
                aggregate.flatten_requested = True

    class Flattened(Aggregate.Event):
        """A flatten request was carried out: no position, no entry, no protection left."""

        TOPIC = "nof0/Trader.Flattened"
        closed: list[str]  # the coins closed at market
        canceled: int  # entries and protections canceled

        def apply(self, aggregate: Any) -> None:
            aggregate.flatten_requested = False

    class BreakerTripped(Aggregate.Event):
        """A loss breaker tripped: new entries are refused while it holds (once per trip)."""

        TOPIC = "nof0/Trader.BreakerTripped"
        rule: str  # a BreakerRule value
        detail: str
        action: str  # a TripAction value

        def apply(self, aggregate: Any) -> None:
            # Keyed by the UTC day of the trip: a daily limit holds until the day is over.
            day = self.timestamp.date().isoformat()
            aggregate.breakers = {**aggregate.breakers, self.rule: f"{day} {self.detail}"}

    class BreakerCleared(Aggregate.Event):
        TOPIC = "nof0/Trader.BreakerCleared"
        rule: str
        reason: str  # "new_day", "recovered", "operator"

        def apply(self, aggregate: Any) -> None:
            aggregate.breakers = {k: v for k, v in aggregate.breakers.items() if k != self.rule}

    class ModelSwitched(Aggregate.Event):
        TOPIC = "nof0/Trader.ModelSwitched"
        from_model: str
        to_model: str
        reason: str

        def apply(self, aggregate: Any) -> None:
            aggregate.model = self.to_model

    def __init__(self) -> None:
        """State is set by :class:`Registered`."""

    # -- creation -------------------------------------------------------------------------

    @staticmethod
    def create_id(config_id: str) -> UUID:
        return trader_id(config_id)

    @classmethod
    def register(
        cls,
        *,
        config_id: str,
        name: str,
        model: str,
        allocation: Decimal,
        coins: list[str],
        at: datetime,
    ) -> Trader:
        if allocation < 0:
            raise TraderError(f"allocation must not be negative, got {allocation}")
        return cls._create(
            cls.Registered,
            id=trader_id(config_id),
            config_id=config_id,
            name=name,
            model=model,
            allocation=allocation,
            coins=list(coins),
            timestamp=at,
        )

    # -- queries --------------------------------------------------------------------------

    def account(self, marks: dict[str, Decimal]) -> AccountSnapshot:
        return value_account(
            allocation=self.allocation,
            realized_pnl=self.realized_pnl,
            fees_paid=self.fees_paid,
            funding=self.funding,
            positions=self.positions,
            marks=marks,
        )

    def sharpe(self) -> float:
        """Sharpe ratio of completed hourly returns (as the account-totals view shows it)."""
        return sharpe_ratio((self.returns_n, self.returns_mean, self.returns_m2))

    def cycle_id(self, cycle_no: int) -> str:
        return f"{self.config_id}#{cycle_no}"

    def exit_cloid(self, position: Position, reason: CloseReason) -> str:
        """Protective closes of one position share one id per reason: retried, never doubled."""
        return make_cloid(self.id, f"exit:{position.entry_cloid}", reason.value)

    # -- commands -------------------------------------------------------------------------

    def allocate(self, allocation: Decimal, at: datetime) -> None:
        if allocation != self.allocation:
            self.trigger_event(
                self.CapitalAllocated, allocation=allocation, previous=self.allocation, timestamp=at
            )

    def reallocate(self, allocation: Decimal, inputs: dict[str, str], at: datetime) -> None:
        if allocation != self.allocation:
            self.trigger_event(
                self.CapitalReallocated,
                allocation=allocation,
                previous=self.allocation,
                inputs=inputs,
                timestamp=at,
            )

    def request_decision(
        self,
        *,
        as_of: datetime,
        model: str,
        snapshot: str,
        snapshot_digest: str,
        marks: dict[str, Decimal],
        prompt: PromptRecord,
    ) -> str:
        if self.paused:
            raise TraderError(f"trader {self.config_id} is paused ({self.pause_reason})")
        cycle_no = self.cycle_no + 1
        cycle_id = self.cycle_id(cycle_no)
        self.trigger_event(
            self.DecisionRequested,
            cycle_id=cycle_id,
            cycle_no=cycle_no,
            as_of=as_of,
            model=model,
            snapshot=snapshot,
            snapshot_digest=snapshot_digest,
            marks=dict(marks),
            prompt_template=prompt.template,
            prompt_version=prompt.version,
            prompt_digest=prompt.digest,
            schema_version=prompt.schema_version,
            user_prompt=prompt.user_prompt,
            timestamp=as_of,
        )
        return cycle_id

    def record_response(
        self,
        *,
        cycle_id: str,
        model: str,
        raw_text: str,
        parsed: ParsedDecision,
        tokens_in: int,
        tokens_out: int,
        cost_usd: Decimal,
        latency_ms: int,
        at: datetime,
        cached: bool = False,
    ) -> None:
        self.trigger_event(
            self.LLMResponded,
            cycle_id=cycle_id,
            model=model,
            raw_text=raw_text,
            decisions=[item.to_record() for item in parsed.items],
            cot_trace=parsed.cot_trace,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            cost_usd=cost_usd,
            latency_ms=latency_ms,
            cached=cached,
            timestamp=at,
        )
        for rejection in parsed.rejections:
            self._reject_item(cycle_id, rejection, at)

    def _reject_item(self, cycle_id: str, rejection: ItemRejection, at: datetime) -> None:
        self.trigger_event(
            self.RiskRejected,
            cycle_id=cycle_id,
            coin=rejection.coin,
            signal="",
            rule=RiskRule.DECISION_SCHEMA.value,
            detail=f"{rejection.error.value}: {rejection.detail}",
            values={"field": rejection.field, "error": rejection.error.value},
            timestamp=at,
        )

    def record_failure(
        self,
        *,
        cycle_id: str,
        model: str,
        reason: str,
        detail: str,
        raw_text: str,
        latency_ms: int,
        at: datetime,
        policy: PausePolicy,
    ) -> None:
        self.trigger_event(
            self.LLMFailed,
            cycle_id=cycle_id,
            model=model,
            reason=reason,
            detail=detail,
            raw_text=raw_text,
            latency_ms=latency_ms,
            timestamp=at,
        )
        recent = self.recent_outcomes[-policy.window :]
        failures = sum(recent)
        if (
            not self.paused
            and len(recent) >= policy.min_cycles
            and Decimal(failures) * 100 > policy.max_failure_pct * len(recent)
        ):
            self.pause(
                "failure_rate",
                f"{failures} of the last {len(recent)} cycles failed "
                f"(limit {policy.max_failure_pct}%)",
                at,
            )

    def record_attempt_failure(
        self,
        *,
        cycle_id: str,
        model: str,
        reason: str,
        detail: str,
        raw_text: str,
        latency_ms: int,
        at: datetime,
    ) -> None:
        """A model failed but another is tried in the same cycle (not a cycle failure)."""
        self.trigger_event(
            self.ModelAttemptFailed,
            cycle_id=cycle_id,
            model=model,
            reason=reason,
            detail=detail,
            raw_text=raw_text,
            latency_ms=latency_ms,
            timestamp=at,
        )

    def reject(self, cycle_id: str, rejection: Rejection, at: datetime) -> None:
        self.trigger_event(
            self.RiskRejected,
            cycle_id=cycle_id,
            coin=rejection.coin,
            signal=rejection.signal,
            rule=rejection.rule,
            detail=rejection.detail,
            values=dict(rejection.values),
            timestamp=at,
        )

    def place(self, *, cycle_id: str, cloid: str, order: PlannedOrder, at: datetime) -> str:
        if cloid in self.pending:
            raise TraderError(f"order {cloid} is already pending")
        plan = order.context.exit_plan
        self.trigger_event(
            self.OrderPlaced,
            cycle_id=cycle_id,
            cloid=cloid,
            coin=order.coin,
            side=order.side.value,
            size=order.size,
            intent=order.intent.value,
            reduce_only=order.reduce_only,
            leverage=order.leverage,
            limit_price=order.limit_price,
            reason=order.reason.value if order.reason else None,
            exit_plan=plan.to_record() if plan else None,
            confidence=order.context.confidence,
            risk_usd=order.context.risk_usd,
            justification=order.context.justification,
            timestamp=at,
        )
        return cloid

    def record_fill(
        self,
        cloid: str,
        *,
        price: Decimal,
        size: Decimal,
        fee: Decimal,
        liquidity: Liquidity,
        at: datetime,
        final: bool = True,
        coin: str | None = None,
        side: OrderSide | None = None,
        reason: CloseReason | None = None,
        fill_id: str = "",
        oid: int | None = None,
    ) -> bool:
        """Record a fill of one of our orders (or, with ``coin`` and ``side``, one the venue
        reports that we did not place: a protection, a liquidation, a manual trade).

        A fill whose venue ``fill_id`` was recorded before is ignored (returns False)."""
        if fill_id and fill_id in self.fill_ids:
            return False
        pending = self.pending.get(cloid)
        guard = self.protections.get(cloid)
        if pending is None and (coin is None or side is None):
            raise TraderError(f"no pending order {cloid}")
        fill_coin = pending.coin if pending else coin
        fill_side = pending.side if pending else side
        assert fill_coin is not None
        assert fill_side is not None
        before = self.positions.get(fill_coin)
        self.trigger_event(
            self.OrderFilled,
            cloid=cloid,
            coin=fill_coin,
            side=fill_side.value,
            size=size,
            price=price,
            fee=fee,
            liquidity=liquidity.value,
            final=final,
            fill_id=fill_id,
            oid=oid,
            timestamp=at,
        )
        if before is None:
            return True
        after = self.positions.get(fill_coin)
        if after is not None and after.entry_cloid == before.entry_cloid:
            return True
        # The position went through zero: emit the closed trade.
        effect = apply_fill(
            before,
            coin=fill_coin,
            side=fill_side,
            size=size,
            price=price,
            fee=fee,
            at=at,
            cloid=cloid,
            context=pending.context if pending else before.context,
        )
        trade = effect.closed
        assert trade is not None
        close_reason = (
            reason
            or (pending.reason if pending else None)
            or (guard.kind if guard else None)
            or CloseReason.EXTERNAL
        )
        plan = trade.context.exit_plan
        self.trigger_event(
            self.PositionClosed,
            coin=trade.coin,
            reason=close_reason.value,
            side=trade.side.value,
            size=trade.size,
            entry_price=trade.entry_price,
            exit_price=trade.exit_price,
            opened_at=trade.opened_at,
            closed_at=trade.closed_at,
            leverage=trade.leverage,
            gross_pnl=trade.gross_pnl,
            entry_fees=trade.entry_fees,
            exit_fees=trade.exit_fees,
            funding=trade.funding,
            net_pnl=trade.net_pnl,
            entry_cloid=trade.entry_cloid,
            exit_cloid=trade.exit_cloid,
            confidence=trade.context.confidence,
            exit_plan=plan.to_record() if plan else None,
            timestamp=at,
        )
        return True

    def record_order_canceled(self, cloid: str, *, reason: str, detail: str, at: datetime) -> None:
        """The venue finished a pending order without (completely) filling it."""
        pending = self.pending.get(cloid)
        if pending is None:
            raise TraderError(f"no pending order {cloid}")
        self.trigger_event(
            self.OrderCanceled,
            cloid=cloid,
            coin=pending.coin,
            reason=reason,
            detail=detail,
            timestamp=at,
        )

    def record_order_rejected(self, cloid: str, *, reason: str, detail: str, at: datetime) -> None:
        pending = self.pending.get(cloid)
        if pending is None:
            raise TraderError(f"no pending order {cloid}")
        self.trigger_event(
            self.OrderRejected,
            cloid=cloid,
            coin=pending.coin,
            reason=reason,
            detail=detail,
            timestamp=at,
        )

    def settle_funding(
        self,
        *,
        coin: str,
        amount: Decimal,
        rate: Decimal,
        price: Decimal,
        at: datetime,
        funding_id: str = "",
    ) -> bool:
        """Record a funding payment; one the venue reported before is ignored (False)."""
        if funding_id and funding_id in self.funding_ids:
            return False
        self.trigger_event(
            self.FundingSettled,
            coin=coin,
            amount=amount,
            rate=rate,
            price=price,
            funding_id=funding_id,
            timestamp=at,
        )
        return True

    # -- protections ----------------------------------------------------------------------

    def protection_cloid(self, coin: str, kind: CloseReason, generation: int) -> str:
        return make_cloid(self.id, f"protect:{coin}:{kind.value}", str(generation))

    def protect(
        self,
        *,
        coin: str,
        kind: CloseReason,
        size: Decimal,
        trigger_price: Decimal,
        limit_price: Decimal,
        at: datetime,
        replaces: str | None = None,
    ) -> str:
        """Record a stop/target to be sent for the open ``coin`` position; return its cloid."""
        if kind not in (CloseReason.STOP, CloseReason.TARGET):
            raise TraderError(f"a protection is a stop or a target, not {kind.value}")
        position = self.positions.get(coin)
        if position is None:
            raise TraderError(f"no open {coin} position to protect")
        if size <= 0 or size > position.size:
            raise TraderError(f"protection size {size} must be in (0, {position.size}]")
        if replaces is not None and replaces not in self.protections:
            raise TraderError(f"no protection {replaces} to replace")
        generation = self.protection_gen.get(f"{coin}:{kind.value}", 0) + 1
        cloid = self.protection_cloid(coin, kind, generation)
        self.trigger_event(
            self.ProtectionPlaced,
            cloid=cloid,
            coin=coin,
            kind=kind.value,
            side=(OrderSide.SELL if position.qty > 0 else OrderSide.BUY).value,
            size=size,
            trigger_price=trigger_price,
            limit_price=limit_price,
            generation=generation,
            replaces=replaces,
            timestamp=at,
        )
        return cloid

    def confirm_protection(self, cloid: str, oid: int, at: datetime) -> None:
        guard = self.protections.get(cloid)
        if guard is not None and guard.oid != oid:
            self.trigger_event(self.ProtectionConfirmed, cloid=cloid, oid=oid, timestamp=at)

    def drop_protection(self, cloid: str, *, reason: str, detail: str, at: datetime) -> None:
        guard = self.protections.get(cloid)
        if guard is None:
            raise TraderError(f"no protection {cloid}")
        self.trigger_event(
            self.ProtectionCanceled,
            cloid=cloid,
            coin=guard.coin,
            kind=guard.kind.value,
            reason=reason,
            detail=detail,
            timestamp=at,
        )

    def skip_cycle(self, *, reason: SkipReason, detail: str, as_of: datetime) -> None:
        self.trigger_event(
            self.CycleSkipped,
            cycle_no=self.cycle_no,
            as_of=as_of,
            reason=reason.value,
            detail=detail,
            timestamp=as_of,
        )

    def pause(self, reason: str, detail: str, at: datetime) -> None:
        if not self.paused:
            self.trigger_event(self.Paused, reason=reason, detail=detail, timestamp=at)

    def resume(self, reason: str, at: datetime) -> None:
        if self.paused:
            self.trigger_event(self.Resumed, reason=reason, timestamp=at)

    def switch_venue(
        self,
        *,
        venue: str,
        to: str,
        failure_pct: Decimal,
        requests: int,
        paper_trader: str,
        at: datetime,
    ) -> None:
        if to not in ("paper", "venue"):
            raise TraderError(f"a venue switch goes to 'paper' or 'venue', not {to!r}")
        self.trigger_event(
            self.VenueSwitched,
            venue=venue,
            to=to,
            failure_pct=failure_pct,
            requests=requests,
            paper_trader=paper_trader,
            timestamp=at,
        )

    def record_control(self, action: str, reason: str, credential: str, at: datetime) -> None:
        self.trigger_event(
            self.OperatorActed, action=action, reason=reason, credential=credential, timestamp=at
        )

    def finish_flatten(self, closed: list[str], canceled: int, at: datetime) -> None:
        if self.flatten_requested:
            self.trigger_event(self.Flattened, closed=closed, canceled=canceled, timestamp=at)

    def trip_breaker(self, rule: str, detail: str, action: str, at: datetime) -> bool:
        """Record a trip; False when that breaker already holds (nothing new to say)."""
        if rule in self.breakers:
            return False
        self.trigger_event(
            self.BreakerTripped, rule=rule, detail=detail, action=action, timestamp=at
        )
        return True

    def clear_breaker(self, rule: str, reason: str, at: datetime) -> None:
        if rule in self.breakers:
            self.trigger_event(self.BreakerCleared, rule=rule, reason=reason, timestamp=at)

    def switch_model(self, to_model: str, reason: str, at: datetime) -> None:
        if to_model != self.model:
            self.trigger_event(
                self.ModelSwitched,
                from_model=self.model,
                to_model=to_model,
                reason=reason,
                timestamp=at,
            )


def _hour_turns(trader: Trader, at: datetime) -> None:
    """Before a valuation-changing event: when it starts a new hour, the equity at the end
    of the previous hour closes that hour's return (the same rule as the views')."""
    _day_turns(trader, at)
    marker = int(max(0.0, (at - trader.created_on).total_seconds()) // 3600)
    if marker <= trader.hour:
        return
    if trader.hour >= 0:
        if trader.hour_base > 0:
            trader.returns_n, trader.returns_mean, trader.returns_m2 = add_return(
                (trader.returns_n, trader.returns_mean, trader.returns_m2),
                float(trader.last_equity / trader.hour_base - 1),
            )
        trader.hour_base = trader.last_equity
    trader.hour = marker


def _revalue(trader: Trader) -> None:
    trader.last_equity = trader.account(trader.marks).equity
    trader.peak_equity = max(trader.peak_equity, trader.last_equity)


def _day_turns(trader: Trader, at: datetime) -> None:
    """Before a valuation-changing event: a new UTC day starts from the last equity."""
    day = at.date().isoformat()
    if day != trader.day:
        trader.day = day
        trader.day_base = trader.last_equity


def _remember_outcome(trader: Trader, *, ok: bool) -> None:
    trader.recent_outcomes = [*trader.recent_outcomes[-(RECENT_WINDOW - 1) :], 0 if ok else 1]
