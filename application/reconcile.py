"""Start-up reconciliation: settle orders left in flight and compare positions."""

from __future__ import annotations

import logging
from datetime import datetime

from application.cycle import OrderDesk
from application.ports import Alerts, Exchange, ExchangeError, OrderStatus
from application.trading import TradingApp

log = logging.getLogger("nof0.engine")


async def reconcile_trader(
    app: TradingApp,
    desk: OrderDesk,
    exchange: Exchange,
    alerts: Alerts,
    config_id: str,
    now: datetime,
) -> list[str]:
    """Resolve every pending order by its cloid, then check positions; return findings.

    An order the venue never saw is recorded as rejected (``not_on_venue``); one it filled
    is recorded as filled. Positions that differ from the venue's pause the trader.
    """
    trader = app.get_trader(config_id)
    findings: list[str] = []
    for cloid in list(trader.pending):
        try:
            result = await exchange.order_status(config_id, cloid)
        except ExchangeError as exc:
            findings.append(f"order {cloid}: lookup failed ({exc})")
            continue
        if result.status is OrderStatus.UNKNOWN:
            trader.record_order_rejected(
                cloid,
                reason="not_on_venue",
                detail="the venue has no order with this cloid (lost before sending)",
                at=now,
            )
            findings.append(f"order {cloid}: not on the venue, recorded as rejected")
        else:
            desk.record(trader, result)
            findings.append(f"order {cloid}: {result.status.value} on the venue, recorded")
    try:
        venue = await exchange.positions(config_id)
    except ExchangeError as exc:
        findings.append(f"positions: lookup failed ({exc})")
        app.save_trader(trader)
        return findings
    drift = []
    for coin in sorted(set(venue) | set(trader.positions)):
        ours = trader.positions[coin].qty if coin in trader.positions else 0
        theirs = venue[coin].qty if coin in venue else 0
        if ours != theirs:
            drift.append(f"{coin}: books {ours}, venue {theirs}")
    if drift:
        detail = "; ".join(drift)
        trader.pause("drift", detail, now)
        alerts.alert(config_id, "drift", detail)
        log.error("trader=%s positions differ from the venue: %s (paused)", config_id, detail)
        findings.append(f"drift: {detail}")
    app.save_trader(trader)
    return findings
