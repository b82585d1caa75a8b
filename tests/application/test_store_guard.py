"""StoreGuard: an outage is noted once, probed off the loop with backoff, and ended by a
probe that answers; failures that are not outages do not stop the arena."""

from __future__ import annotations

import asyncio

from eventsourcing.persistence import IntegrityError, InterfaceError, OperationalError

from application.store_guard import StoreGuard, is_outage


class Alerts:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []

    def alert(self, subject: str, kind: str, message: str) -> None:
        self.sent.append((subject, kind, message))


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Probe:
    def __init__(self) -> None:
        self.answers = False
        self.calls = 0

    def __call__(self) -> int:
        self.calls += 1
        if not self.answers:
            raise OperationalError("connection refused")
        return 42


def guard() -> tuple[StoreGuard, Probe, Alerts, Clock]:
    probe, alerts, clock = Probe(), Alerts(), Clock()
    return StoreGuard(probe, alerts=alerts, backoff_s=(1, 5), monotonic=clock), probe, alerts, clock


def test_only_connection_failures_are_outages() -> None:
    assert is_outage(OperationalError("server closed the connection"))
    assert is_outage(InterfaceError("connection is closed"))
    assert not is_outage(IntegrityError("duplicate key"))  # a refused write, not an outage
    assert not is_outage(ValueError("a bug"))
    g, _, alerts, _ = guard()
    assert g.failed(ValueError("a bug")) is False
    assert not g.down
    assert alerts.sent == []


def test_an_outage_is_alerted_once_probed_with_backoff_and_ended_by_an_answer() -> None:
    g, probe, alerts, clock = guard()
    assert asyncio.run(g.ready())
    assert probe.calls == 0  # up: no probing

    assert g.failed(OperationalError("connection refused"))
    assert g.failed(OperationalError("connection refused"))  # the same outage
    assert g.down
    assert [kind for _, kind, _ in alerts.sent] == ["store_down"]
    assert "connection refused" in alerts.sent[0][2]

    assert not asyncio.run(g.ready())  # before the first backoff: no probe
    assert probe.calls == 0
    clock.now += 1
    assert not asyncio.run(g.ready())  # probed, still down
    assert probe.calls == 1
    clock.now += 4  # the next wait is 5 s
    assert not asyncio.run(g.ready())
    assert probe.calls == 1
    clock.now += 1
    probe.answers = True
    assert asyncio.run(g.ready())
    assert probe.calls == 2
    assert not g.down
    assert [kind for _, kind, _ in alerts.sent] == ["store_down", "store_recovered"]
    assert g.outages == 1
