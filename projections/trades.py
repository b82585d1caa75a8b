"""The trades view: every closed position as one trade, net of fees and funding."""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

from domain.trader import Trader
from projections.common import (
    human_time,
    num,
    oid,
    originator,
    seconds,
    tid,
    trade_doc_id,
)
from projections.documents import LiquidationDoc, TradeDoc
from projections.engine import Projector, ViewMeta


class TradesMeta(ViewMeta):
    names: dict[str, str] = {}


class TradesState(msgspec.Struct):
    trades: list[TradeDoc] = []
    view: TradesMeta = msgspec.field(name="_view", default_factory=lambda: TradesMeta(""))


class TradesProjector(Projector[TradesState]):
    name = "trades"
    version = 1
    primary = "trades.json"
    state_type: ClassVar[type[Any]] = TradesState
    handles: ClassVar[frozenset[type[Any]] | None] = frozenset(
        {Trader.Registered, Trader.PositionClosed}
    )

    def initial(self) -> TradesState:
        return TradesState(view=TradesMeta(self.view_name))

    def meta(self, state: TradesState) -> ViewMeta:
        return state.view

    def reduce(self, state: TradesState, kind: type[Any], event: Any) -> bool:
        if kind is Trader.Registered:
            state.view.names[originator(event)] = event.config_id
            return False
        if kind is not Trader.PositionClosed:
            return False
        trader = state.view.names.get(originator(event))
        if trader is None:
            return False
        state.trades.append(trade_document(trader, event))
        return True


def trade_document(trader: str, event: Any) -> TradeDoc:
    sign = 1 if event.side == "long" else -1
    entry_t = seconds(event.opened_at)
    exit_t = seconds(event.closed_at)
    plan = event.exit_plan
    liquidation = (
        LiquidationDoc(method="market", mark_px=num(event.exit_price))
        if event.reason == "liquidation"
        else None
    )
    return TradeDoc(
        id=trade_doc_id(trader, event.entry_cloid, event.exit_cloid),
        model_id=trader,
        symbol=event.coin,
        side=event.side,
        trade_type=event.side,
        trade_id=f"{entry_t}_{event.coin}_{exit_t}_{trader}",
        quantity=num(event.size) * sign,
        leverage=float(event.leverage),
        confidence=num(event.confidence),
        entry_price=num(event.entry_price),
        entry_time=entry_t,
        entry_human_time=human_time(event.opened_at),
        entry_sz=num(event.size),
        entry_tid=tid(event.entry_cloid, "entry"),
        entry_oid=oid(event.entry_cloid),
        entry_crossed=True,
        entry_liquidation=None,
        entry_commission_dollars=num(event.entry_fees),
        entry_closed_pnl=-num(event.entry_fees),
        exit_price=num(event.exit_price),
        exit_time=exit_t,
        exit_human_time=human_time(event.closed_at),
        exit_sz=num(event.size),
        exit_tid=tid(event.exit_cloid, "exit"),
        exit_oid=oid(event.exit_cloid),
        exit_crossed=True,
        exit_liquidation=liquidation,
        exit_commission_dollars=num(event.exit_fees),
        exit_closed_pnl=num(event.gross_pnl - event.exit_fees + event.funding),
        exit_plan={
            "profit_target": float(plan["profit_target"]),
            "stop_loss": float(plan["stop_loss"]),
            "invalidation_condition": str(plan.get("invalidation_condition", "")),
        }
        if plan
        else {},
        realized_gross_pnl=num(event.gross_pnl),
        realized_net_pnl=num(event.net_pnl),
        total_commission_dollars=num(event.entry_fees + event.exit_fees),
        close_reason=event.reason,
    )
