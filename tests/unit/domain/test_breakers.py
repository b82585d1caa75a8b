"""Loss breakers and pace throttles as pure rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from domain.breakers import BreakerLimits, BreakerRule, throttle, tripped
from domain.ledger import EntryContext
from domain.risk import OrderPlan, PlannedOrder
from domain.values import CloseReason, OrderIntent, OrderSide

D = Decimal
NOW = datetime(2025, 10, 17, 12, tzinfo=UTC)


def order(coin: str, intent: OrderIntent, reason: CloseReason | None = None) -> PlannedOrder:
    return PlannedOrder(
        coin=coin,
        side=OrderSide.BUY,
        size=D("0.1"),
        intent=intent,
        reduce_only=intent is OrderIntent.CLOSE,
        leverage=5,
        limit_price=D(100),
        reason=reason,
        context=EntryContext(leverage=5),
    )


def test_daily_loss_and_drawdown_trip_at_their_limits() -> None:
    limits = BreakerLimits(max_daily_loss_pct=D(3), max_drawdown_pct=D(10))
    assert tripped(limits, equity=D(971), day_base=D(1000), peak=D(1000)) == []
    (trip,) = tripped(limits, equity=D(970), day_base=D(1000), peak=D(1000))
    assert trip.rule is BreakerRule.DAILY_LOSS
    rules = {t.rule for t in tripped(limits, equity=D(899), day_base=D(900), peak=D(1000))}
    assert rules == {BreakerRule.DRAWDOWN}
    assert tripped(BreakerLimits(), equity=D(1), day_base=D(1000), peak=D(1000)) == []


def test_a_trip_refuses_entries_but_never_closes() -> None:
    limits = BreakerLimits(max_daily_loss_pct=D(1))
    trips = tripped(limits, equity=D(980), day_base=D(1000), peak=D(1000))
    plan = OrderPlan(
        (order("BTC", OrderIntent.OPEN_LONG), order("ETH", OrderIntent.CLOSE, CloseReason.SIGNAL)),
        (),
    )
    out = throttle(
        plan, limits, trips=trips, now=NOW, closed_at={}, opened_at={}, opened_last_hour=0
    )
    assert [o.coin for o in out.orders] == ["ETH"]
    (refusal,) = out.rejections
    assert (refusal.coin, refusal.rule, refusal.signal) == ("BTC", "daily_loss", "open_long")


def test_reentry_cooldown_and_pace_limit() -> None:
    limits = BreakerLimits(reentry_cooldown_s=600, max_new_positions_per_hour=1)
    plan = OrderPlan(
        (
            order("BTC", OrderIntent.OPEN_LONG),
            order("ETH", OrderIntent.OPEN_SHORT),
            order("SOL", OrderIntent.OPEN_LONG),
        ),
        (),
    )
    out = throttle(
        plan,
        limits,
        trips=[],
        now=NOW,
        closed_at={"BTC": NOW - timedelta(minutes=5), "SOL": NOW - timedelta(hours=1)},
        opened_at={},
        opened_last_hour=0,
    )
    assert [o.coin for o in out.orders] == ["ETH"]  # BTC cools down; SOL is over the pace
    assert [r.rule for r in out.rejections] == ["reentry_cooldown", "max_new_positions_per_hour"]


def test_minimum_holding_time_refuses_a_model_close_not_a_stop() -> None:
    limits = BreakerLimits(min_holding_s=900)
    opened = {"BTC": NOW - timedelta(minutes=5), "ETH": NOW - timedelta(minutes=5)}
    plan = OrderPlan(
        (
            order("BTC", OrderIntent.CLOSE, CloseReason.SIGNAL),
            order("ETH", OrderIntent.CLOSE, CloseReason.STOP),
        ),
        (),
    )
    out = throttle(
        plan, limits, trips=[], now=NOW, closed_at={}, opened_at=opened, opened_last_hour=0
    )
    assert [o.coin for o in out.orders] == ["ETH"]
    assert out.rejections[0].rule == "min_holding_time"


def test_a_losing_streak_cools_the_trader_down() -> None:
    from domain.breakers import due_after

    limits = BreakerLimits(cooldown_after_losses=3, loss_cooldown_s=3600)
    common = {"interval_s": 180.0, "last_cycle_at": NOW, "sharpe": 0.0, "returns": 0}
    due, why = due_after(limits, loss_streak=2, last_loss_at=NOW, **common)  # type: ignore[arg-type]
    assert (due, why) == (NOW + timedelta(seconds=180), "")
    due, why = due_after(limits, loss_streak=3, last_loss_at=NOW, **common)  # type: ignore[arg-type]
    assert due == NOW + timedelta(hours=1)
    assert why == "3 losing trades in a row"


def test_sharpe_gating_slows_a_trader_doing_badly_once_there_is_history() -> None:
    from domain.breakers import due_after

    limits = BreakerLimits(min_sharpe=0.0, sharpe_min_returns=24, sharpe_slowdown=3)
    base = {"interval_s": 180.0, "last_cycle_at": NOW, "loss_streak": 0, "last_loss_at": None}
    early, _ = due_after(limits, sharpe=-2.0, returns=5, **base)  # type: ignore[arg-type]
    assert early == NOW + timedelta(seconds=180)
    slow, why = due_after(limits, sharpe=-2.0, returns=30, **base)  # type: ignore[arg-type]
    assert slow == NOW + timedelta(seconds=540)
    assert "sharpe -2.00 below 0" in why
    fine, _ = due_after(limits, sharpe=0.5, returns=30, **base)  # type: ignore[arg-type]
    assert fine == NOW + timedelta(seconds=180)


def test_breaker_settings_come_from_the_executor_defaults_and_the_trader(tmp_path: object) -> None:
    from pathlib import Path

    from infrastructure import bootstrap
    from tests.support.workspace import Workspace

    root = Path(str(tmp_path))
    ws = Workspace(root / "arena")
    ws.set("executor.yaml", ("breakers",), {"max_daily_loss_pct": 5, "cooldown_after_losses": 4})
    ws.set("manager.yaml", ("traders", 0, "risk_params", "breakers"), {"max_daily_loss_pct": 2})
    config = bootstrap.load_config(ws.main, data_dir=root / "data", env={})
    first, second = (bootstrap.trader_settings(config, t) for t in config.manager.traders[:2])
    assert first.breakers.max_daily_loss_pct == D(2)  # the trader's own
    assert second.breakers.max_daily_loss_pct == D(5)  # the default
    assert first.breakers.cooldown_after_losses == second.breakers.cooldown_after_losses == 4
