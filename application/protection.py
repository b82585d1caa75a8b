"""Protective exits: close a position when the mark crosses its stop or target.

The venue-side trigger orders of the Hyperliquid adapter make this a second line of
defence; against the in-process simulator it is the only one.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

from application.cycle import OrderDesk
from application.settings import TraderSettings
from application.trading import TradingApp
from domain.risk import close_order, protective_exit
from domain.trader import make_cloid
from domain.values import CloseReason, OrderIntent

log = logging.getLogger("nof0.engine")


async def enforce_exit_plans(
    app: TradingApp,
    desk: OrderDesk,
    settings: TraderSettings,
    marks: Mapping[str, Decimal],
    now: datetime,
) -> int:
    """Place and send closing orders for crossed stops/targets; return the fills."""
    trader = app.get_trader(settings.config_id)
    if not trader.positions:
        return 0
    closing = {p.coin for p in trader.pending.values() if p.intent is OrderIntent.CLOSE}
    cloids: list[str] = []
    for coin, position in sorted(trader.positions.items()):
        mark = marks.get(coin)
        if mark is None or coin in closing:
            continue
        reason = protective_exit(position, mark)
        if reason is CloseReason.STOP and not settings.stop_loss_enabled:
            continue
        if reason is CloseReason.TARGET and not settings.take_profit_enabled:
            continue
        if reason is None:
            continue
        # One id per attempt: the trader's version moves on after each recorded outcome,
        # while a retry of this very attempt reuses the id.
        cloid = make_cloid(trader.id, f"exit@{trader.version}", f"{coin}:{reason.value}")
        order = close_order(position, mark, reason, settings.slippage_bps)
        trader.place(cycle_id=f"{settings.config_id}#exit", cloid=cloid, order=order, at=now)
        cloids.append(cloid)
        plan = position.context.exit_plan
        assert plan is not None  # protective_exit only fires on a plan
        level = plan.stop_loss if reason is CloseReason.STOP else plan.profit_target
        log.info(
            "trader=%s %s %s %s hit: mark %s crossed %s",
            settings.config_id,
            position.side.value,
            coin,
            reason.value,
            mark,
            level,
        )
    if not cloids:
        return 0
    app.save_trader(trader)
    return await desk.submit(trader, cloids)
