"""Operator controls: pause, resume, flatten and the kill switch, each an audited command.

Every command writes an ``OperatorActed`` event naming the action, the reason given and the
credential that asked (a token id, or ``cli:user@host``), whether or not it changed anything,
so ``/api/status`` shows who did what. The commands only write events: they work the same
from the engine's own process, from the command line beside it, or from another machine on
the same PostgreSQL. A running engine sees the write on its next tick (it re-reads traders
whenever someone else wrote to the log); a flatten is carried out by the engine that owns the
trader (:class:`Flattener`), so no second process ever sends orders for it.

* pause: no new entries; the trader's stops and targets stay on the venue.
* resume: decisions start again.
* flatten: pause, then the engine cancels the trader's entries, closes its positions
  reduce-only at market and cancels its protections; ``Flattened`` records when it is done.
* kill: every trader paused; ``flatten=True``: every trader flattened.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from eventsourcing.persistence import IntegrityError

from application.orders import OrderDesk
from application.ports import (
    Alerts,
    Clock,
    ExchangeError,
    MarketData,
    MarketDataError,
    OrderReport,
)
from application.settings import TraderSettings
from application.trading import TradingApp
from application.venue_sync import VenueSync
from domain.risk import close_order
from domain.trader import Trader, make_cloid
from domain.values import CloseReason, OrderIntent

log = logging.getLogger("nof0.engine")

#: A control write races the engine's own writes on the same trader; it is retried on a
#: fresh read this many times before the command reports failure.
_WRITE_ATTEMPTS = 5


class ControlAction(StrEnum):
    PAUSE = "pause"
    RESUME = "resume"
    FLATTEN = "flatten"
    KILL = "kill"
    KILL_FLATTEN = "kill_flatten"


class ControlError(Exception):
    """A control command that could not be carried out; nothing was changed."""


@dataclass(frozen=True)
class ControlResult:
    trader: str
    action: str
    changed: bool  # False: already in the asked state (the action is still recorded)
    paused: bool
    flatten_pending: bool

    def as_dict(self) -> dict[str, object]:
        return {
            "trader": self.trader,
            "action": self.action,
            "changed": self.changed,
            "paused": self.paused,
            "flatten_pending": self.flatten_pending,
        }


class OperatorControl:
    def __init__(self, app: TradingApp, clock: Clock, alerts: Alerts | None = None) -> None:
        self.app = app
        self.clock = clock
        self.alerts = alerts

    def pause(self, trader: str, *, reason: str, credential: str) -> ControlResult:
        return self._act(trader, ControlAction.PAUSE, reason, credential)

    def resume(self, trader: str, *, reason: str, credential: str) -> ControlResult:
        return self._act(trader, ControlAction.RESUME, reason, credential)

    def flatten(self, trader: str, *, reason: str, credential: str) -> ControlResult:
        return self._act(trader, ControlAction.FLATTEN, reason, credential)

    def kill(
        self, traders: Iterable[str], *, flatten: bool, reason: str, credential: str
    ) -> list[ControlResult]:
        action = ControlAction.KILL_FLATTEN if flatten else ControlAction.KILL
        return [self._act(t, action, reason, credential) for t in traders]

    def _act(
        self, config_id: str, action: ControlAction, reason: str, credential: str
    ) -> ControlResult:
        reason = reason.strip() or "no reason given"
        for attempt in range(_WRITE_ATTEMPTS):
            trader = self.app.find_trader(config_id)
            if trader is None:
                raise LookupError(f"no trader {config_id!r} in the event store")
            before = (trader.paused, trader.flatten_requested)
            at = max(self.clock.now(), trader.modified_on)
            trader.record_control(action.value, reason, credential, at)
            if action is ControlAction.RESUME:
                trader.resume(f"operator: {reason}", at)
            else:
                trader.pause("operator", f"{action.value} by {credential}: {reason}", at)
            try:
                self.app.save_trader(trader)
            except IntegrityError:
                # The engine wrote to this trader in between: read it again and retry.
                log.info("control %s of %s raced a write (attempt %d)", action, config_id, attempt)
                continue
            after = (trader.paused, trader.flatten_requested)
            log.warning(
                "trader=%s operator %s by %s: %s", config_id, action.value, credential, reason
            )
            if self.alerts is not None:
                self.alerts.alert(config_id, "control", f"{action.value} by {credential}: {reason}")
            return ControlResult(
                trader=config_id,
                action=action.value,
                changed=after != before,
                paused=trader.paused,
                flatten_pending=trader.flatten_requested,
            )
        raise ControlError(
            f"{action.value} of {config_id!r}: the trader kept changing under the command "
            f"({_WRITE_ATTEMPTS} attempts); nothing was recorded, try again"
        )


# -- the engine's side of a flatten --------------------------------------------------------


@dataclass
class FlattenReport:
    trader: str
    canceled: int = 0
    closing: list[str] = field(default_factory=list)
    done: bool = False
    problems: list[str] = field(default_factory=list)


class Flattener:
    """Carries out a trader's flatten request; called by the engine under the trader's lock.

    Each pass cancels open entries, sends reduce-only market closes for the positions left
    (each close once: a pending close is not sent again), and reconciles the trader so that
    fills are booked and the protections of flat coins are canceled. The request is done
    (``Flattened``) only when the books hold no position, no pending order and no
    protection; until then it stays pending and the next tick tries again."""

    def __init__(
        self,
        app: TradingApp,
        desk: OrderDesk,
        sync: VenueSync,
        market: MarketData,
        clock: Clock,
        alerts: Alerts,
    ) -> None:
        self.app = app
        self.desk = desk
        self.sync = sync
        self.market = market
        self.clock = clock
        self.alerts = alerts

    async def run(self, settings: TraderSettings) -> FlattenReport:
        config_id = settings.config_id
        report = FlattenReport(config_id)
        trader = self.app.get_trader(config_id)
        if not trader.flatten_requested:
            report.done = True
            return report
        guarded = len(trader.protections)
        await self._cancel_entries(trader, report)
        reports = await self._close_positions(trader, settings, report)
        now = self.clock.now()
        synced = await self.sync.run(now, only=config_id, reports=reports)
        report.problems.extend(synced.findings)
        trader = self.app.get_trader(config_id)
        report.canceled += max(0, guarded - len(trader.protections))
        if not trader.positions and not trader.pending and not trader.protections:
            trader.finish_flatten(report.closing, report.canceled, self.clock.now())
            self.app.save_trader(trader)
            report.done = True
            self.alerts.alert(config_id, "flattened", f"closed {report.closing or 'nothing'}")
            log.warning("trader=%s flattened: closed %s", config_id, report.closing or "nothing")
        return report

    async def _cancel_entries(self, trader: Trader, report: FlattenReport) -> None:
        for cloid, pending in list(trader.pending.items()):
            if pending.intent is OrderIntent.CLOSE:
                continue
            try:
                if await self.desk.exchange.cancel(pending.coin, cloid):
                    report.canceled += 1
            except ExchangeError as exc:
                report.problems.append(f"cancel of entry {cloid} failed: {exc}")

    async def _close_positions(
        self, trader: Trader, settings: TraderSettings, report: FlattenReport
    ) -> Mapping[str, OrderReport]:
        coins = sorted(trader.positions)
        if not coins:
            return {}
        try:
            marks: Mapping[str, Decimal] = await self.market.mids(coins, self.clock.now())
        except MarketDataError as exc:
            # Without a price no protected limit can be set: fail closed, try next tick.
            report.problems.append(f"no prices to close at: {exc}")
            return {}
        cloids: list[str] = []
        for coin in coins:
            position = trader.positions[coin]
            closing = any(
                p.coin == coin and p.intent is OrderIntent.CLOSE for p in trader.pending.values()
            )
            mark = marks.get(coin)
            if closing or mark is None:
                continue
            cloid = make_cloid(trader.id, f"flatten@{trader.version}", f"{coin}:operator")
            order = close_order(position, mark, CloseReason.OPERATOR, settings.slippage_bps)
            trader.place(
                cycle_id=f"{settings.config_id}#flatten",
                cloid=cloid,
                order=order,
                at=self.clock.now(),
            )
            cloids.append(cloid)
            report.closing.append(coin)
        if not cloids:
            return {}
        # Saved before anything is sent: a restart looks the closes up by cloid.
        self.app.save_trader(trader)
        return await self.desk.submit(trader, cloids)


def kill_targets(configured: Sequence[str], registered: Iterable[str]) -> list[str]:
    """Every trader the kill switch reaches: the configured ones and any other registered."""
    seen = dict.fromkeys(configured)
    seen.update(dict.fromkeys(registered))
    return list(seen)
