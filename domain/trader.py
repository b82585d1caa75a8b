"""The Trader aggregate: one virtual sub-account and everything that happened to it.

Every command takes the time it happens at (``at`` / ``as_of``) and stamps its events with
it, so the same inputs always give the same events: the domain reads no clock.
Commands validate first and then trigger events; each event's ``apply`` is a pure state
change that also runs when the aggregate is rebuilt from the store.

The events and their ``apply`` are in ``domain.trader_events``; the orders in flight, the
protections and the valuation bookkeeping the events share are in ``domain.trader_state``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import TypeAlias
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from domain import trader_events as events
from domain.decision import ItemRejection, ParsedDecision
from domain.ledger import (
    AccountSnapshot,
    Position,
    apply_fill,
    sharpe_ratio,
    value_account,
)
from domain.risk import PlannedOrder, Rejection, RiskRule
from domain.trader_state import PendingOrder, Protection, upcast_v1_v2, upcast_v2_v3
from domain.values import CloseReason, Liquidity, OrderSide, SkipReason

# Re-exported: importers know them from here.
__all__ = [
    "PausePolicy",
    "PendingOrder",
    "PromptRecord",
    "Protection",
    "Trader",
    "TraderError",
    "make_cloid",
    "trader_id",
]


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

    # Snapshots of an older class version are brought up to date by these.
    upcast_v1_v2 = staticmethod(upcast_v1_v2)
    upcast_v2_v3 = staticmethod(upcast_v2_v3)

    class Event(Aggregate.Event):
        TOPIC = "nof0/Trader.Event"

    class Created(Aggregate.Created):
        TOPIC = "nof0/Trader.Created"

    # The events are written in domain.trader_events; set here, each is redefined as
    # ``Trader.<Name>`` in this module (a subclass of ``Trader.Event``).
    Registered: TypeAlias = events.Registered
    CapitalAllocated: TypeAlias = events.CapitalAllocated
    CapitalReallocated: TypeAlias = events.CapitalReallocated
    DecisionRequested: TypeAlias = events.DecisionRequested
    LLMResponded: TypeAlias = events.LLMResponded
    ModelAttemptFailed: TypeAlias = events.ModelAttemptFailed
    LLMFailed: TypeAlias = events.LLMFailed
    RiskRejected: TypeAlias = events.RiskRejected
    OrderPlaced: TypeAlias = events.OrderPlaced
    OrderFilled: TypeAlias = events.OrderFilled
    OrderRejected: TypeAlias = events.OrderRejected
    OrderCanceled: TypeAlias = events.OrderCanceled
    PositionClosed: TypeAlias = events.PositionClosed
    FundingSettled: TypeAlias = events.FundingSettled
    ProtectionPlaced: TypeAlias = events.ProtectionPlaced
    ProtectionConfirmed: TypeAlias = events.ProtectionConfirmed
    ProtectionCanceled: TypeAlias = events.ProtectionCanceled
    CycleSkipped: TypeAlias = events.CycleSkipped
    DecisionTriggered: TypeAlias = events.DecisionTriggered
    Paused: TypeAlias = events.Paused
    Resumed: TypeAlias = events.Resumed
    VenueSwitched: TypeAlias = events.VenueSwitched
    OperatorActed: TypeAlias = events.OperatorActed
    Flattened: TypeAlias = events.Flattened
    BreakerTripped: TypeAlias = events.BreakerTripped
    BreakerCleared: TypeAlias = events.BreakerCleared
    ModelSwitched: TypeAlias = events.ModelSwitched

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

    def record_trigger(
        self,
        *,
        as_of: datetime,
        fired: list[str],
        since: datetime | None,
        ticks_gated: int,
        quiet: dict[str, int],
        unavailable: dict[str, int],
        timer_calls: int,
    ) -> None:
        """Why a trader with triggers is called now (see ``domain.triggers``)."""
        self.trigger_event(
            self.DecisionTriggered,
            as_of=as_of,
            fired=list(fired),
            since=since,
            ticks_gated=ticks_gated,
            quiet=dict(quiet),
            unavailable=dict(unavailable),
            timer_calls=timer_calls,
            timestamp=as_of,
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
