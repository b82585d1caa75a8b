"""Settling the orders a trader has in flight once the venue has finished with them: IOC
remainders, refusals and orders that never arrived. A filled order whose fills are not in
the fill feed yet waits a few passes (then an alert)."""

from __future__ import annotations

from collections.abc import Mapping

from application.orders import OrderDesk
from application.ports import Alerts, Clock, OrderReport, OrderState, VenueRejection
from application.trading import TradingApp
from application.venue_state import SyncReport
from domain.trader import Trader


class PendingOrders:
    def __init__(
        self,
        app: TradingApp,
        desk: OrderDesk,
        clock: Clock,
        alerts: Alerts,
        fill_grace_passes: int,
    ) -> None:
        self.app = app
        self.desk = desk
        self.clock = clock
        self.alerts = alerts
        self.fill_grace_passes = fill_grace_passes
        self._waiting_fills: dict[str, int] = {}  # cloid → passes its fills were missing

    @property
    def waiting(self) -> int:
        """Orders whose fills are awaited (counted per pass)."""
        return len(self._waiting_fills)

    async def settle(
        self,
        trader: Trader,
        open_cloids: set[str],
        reports: Mapping[str, OrderReport],
        report: SyncReport,
    ) -> None:
        """Settle each of the trader's pending orders the venue no longer works on."""
        for cloid in list(trader.pending):
            if cloid in open_cloids:
                continue  # still working on the venue
            known = reports.get(cloid)
            if known is None or not known.state.terminal:
                known = await self.desk.lookup(cloid)
            if known is None:
                report.findings.append(f"{trader.config_id}: order {cloid} lookup failed")
                continue
            if self._settle_one(trader, cloid, known):
                report.settled += 1
                self.app.save_trader(trader)

    def _settle_one(self, trader: Trader, cloid: str, known: OrderReport) -> bool:
        pending = trader.pending.get(cloid)
        if pending is None:
            return False
        now = self.clock.now()
        if known.state is OrderState.UNKNOWN:
            trader.record_order_rejected(
                cloid,
                reason=VenueRejection.NOT_ON_VENUE.value,
                detail="the venue has no order with this cloid (it was never sent or lost)",
                at=now,
            )
            return True
        if known.state is OrderState.REJECTED:
            trader.record_order_rejected(
                cloid, reason=known.reason or "rejected", detail=known.detail, at=now
            )
            return True
        if not known.state.terminal:
            return False
        if known.filled_size > pending.filled:
            # The venue filled more than the books show: the fills are not visible yet.
            waited = self._waiting_fills.get(cloid, 0) + 1
            self._waiting_fills[cloid] = waited
            if waited == self.fill_grace_passes:
                self.alerts.alert(
                    trader.config_id,
                    "fills_missing",
                    f"order {cloid} filled {known.filled_size} on the venue but only "
                    f"{pending.filled} is in the fill feed",
                )
            return False
        self._waiting_fills.pop(cloid, None)
        reason = known.reason or (
            "ioc_remainder" if known.state is OrderState.FILLED else known.state.value
        )
        trader.record_order_canceled(
            cloid,
            reason=reason,
            detail=f"filled {pending.filled} of {pending.size}",
            at=now,
        )
        return True
