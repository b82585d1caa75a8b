"""Scripted fault plans for :class:`~infrastructure.simulator.server.SimServer`.

A :class:`FaultPlan` is the server's ``interceptor``: rules matched in the order they were
added, each for a number of requests, e.g. "the next /exchange ``order`` action gets a 502
without being processed, the one after it is processed and its answer lost"::

    plan = FaultPlan()
    plan.on_exchange(Fault.fail_before(502), action="order")
    plan.on_exchange(Fault.drop_after(), action="order")
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from infrastructure.simulator.server import Fault, FaultKind


def request_kind(path: str, body: Any) -> str | None:
    """The info ``type`` or the exchange action's ``type`` of a request body."""
    if not isinstance(body, Mapping):
        return None
    holder = body.get("action") if path == "/exchange" else body
    kind = holder.get("type") if isinstance(holder, Mapping) else None
    return kind if isinstance(kind, str) else None


@dataclass
class Rule:
    fault: Fault
    path: str | None  # None: any path
    kind: str | None  # info type or action type; None: any
    remaining: int | None  # None: until cleared

    def matches(self, path: str, kind: str | None) -> bool:
        return (self.path is None or self.path == path) and (self.kind is None or self.kind == kind)


class FaultPlan:
    def __init__(self) -> None:
        self._rules: list[Rule] = []
        self._lock = threading.Lock()
        self.fired: list[tuple[str, str | None, FaultKind]] = []

    def add(
        self,
        fault: Fault,
        *,
        path: str | None = None,
        kind: str | None = None,
        times: int | None = 1,
    ) -> FaultPlan:
        with self._lock:
            self._rules.append(Rule(fault, path, kind, times))
        return self

    def on_exchange(self, fault: Fault, *, action: str | None = None, times: int = 1) -> FaultPlan:
        """The next ``times`` /exchange requests (of ``action`` type, if given) get ``fault``."""
        return self.add(fault, path="/exchange", kind=action, times=times)

    def on_info(self, fault: Fault, *, info: str | None = None, times: int = 1) -> FaultPlan:
        return self.add(fault, path="/info", kind=info, times=times)

    def always(self, fault: Fault, *, path: str | None = None) -> FaultPlan:
        return self.add(fault, path=path, times=None)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._rules)

    def __call__(self, path: str, body: Any) -> Fault | None:
        kind = request_kind(path, body)
        with self._lock:
            for rule in self._rules:
                if rule.matches(path, kind):
                    if rule.remaining is not None:
                        rule.remaining -= 1
                        if rule.remaining <= 0:
                            self._rules.remove(rule)
                    self.fired.append((path, kind, rule.fault.kind))
                    return rule.fault
        return None
