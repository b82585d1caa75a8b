"""Model routing for one trader: a primary, fallbacks by priority, and the way back.

* Each cycle tries the current model first, then the others in priority order.
* After ``failure_threshold`` consecutive failures the current model is switched to the
  next one in the chain.
* While on a fallback, every ``probe_every``-th cycle asks the primary first (a probe, a
  real call that counts); the router returns to the primary once more than
  ``recovery_success_pct`` of its last ``success_window`` calls succeeded.
* Over the daily budget, only the cheapest tier in the chain is used.

Every change of the current model is returned as a :class:`Switch` so the caller records
a ``ModelSwitched`` event with its reason.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

TIER_ORDER = {"free": 0, "low": 1, "medium": 2, "high": 3}


@dataclass(frozen=True)
class RouterPolicy:
    failure_threshold: int = 3
    success_window: int = 20
    recovery_success_pct: Decimal = Decimal(99)
    probe_every: int = 5


@dataclass(frozen=True)
class ModelChoice:
    name: str
    tier: str
    priority: int


@dataclass(frozen=True)
class Route:
    attempts: tuple[str, ...]  # models to try in this cycle, in order
    probe: bool  # the first attempt probes the primary while on a fallback


@dataclass(frozen=True)
class Switch:
    from_model: str
    to_model: str
    reason: str


class ModelRouter:
    def __init__(
        self,
        chain: Sequence[ModelChoice],
        policy: RouterPolicy,
        *,
        current: str | None = None,
    ) -> None:
        if not chain:
            raise ValueError("a router needs at least one model")
        self.chain = list(chain)
        self.policy = policy
        self.primary = self.chain[0].name
        names = [m.name for m in self.chain]
        self.current = current if current in names else self.primary
        self.failures_in_row: dict[str, int] = dict.fromkeys(names, 0)
        self.outcomes: dict[str, deque[bool]] = {
            name: deque(maxlen=policy.success_window) for name in names
        }
        self.cycles_on_fallback = 0
        self.cheap_only = False

    # -- planning ---------------------------------------------------------------------------

    def _allowed(self) -> list[str]:
        if not self.cheap_only:
            return [m.name for m in self.chain]
        cheapest = min(TIER_ORDER.get(m.tier, 9) for m in self.chain)
        return [m.name for m in self.chain if TIER_ORDER.get(m.tier, 9) == cheapest]

    def plan(self) -> Route:
        allowed = self._allowed()
        current = self.current if self.current in allowed else allowed[0]
        order = [current] + [name for name in allowed if name != current]
        probe = False
        if current != self.primary and self.primary in allowed:
            self.cycles_on_fallback += 1
            if self.cycles_on_fallback % self.policy.probe_every == 0:
                order = [self.primary] + [name for name in order if name != self.primary]
                probe = True
        return Route(attempts=tuple(order), probe=probe)

    # -- outcomes -------------------------------------------------------------------------

    def success_rate(self, name: str) -> Decimal:
        outcomes = self.outcomes[name]
        if not outcomes:
            return Decimal(0)
        return Decimal(sum(outcomes)) * 100 / len(outcomes)

    def record(self, name: str, *, ok: bool) -> Switch | None:
        """One call's outcome; the switch it causes, if any."""
        if name not in self.outcomes:
            return None
        self.outcomes[name].append(ok)
        self.failures_in_row[name] = 0 if ok else self.failures_in_row[name] + 1
        if not ok and name == self.current:
            if self.failures_in_row[name] >= self.policy.failure_threshold:
                allowed = self._allowed()
                later = [n for n in allowed if n != name]
                if later:
                    index = allowed.index(name) if name in allowed else -1
                    target = next((n for n in allowed[index + 1 :] if n != name), later[0])
                    return self._switch(
                        target,
                        f"{self.failures_in_row[name]} consecutive failures of {name}",
                    )
            return None
        if ok and name == self.primary and self.current != self.primary:
            window = self.outcomes[name]
            full = len(window) >= self.policy.success_window
            rate = self.success_rate(name)
            if full and rate > self.policy.recovery_success_pct and not self.cheap_only:
                return self._switch(
                    self.primary,
                    f"{self.primary} recovered: {rate:.1f}% of its last {len(window)} calls "
                    "succeeded",
                )
        return None

    def set_cheap_only(self, cheap_only: bool) -> Switch | None:
        """Follow the budget: over the daily limit only the cheapest tier may answer."""
        if cheap_only == self.cheap_only:
            return None
        self.cheap_only = cheap_only
        allowed = self._allowed()
        if cheap_only and self.current not in allowed:
            return self._switch(allowed[0], "daily token budget exceeded: cheapest tier only")
        if not cheap_only and self.current != self.primary:
            return self._switch(self.primary, "budget available again")
        return None

    def _switch(self, to: str, reason: str) -> Switch | None:
        if to == self.current:
            return None
        switch = Switch(self.current, to, reason)
        self.current = to
        self.cycles_on_fallback = 0
        self.failures_in_row[to] = 0
        return switch
