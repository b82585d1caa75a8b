"""Booking the venue's fills and funding payments, each exactly once (by the venue's id),
on the trader that caused them; what belongs to no trader is observed on the
``VenueAccount``, never in a book."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from application.ports import Alerts, VenueFunding
from application.trading import TradingApp
from application.venue_state import SyncReport, VenueRead
from domain.trader import Trader
from domain.values import ZERO, CloseReason
from domain.venue_account import VenueAccount

log = logging.getLogger("nof0.engine")


def book_fills(
    app: TradingApp,
    alerts: Alerts,
    venue: VenueRead,
    everyone: list[Trader],
    mine: dict[str, Trader],
    account: VenueAccount | None,
    report: SyncReport,
    foreign: set[str],
) -> None:
    """Book each fill of this read not yet in a book on the trader that caused it: by
    cloid, else (a liquidation, someone else's trade) on the coin's holder at the time."""
    by_cloid: dict[str, Trader] = {}
    recorded: set[str] = set(foreign)  # observed as foreign: never booked later
    for trader in everyone:
        for cloid in (*trader.pending, *trader.protections):
            by_cloid[cloid] = trader
        recorded.update(trader.fill_ids)
    for fill in sorted(venue.fills, key=lambda f: (f.time, f.fill_id)):
        if fill.fill_id in recorded:
            # Already in a book: fills are re-read for a while after they happen, when
            # their order (and maybe the coin's holder) may have changed since.
            continue
        owner = by_cloid.get(fill.cloid) if fill.cloid else None
        reason: CloseReason | None = None
        if owner is None:
            owner = holder_at(everyone, fill.coin, fill.time)
            reason = CloseReason.LIQUIDATION if fill.liquidation else CloseReason.EXTERNAL
        if owner is None:
            if account is not None and account.observe_fill(
                fill_id=fill.fill_id,
                oid=fill.oid,
                cloid=fill.cloid,
                coin=fill.coin,
                side=fill.side.value,
                size=fill.size,
                price=fill.price,
                fee=fill.fee,
                liquidation=fill.liquidation,
                at=fill.time,
            ):
                report.foreign += 1
                alerts.alert(
                    "venue",
                    "foreign_fill",
                    f"{fill.side.value} {fill.size} {fill.coin} @ {fill.price} on the "
                    f"account was not placed by any trader (oid {fill.oid})",
                )
            continue
        if owner.config_id not in mine:
            continue  # recorded by the pass that holds this trader's lock
        pending = owner.pending.get(fill.cloid) if fill.cloid else None
        was_recorded = owner.record_fill(
            fill.cloid or f"oid:{fill.oid}",
            price=fill.price,
            size=fill.size,
            fee=fill.fee,
            liquidity=fill.liquidity,
            at=fill.time,
            final=pending is not None and pending.filled + fill.size >= pending.size,
            coin=fill.coin,
            side=fill.side,
            reason=reason,
            fill_id=fill.fill_id,
            oid=fill.oid,
        )
        if was_recorded:
            recorded.add(fill.fill_id)
            report.fills += 1
            app.save_trader(owner)
            if reason is not None:
                log.warning(
                    "trader=%s %s fill on the venue: %s %s %s @ %s",
                    owner.config_id,
                    reason.value,
                    fill.side.value,
                    fill.size,
                    fill.coin,
                    fill.price,
                )


def book_funding(
    app: TradingApp,
    venue: VenueRead,
    everyone: list[Trader],
    mine: dict[str, Trader],
    account: VenueAccount | None,
    report: SyncReport,
    foreign: set[str],
) -> None:
    """Book each funding payment not yet in a book on the position it was paid on."""
    recorded = {i for t in everyone for i in t.funding_ids} | foreign
    for row in sorted(venue.funding, key=lambda f: (f.time, f.funding_id)):
        if row.funding_id in recorded:
            continue
        owner = funding_owner(row, everyone)
        if owner is None:
            if account is not None and account.observe_funding(
                funding_id=row.funding_id,
                coin=row.coin,
                amount=row.amount,
                rate=row.rate,
                size=row.size,
                at=row.time,
            ):
                report.foreign += 1
            continue
        if owner.config_id not in mine:
            continue
        price = (
            abs(row.amount / (row.size * row.rate)) if row.size and row.rate else ZERO
        ).quantize(Decimal("0.000001"))
        if owner.settle_funding(
            coin=row.coin,
            amount=row.amount,
            rate=row.rate,
            price=price,
            at=row.time,
            funding_id=row.funding_id,
        ):
            recorded.add(row.funding_id)
            report.funding += 1
            app.save_trader(owner)


def holder_at(traders: Iterable[Trader], coin: str, at: datetime) -> Trader | None:
    """The trader that held ``coin`` when a fill that is not its own happened: one whose
    position, order or protection in it already existed then (a later holder did not
    hold it yet: the fill is someone else's)."""
    for trader in traders:
        position = trader.positions.get(coin)
        if position is not None and position.opened_at <= at:
            return trader
        if any(p.coin == coin and p.placed_at <= at for p in trader.pending.values()):
            return trader
        if any(g.coin == coin and g.placed_at <= at for g in trader.protections.values()):
            return trader
    return None


def funding_owner(row: VenueFunding, traders: Iterable[Trader]) -> Trader | None:
    """The trader whose position the payment was made on: the one holding the coin since
    before the payment, else the one whose position in it closed first after it."""
    traders = list(traders)
    for trader in traders:
        position = trader.positions.get(row.coin)
        if (
            position is not None
            and position.opened_at <= row.time
            and (position.qty > 0) == (row.size > 0)
        ):
            return trader
    closed = [
        (stamp, trader.config_id, trader)
        for trader in traders
        if (stamp := trader.closed_at.get(row.coin)) is not None and stamp >= row.time
    ]
    return min(closed, key=lambda c: (c[0], c[1]))[2] if closed else None
