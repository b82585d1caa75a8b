"""The metered transport: latency and failures by endpoint, the failure window, no changes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from infrastructure.hyperliquid.transport import RateLimited, ServerFailed, TimedOut
from infrastructure.metrics.families import EngineMetrics
from infrastructure.metrics.transport import (
    ENDPOINT_CAP,
    FailureWindow,
    MeteredTransport,
    endpoint_of,
)


class Ticker:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Scripted:
    """Answers or raises from a script, advancing the clock as a slow venue would."""

    blocking = False
    base_url = "http://venue.test"

    def __init__(self, clock: Ticker, script: list[Any], seconds: float = 0.2) -> None:
        self.clock = clock
        self.script = script
        self.seconds = seconds
        self.sent: list[tuple[str, Mapping[str, Any]]] = []

    def post(self, path: str, payload: Mapping[str, Any]) -> Any:
        self.sent.append((path, payload))
        self.clock.now += self.seconds
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return step


def sample(metrics: EngineMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_endpoints_are_named_by_request_kind_and_never_by_a_value() -> None:
    assert endpoint_of("/info", {"type": "allMids"}) == "info.allMids"
    assert endpoint_of("/exchange", {"action": {"type": "order", "orders": []}}) == (
        "exchange.order"
    )
    assert endpoint_of("/info", {"type": "0xdeadbeef user=me"}) == "info.other"
    assert endpoint_of("/exchange", {"action": "cancel"}) == "exchange.other"
    assert endpoint_of("/info", {}) == "info.other"


def test_latency_and_answers_pass_through_unchanged() -> None:
    clock, metrics = Ticker(), EngineMetrics()
    inner = Scripted(clock, [{"BTC": "100"}])
    transport = MeteredTransport(
        inner, venue="hl", metrics=metrics, window=FailureWindow(60, clock=clock), clock=clock
    )
    assert transport.post("/info", {"type": "allMids"}) == {"BTC": "100"}
    assert inner.sent == [("/info", {"type": "allMids"})]
    assert transport.blocking is False
    assert transport.base_url == "http://venue.test"
    labels = {"venue": "hl", "endpoint": "info.allMids"}
    assert sample(metrics, "nof0_exchange_request_seconds_count", **labels) == 1
    assert sample(metrics, "nof0_exchange_request_seconds_sum", **labels) == pytest.approx(0.2)
    assert sample(metrics, "nof0_exchange_failure_ratio", venue="hl") == 0


def test_failures_are_counted_by_class_reraised_and_only_venue_faults_count_as_unhealthy() -> None:
    clock, metrics = Ticker(), EngineMetrics()
    window = FailureWindow(60, clock=clock)
    inner = Scripted(
        clock, [ServerFailed("502"), TimedOut("slow"), RateLimited("429"), {"status": "ok"}]
    )
    transport = MeteredTransport(inner, venue="hl", metrics=metrics, window=window, clock=clock)
    order = {"action": {"type": "order"}}
    with pytest.raises(ServerFailed):
        transport.post("/exchange", order)
    with pytest.raises(TimedOut):
        transport.post("/exchange", order)
    with pytest.raises(RateLimited):
        transport.post("/exchange", order)
    transport.post("/exchange", order)
    for error in ("ServerFailed", "TimedOut", "RateLimited"):
        labels = {"venue": "hl", "endpoint": "exchange.order", "error": error}
        assert sample(metrics, "nof0_exchange_request_failures_total", **labels) == 1
    # 502 and a timeout are the venue's; a 429 is ours (we sent too much).
    assert (window.requests, window.failures) == (4, 2)
    assert sample(metrics, "nof0_exchange_failure_ratio", venue="hl") == 0.5
    assert (
        sample(
            metrics, "nof0_exchange_request_seconds_count", venue="hl", endpoint="exchange.order"
        )
        == 4
    )


def test_the_failure_window_forgets_outcomes_older_than_its_span() -> None:
    clock = Ticker()
    window = FailureWindow(60, clock=clock)
    for _ in range(3):
        window.record(False)
    clock.now = 30
    window.record(True)
    assert window.ratio() == 0.75
    clock.now = 61
    assert (window.requests, window.ratio()) == (1, 0.0)
    clock.now = 200
    assert (window.requests, window.ratio()) == (0, 0.0)


def test_endpoint_labels_are_bounded() -> None:
    clock, metrics = Ticker(), EngineMetrics()
    kinds = [f"kind{i}" for i in range(ENDPOINT_CAP + 10)]
    inner = Scripted(clock, [{} for _ in kinds])
    transport = MeteredTransport(
        inner, venue="hl", metrics=metrics, window=FailureWindow(60, clock=clock), clock=clock
    )
    for kind in kinds:
        transport.post("/info", {"type": kind})
    families = {
        s.labels["endpoint"]
        for metric in metrics.registry.collect()
        if metric.name == "nof0_exchange_request_seconds"
        for s in metric.samples
        if s.name.endswith("_count")
    }
    assert len(families) == ENDPOINT_CAP + 1
    assert "other" in families
