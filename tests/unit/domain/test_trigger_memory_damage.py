"""A damaged gate memory is logged and not used: a value JSON can carry that an int cannot
hold (Infinity, 1e999) or a NaN ATR (which would keep atr_move quiet forever) never stops
the engine and never comes back."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from application.remembered_gates import RememberedGates
from domain.trigger_memory import dump, restore
from domain.triggers import TriggerRules, TriggerState
from infrastructure.trigger_store import FileGateMemory

RULES = TriggerRules(max_interval_s=86400, atr_move=2.0, atr_period=3, bar_s=60)
T0 = datetime(2025, 10, 17, tzinfo=UTC)


def _saved() -> dict:
    state = TriggerState(RULES)
    state.observe(T0, {"BTC": Decimal(100000)})
    return json.loads(json.dumps(dump(state, T0)))


def test_an_infinite_count_is_a_damaged_memory_not_a_crash() -> None:
    data = _saved()
    data["quiet"] = {"atr_move": float("inf")}  # json.loads reads 'Infinity' / '1e999' so
    state, why = restore(RULES, data, T0)
    assert state is None
    assert why


def test_a_file_with_a_huge_number_does_not_stop_the_engine(tmp_path: Path) -> None:
    memory = FileGateMemory(tmp_path)
    text = json.dumps(_saved()).replace('"quiet": {}', '"quiet": {"atr_move": 1e999}')
    assert "1e999" in text
    memory.path("alpha").write_text(text)
    gates = RememberedGates(memory)
    state = gates.open("alpha", RULES, T0)  # what Arena._state does in Arena.__init__
    assert state == TriggerState(RULES)


def test_a_nan_atr_is_not_restored() -> None:
    data = _saved()
    data["coins"]["BTC"]["atr"] = float("nan")  # a NaN ATR keeps atr_move 'quiet' forever
    state, _ = restore(RULES, data, T0)
    assert state is None
