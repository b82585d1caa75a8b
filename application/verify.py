"""Replay-verify: re-run the pure part of recorded cycles and compare with what was recorded.

For every recorded cycle the trader's state before it is rebuilt from its own events, and:

* the prompt is rendered again from the recorded snapshot and account (digest compared);
* the recorded raw answer is read again (parse + JSON Schema) and compared with the
  recorded decisions, per-item refusals, or typed failure;
* risk checks and order planning run again and are compared with the recorded
  ``RiskRejected`` and ``OrderPlaced`` events (rules, sizes, prices, cloids).

Any difference is a divergence: code, configuration or templates no longer reproduce what
was decided, or a recorded event was altered. This is the check to run before resuming
live trading.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import msgspec

from application.cycle import SchemaCheck, account_view, prompt_limits, read_answer
from application.ports import MarketSnapshot, PromptRenderer
from application.settings import TraderSettings
from domain.decision import DecisionParseError, ParsedDecision
from domain.risk import AssetRules, RiskRule, plan_orders
from domain.trader import Trader, make_cloid


@dataclass(frozen=True)
class Divergence:
    trader: str
    cycle_id: str
    kind: str  # prompt | parse | schema | risk | orders
    recorded: str
    replayed: str

    def __str__(self) -> str:
        return (
            f"{self.trader} {self.cycle_id} [{self.kind}]\n"
            f"    recorded: {self.recorded}\n    replayed: {self.replayed}"
        )


@dataclass
class VerifyReport:
    traders: list[str] = field(default_factory=list)
    cycles: int = 0
    skipped: int = 0  # failures with no answer to read (timeouts, transport errors)
    divergences: list[Divergence] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.divergences


@dataclass
class _Cycle:
    requested: Any
    state: Trader  # the trader just before the cycle
    events: list[Any] = field(default_factory=list)


def _cycles(events: Iterable[Any]) -> list[_Cycle]:
    trader: Trader | None = None
    cycles: list[_Cycle] = []
    by_id: dict[str, _Cycle] = {}
    for event in events:
        if isinstance(event, Trader.DecisionRequested):
            assert trader is not None
            cycle = _Cycle(event, copy.deepcopy(trader))
            cycles.append(cycle)
            by_id[event.cycle_id] = cycle
        else:
            cycle_id = getattr(event, "cycle_id", None)
            if cycle_id in by_id:
                by_id[cycle_id].events.append(event)
        trader = event.mutate(trader)
    return cycles


class ReplayVerifier:
    def __init__(
        self,
        *,
        events_of: Callable[[str], Iterable[Any]],
        settings: Mapping[str, TraderSettings],
        assets: Mapping[str, AssetRules],
        fee_rate: Decimal,
        renderer: PromptRenderer | None = None,
        schema: SchemaCheck | None = None,
    ) -> None:
        self.events_of = events_of
        self.settings = dict(settings)
        self.assets = dict(assets)
        self.fee_rate = fee_rate
        self.renderer = renderer
        self.schema = schema

    def verify(
        self, traders: Sequence[str] | None = None, *, last: int | None = None
    ) -> VerifyReport:
        report = VerifyReport()
        for config_id in traders or list(self.settings):
            if config_id not in self.settings:
                raise LookupError(f"trader {config_id!r} is not configured")
            report.traders.append(config_id)
            cycles = _cycles(self.events_of(config_id))
            if last is not None:
                cycles = cycles[-last:] if last > 0 else []
            for cycle in cycles:
                report.cycles += 1
                self._verify(self.settings[config_id], cycle, report)
        return report

    def _verify(self, cfg: TraderSettings, cycle: _Cycle, report: VerifyReport) -> None:
        requested = cycle.requested
        trader = cycle.state
        marks: dict[str, Decimal] = dict(requested.marks)
        cycle_id = requested.cycle_id

        def diverge(kind: str, recorded: object, replayed: object) -> None:
            report.divergences.append(
                Divergence(cfg.config_id, cycle_id, kind, str(recorded), str(replayed))
            )

        if self.renderer is not None:
            snapshot = msgspec.json.decode(requested.snapshot, type=MarketSnapshot)
            account = account_view(
                trader, marks, self.assets, as_of=requested.as_of, sharpe=trader.sharpe()
            )
            prompt = self.renderer.render(
                system_template=cfg.system_template,
                user_template=cfg.user_template,
                snapshot=snapshot,
                account=account,
                limits=prompt_limits(cfg),
                as_of=requested.as_of,
            )
            if prompt.digest != requested.prompt_digest:
                diverge(
                    "prompt",
                    f"digest {requested.prompt_digest[:16]} ({requested.prompt_version})",
                    f"digest {prompt.digest[:16]} ({prompt.version})",
                )

        responded = next((e for e in cycle.events if isinstance(e, Trader.LLMResponded)), None)
        failed = next((e for e in cycle.events if isinstance(e, Trader.LLMFailed)), None)
        if responded is None:
            if failed is None or not failed.raw_text:
                report.skipped += 1
                return
            try:
                read_answer(failed.raw_text, cfg.coins, self.schema)
            except DecisionParseError as exc:
                if exc.reason.value != failed.reason:
                    diverge("parse", f"failed: {failed.reason}", f"failed: {exc.reason.value}")
                return
            diverge("parse", f"failed: {failed.reason}", "the answer reads as a decision")
            return

        try:
            parsed = read_answer(responded.raw_text, cfg.coins, self.schema)
        except DecisionParseError as exc:
            diverge("parse", "decided", f"failed: {exc.reason.value} ({exc.detail})")
            return
        recorded_items = [_normal(d) for d in responded.decisions]
        replayed_items = [_normal(i.to_record()) for i in parsed.items]
        if recorded_items != replayed_items:
            diverge("parse", recorded_items, replayed_items)
        refusals = [e for e in cycle.events if isinstance(e, Trader.RiskRejected)]
        recorded_schema = sorted(
            e.coin for e in refusals if e.rule == RiskRule.DECISION_SCHEMA.value
        )
        replayed_schema = sorted(r.coin for r in parsed.rejections)
        if recorded_schema != replayed_schema:
            diverge("schema", recorded_schema, replayed_schema)
        self._verify_orders(cfg, trader, parsed, marks, cycle, diverge)

    def _verify_orders(
        self,
        cfg: TraderSettings,
        trader: Trader,
        parsed: ParsedDecision,
        marks: dict[str, Decimal],
        cycle: _Cycle,
        diverge: Callable[[str, object, object], None],
    ) -> None:
        # Which coins other traders on the account held is an input from outside this
        # trader's log: it is taken from the refusals that recorded it.
        claimed = {
            e.coin: e.values.get("holder", "")
            for e in cycle.events
            if isinstance(e, Trader.RiskRejected) and e.rule == RiskRule.COIN_HELD_BY_OTHER.value
        }
        plan = plan_orders(
            parsed.items,
            account=trader.account(marks),
            marks=marks,
            limits=cfg.limits,
            assets=self.assets,
            slippage_bps=cfg.slippage_bps,
            taker_fee_rate=self.fee_rate,
            claimed=claimed,
        )
        recorded_risk = [
            (e.coin, e.rule)
            for e in cycle.events
            if isinstance(e, Trader.RiskRejected) and e.rule != RiskRule.DECISION_SCHEMA.value
        ]
        replayed_risk = [(r.coin, r.rule) for r in plan.rejections]
        if recorded_risk != replayed_risk:
            diverge("risk", recorded_risk, replayed_risk)
        cycle_id = cycle.requested.cycle_id
        recorded_orders = [
            (
                e.cloid,
                e.coin,
                e.side,
                str(e.size),
                e.intent,
                e.reduce_only,
                e.leverage,
                str(e.limit_price),
            )
            for e in cycle.events
            if isinstance(e, Trader.OrderPlaced)
        ]
        replayed_orders = [
            (
                make_cloid(trader.id, cycle_id, f"{leg}:{o.coin}:{o.intent.value}"),
                o.coin,
                o.side.value,
                str(o.size),
                o.intent.value,
                o.reduce_only,
                o.leverage,
                str(o.limit_price),
            )
            for leg, o in enumerate(plan.orders)
        ]
        if recorded_orders != replayed_orders:
            diverge("orders", recorded_orders, replayed_orders)


def _normal(record: Mapping[str, Any]) -> dict[str, Any]:
    """A decision record with numbers compared by value (0.10 == 0.1)."""
    result = {}
    for key, value in record.items():
        if isinstance(value, str) and key in (
            "quantity",
            "profit_target",
            "stop_loss",
            "confidence",
            "risk_usd",
        ):
            value = Decimal(value).normalize()
        elif isinstance(value, Decimal):
            value = value.normalize()
        result[key] = value
    return result
