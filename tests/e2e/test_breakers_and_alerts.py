"""A trader that hits its daily loss limit stops opening positions, and the local webhook
receiver gets exactly one alert for it (issue 8's second acceptance)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.arena import OfflineArena
from tests.support.webhook_receiver import WebhookReceiver
from tests.support.workspace import Workspace


def names(events: list[Any]) -> list[str]:
    return [type(e).__name__ for e in events]


def test_a_daily_loss_trip_refuses_entries_and_alerts_once(tmp_path: Path) -> None:
    with WebhookReceiver() as receiver:
        ws = Workspace(tmp_path / "arena")
        ws.set("manager.yaml", ("monitoring", "alert_webhook"), receiver.url)
        # A limit every trader reaches with its first losing mark.
        ws.set("executor.yaml", ("breakers",), {"max_daily_loss_pct": 0.05})
        arena = OfflineArena.open(tmp_path / "data", config_path=ws.main)
        arena.run_sync(minutes=8 * 60)
        (webhook,) = arena.engine.alerts.forward
        assert webhook.flush()  # type: ignore[attr-defined]
        breaker_alerts = receiver.of_kind("breaker")

    tripped: dict[str, Any] = {}
    refused = 0
    for config_id in arena.engine.arena.trader_ids:
        events = list(arena.engine.app.trader_events(config_id))
        trips = [e for e in events if type(e).__name__ == "BreakerTripped"]
        if not trips:
            continue
        assert len(trips) == 1, "one trip a day (the run stays within one UTC day)"
        trip = trips[0]
        assert trip.rule == "daily_loss"
        tripped[config_id] = trip
        after = events[events.index(trip) + 1 :]
        entries = [e for e in after if type(e).__name__ == "OrderPlaced" and e.intent != "close"]
        assert not entries, f"{config_id} opened a position after its daily loss breaker"
        refusals = [e for e in after if type(e).__name__ == "RiskRejected"]
        assert all(r.rule == "daily_loss" for r in refusals if r.signal.startswith("open"))
        refused += sum(1 for r in refusals if r.rule == "daily_loss")
        assert "OrderPlaced" not in names(after) or all(
            e.intent == "close" for e in after if type(e).__name__ == "OrderPlaced"
        )
    assert tripped, "some trader lost 0.05 % of its day-start equity in eight hours"
    assert refused, "the models asked for entries after the trip, and were refused"
    by_trader: dict[str, int] = {}
    for alert in breaker_alerts:
        by_trader[alert["trader"]] = by_trader.get(alert["trader"], 0) + 1
        assert alert["severity"] == "critical"
        assert "daily_loss" in alert["message"]
    assert by_trader == dict.fromkeys(tripped, 1), "exactly one alert per tripped trader"
