"""Counts what the event log says happened into the metric families.

Reading the log, rather than instrumenting every call site, keeps the counters honest: a
refusal, a failure or a fill is counted exactly when it was recorded, whichever code path
recorded it. Counters start from the log's head at start-up (Prometheus' rate() handles a
restart's reset); nothing here ever writes an event.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from application.ports import VenueRejection
from domain.trader import Trader, trader_id
from domain.values import SkipReason
from infrastructure.metrics.families import EngineMetrics

#: Distinct values a free-form label may take before the rest are folded into ``other``.
LABEL_CAP = 64
_MARKET_SKIPS = frozenset({SkipReason.STALE_DATA.value, SkipReason.MISSING_DATA.value})


class BoundedLabel:
    """A label that admits its first ``cap`` distinct values, then says ``other``."""

    def __init__(self, known: Iterable[str] = (), cap: int = LABEL_CAP) -> None:
        self.cap = cap
        self.seen: set[str] = set(known)

    def __call__(self, value: str) -> str:
        if value in self.seen:
            return value
        if len(self.seen) < self.cap:
            self.seen.add(value)
            return value
        return "other"


class _CoinTime(msgspec.Struct):
    data_time: datetime


class _SnapshotTimes(msgspec.Struct):
    """The two fields of a stored snapshot the lag needs (the rest is not decoded)."""

    as_of: datetime
    coins: dict[str, _CoinTime]


class EventTap:
    """Feeds counters from events; ``venues`` and ``markets`` map trader ids to providers."""

    def __init__(
        self,
        metrics: EngineMetrics,
        *,
        venues: Mapping[str, str],
        markets: Mapping[str, str],
        models: Iterable[str] = (),
    ) -> None:
        self.metrics = metrics
        self.venues = dict(venues)
        self.markets = dict(markets)
        self._ids: dict[UUID, str] = {trader_id(t): t for t in venues}
        self.model = BoundedLabel(models)
        self.reason = BoundedLabel()
        self.position = 0
        self._decode = msgspec.json.Decoder(_SnapshotTimes)

    def feed(self, events: Iterable[tuple[int, Any]]) -> int:
        counted = 0
        for position, event in events:
            self.position = position
            config_id = self._ids.get(getattr(event, "originator_id", None))  # type: ignore[arg-type]
            if config_id is not None:
                self._trader_event(config_id, event)
                counted += 1
        return counted

    def _trader_event(self, trader: str, event: Any) -> None:
        m = self.metrics
        venue = self.venues[trader]
        if isinstance(event, Trader.LLMResponded):
            model = self.model(event.model)
            m.llm_calls.labels(model, "cached" if event.cached else "ok").inc()
            if not event.cached:
                m.llm_latency.labels(model).observe(event.latency_ms / 1000)
            m.llm_tokens.labels(model, "input").inc(event.tokens_in)
            m.llm_tokens.labels(model, "output").inc(event.tokens_out)
            m.llm_cost.labels(model).inc(float(event.cost_usd))
        elif isinstance(event, Trader.ModelAttemptFailed | Trader.LLMFailed):
            model = self.model(event.model)
            m.llm_calls.labels(model, "failed").inc()
            m.llm_failures.labels(model, self.reason(event.reason)).inc()
            m.llm_latency.labels(model).observe(event.latency_ms / 1000)
        elif isinstance(event, Trader.DecisionRequested):
            m.decisions.labels(trader).inc()
            self._lag(trader, event.snapshot)
        elif isinstance(event, Trader.CycleSkipped):
            reason = self.reason(event.reason)
            m.cycles_skipped.labels(trader, reason).inc()
            if event.reason in _MARKET_SKIPS:
                m.market_missing.labels(self.markets[trader], reason).inc()
        elif isinstance(event, Trader.RiskRejected):
            m.risk_rejections.labels(trader, self.reason(event.rule)).inc()
        elif isinstance(event, Trader.BreakerTripped):
            m.breaker_trips.labels(trader, self.reason(event.rule)).inc()
        elif isinstance(event, Trader.OrderPlaced):
            m.orders.labels(venue, "placed").inc()
        elif isinstance(event, Trader.OrderFilled):
            m.orders.labels(venue, "filled").inc()
        elif isinstance(event, Trader.OrderCanceled):
            m.orders.labels(venue, "canceled").inc()
        elif isinstance(event, Trader.OrderRejected):
            m.orders.labels(venue, "rejected").inc()
            m.order_rejections.labels(venue, self.reason(event.reason)).inc()
            if event.reason == VenueRejection.NONCE.value:
                m.nonce_conflicts.labels(venue).inc()

    def _lag(self, trader: str, snapshot: str) -> None:
        try:
            times = self._decode.decode(snapshot)
        except msgspec.DecodeError:
            return  # an older snapshot layout: no lag figure rather than a wrong one
        market = self.markets[trader]
        for coin, row in times.coins.items():
            lag = (times.as_of - row.data_time).total_seconds()
            self.metrics.market_lag.labels(market, coin).set(max(0.0, lag))
