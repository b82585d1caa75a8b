"""Transcodings for the domain value objects kept in aggregate state (snapshots)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from eventsourcing.persistence import Transcoding

from domain.ledger import EntryContext, ExitPlan, Position
from domain.trader import PendingOrder, Protection
from domain.values import CloseReason, OrderIntent, OrderSide


class ExitPlanAsDict(Transcoding):
    type = ExitPlan
    name = "nof0_exit_plan"

    def encode(self, obj: ExitPlan) -> dict[str, Any]:
        return obj.to_record()

    def decode(self, data: dict[str, Any]) -> ExitPlan:
        plan = ExitPlan.from_record(data)
        assert plan is not None
        return plan


class EntryContextAsDict(Transcoding):
    type = EntryContext
    name = "nof0_entry_context"

    def encode(self, obj: EntryContext) -> dict[str, Any]:
        return {
            "leverage": obj.leverage,
            "exit_plan": obj.exit_plan,
            "confidence": obj.confidence,
            "risk_usd": obj.risk_usd,
            "justification": obj.justification,
        }

    def decode(self, data: dict[str, Any]) -> EntryContext:
        return EntryContext(**data)


class PositionAsDict(Transcoding):
    type = Position
    name = "nof0_position"

    def encode(self, obj: Position) -> dict[str, Any]:
        return {f.name: getattr(obj, f.name) for f in fields(obj)}

    def decode(self, data: dict[str, Any]) -> Position:
        return Position(**data)


class PendingOrderAsDict(Transcoding):
    type = PendingOrder
    name = "nof0_pending_order"

    def encode(self, obj: PendingOrder) -> dict[str, Any]:
        return {
            "cloid": obj.cloid,
            "cycle_id": obj.cycle_id,
            "coin": obj.coin,
            "side": obj.side.value,
            "size": obj.size,
            "intent": obj.intent.value,
            "reduce_only": obj.reduce_only,
            "leverage": obj.leverage,
            "limit_price": obj.limit_price,
            "reason": obj.reason.value if obj.reason else None,
            "context": obj.context,
            "placed_at": obj.placed_at,
            "filled": obj.filled,
        }

    def decode(self, data: dict[str, Any]) -> PendingOrder:
        data = dict(data)
        data["side"] = OrderSide(data["side"])
        data["intent"] = OrderIntent(data["intent"])
        data["reason"] = CloseReason(data["reason"]) if data["reason"] else None
        return PendingOrder(**data)


class ProtectionAsDict(Transcoding):
    type = Protection
    name = "nof0_protection"

    def encode(self, obj: Protection) -> dict[str, Any]:
        data = {f.name: getattr(obj, f.name) for f in fields(obj)}
        data["kind"] = obj.kind.value
        data["side"] = obj.side.value
        return data

    def decode(self, data: dict[str, Any]) -> Protection:
        data = dict(data)
        data["kind"] = CloseReason(data["kind"])
        data["side"] = OrderSide(data["side"])
        return Protection(**data)


ALL_TRANSCODINGS: tuple[type[Transcoding], ...] = (
    ExitPlanAsDict,
    EntryContextAsDict,
    PositionAsDict,
    PendingOrderAsDict,
    ProtectionAsDict,
)
