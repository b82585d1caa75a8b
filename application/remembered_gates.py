"""Trigger gates that outlive a restart: opened from the memory a previous run left, and
written back when a bar closes or the trader is called (``domain.trigger_memory`` says what
is kept and when a memory is not used)."""

from __future__ import annotations

import logging
from datetime import datetime

from application.ports import GateMemory
from domain.trigger_memory import dump, restore
from domain.triggers import TriggerRules, TriggerState

log = logging.getLogger("nof0.triggers")


class RememberedGates:
    def __init__(self, memory: GateMemory | None) -> None:
        """``memory`` None: gates live in memory only (a backtest never restarts)."""
        self.memory = memory
        self._bars: dict[str, int] = {}  # closed bars per trader at its last save

    def open(self, trader_id: str, rules: TriggerRules, now: datetime) -> TriggerState:
        data = None if self.memory is None else self.memory.load(trader_id)
        if data is None:
            return TriggerState(rules)
        state, why = restore(rules, data, now)
        if state is None:
            log.info(
                "trader=%s trigger memory not used (%s): the gates start fresh", trader_id, why
            )
            return TriggerState(rules)
        self._bars[trader_id] = _bars(state)
        log.info("trader=%s trigger gates continue from %s", trader_id, data.get("saved_at"))
        return state

    def observed(self, trader_id: str, state: TriggerState, now: datetime) -> None:
        """After a tick fed the gates: saved when a bar has closed since the last save."""
        if self.memory is not None and _bars(state) != self._bars.get(trader_id):
            self.save(trader_id, state, now)

    def save(self, trader_id: str, state: TriggerState, now: datetime) -> None:
        if self.memory is None:
            return
        self.memory.save(trader_id, dump(state, now))
        self._bars[trader_id] = _bars(state)


def _bars(state: TriggerState) -> int:
    return sum(gate.bars for gate in state.coins.values())
