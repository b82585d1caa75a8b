"""The order desk: sends recorded orders to the venue, exactly once.

An order is only sent after its ``OrderPlaced`` is saved. An ambiguous outcome (timeout,
5xx, dropped connection) is never answered by sending again: the order is first looked
up by its cloid, and only an order the venue has never seen is resubmitted — with the
same cloid, so even a lookup that lies cannot make a second order. Retries back off
exponentially with jitter.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Iterable
from datetime import timedelta
from decimal import Decimal

from application.ports import (
    Alerts,
    Clock,
    Exchange,
    ExchangeError,
    OrderReport,
    OrderState,
    OrderTicket,
    TimeInForce,
    VenueRefused,
    VenueRejection,
)
from application.settings import EngineSettings
from application.trading import TradingApp
from domain.trader import PendingOrder, Trader
from domain.values import OrderIntent, OrderSide
from domain.venue import round_price

log = logging.getLogger("nof0.engine")

#: How far back the fill feed is read to see whether an order with no status filled.
FEED_WITNESS_WINDOW = timedelta(hours=1)


class OrderDesk:
    def __init__(
        self,
        app: TradingApp,
        exchange: Exchange,
        clock: Clock,
        engine: EngineSettings,
        alerts: Alerts,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.app = app
        self.exchange = exchange
        self.clock = clock
        self.engine = engine
        self.alerts = alerts
        self._rng = rng or random.Random()

    async def submit(self, trader: Trader, cloids: Iterable[str]) -> dict[str, OrderReport]:
        """Send pending orders; record refusals; return the venue's reports by cloid.

        Fills are not recorded here: they come from the venue's fill feed (with their exact
        fees), which ``VenueSync`` records once each."""
        reports: dict[str, OrderReport] = {}
        assets = await self._assets()
        for cloid in cloids:
            pending = trader.pending.get(cloid)
            if pending is None:
                continue
            if pending.intent is not OrderIntent.CLOSE and not await self._leverage(
                trader, pending
            ):
                continue
            decimals = assets.get(pending.coin)
            limit = (
                round_price(pending.limit_price, decimals, up=pending.side is OrderSide.BUY)
                if decimals is not None
                else pending.limit_price
            )
            ticket = OrderTicket(
                cloid=cloid,
                coin=pending.coin,
                side=pending.side,
                size=pending.size - pending.filled,
                limit_price=limit,
                reduce_only=pending.reduce_only,
                tif=TimeInForce.IOC,
            )
            report = await self.send(ticket)
            if report is None:
                self.alerts.alert(
                    trader.config_id,
                    "order_outcome_unknown",
                    f"order {cloid} ({pending.coin}) has no known outcome; it stays pending "
                    "and is reconciled with the venue",
                )
                log.warning("trader=%s order %s outcome unknown", trader.config_id, cloid)
                continue
            reports[cloid] = report
            if report.state is OrderState.REJECTED:
                trader.record_order_rejected(
                    cloid, reason=report.reason, detail=report.detail, at=self.clock.now()
                )
                self.app.save_trader(trader)
                log.warning(
                    "trader=%s order %s %s rejected: %s (%s)",
                    trader.config_id,
                    pending.coin,
                    cloid,
                    report.reason,
                    report.detail,
                )
        return reports

    async def _assets(self) -> dict[str, int]:
        try:
            return {c: a.sz_decimals for c, a in (await self.exchange.assets()).items()}
        except ExchangeError:
            return {}

    async def _leverage(self, trader: Trader, pending: PendingOrder) -> bool:
        """Set the coin's leverage before an entry; refuse the order when that fails."""
        reason, detail = VenueRejection.NOT_SENT, ""
        for attempt in range(max(1, self.engine.order_retries)):
            if attempt:
                await self._backoff(attempt)
            try:
                await self.exchange.set_leverage(pending.coin, pending.leverage)
                return True
            except VenueRefused as exc:
                reason, detail = (
                    VenueRejection.LEVERAGE,
                    f"leverage {pending.leverage}x: {exc.detail}",
                )
                break
            except ExchangeError as exc:
                detail = f"leverage {pending.leverage}x could not be set: {exc}"
                log.warning("trader=%s %s", trader.config_id, detail)
        trader.record_order_rejected(
            pending.cloid, reason=reason.value, detail=detail, at=self.clock.now()
        )
        self.app.save_trader(trader)
        return False

    async def send(self, ticket: OrderTicket) -> OrderReport | None:
        """Place ``ticket``; after an ambiguous failure, look it up before any resubmission.

        None: still unknown after every attempt (the order stays pending)."""
        attempts = max(1, self.engine.order_retries)
        for attempt in range(attempts):
            if attempt:
                await self._backoff(attempt)
                known = await self.lookup(ticket.cloid)
                if known is None:
                    continue
                if known.state is not OrderState.UNKNOWN:
                    return known
                # A second witness before sending again: an IOC that filled is terminal,
                # and a venue lets a terminal order's cloid be used again.
                witnessed = await self._filled_per_feed(ticket.cloid)
                if witnessed is None:
                    continue
                if witnessed.state is not OrderState.UNKNOWN:
                    return witnessed
            try:
                report = await self.exchange.place(ticket)
            except ExchangeError as exc:
                log.warning(
                    "order %s attempt %d/%d failed: %s", ticket.cloid, attempt + 1, attempts, exc
                )
                continue
            if report.reason == VenueRejection.DUPLICATE_CLOID.value:
                # The venue already has this very order open (an earlier attempt landed):
                # that is proof enough, whatever a lagging lookup says.
                known = await self.lookup(ticket.cloid)
                if known is not None and known.state is not OrderState.UNKNOWN:
                    return known
                return OrderReport(
                    ticket.cloid,
                    OrderState.OPEN,
                    reason=VenueRejection.DUPLICATE_CLOID.value,
                    detail=f"already open on the venue: {report.detail}",
                )
            return report
        return None

    async def _filled_per_feed(self, cloid: str) -> OrderReport | None:
        """What the fill feed says of ``cloid`` (None: the feed could not be read)."""
        try:
            fills = await self.exchange.fills_since(self.clock.now() - FEED_WITNESS_WINDOW)
        except ExchangeError as exc:
            log.warning("fill feed unavailable while checking %s: %s", cloid, exc)
            return None
        mine = [f for f in fills if f.cloid == cloid]
        if not mine:
            return OrderReport(cloid, OrderState.UNKNOWN)
        size = sum((f.size for f in mine), start=Decimal(0))
        notional = sum((f.size * f.price for f in mine), start=Decimal(0))
        return OrderReport(
            cloid,
            OrderState.FILLED,
            oid=mine[0].oid,
            filled_size=size,
            avg_price=notional / size,
            detail="found in the fill feed",
        )

    async def lookup(self, cloid: str) -> OrderReport | None:
        try:
            return await self.exchange.order_status(cloid)
        except ExchangeError as exc:
            log.warning("order lookup %s failed: %s", cloid, exc)
            return None

    async def _backoff(self, attempt: int) -> None:
        base = self.engine.order_backoff_s * (2 ** (attempt - 1))
        delay = min(self.engine.order_max_backoff_s, base) * self._rng.uniform(0.5, 1.5)
        if delay > 0:
            await asyncio.sleep(delay)
