"""What should protect an open position on the venue: one reduce-only stop and one
take-profit, each covering the full size, at the levels of the position's exit plan.

Pure: the application compares this with what the venue has and places, resizes or
cancels orders until they agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from domain.ledger import Position
from domain.values import ONE, CloseReason, OrderSide, Side
from domain.venue import round_price

#: How far past its trigger a triggered market order may fill (Hyperliquid's UI uses 10 %).
WORST_FILL_PCT = Decimal("0.10")


@dataclass(frozen=True)
class DesiredProtection:
    coin: str
    kind: CloseReason  # STOP or TARGET
    side: OrderSide  # the closing side
    size: Decimal
    trigger_price: Decimal
    limit_price: Decimal  # the worst fill price once triggered


def desired_protections(
    position: Position,
    *,
    sz_decimals: int,
    stop: bool = True,
    target: bool = True,
    worst_fill_pct: Decimal = WORST_FILL_PCT,
) -> list[DesiredProtection]:
    """The stop and target for ``position`` (none without an exit plan)."""
    plan = position.context.exit_plan
    if plan is None:
        return []
    closing = OrderSide.SELL if position.side is Side.LONG else OrderSide.BUY
    wanted: list[tuple[CloseReason, Decimal]] = []
    if stop:
        wanted.append((CloseReason.STOP, plan.stop_loss))
    if target:
        wanted.append((CloseReason.TARGET, plan.profit_target))
    result = []
    for kind, level in wanted:
        if level <= 0:
            continue
        trigger = round_price(level, sz_decimals)
        # The worst price is away from the trigger in the closing direction: a sell may
        # fill lower, a buy higher.
        if closing is OrderSide.SELL:
            worst = round_price(trigger * (ONE - worst_fill_pct), sz_decimals, up=False)
        else:
            worst = round_price(trigger * (ONE + worst_fill_pct), sz_decimals, up=True)
        result.append(
            DesiredProtection(
                coin=position.coin,
                kind=kind,
                side=closing,
                size=position.size,
                trigger_price=trigger,
                limit_price=worst,
            )
        )
    return result
