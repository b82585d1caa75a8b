"""A trader's ``triggers`` in manager.yaml: validated at load with the bad key named, turned
into the domain's rules; absent, the trader keeps its fixed decision interval."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from domain.triggers import IndicatorKind, IndicatorRule, TriggerRules
from infrastructure.config.settings import trader_settings
from tests.support.workspace import Workspace


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "arena")


def with_triggers(ws: Workspace, triggers: Any) -> None:
    ws.set("manager.yaml", ("traders", 0, "triggers"), triggers)


def test_absent_triggers_keep_the_timer(ws: Workspace) -> None:
    config = ws.load()
    for trader in config.manager.traders:
        assert trader.triggers is None
        assert trader_settings(config, trader).triggers is None


def test_triggers_become_the_domains_rules(ws: Workspace) -> None:
    with_triggers(
        ws,
        {
            "max_interval": "1h",
            "min_interval": "2m",
            "atr_move": 1.5,
            "atr_period": 14,
            "bar": "5m",
            "on_fill": True,
            "on_stop_or_target": True,
            "funding_window": "10m",
            "invalidation": True,
            "indicators": [
                {"kind": "ema_cross", "fast": 9, "slow": 21},
                {"kind": "rsi", "period": 14, "above": 70, "below": 30, "coins": ["btc"]},
            ],
        },
    )
    config = ws.load()
    rules = trader_settings(config, config.manager.traders[0]).triggers
    assert rules == TriggerRules(
        max_interval_s=3600,
        min_interval_s=120,
        atr_move=1.5,
        atr_period=14,
        bar_s=300,
        on_fill=True,
        on_stop_or_target=True,
        funding_window_s=600,
        invalidation=True,
        indicators=(
            IndicatorRule(IndicatorKind.EMA_CROSS, fast=9, slow=21),
            IndicatorRule(IndicatorKind.RSI, period=14, above=70, below=30, coins=("BTC",)),
        ),
    )


@pytest.mark.parametrize(
    ("triggers", "field", "says"),
    [
        ({"atr_move": 1.5}, "traders[0].triggers.max_interval", "missing required field"),
        ({"max_interval": "1h", "atr_mvoe": 1.5}, "traders[0].triggers.atr_mvoe", "unknown field"),
        ({"max_interval": "1h", "atr_move": -1}, "traders[0].triggers.atr_move", "greater than"),
        ({"max_interval": "soon", "on_fill": True}, "traders[0].triggers.max_interval", "duration"),
        ({"max_interval": "1h"}, "traders[0].triggers", "no trigger enabled"),
        (
            {"max_interval": "1h", "min_interval": "2h", "on_fill": True},
            "traders[0].triggers",
            "min_interval: must be shorter",
        ),
        (
            {"max_interval": "1h", "funding_window": "2h", "on_fill": True},
            "traders[0].triggers",
            "funding_window: must be",
        ),
        (
            {"max_interval": "1h", "indicators": [{"kind": "macd"}]},
            "traders[0].triggers.indicators[0].kind",
            "ema_cross",
        ),
        (
            {"max_interval": "1h", "indicators": [{"kind": "rsi", "period": 14}]},
            "traders[0].triggers.indicators[0]",
            "above, below",
        ),
        (
            {"max_interval": "1h", "indicators": [{"kind": "ema_cross", "fast": 30, "slow": 10}]},
            "traders[0].triggers.indicators[0]",
            "fast: must be shorter than slow",
        ),
        (
            {"max_interval": "1h", "indicators": [{"kind": "rsi", "above": 70, "coins": ["PEPE"]}]},
            "traders[0]",
            "PEPE",
        ),
    ],
)
def test_bad_triggers_are_refused_naming_the_key(
    ws: Workspace, triggers: dict[str, Any], field: str, says: str
) -> None:
    with_triggers(ws, triggers)
    problems = ws.problems()
    found = [p for p in problems if p.field == field]
    assert found, "\n".join(str(p) for p in problems)
    assert says in found[0].message, str(found[0])
