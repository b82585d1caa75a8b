"""Protection: every open position carries exactly one reduce-only stop and one take-profit
on the venue, each for the full size.

``ProtectionKeeper.keep`` compares what a trader's positions need (``domain.protection``)
with the orders the venue has open and closes the gap: it places what is missing, resizes
what no longer covers the position (after a partial fill or a partial close), cancels what
belongs to a closed position or duplicates another, and forgets what the venue no longer
has. Every step is recorded before it is sent, under a cloid derived from (trader, coin,
kind, generation), so a retry or a restart looks the order up instead of doubling it.

When the venue refuses a stop because the price is already through it, or when a position
has no working protection and the mark crosses its level, the position is closed at market
at once (the engine-side line of defence).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from application.orders import OrderDesk
from application.ports import (
    Alerts,
    Clock,
    Exchange,
    ExchangeError,
    OrderReport,
    OrderState,
    OrderTicket,
    TimeInForce,
    Trigger,
    TriggerKind,
    VenueRejection,
)
from application.settings import TraderSettings
from application.trading import TradingApp
from domain.ledger import Position
from domain.protection import DesiredProtection, desired_protections
from domain.risk import close_order, protective_exit
from domain.trader import Protection, Trader, make_cloid
from domain.values import CloseReason, OrderIntent

log = logging.getLogger("nof0.engine")

_KINDS = (CloseReason.STOP, CloseReason.TARGET)
_TRIGGER = {CloseReason.STOP: TriggerKind.STOP, CloseReason.TARGET: TriggerKind.TARGET}


@dataclass
class KeepResult:
    placed: int = 0
    resized: int = 0
    canceled: int = 0
    exits: dict[str, str] = field(default_factory=dict)  # coin → cloid of an emergency close
    #: Positions without a working stop or target whose mark was checked against its level
    #: (what the pass did depended on the price).
    watched: int = 0


def _ticket(cloid: str, p: Protection | DesiredProtection) -> OrderTicket:
    return OrderTicket(
        cloid=cloid,
        coin=p.coin,
        side=p.side,
        size=p.size,
        limit_price=p.limit_price,
        reduce_only=True,
        tif=TimeInForce.IOC,
        trigger=Trigger(kind=_TRIGGER[p.kind], price=p.trigger_price, market=True),
    )


def _matches(guard: Protection, want: DesiredProtection) -> bool:
    return guard.size == want.size and guard.trigger_price == want.trigger_price


class ProtectionKeeper:
    def __init__(
        self,
        app: TradingApp,
        exchange: Exchange,
        desk: OrderDesk,
        clock: Clock,
        alerts: Alerts,
    ) -> None:
        self.app = app
        self.exchange = exchange
        self.desk = desk
        self.clock = clock
        self.alerts = alerts

    async def keep(
        self,
        trader: Trader,
        settings: TraderSettings,
        *,
        open_orders: Mapping[str, int],
        sz_decimals: Mapping[str, int],
        marks: Mapping[str, Decimal],
        venue_qty: Mapping[str, Decimal] | None = None,
        filled_cloids: set[str] | None = None,
    ) -> KeepResult:
        """``open_orders``: cloid → oid of the account's open orders; ``venue_qty``: the
        venue's size per coin (coins where it differs from the books
        are left alone: that is drift, not something a stop can fix); ``filled_cloids``:
        the cloids with a fill in the feed just read."""
        result = KeepResult()
        filled = filled_cloids or set()
        coins = sorted(set(trader.positions) | {g.coin for g in trader.protections.values()})
        for coin in coins:
            position = trader.positions.get(coin)
            if coin not in sz_decimals:
                # Without the venue's rules for the coin nothing can be placed; canceling
                # what is there would leave the position bare.
                continue
            if venue_qty is not None and venue_qty.get(coin, Decimal(0)) != (
                position.qty if position else Decimal(0)
            ):
                continue
            closing = any(
                p.coin == coin and p.intent is OrderIntent.CLOSE for p in trader.pending.values()
            )
            desired: list[DesiredProtection] = []
            if position is not None and self.exchange.supports_triggers and coin in sz_decimals:
                desired = desired_protections(
                    position,
                    sz_decimals=sz_decimals[coin],
                    stop=settings.stop_loss_enabled,
                    target=settings.take_profit_enabled,
                )
            for kind in _KINDS:
                want = next((d for d in desired if d.kind is kind), None)
                covered = await self._reconcile_kind(
                    trader, coin, kind, want, open_orders, filled, position, result
                )
                if position is None or covered or closing or coin in result.exits:
                    continue
                await self._guard_unprotected(trader, settings, position, kind, marks, result)
        return result

    # -- one (coin, kind) ------------------------------------------------------------------

    async def _reconcile_kind(
        self,
        trader: Trader,
        coin: str,
        kind: CloseReason,
        want: DesiredProtection | None,
        open_orders: Mapping[str, int],
        filled: set[str],
        position: Position | None,
        result: KeepResult,
    ) -> bool:
        """Bring the venue's orders for (coin, kind) in line with ``want``; True when a
        protection is (or is believed to be) working on the venue."""
        guards = sorted(
            (g for g in trader.protections.values() if g.coin == coin and g.kind is kind),
            key=lambda g: g.generation,
        )
        live: list[Protection] = []
        for guard in guards:
            oid = open_orders.get(guard.cloid)
            if oid is not None:
                if guard.oid is None:
                    trader.confirm_protection(guard.cloid, oid, self.clock.now())
                    self.app.save_trader(trader)
                live.append(guard)
                continue
            verdict = await self._explain_missing(trader, guard, want, filled)
            if verdict == "spent":
                # It filled and its fill is not in the feed yet: it stays known (so the
                # fill is booked as this stop/target) and nothing replaces it meanwhile.
                return True
            if verdict == "live":
                live.append(guard)
        if want is None:
            reason = "position_closed" if position is None else "not_wanted"
            for guard in live:
                result.canceled += await self._cancel(trader, guard, reason)
            return False
        keep = live[-1] if live else None
        for guard in live[:-1]:
            result.canceled += await self._cancel(trader, guard, "duplicate")
        if keep is None:
            return await self._place(trader, want, result)
        if not _matches(keep, want):
            return await self._resize(trader, keep, want, result)
        return True

    async def _explain_missing(
        self,
        trader: Trader,
        guard: Protection,
        want: DesiredProtection | None,
        filled: set[str],
    ) -> str:
        """A recorded protection is not open on the venue: find out why. "live" when it is
        (still, or again) working, "spent" when it filled and its fill is still to come,
        "gone" otherwise."""
        report = await self.desk.lookup(guard.cloid)
        if report is None:
            return "live"  # cannot tell: assume it is there rather than risk a duplicate
        if report.state in (OrderState.OPEN, OrderState.WAITING):
            self._confirm(trader, guard.cloid, report)
            return "live"
        if report.state is OrderState.UNKNOWN:
            if want is not None and guard.oid is None and _matches(guard, want):
                # Recorded but never arrived (the process stopped before sending it, or the
                # request was lost): send the very same order again.
                sent = await self.desk.send(_ticket(guard.cloid, guard))
                if sent is None or sent.state in (
                    OrderState.OPEN,
                    OrderState.WAITING,
                    OrderState.UNKNOWN,
                ):
                    if sent is not None:
                        self._confirm(trader, guard.cloid, sent)
                    return "live"
                self._drop(trader, guard.cloid, sent.reason or sent.state.value, sent.detail)
                return "gone"
            self._drop(trader, guard.cloid, VenueRejection.NOT_ON_VENUE.value, "not on the venue")
            return "gone"
        if report.filled_size > 0 and guard.cloid not in filled:
            return "spent"
        # Filled (its fill is booked), canceled or rejected.
        self._drop(
            trader,
            guard.cloid,
            report.reason or report.state.value,
            report.detail or f"the venue reports it {report.state.value}",
        )
        return "gone"

    def _record(self, trader: Trader, want: DesiredProtection, replaces: str | None = None) -> str:
        """Record the protection before it is sent (a restart then finds it by cloid)."""
        cloid = trader.protect(
            coin=want.coin,
            kind=want.kind,
            size=want.size,
            trigger_price=want.trigger_price,
            limit_price=want.limit_price,
            at=self.clock.now(),
            replaces=replaces,
        )
        self.app.save_trader(trader)
        return cloid

    async def _place(self, trader: Trader, want: DesiredProtection, result: KeepResult) -> bool:
        cloid = self._record(trader, want)
        report = await self.desk.send(_ticket(cloid, want))
        return self._after_send(trader, cloid, want, report, result, counter="placed")

    async def _resize(
        self, trader: Trader, keep: Protection, want: DesiredProtection, result: KeepResult
    ) -> bool:
        cloid = self._record(trader, want, replaces=keep.cloid)
        try:
            report: OrderReport | None = await self.exchange.modify(
                keep.cloid, _ticket(cloid, want)
            )
        except ExchangeError as exc:
            # Either order may be live now; the next reconciliation sees which.
            log.warning(
                "trader=%s resize of %s is ambiguous: %s", trader.config_id, keep.cloid, exc
            )
            return True
        working = self._after_send(trader, cloid, want, report, result, counter="resized")
        if working:
            self._drop(trader, keep.cloid, "replaced", f"resized to {want.size} by {cloid}")
        return working

    def _after_send(
        self,
        trader: Trader,
        cloid: str,
        want: DesiredProtection,
        report: OrderReport | None,
        result: KeepResult,
        *,
        counter: str,
    ) -> bool:
        if report is None or report.state is OrderState.UNKNOWN:
            self.alerts.alert(
                trader.config_id,
                "protection_unknown",
                f"{want.kind.value} {cloid} for {want.coin} has no known outcome; "
                "it is looked up on the next reconciliation",
            )
            return True
        if report.state is OrderState.REJECTED:
            reason = report.reason or report.state.value
            self._drop(trader, cloid, reason, report.detail)
            self.alerts.alert(
                trader.config_id,
                "protection_refused",
                f"{want.kind.value} for {want.coin} at {want.trigger_price} refused: "
                f"{reason}" + (f" ({report.detail})" if report.detail else ""),
            )
            log.error(
                "trader=%s %s for %s refused: %s %s",
                trader.config_id,
                want.kind.value,
                want.coin,
                report.reason,
                report.detail,
            )
            return False
        self._confirm(trader, cloid, report)
        setattr(result, counter, getattr(result, counter) + 1)
        log.info(
            "trader=%s %s %s %s @ %s on the venue (%s)",
            trader.config_id,
            want.kind.value,
            want.coin,
            want.size,
            want.trigger_price,
            cloid,
        )
        return True

    async def _cancel(self, trader: Trader, guard: Protection, reason: str) -> int:
        try:
            canceled = await self.exchange.cancel(guard.coin, guard.cloid)
        except ExchangeError as exc:
            log.warning("trader=%s cancel of %s failed: %s", trader.config_id, guard.cloid, exc)
            return 0
        if not canceled:
            # The venue says it had nothing to cancel: make sure before forgetting it.
            known = await self.desk.lookup(guard.cloid)
            if known is None or known.state in (OrderState.OPEN, OrderState.WAITING):
                return 0
        self._drop(trader, guard.cloid, reason, "")
        return 1

    def _confirm(self, trader: Trader, cloid: str, report: OrderReport) -> None:
        if report.oid is not None and cloid in trader.protections:
            trader.confirm_protection(cloid, report.oid, self.clock.now())
            self.app.save_trader(trader)

    def _drop(self, trader: Trader, cloid: str, reason: str, detail: str) -> None:
        if cloid in trader.protections:
            trader.drop_protection(cloid, reason=reason, detail=detail, at=self.clock.now())
            self.app.save_trader(trader)

    # -- the engine-side line of defence ---------------------------------------------------

    async def _guard_unprotected(
        self,
        trader: Trader,
        settings: TraderSettings,
        position: Position,
        kind: CloseReason,
        marks: Mapping[str, Decimal],
        result: KeepResult,
    ) -> None:
        if kind is CloseReason.STOP and not settings.stop_loss_enabled:
            return
        if kind is CloseReason.TARGET and not settings.take_profit_enabled:
            return
        if position.context.exit_plan is None:
            return  # no level to cross: the price does not matter
        result.watched += 1
        mark = marks.get(position.coin)
        if mark is None or protective_exit(position, mark) is not kind:
            return
        plan = position.context.exit_plan
        assert plan is not None  # protective_exit only fires on a plan
        level = plan.stop_loss if kind is CloseReason.STOP else plan.profit_target
        log.warning(
            "trader=%s %s %s has no working %s on the venue and the mark %s crossed %s: "
            "closing at market",
            trader.config_id,
            position.side.value,
            position.coin,
            kind.value,
            f"{mark:f}",
            f"{level:f}",
        )
        cloid = await self.close_now(trader, settings, position, kind, mark)
        if cloid is not None:
            result.exits[position.coin] = cloid

    async def close_now(
        self,
        trader: Trader,
        settings: TraderSettings,
        position: Position,
        reason: CloseReason,
        mark: Decimal,
    ) -> str | None:
        """Close ``position`` at market (reduce-only IOC); the fill is recorded by the sync."""
        if any(
            p.coin == position.coin and p.intent is OrderIntent.CLOSE
            for p in trader.pending.values()
        ):
            return None
        # One id per attempt: the trader's version moves on after each recorded outcome,
        # while a retry of this very attempt reuses the id.
        cloid = make_cloid(trader.id, f"exit@{trader.version}", f"{position.coin}:{reason.value}")
        order = close_order(position, mark, reason, settings.slippage_bps)
        trader.place(
            cycle_id=f"{settings.config_id}#exit", cloid=cloid, order=order, at=self.clock.now()
        )
        self.app.save_trader(trader)
        await self.desk.submit(trader, [cloid])
        return cloid
