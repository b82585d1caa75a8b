"""The webhook sink: de-duplication, rate limit, retries, a bounded queue, the formats."""

from __future__ import annotations

import socket
import time

import pytest

from infrastructure.alerts.webhook import Alert, WebhookAlerts, render
from tests.support.webhook_receiver import WebhookReceiver


def sink(url: str, **kwargs: object) -> WebhookAlerts:
    options: dict[str, object] = {"backoff_s": 0.01, "timeout_s": 2.0}
    options.update(kwargs)
    return WebhookAlerts(url, **options)  # type: ignore[arg-type]


def test_one_post_per_alert_with_every_field() -> None:
    with WebhookReceiver() as receiver:
        alerts = sink(receiver.url)
        alerts.alert("ema-cross", "breaker", "daily_loss: down 3% today")
        alerts.alert("venue", "underfunded", "the account holds less")
        assert alerts.flush()
        alerts.close()
    first, second = receiver.bodies
    assert first["kind"] == "breaker"
    assert first["trader"] == "ema-cross"
    assert first["severity"] == "critical"
    assert first["count"] == 1
    assert first["first_seen"] == first["last_seen"]
    assert second["venue"] == "venue"
    assert second["trader"] == ""


def test_repeats_within_the_window_are_folded_and_counted() -> None:
    clock = [0.0]
    with WebhookReceiver() as receiver:
        alerts = sink(receiver.url, dedup_window_s=60, monotonic=lambda: clock[0])
        for _ in range(5):
            alerts.alert("random-walk", "cycle_error", "boom")
        assert alerts.flush()
        assert len(receiver.bodies) == 1
        clock[0] = 61.0  # the window is over: the next one goes out with the count
        alerts.alert("random-walk", "cycle_error", "boom again")
        alerts.alert("random-walk", "paused", "too many failures")  # another kind: its own
        assert alerts.flush()
        alerts.close()
    kinds = [(b["kind"], b["count"]) for b in receiver.bodies]
    assert kinds == [("cycle_error", 1), ("cycle_error", 1), ("paused", 1)]
    assert alerts.stats.folded == 4


def test_the_rate_limit_holds_alerts_back_and_sends_them_later() -> None:
    clock = [0.0]
    with WebhookReceiver() as receiver:
        alerts = sink(receiver.url, rate_per_minute=2, monotonic=lambda: clock[0])
        for trader in ("a", "b", "c"):
            alerts.alert(trader, "paused", "x")
        assert alerts.flush()
        assert [b["trader"] for b in receiver.bodies] == ["a", "b"]
        assert alerts.stats.rate_limited == 1
        clock[0] = 61.0
        deadline = time.monotonic() + 5
        while len(receiver.bodies) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        alerts.close()
    assert [b["trader"] for b in receiver.bodies] == ["a", "b", "c"]


def test_failed_sends_are_retried_with_backoff() -> None:
    with WebhookReceiver(500, 429) as receiver:
        alerts = sink(receiver.url, retries=3)
        alerts.alert("t", "breaker", "x")
        assert alerts.flush()
        alerts.close()
    assert receiver.attempts == 3
    assert len(receiver.bodies) == 1
    assert alerts.stats.failed == 0


def test_a_receiver_that_refuses_is_not_retried_and_is_counted() -> None:
    with WebhookReceiver(400) as receiver:
        alerts = sink(receiver.url, retries=3)
        alerts.alert("t", "breaker", "x")
        assert alerts.flush()
        alerts.close()
    assert receiver.attempts == 1
    assert alerts.stats.failed == 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_receiver_that_is_down_never_blocks_and_never_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"http://127.0.0.1:{free_port()}/hook?token=hook-secret-abcdef"
    alerts = sink(url, retries=2)
    alerts.alert("t", "breaker", "x")
    assert alerts.flush()
    alerts.close()
    assert alerts.stats.failed == 1
    assert "not delivered" in caplog.text
    assert "hook-secret-abcdef" not in caplog.text


def test_a_slow_receiver_fills_a_bounded_queue_without_blocking_the_caller() -> None:
    with WebhookReceiver() as receiver:
        receiver.gate.clear()  # every request hangs until released
        alerts = sink(receiver.url, max_queue=3, dedup_window_s=0)
        for n in range(10):
            alerts.alert(f"t{n}", "paused", "x")  # returns at once, whatever the receiver does
        assert alerts.stats.dropped >= 10 - 3 - 1  # one in flight, three queued
        receiver.gate.set()
        assert alerts.flush()
        alerts.close()
    assert len(receiver.bodies) == 10 - alerts.stats.dropped


@pytest.mark.parametrize(
    ("fmt", "key"), [("slack", "text"), ("discord", "content"), ("telegram", "text")]
)
def test_chat_formats_carry_a_readable_line(fmt: str, key: str) -> None:
    with WebhookReceiver() as receiver:
        alerts = sink(receiver.url, fmt=fmt, chat_id="-100123")
        alerts.alert("ema-cross", "breaker", "daily_loss: down 3%")
        assert alerts.flush()
        alerts.close()
    (body,) = receiver.bodies
    assert "breaker ema-cross: daily_loss: down 3%" in body[key]
    assert ("chat_id" in body) is (fmt == "telegram")


def test_render_json_is_the_alert() -> None:
    from datetime import UTC, datetime

    at = datetime(2026, 1, 1, tzinfo=UTC)
    alert = Alert("control", "x", "", "info", "m", at, at, 2)
    assert render(alert, "json")["count"] == 2
    assert "×2" in render(alert, "slack")["text"]
