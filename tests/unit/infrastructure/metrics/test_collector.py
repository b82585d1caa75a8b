"""The collector keeps going when a source fails, and says which one is down."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import psycopg
import redis
from eventsourcing.persistence import OperationalError

from infrastructure.metrics.collector import CollectorSources, MetricsCollector
from infrastructure.metrics.families import EngineMetrics


class DownStore:
    """A TradingApp whose event store refuses every query."""

    recorder = object()
    calls = 0

    def max_position(self) -> int:
        self.calls += 1
        raise OperationalError("connection refused")

    def read_events(self, after: int, limit: int) -> list[Any]:
        raise AssertionError("never read while the probe fails")

    def find_trader(self, config_id: str) -> Any:
        raise AssertionError("never read while the probe fails")


class Switching:
    def __init__(self) -> None:
        self.switches = 0


def sample(metrics: EngineMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_a_store_that_is_down_is_marked_down_and_the_other_sources_still_report() -> None:
    metrics = EngineMetrics()
    market = Switching()
    dead_redis = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    collector = MetricsCollector(
        metrics,
        CollectorSources(
            app=DownStore(),  # type: ignore[arg-type]
            venues={"a": "paper"},
            markets={"a": "hl"},
            failovers={"hl": market},
            redis=dead_redis,
        ),
        wall=lambda: 1234.0,
    )
    collector.start()  # logs, does not raise
    market.switches = 2
    collector.collect()
    assert sample(metrics, "nof0_event_store_up") == 0
    assert math.isnan(sample(metrics, "nof0_event_store_rtt_seconds") or 0.0)
    assert sample(metrics, "nof0_redis_up") == 0
    assert sample(metrics, "nof0_market_provider_switches_total", market="hl") == 2
    assert sample(metrics, "nof0_metrics_collected_timestamp_seconds") == 1234.0
    market.switches = 3
    collector.collect()
    assert sample(metrics, "nof0_market_provider_switches_total", market="hl") == 3
    assert collector.passes == 2


def test_a_slow_store_probe_counts_as_a_slow_query() -> None:
    class SlowStore:
        recorder = object()

        def max_position(self) -> int:
            ticks.append(ticks[-1] + 0.5)  # the probe takes half a second
            return 7

        def read_events(self, after: int, limit: int) -> list[Any]:
            return []

        def find_trader(self, config_id: str) -> Any:
            return None

    ticks = [0.0]
    metrics = EngineMetrics()
    collector = MetricsCollector(
        metrics,
        CollectorSources(app=SlowStore(), venues={}, markets={}, slow_query_s=0.25),  # type: ignore[arg-type]
        clock=lambda: ticks[-1],
    )
    collector.collect()
    assert sample(metrics, "nof0_event_store_up") == 1
    assert sample(metrics, "nof0_event_store_rtt_seconds") == 0.5
    assert sample(metrics, "nof0_event_store_slow_queries_total") == 1
    assert sample(metrics, "nof0_event_store_head") == 7


def run_briefly(collector: MetricsCollector) -> None:
    """Run the collector every 10 ms for a tenth of a second, then stop it."""

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(collector.run(stop, 0.01))
        await asyncio.sleep(0.1)
        stop.set()
        await asyncio.wait_for(task, 1)

    asyncio.run(main())


def test_the_collector_runs_every_interval_until_stopped() -> None:
    store = DownStore()
    collector = MetricsCollector(
        EngineMetrics(),
        CollectorSources(app=store, venues={}, markets={}),  # type: ignore[arg-type]
    )

    run_briefly(collector)
    assert collector.passes >= 3


class UpStore:
    recorder = object()

    def max_position(self) -> int:
        return 7

    def read_events(self, after: int, limit: int) -> list[Any]:
        return []

    def find_trader(self, config_id: str) -> Any:
        return None


def test_sql_tables_that_cannot_be_read_leave_the_other_figures_and_the_engine_running() -> None:
    """Seen with several engines starting together: the tables' DDL raced and the status
    read raised a psycopg error, which ended the collector and with it the engine."""

    def status() -> list[Any]:
        raise psycopg.errors.UniqueViolation("duplicate key value (injected)")

    metrics = EngineMetrics()
    collector = MetricsCollector(
        metrics,
        CollectorSources(
            app=UpStore(),  # type: ignore[arg-type]
            venues={},
            markets={},
            projection_status=status,
        ),
    )
    collector.collect()
    assert sample(metrics, "nof0_event_store_head") == 7
    assert collector.passes == 1


def test_a_pass_that_fails_unexpectedly_does_not_end_the_collector() -> None:
    collector = MetricsCollector(
        EngineMetrics(),
        CollectorSources(app=UpStore(), venues={}, markets={}),  # type: ignore[arg-type]
    )
    failures = iter([RuntimeError("a bug in a source"), None, None])

    real = collector.collect

    def collect() -> None:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        real()

    collector.collect = collect  # type: ignore[method-assign]

    run_briefly(collector)
    assert collector.passes >= 2
