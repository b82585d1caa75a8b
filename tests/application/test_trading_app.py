"""TradingApp's working copies of traders: a pass over every trader reads the log's head once,
and a write by another process is seen on the next pass."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from application.trading import TradingApp
from domain.trader import Trader
from tests.support.fakes import T0


def register(app: TradingApp, config_id: str) -> Trader:
    trader = Trader.register(
        config_id=config_id,
        name=config_id,
        model="m",
        allocation=Decimal(1000),
        coins=["BTC"],
        at=T0,
    )
    app.save_trader(trader)
    return trader


class CountingRecorder:
    """The real recorder, counting how often the log's head is asked for."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.head_reads = 0

    def max_notification_id(self) -> int | None:
        self.head_reads += 1
        return self.inner.max_notification_id()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_find_traders_keeps_order_skips_unknown_and_reads_the_head_once(
    store_env: dict[str, str],
) -> None:
    app = TradingApp(env=store_env)
    for config_id in ("a", "b", "c"):
        register(app, config_id)
    counting = CountingRecorder(app.recorder)
    app.recorder = counting  # type: ignore[misc]
    found = app.find_traders(["c", "nobody", "a", "b"])
    assert [t.config_id for t in found] == ["c", "a", "b"]
    assert counting.head_reads == 1


def test_find_traders_sees_another_writer(sqlite_env: dict[str, str]) -> None:
    mine, theirs = TradingApp(env=sqlite_env), TradingApp(env=sqlite_env)
    register(mine, "a")
    before = mine.find_traders(["a"])[0]
    assert before.paused is False
    other_copy = theirs.get_trader("a")
    other_copy.pause(reason="operator", detail="test", at=T0)
    theirs.save_trader(other_copy)
    assert mine.find_traders(["a"])[0].paused is True


def test_one_look_reads_the_head_once_and_the_next_read_after_it_sees_another_writer(
    sqlite_env: dict[str, str],
) -> None:
    mine, theirs = TradingApp(env=sqlite_env), TradingApp(env=sqlite_env)
    for config_id in ("a", "b"):
        register(mine, config_id)
    counting = CountingRecorder(mine.recorder)
    mine.recorder = counting  # type: ignore[misc]
    with mine.one_look():
        assert mine.get_trader("a").paused is False
        other_copy = theirs.get_trader("a")
        other_copy.pause(reason="operator", detail="test", at=T0)
        theirs.save_trader(other_copy)
        with mine.one_look():  # nested: still the one look
            mine.get_trader("b")
        mine.find_traders(["a", "b"])
        assert counting.head_reads == 1
    # Outside, every read looks again, and the other process's write is seen.
    assert mine.get_trader("a").paused is True
    mine.get_trader("b")
    assert counting.head_reads == 3
