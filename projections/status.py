"""The status view: what needs a person's attention, per trader and per venue account.

A failure is recorded as an event with a typed reason; this view makes the ones an
operator acts on visible through the API (``/api/status``): which traders are paused and
why, the last cycle skipped, model failures, risk and venue refusals, the open findings of
each venue account (position or equity drift, an account that no longer holds the traders'
allocations), orders and fills on the account that no trader made, and the money that went
in or out without trading. Not a nof1 route: nof0's own.
"""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

from domain.trader import Trader
from domain.venue_account import VenueAccount
from projections.common import num, seconds
from projections.engine import Projector, ViewMeta

#: The newest transfers kept per venue account.
TRANSFERS_KEPT = 50
#: The newest operator actions kept (arena-wide).
CONTROLS_KEPT = 100
#: The newest risk refusals kept per trader (the model chat shows them with their cycle).
RISK_REFUSALS_KEPT = 50


class Refusal(msgspec.Struct):
    """The newest refusal of a kind (its reason or rule, what was wrong, when)."""

    reason: str
    detail: str
    time: float


class ControlRecord(msgspec.Struct):
    """An operator's action: what, on whom, why, and which credential asked."""

    trader: str
    action: str
    reason: str
    credential: str
    time: float


class RiskRefusal(msgspec.Struct):
    """One item the risk desk refused, with the cycle (``cycle_id`` of /api/conversations)."""

    cycle: int
    coin: str
    signal: str
    rule: str
    detail: str
    time: float


class TriggerStatus(msgspec.Struct):
    """A trader with triggers (``DecisionTriggered``): its calls by what fired them, and in
    aggregate what its gates held back between calls."""

    calls: int = 0
    fired: dict[str, int] = {}  # trigger (e.g. atr_move:BTC, max_interval) -> calls
    ticks_gated: int = 0
    quiet: dict[str, int] = {}  # gate -> ticks evaluated and held
    unavailable: dict[str, int] = {}  # gate -> ticks it could not be evaluated
    timer_calls: int = 0  # what the decision interval would have called meanwhile
    last_fired: list[str] = []
    last_triggered_at: float | None = None


class TraderStatus(msgspec.Struct):
    model_id: str
    model: str  # the model deciding now (after switches)
    paused: bool = False
    pause_reason: str = ""
    paused_at: float | None = None
    cycles: int = 0
    last_cycle_at: float | None = None
    cycles_skipped: int = 0
    last_skip: Refusal | None = None
    llm_failures: int = 0
    last_llm_failure: Refusal | None = None
    risk_rejections: int = 0
    last_risk_rejection: Refusal | None = None
    order_rejections: int = 0
    last_order_rejection: Refusal | None = None
    model_switches: int = 0
    last_control: ControlRecord | None = None
    flatten_pending: bool = False
    flattened_at: float | None = None
    #: Deciding on the in-process simulator (its paper twin) while its venue fails.
    on_paper: bool = False
    paper_trader: str = ""
    venue_switches: int = 0
    last_venue_switch: Refusal | None = None
    recent_risk_rejections: list[RiskRefusal] = []  # the newest RISK_REFUSALS_KEPT, newest last
    triggers: TriggerStatus | None = None  # a trader with triggers: why it was called


class Finding(msgspec.Struct):
    key: str  # position:<coin>, equity, underfunded
    detail: str
    since: float
    traders: list[str]  # paused for it


class Transfer(msgspec.Struct):
    id: str
    kind: str
    amount: float  # into the account (+) or out of it (−)
    time: float  # venue time


class VenueStatus(msgspec.Struct):
    provider: str
    address: str
    baseline_equity: float  # initial equity + transfers (unallocated = this − allocations)
    findings: list[Finding] = []
    foreign_orders_open: int = 0
    foreign_fills: int = 0
    transfers: list[Transfer] = []


class StatusMeta(ViewMeta):
    names: dict[str, str] = {}  # trader aggregate id (hex) → config id
    venues: dict[str, int] = {}  # venue aggregate id (hex) → index in ``venues``
    foreign_orders: dict[str, list[int]] = {}  # venue id (hex) → open foreign oids
    cycles: dict[str, tuple[str, int]] = {}  # trader id (hex) → its latest (cycle_id, cycle_no)


class StatusState(msgspec.Struct):
    traders: list[TraderStatus] = []
    venues: list[VenueStatus] = []
    control_actions: list[ControlRecord] = []  # newest last
    view: StatusMeta = msgspec.field(name="_view", default_factory=lambda: StatusMeta(""))


class StatusProjector(Projector[StatusState]):
    name = "status"
    version = 1
    primary = "status.json"
    state_type: ClassVar[type[Any]] = StatusState

    def initial(self) -> StatusState:
        return StatusState(view=StatusMeta(self.view_name))

    def meta(self, state: StatusState) -> ViewMeta:
        return state.view

    def reduce(self, state: StatusState, kind: type[Any], event: Any) -> bool:
        if kind is Trader.Registered:
            state.view.names[_id(event)] = event.config_id
            state.traders.append(TraderStatus(model_id=event.config_id, model=event.model))
            return True
        if kind is VenueAccount.Registered:
            return _venue_registered(state, event)
        if kind is Trader.OperatorActed:
            return _control(state, event)
        handler = _TRADER.get(kind)
        if handler is not None:
            trader = _trader(state, event)
            if trader is None:
                return False
            handler(trader, event)
            if kind is Trader.DecisionRequested:
                state.view.cycles[_id(event)] = (event.cycle_id, event.cycle_no)
            elif kind is Trader.RiskRejected:
                _remember_refusal(state, trader, event)
            return True
        venue_handler = _VENUE.get(kind)
        if venue_handler is not None:
            key = _id(event)
            index = state.view.venues.get(key)
            if index is None:
                return False
            return venue_handler(state, key, state.venues[index], event)
        return False


def _id(event: Any) -> str:
    return str(event.originator_id.hex)


def _trader(state: StatusState, event: Any) -> TraderStatus | None:
    config_id = state.view.names.get(_id(event))
    return next((t for t in state.traders if t.model_id == config_id), None)


def _venue_registered(state: StatusState, event: Any) -> bool:
    key = _id(event)
    state.view.venues[key] = len(state.venues)
    state.venues.append(
        VenueStatus(
            provider=event.provider,
            address=event.address,
            baseline_equity=num(event.baseline_equity),
        )
    )
    return True


# -- trader events ---------------------------------------------------------------------------


def _cycle(trader: TraderStatus, event: Any) -> None:
    trader.cycles += 1
    trader.last_cycle_at = seconds(event.as_of)


def _triggered(trader: TraderStatus, event: Any) -> None:
    status = trader.triggers or TriggerStatus()
    status.calls += 1
    for name in event.fired:
        status.fired[name] = status.fired.get(name, 0) + 1
    status.ticks_gated += event.ticks_gated
    for name, count in event.quiet.items():
        status.quiet[name] = status.quiet.get(name, 0) + count
    for name, count in event.unavailable.items():
        status.unavailable[name] = status.unavailable.get(name, 0) + count
    status.timer_calls += event.timer_calls
    status.last_fired = list(event.fired)
    status.last_triggered_at = seconds(event.as_of)
    trader.triggers = status


def _skipped(trader: TraderStatus, event: Any) -> None:
    trader.cycles_skipped += 1
    trader.last_cycle_at = seconds(event.as_of)
    trader.last_skip = Refusal(event.reason, event.detail, seconds(event.as_of))


def _llm_failed(trader: TraderStatus, event: Any) -> None:
    trader.llm_failures += 1
    trader.last_llm_failure = Refusal(event.reason, event.detail, seconds(event.timestamp))


def _risk_rejected(trader: TraderStatus, event: Any) -> None:
    trader.risk_rejections += 1
    detail = f"{event.coin} {event.signal}: {event.detail}"
    trader.last_risk_rejection = Refusal(event.rule, detail, seconds(event.timestamp))


def _remember_refusal(state: StatusState, trader: TraderStatus, event: Any) -> None:
    cycle_id, cycle_no = state.view.cycles.get(_id(event), ("", 0))
    refusal = RiskRefusal(
        cycle=cycle_no if cycle_id == event.cycle_id else 0,
        coin=event.coin,
        signal=event.signal,
        rule=event.rule,
        detail=event.detail,
        time=seconds(event.timestamp),
    )
    kept = trader.recent_risk_rejections[-(RISK_REFUSALS_KEPT - 1) :]
    trader.recent_risk_rejections = [*kept, refusal]


def _order_rejected(trader: TraderStatus, event: Any) -> None:
    trader.order_rejections += 1
    detail = f"{event.coin}: {event.detail}"
    trader.last_order_rejection = Refusal(event.reason, detail, seconds(event.timestamp))


def _venue_switched(trader: TraderStatus, event: Any) -> None:
    trader.venue_switches += 1
    trader.on_paper = event.to == "paper"
    trader.paper_trader = event.paper_trader if trader.on_paper else ""
    detail = (
        f"{event.venue}: {num(event.failure_pct):g}% of {event.requests} requests failed"
        if trader.on_paper
        else f"{event.venue}: healthy again ({num(event.failure_pct):g}% failed), reconciled"
    )
    trader.last_venue_switch = Refusal(event.to, detail, seconds(event.timestamp))


def _paused(trader: TraderStatus, event: Any) -> None:
    trader.paused = True
    trader.pause_reason = f"{event.reason}: {event.detail}" if event.detail else event.reason
    trader.paused_at = seconds(event.timestamp)


def _resumed(trader: TraderStatus, event: Any) -> None:
    trader.paused = False
    trader.pause_reason = ""
    trader.paused_at = None


def _control(state: StatusState, event: Any) -> bool:
    trader = _trader(state, event)
    if trader is None:
        return False
    record = ControlRecord(
        trader.model_id, event.action, event.reason, event.credential, seconds(event.timestamp)
    )
    trader.last_control = record
    if event.action in ("flatten", "kill_flatten"):
        trader.flatten_pending = True
    state.control_actions = [*state.control_actions[-(CONTROLS_KEPT - 1) :], record]
    return True


def _flattened(trader: TraderStatus, event: Any) -> None:
    trader.flatten_pending = False
    trader.flattened_at = seconds(event.timestamp)


def _switched(trader: TraderStatus, event: Any) -> None:
    trader.model = event.to_model
    trader.model_switches += 1


_TRADER = {
    Trader.DecisionRequested: _cycle,
    Trader.CycleSkipped: _skipped,
    Trader.DecisionTriggered: _triggered,
    Trader.LLMFailed: _llm_failed,
    Trader.RiskRejected: _risk_rejected,
    Trader.OrderRejected: _order_rejected,
    Trader.Paused: _paused,
    Trader.Resumed: _resumed,
    Trader.ModelSwitched: _switched,
    Trader.Flattened: _flattened,
    Trader.VenueSwitched: _venue_switched,
}


# -- venue account events --------------------------------------------------------------------


def _drift(state: StatusState, key: str, venue: VenueStatus, event: Any) -> bool:
    venue.findings = [f for f in venue.findings if f.key != event.key]
    venue.findings.append(
        Finding(event.key, event.detail, seconds(event.timestamp), list(event.traders))
    )
    return True


def _cleared(state: StatusState, key: str, venue: VenueStatus, event: Any) -> bool:
    before = len(venue.findings)
    venue.findings = [f for f in venue.findings if f.key != event.key]
    return len(venue.findings) != before


def _transfer(state: StatusState, key: str, venue: VenueStatus, event: Any) -> bool:
    venue.baseline_equity = num(event.amount) + venue.baseline_equity
    row = Transfer(event.transfer_id, event.kind, num(event.amount), seconds(event.venue_time))
    venue.transfers = [*venue.transfers[-(TRANSFERS_KEPT - 1) :], row]
    return True


def _foreign_order(state: StatusState, key: str, venue: VenueStatus, event: Any) -> bool:
    open_oids = state.view.foreign_orders.setdefault(key, [])
    if event.oid not in open_oids:
        open_oids.append(event.oid)
    venue.foreign_orders_open = len(open_oids)
    return True


def _foreign_order_gone(state: StatusState, key: str, venue: VenueStatus, event: Any) -> bool:
    open_oids = state.view.foreign_orders.get(key, [])
    if event.oid in open_oids:
        open_oids.remove(event.oid)
    venue.foreign_orders_open = len(open_oids)
    return True


def _foreign_fill(state: StatusState, key: str, venue: VenueStatus, event: Any) -> bool:
    venue.foreign_fills += 1
    return True


_VENUE = {
    VenueAccount.DriftDetected: _drift,
    VenueAccount.DriftCleared: _cleared,
    VenueAccount.TransferObserved: _transfer,
    VenueAccount.ForeignOrderObserved: _foreign_order,
    VenueAccount.ForeignOrderGone: _foreign_order_gone,
    VenueAccount.ForeignFillObserved: _foreign_fill,
}


StatusProjector.handles = frozenset(
    {Trader.Registered, VenueAccount.Registered, Trader.OperatorActed, *_TRADER, *_VENUE}
)
StatusProjector.ignores = {
    Trader.DecisionRequested: frozenset(
        {"snapshot", "user_prompt", "marks", "prompt_template", "snapshot_digest"}
    ),
}
