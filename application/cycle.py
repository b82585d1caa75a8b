"""One decision cycle of one trader, and the order plumbing it shares with protective exits.

Order of effects (ARCHITECTURE.md §8):

1. market snapshot (missing or stale → ``CycleSkipped``, nothing else);
2. ``DecisionRequested`` with the exact snapshot and prompt digest is saved *before* the
   model is asked, so every question has a record even if the process dies;
3. the answer is read and risk-checked in the domain; ``LLMResponded``/``LLMFailed``,
   ``RiskRejected`` and ``OrderPlaced`` (with a deterministic cloid) are saved together —
   if that save fails, no order is sent;
4. orders go to the exchange (retries reuse the cloid and look the order up first);
   refusals are saved; the venue's fills are then recorded by a reconciliation pass for
   this trader, which also puts the stop and target of a new position on the venue.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec

from application.blindfold import Blindfold
from application.budget import BudgetLevel
from application.gateway import Attempt, DecisionGateway, GatewayOutcome, ModelSpec
from application.orders import OrderDesk
from application.ports import (
    AccountView,
    Alerts,
    Clock,
    DecisionModel,
    DecisionRequest,
    Exchange,
    ExchangeError,
    MarketData,
    MarketDataError,
    MarketSnapshot,
    PositionView,
    PromptLimits,
    PromptRenderer,
    RenderedPrompt,
    StaleData,
)
from application.routing import ModelChoice, ModelRouter, RouterPolicy, Switch
from application.settings import EngineSettings, TraderSettings
from application.trading import TradingApp
from application.venue_sync import VenueSync
from domain.breakers import BreakerRule, Trip, TripAction, throttle, tripped
from domain.decision import ParsedDecision, apply_schema_verdicts, parse_decision
from domain.ledger import liquidation_price
from domain.risk import AssetRules, OrderPlan, PlannedOrder, plan_orders
from domain.trader import PromptRecord, Trader, make_cloid
from domain.triggers import WakeRecord
from domain.values import LLMFailureReason, SkipReason

log = logging.getLogger("nof0.engine")

_SNAPSHOT_ENCODER = msgspec.json.Encoder(decimal_format="string")


class PromptError(Exception):
    """The prompt could not be rendered from the snapshot (a template bug)."""


@dataclass
class CycleOutcome:
    trader: str
    cycle_id: str | None
    status: str  # "skipped" | "failed" | "decided" | "paused"
    detail: str = ""
    orders: list[str] = field(default_factory=list)
    fills: int = 0


@dataclass(frozen=True)
class _Inputs:
    """What one cycle gathers before it asks the model."""

    snapshot: MarketSnapshot
    marks: dict[str, Decimal]
    assets: dict[str, AssetRules]
    account: AccountView
    prompt: RenderedPrompt


#: The canonical texts of the newest snapshots, by identity (the entry holds its snapshot,
#: so the id cannot be reused while it lives): the traders of a tick share one snapshot
#: (``SharedSnapshots``), and encoding and hashing it per trader was a tenth of a cycle.
_CANONICAL: dict[int, tuple[MarketSnapshot, tuple[str, str]]] = {}
_CANONICAL_KEPT = 16


def canonical_snapshot(snapshot: MarketSnapshot) -> tuple[str, str]:
    """The snapshot as stored in ``DecisionRequested`` and its sha256 (snapshots are
    immutable: one encoded before is not encoded again)."""
    hit = _CANONICAL.get(id(snapshot))
    if hit is not None and hit[0] is snapshot:
        return hit[1]
    text = _SNAPSHOT_ENCODER.encode(snapshot).decode()
    result = text, hashlib.sha256(text.encode()).hexdigest()
    _CANONICAL[id(snapshot)] = (snapshot, result)
    if len(_CANONICAL) > _CANONICAL_KEPT:
        del _CANONICAL[next(iter(_CANONICAL))]
    return result


def account_view(
    trader: Trader,
    marks: dict[str, Decimal],
    assets: dict[str, AssetRules],
    *,
    as_of: datetime,
    sharpe: float = 0.0,
) -> AccountView:
    account = trader.account(marks)
    max_lev = {coin: rules.max_leverage for coin, rules in assets.items()}
    views = []
    for coin, position in sorted(trader.positions.items()):
        mark = marks.get(coin, position.entry_price)
        plan = position.context.exit_plan
        views.append(
            PositionView(
                coin=coin,
                quantity=position.qty,
                entry_price=position.entry_price,
                current_price=mark,
                liquidation_price=liquidation_price(position, account, marks, max_lev),
                unrealized_pnl=position.unrealized(mark),
                leverage=position.context.leverage,
                profit_target=plan.profit_target if plan else None,
                stop_loss=plan.stop_loss if plan else None,
                invalidation_condition=plan.invalidation_condition if plan else "",
                confidence=position.context.confidence,
                risk_usd=position.context.risk_usd,
                justification=position.context.justification,
                notional_usd=position.notional(mark),
            )
        )
    inception = trader.created_on
    minutes = max(0, int((as_of - inception).total_seconds() // 60))
    return AccountView(
        equity=account.equity,
        available_cash=account.available,
        return_pct=account.return_pct,
        sharpe_ratio=sharpe,
        positions=tuple(views),
        minutes_elapsed=minutes,
        invocations=trader.cycle_no,
    )


def prompt_limits(settings: TraderSettings) -> PromptLimits:
    limits = settings.limits
    return PromptLimits(
        max_positions=limits.max_positions,
        major_coin_leverage=limits.major_coin_leverage,
        altcoin_leverage=limits.altcoin_leverage,
        min_confidence_pct=limits.min_confidence_pct,
        min_risk_reward=limits.min_risk_reward,
        max_position_size_usd=limits.max_position_size_usd,
    )


SchemaCheck = Callable[[Mapping[str, Any]], dict[str, str]]
"""The published JSON Schema, per coin: coin → what is wrong (empty when all conform)."""


def single_model_gateway(model: DecisionModel, deadline_s: float = 60.0) -> DecisionGateway:
    """A gateway with one model, no fallback, no budget and no cache."""
    router = ModelRouter([ModelChoice(model.name, "free", 1)], RouterPolicy())
    return DecisionGateway(
        models={model.name: model},
        specs={model.name: ModelSpec(model.name)},
        router=router,
        deadline_s=deadline_s,
    )


def read_answer(text: str, coins: tuple[str, ...], schema: SchemaCheck | None) -> ParsedDecision:
    """Parse and validate an answer: the domain's rules, then the published schema."""
    parsed = parse_decision(text, coins)
    if schema is None:
        return parsed
    return apply_schema_verdicts(parsed, schema({i.coin: i.to_schema_view() for i in parsed.items}))


class DecisionCycle:
    def __init__(
        self,
        *,
        app: TradingApp,
        settings: TraderSettings,
        engine: EngineSettings,
        market: MarketData,
        exchange: Exchange,
        renderer: PromptRenderer,
        clock: Clock,
        alerts: Alerts,
        gateway: DecisionGateway | None = None,
        model: DecisionModel | None = None,
        schema: SchemaCheck | None = None,
        desk: OrderDesk | None = None,
        sync: VenueSync | None = None,
    ) -> None:
        if gateway is None:
            if model is None:
                raise ValueError("a decision cycle needs a gateway or a model")
            gateway = single_model_gateway(model, settings.decision_timeout_s)
        self.app = app
        self.settings = settings
        self.blindfold = Blindfold(settings.coins) if settings.blindfold else None
        self.engine = engine
        self.market = market
        self.exchange = exchange
        self.gateway = gateway
        self.renderer = renderer
        self.clock = clock
        self.alerts = alerts
        self.schema = schema
        self.desk = desk or OrderDesk(app, exchange, clock, engine, alerts)
        self.sync = sync or VenueSync(
            app=app,
            exchange=exchange,
            desk=self.desk,
            clock=clock,
            alerts=alerts,
            traders=[settings],
            engine=engine,
        )

    def _skip(
        self, trader: Trader, reason: SkipReason, detail: str, as_of: datetime
    ) -> CycleOutcome:
        trader.skip_cycle(reason=reason, detail=detail, as_of=as_of)
        self.app.save_trader(trader)
        log.info("trader=%s cycle skipped: %s (%s)", trader.config_id, reason.value, detail)
        return CycleOutcome(trader.config_id, None, "skipped", f"{reason.value}: {detail}")

    async def run(self, as_of: datetime, wake: WakeRecord | None = None) -> CycleOutcome:
        """``wake``: why a trader with triggers is called now; recorded with the cycle."""
        trader = self.app.get_trader(self.settings.config_id)
        if wake is not None and not trader.paused:
            trader.record_trigger(
                as_of=as_of,
                fired=list(wake.fired),
                since=wake.since,
                ticks_gated=wake.ticks_gated,
                quiet=wake.quiet,
                unavailable=wake.unavailable,
                timer_calls=wake.timer_calls,
            )
        if (stop := self._ready_or_skip(trader, as_of)) is not None:
            return stop
        inputs = await self._gather(trader, as_of)
        if isinstance(inputs, CycleOutcome):
            return inputs
        request = self._request_decision(trader, inputs, as_of)
        outcome, at = await self._ask(request)
        parsed = self._record_answer(trader, request, outcome, at)
        if isinstance(parsed, CycleOutcome):
            return parsed
        cloids = self._check_risk_and_place(trader, request.cycle_id, parsed, inputs, at)
        fills = await self._execute(trader, cloids)
        return self._decided(request.cycle_id, outcome, parsed, cloids, fills)

    def _ready_or_skip(self, trader: Trader, as_of: datetime) -> CycleOutcome | None:
        """Paused, or out of budget: the cycle ends here (a budget skip is recorded)."""
        if trader.paused:
            return CycleOutcome(self.settings.config_id, None, "paused", trader.pause_reason)
        self._switches(trader, self.gateway.prepare(), as_of)
        if self.gateway.budget_level() is BudgetLevel.EXHAUSTED:
            return self._skip(trader, SkipReason.BUDGET, "the daily LLM budget is exhausted", as_of)
        return None

    async def _gather(self, trader: Trader, as_of: datetime) -> _Inputs | CycleOutcome:
        """Snapshot, venue rules, account and prompt; any one missing skips the cycle."""
        cfg = self.settings
        try:
            snapshot = await self.market.snapshot(cfg.coins, as_of)
            self._check_fresh(snapshot, as_of)
        except StaleData as exc:
            return self._skip(trader, SkipReason.STALE_DATA, str(exc), as_of)
        except MarketDataError as exc:
            return self._skip(trader, SkipReason.MISSING_DATA, str(exc), as_of)
        try:
            assets = dict(await self.exchange.assets())
        except ExchangeError as exc:
            return self._skip(trader, SkipReason.EXCHANGE_UNAVAILABLE, str(exc), as_of)
        marks = snapshot.marks()
        account = account_view(trader, marks, assets, as_of=as_of, sharpe=trader.sharpe())
        try:
            prompt = self.renderer.render(
                system_template=cfg.system_template,
                user_template=cfg.user_template,
                snapshot=snapshot,
                account=account,
                limits=prompt_limits(cfg),
                as_of=as_of,
            )
        except PromptError as exc:
            return self._skip(trader, SkipReason.PROMPT_ERROR, str(exc), as_of)
        if self.blindfold is not None:
            prompt = self.blindfold.prompt(prompt, as_of)  # what the model is shown
        return _Inputs(snapshot, marks, assets, account, prompt)

    def _request_decision(
        self, trader: Trader, inputs: _Inputs, as_of: datetime
    ) -> DecisionRequest:
        """Record ``DecisionRequested`` and build the question. It is saved before the model
        is asked (§8: every question has a record even if the process dies), except in a
        store nobody else writes when only in-process models answer: then it is saved with
        the answer, one transaction (every path after the answer saves)."""
        cfg = self.settings
        snapshot_text, snapshot_digest = canonical_snapshot(inputs.snapshot)
        model = self.gateway.current_model
        prompt = inputs.prompt
        cycle_id = trader.request_decision(
            as_of=as_of,
            model=model,
            snapshot=snapshot_text,
            snapshot_digest=snapshot_digest,
            marks=inputs.marks,
            prompt=PromptRecord(
                template=prompt.template,
                version=prompt.version,
                digest=prompt.digest,
                schema_version=prompt.schema_version,
                user_prompt=prompt.user,
            ),
        )
        # Deferred only in a store nobody else writes (a backtest's): in the live engine an
        # operator or another engine may write the trader while the model answers, and the
        # unsaved question would then be lost to a version conflict.
        if self.gateway.asks_outside() or not self.app.sole_writer:
            self.app.save_trader(trader)
        return DecisionRequest(
            trader=cfg.config_id,
            cycle_id=cycle_id,
            as_of=as_of,
            coins=cfg.coins,
            snapshot=inputs.snapshot,
            account=inputs.account,
            prompt=prompt,
            model=model,
        )

    async def _ask(self, request: DecisionRequest) -> tuple[GatewayOutcome, datetime]:
        """The gateway's answer, the time it came back, and its budget alerts sent."""
        cfg = self.settings
        blindfold = self.blindfold
        outcome = await self.gateway.decide(
            request,
            lambda text: read_answer(
                text if blindfold is None else blindfold.unmask(text), cfg.coins, self.schema
            ),
        )
        at = self.clock.now()
        for alert in outcome.alerts:
            self.alerts.alert(cfg.config_id, "budget", alert)
            log.warning("trader=%s %s", cfg.config_id, alert)
        return outcome, at

    def _record_answer(
        self, trader: Trader, request: DecisionRequest, outcome: GatewayOutcome, at: datetime
    ) -> ParsedDecision | CycleOutcome:
        """Record the failed attempts, the model switches and then the answer or the final
        failure. Returns the parsed answer, or how the cycle ended (no answer, or paused)."""
        cfg = self.settings
        cycle_id = request.cycle_id
        final = outcome.final_failure
        for attempt in outcome.failures:
            if attempt is final:
                continue
            trader.record_attempt_failure(
                cycle_id=cycle_id,
                model=attempt.model,
                reason=attempt.reason,
                detail=attempt.detail,
                raw_text=attempt.raw_text,
                latency_ms=attempt.latency_ms,
                at=at,
            )
            log.warning(
                "trader=%s model %s failed (%s: %s); trying the next",
                cfg.config_id,
                attempt.model,
                attempt.reason,
                attempt.detail,
            )
        self._switches(trader, outcome.switches, at)
        if outcome.reply is None or outcome.parsed is None:
            failure = final or Attempt(
                request.model, LLMFailureReason.MODEL_ERROR.value, "no model"
            )
            trader.record_failure(
                cycle_id=cycle_id,
                model=failure.model,
                reason=failure.reason,
                detail=failure.detail,
                raw_text=failure.raw_text,
                latency_ms=failure.latency_ms,
                at=at,
                policy=self.engine.pause_policy,
            )
            self._after_failure(trader, failure.reason, failure.detail)
            self.app.save_trader(trader)
            return CycleOutcome(cfg.config_id, cycle_id, "failed", failure.reason)
        reply, parsed = outcome.reply, outcome.parsed
        trader.record_response(
            cycle_id=cycle_id,
            model=outcome.model,
            raw_text=reply.text,
            parsed=parsed,
            tokens_in=reply.tokens_in,
            tokens_out=reply.tokens_out,
            cost_usd=reply.cost_usd,
            latency_ms=reply.latency_ms,
            at=at,
            cached=reply.cached,
        )
        if trader.paused:
            # Paused (by an operator) while the model was answering: no order goes out.
            self.app.save_trader(trader)
            return CycleOutcome(cfg.config_id, cycle_id, "paused", trader.pause_reason)
        return parsed

    def _check_risk_and_place(
        self,
        trader: Trader,
        cycle_id: str,
        parsed: ParsedDecision,
        inputs: _Inputs,
        at: datetime,
    ) -> list[str]:
        """Plan the orders under the risk rules and breakers, record the refusals and the
        ``OrderPlaced`` events, and save them; returns the cloids to send."""
        cfg = self.settings
        marks = inputs.marks
        plan = plan_orders(
            parsed.items,
            account=trader.account(marks),
            marks=marks,
            limits=cfg.limits,
            assets=inputs.assets,
            slippage_bps=cfg.slippage_bps,
            taker_fee_rate=self.exchange.fee_taker,
            claimed=self.sync.claimed_by_others(cfg.config_id, trader),
        )
        plan = self._breakers(trader, plan, marks, at)
        for rejection in plan.rejections:
            trader.reject(cycle_id, rejection, at)
            log.info(
                "trader=%s %s %s refused: %s",
                cfg.config_id,
                rejection.coin,
                rejection.signal,
                rejection.detail,
            )
        cloids = self._place(trader, cycle_id, plan.orders, at)
        # Saved before anything is sent: a failure here stops the cycle with no order out.
        self.app.save_trader(trader)
        return cloids

    async def _execute(self, trader: Trader, cloids: list[str]) -> int:
        """Send the orders, then book the venue's fills for this trader; returns the fills."""
        if not cloids:
            return 0
        reports = await self.desk.submit(trader, cloids)
        synced = await self.sync.run(
            self.clock.now(), only=self.settings.config_id, reports=reports
        )
        return synced.fills

    def _decided(
        self,
        cycle_id: str,
        outcome: GatewayOutcome,
        parsed: ParsedDecision,
        cloids: list[str],
        fills: int,
    ) -> CycleOutcome:
        """The cycle's one log line, and its outcome."""
        signals = ", ".join(f"{i.coin}:{i.signal.value}" for i in parsed.items)
        log.info(
            "trader=%s %s decided by %s [%s] orders=%d fills=%d",
            self.settings.config_id,
            cycle_id,
            outcome.model,
            signals,
            len(cloids),
            fills,
        )
        return CycleOutcome(self.settings.config_id, cycle_id, "decided", signals, cloids, fills)

    def _breakers(
        self, trader: Trader, plan: OrderPlan, marks: dict[str, Decimal], at: datetime
    ) -> OrderPlan:
        """Trip or clear the loss breakers at this valuation; refuse what they and the
        throttles forbid. A trip is recorded (and alerted) once; it pauses or flattens the
        trader when the configuration says so."""
        limits = self.settings.breakers
        equity = trader.account(marks).equity
        trips = tripped(limits, equity=equity, day_base=trader.day_base, peak=trader.peak_equity)
        holding = {t.rule.value for t in trips}
        for rule, since in list(trader.breakers.items()):
            daily = rule == BreakerRule.DAILY_LOSS.value
            if daily and since[:10] != trader.day:
                trader.clear_breaker(rule, "a new day", at)
            elif not daily and rule not in holding:
                trader.clear_breaker(rule, "no longer holds", at)
            elif daily and rule not in holding:
                trips.append(Trip(BreakerRule.DAILY_LOSS, f"tripped {since}", {}))
        for trip in trips:
            if not trader.trip_breaker(trip.rule.value, trip.detail, limits.on_trip.value, at):
                continue
            message = f"{trip.rule.value}: {trip.detail}; new entries refused"
            if limits.on_trip is not TripAction.REFUSE_ENTRIES:
                trader.pause("breaker", f"{trip.rule.value}: {trip.detail}", at)
                message = f"{trip.rule.value}: {trip.detail}; paused"
            if limits.on_trip is TripAction.FLATTEN:
                trader.record_control("flatten", trip.detail, f"breaker:{trip.rule.value}", at)
                message += " and flattening"
            self.alerts.alert(trader.config_id, "breaker", message)
            log.warning("trader=%s breaker %s", trader.config_id, message)
        hour_ago = at - timedelta(hours=1)
        return throttle(
            plan,
            limits,
            trips=trips,
            now=at,
            closed_at=dict(trader.closed_at),
            opened_at={coin: p.opened_at for coin, p in trader.positions.items()},
            opened_last_hour=sum(1 for t in trader.recent_entries if t > hour_ago),
        )

    def _switches(self, trader: Trader, switches: list[Switch], at: datetime) -> None:
        for switch in switches:
            trader.switch_model(switch.to_model, switch.reason, at)
            self.alerts.alert(
                trader.config_id,
                "model_switched",
                f"{switch.from_model} → {switch.to_model}: {switch.reason}",
            )
            log.warning(
                "trader=%s model %s → %s: %s",
                trader.config_id,
                switch.from_model,
                switch.to_model,
                switch.reason,
            )

    def _place(
        self, trader: Trader, cycle_id: str, orders: tuple[PlannedOrder, ...], at: datetime
    ) -> list[str]:
        cloids = []
        for leg, order in enumerate(orders):
            cloid = make_cloid(trader.id, cycle_id, f"{leg}:{order.coin}:{order.intent.value}")
            trader.place(cycle_id=cycle_id, cloid=cloid, order=order, at=at)
            cloids.append(cloid)
        return cloids

    def _check_fresh(self, snapshot: MarketSnapshot, as_of: datetime) -> None:
        bound = self.market.max_staleness_s
        for coin in self.settings.coins:
            snap = snapshot.coins.get(coin)
            if snap is None:
                raise MarketDataError(f"no data for {coin}")
            age = (as_of - snap.data_time).total_seconds()
            if age > bound:
                raise StaleData(f"{coin} data is {age:.1f}s old (bound {bound:g}s)")

    def _after_failure(self, trader: Trader, reason: str, detail: str) -> None:
        log.warning("trader=%s model failure %s: %s", trader.config_id, reason, detail)
        if trader.paused:
            self.alerts.alert(trader.config_id, "paused", trader.pause_reason)
            log.error("trader=%s paused: %s", trader.config_id, trader.pause_reason)
