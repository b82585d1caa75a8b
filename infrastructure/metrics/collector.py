"""Collects the engine's gauges and counters every ``monitoring.update_interval``.

Counters come from the event log (``EventTap``), gauges from the traders' state and from
probes of the stores. A source that fails is logged and marked down; it never stops the
others, and nothing here writes an event or touches a position.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis
from eventsourcing.persistence import PersistenceError

from application.trading import TradingApp
from infrastructure.metrics.families import EngineMetrics
from infrastructure.metrics.tap import EventTap
from infrastructure.views.sql_tables import STORE_ERRORS

#: A projection store that cannot answer now (events, Redis, the SQL tables).
SOURCE_DOWN: tuple[type[Exception], ...] = (PersistenceError, redis.RedisError, *STORE_ERRORS)

log = logging.getLogger(__name__)

#: Events read per pass of the tap (a long backlog is caught up over several passes).
TAP_BATCH = 5000


class _Lagging(Protocol):
    @property
    def store(self) -> str: ...

    @property
    def view(self) -> str: ...

    @property
    def lag(self) -> int | None: ...


class _Switching(Protocol):
    switches: int


@dataclass
class CollectorSources:
    """What the collector reads; every optional source may be absent."""

    app: TradingApp
    venues: Mapping[str, str]  # trader config id -> exchange provider
    markets: Mapping[str, str]  # trader config id -> market provider
    models: Sequence[str] = ()
    #: Market providers with standbys (``FailoverMarket``), which count their switches.
    failovers: Mapping[str, _Switching] = field(default_factory=dict)
    redis: redis.Redis | None = None
    projection_status: Callable[[], Sequence[_Lagging]] | None = None
    slow_query_s: float = 0.25
    #: True while the arena's store guard holds the event store for down: its probes (each
    #: a wait for the pool's timeout, on the loop) are left to the guard.
    store_down: Callable[[], bool] | None = None


class MetricsCollector:
    def __init__(
        self,
        metrics: EngineMetrics,
        sources: CollectorSources,
        *,
        clock: Callable[[], float] = time.perf_counter,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.metrics = metrics
        self.sources = sources
        self.tap = EventTap(
            metrics, venues=sources.venues, markets=sources.markets, models=sources.models
        )
        self._clock = clock
        self._wall = wall
        self._switches_seen = {name: m.switches for name, m in sources.failovers.items()}
        self.passes = 0

    def start(self) -> None:
        """Count from the log's head on: the history is the views' job, not the counters'."""
        try:
            self.tap.position = self.sources.app.max_position()
        except PersistenceError as exc:
            log.warning("metrics: event store unavailable at start-up: %s", exc)

    def collect(self) -> None:
        """One pass over every source."""
        store_ok = self._store()
        if store_ok:
            self._events()
            self._traders()
        self._pool()
        self._redis()
        self._switches()
        if store_ok:  # the views' lag is measured against the store's head
            self._projections()
        self.metrics.collected.set(self._wall())
        self.passes += 1

    async def run(self, stop: asyncio.Event, interval_s: float) -> None:
        self.start()
        while not stop.is_set():
            try:
                self.collect()
            except Exception:
                # Metrics never stop the engine: this pass is lost, the next one may work.
                log.exception("metrics: a collection pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval_s)

    # -- sources ---------------------------------------------------------------------------

    def _store(self) -> bool:
        m = self.metrics
        if self.sources.store_down is not None and self.sources.store_down():
            m.store_up.set(0)
            m.store_rtt.set(math.nan)
            return False
        started = self._clock()
        try:
            head = self.sources.app.max_position()
        except PersistenceError as exc:
            log.warning("metrics: event store probe failed: %s", exc)
            m.store_up.set(0)
            m.store_rtt.set(math.nan)
            return False
        rtt = self._clock() - started
        m.store_up.set(1)
        m.store_rtt.set(rtt)
        if rtt > self.sources.slow_query_s:
            m.store_slow.inc()
        m.events.set(head)
        return True

    def _events(self) -> None:
        app = self.sources.app
        try:
            while True:
                batch = app.read_events(self.tap.position, TAP_BATCH)
                self.tap.feed(batch)
                if len(batch) < TAP_BATCH:
                    return
        except PersistenceError as exc:
            log.warning("metrics: reading new events failed: %s", exc)

    def _traders(self) -> None:
        m = self.metrics
        app = self.sources.app
        for config_id in self.sources.venues:
            try:
                trader = app.find_trader(config_id)
            except PersistenceError as exc:
                log.warning("metrics: trader %s unreadable: %s", config_id, exc)
                continue
            if trader is None:
                continue  # registered at its first start-up
            account = trader.account(trader.marks)
            equity = account.equity
            m.equity.labels(config_id).set(float(equity))
            m.open_positions.labels(config_id).set(len(account.positions))
            usage = account.margin_used / equity if equity > 0 else 0
            m.margin_usage.labels(config_id).set(float(usage))
            m.sharpe.labels(config_id).set(trader.sharpe())
            m.paused.labels(config_id).set(1 if trader.paused else 0)

    def _pool(self) -> None:
        datastore = getattr(self.sources.app.recorder, "datastore", None)
        pool = getattr(datastore, "pool", None)
        stats: Callable[[], Mapping[str, int]] | None = getattr(pool, "get_stats", None)
        gauge = self.metrics.store_pool
        if stats is None:
            # The embedded store: one file, one connection, always in use by the engine.
            gauge.labels("in_use").set(1)
            gauge.labels("idle").set(0)
            gauge.labels("max").set(1)
            return
        figures = stats()
        size = figures.get("pool_size", 0)
        available = figures.get("pool_available", 0)
        gauge.labels("in_use").set(size - available)
        gauge.labels("idle").set(available)
        gauge.labels("waiting").set(figures.get("requests_waiting", 0))
        gauge.labels("max").set(getattr(pool, "max_size", size))

    def _redis(self) -> None:
        client = self.sources.redis
        if client is None:
            return
        started = self._clock()
        try:
            client.ping()
        except redis.RedisError as exc:
            log.warning("metrics: redis ping failed: %s", exc)
            self.metrics.redis_up.set(0)
            self.metrics.redis_rtt.set(math.nan)
            return
        self.metrics.redis_up.set(1)
        self.metrics.redis_rtt.set(self._clock() - started)

    def _switches(self) -> None:
        for name, market in self.sources.failovers.items():
            new = market.switches - self._switches_seen.get(name, 0)
            self.metrics.market_switches.labels(name).inc(max(0, new))
            self._switches_seen[name] = market.switches

    def _projections(self) -> None:
        status = self.sources.projection_status
        if status is None:
            return
        try:
            rows: Sequence[Any] = status()
        except SOURCE_DOWN as exc:
            log.warning("metrics: projection status unavailable: %s", exc)
            return
        for row in rows:
            if row.lag is not None:
                self.metrics.projection_lag.labels(row.store, row.view).set(row.lag)
