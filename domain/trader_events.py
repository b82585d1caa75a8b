"""The Trader's events, and the state change each makes (``apply``), also when a trader
is rebuilt from the store.

They are set on :class:`domain.trader.Trader`, whose metaclass redefines each as
``Trader.<Name>`` in ``domain.trader``: always trigger and match them through ``Trader``.
What a stored event is known by is its explicit ``TOPIC`` (``nof0/Trader.<Name>``), which
never changes with the module they are written in.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from eventsourcing.domain import Aggregate

from domain.ledger import EntryContext, ExitPlan, apply_fill
from domain.trader_state import (
    RECENT_ENTRIES,
    SEEN_IDS,
    PendingOrder,
    Protection,
    hour_turns,
    remember_outcome,
    revalue,
    upcast_v1_v2,
    upcast_v2_v3,
)
from domain.values import ZERO, CloseReason, OrderIntent, OrderSide

if TYPE_CHECKING:
    from domain.trader import Trader


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
        upcast_v1_v2(trader.__dict__)
        upcast_v2_v3(trader.__dict__)


class CapitalAllocated(Aggregate.Event):
    TOPIC = "nof0/Trader.CapitalAllocated"
    allocation: Decimal
    previous: Decimal

    def apply(self, aggregate: Any) -> None:
        hour_turns(aggregate, self.timestamp)
        # Capital moved in or out is not a gain or a loss: the bases move with it.
        delta = self.allocation - self.previous
        aggregate.allocation = self.allocation
        aggregate.hour_base += delta
        aggregate.day_base += delta
        aggregate.peak_equity += delta
        revalue(aggregate)


class CapitalReallocated(Aggregate.Event):
    """Capital moved by ``allocation_strategy: performance_based``, with the inputs that
    decided it (so a replay shows why)."""

    TOPIC = "nof0/Trader.CapitalReallocated"
    allocation: Decimal
    previous: Decimal
    inputs: dict[str, str]

    def apply(self, aggregate: Any) -> None:
        hour_turns(aggregate, self.timestamp)
        delta = self.allocation - self.previous
        aggregate.allocation = self.allocation
        aggregate.hour_base += delta
        aggregate.day_base += delta
        aggregate.peak_equity += delta
        aggregate.reallocated = True
        revalue(aggregate)


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
        hour_turns(aggregate, self.timestamp)
        aggregate.cycle_no = self.cycle_no
        aggregate.last_cycle_at = self.as_of
        aggregate.open_cycle = self.cycle_id
        aggregate.marks.update(self.marks)
        revalue(aggregate)


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
        remember_outcome(aggregate, ok=True)


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
        remember_outcome(aggregate, ok=False)


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
        hour_turns(trader, self.timestamp)
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
        revalue(trader)


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
        hour_turns(trader, self.timestamp)
        if self.funding_id:
            trader.funding_ids = [*trader.funding_ids[-(SEEN_IDS - 1) :], self.funding_id]
        if trader.last_funding_at is None or self.timestamp > trader.last_funding_at:
            trader.last_funding_at = self.timestamp
        trader.funding += self.amount
        position = trader.positions.get(self.coin)
        # A payment reported late belongs to the position it was paid on, not to one
        # opened since (the trader's total counts it either way).
        if position is not None and position.opened_at <= self.timestamp:
            trader.positions[self.coin] = replace(position, funding=position.funding + self.amount)
        revalue(trader)


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


class DecisionTriggered(Aggregate.Event):
    """A trader with triggers is called: which gates fired, and in aggregate what the gates
    held back since its previous call (one event per call, none per skipped tick)."""

    TOPIC = "nof0/Trader.DecisionTriggered"
    as_of: datetime
    fired: list[str]  # e.g. "atr_move:BTC", "fill", "max_interval", "timer_fallback:atr_move"
    since: datetime | None  # the previous call
    ticks_gated: int  # ticks on which no gate fired since then
    quiet: dict[str, int]  # gate -> ticks it was evaluated and held
    unavailable: dict[str, int]  # gate -> ticks it could not be evaluated (timer applied)
    timer_calls: int  # calls the decision interval would have made in the same time


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
