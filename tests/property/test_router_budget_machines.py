"""The model router and the budget guard as state machines (Hypothesis)."""

from __future__ import annotations

from collections import deque
from decimal import Decimal

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from application.budget import BudgetGuard, BudgetLevel, BudgetPolicy, MemoryBudgetStore, Price
from application.routing import TIER_ORDER, ModelChoice, ModelRouter, RouterPolicy

CHAIN = [
    ModelChoice("primary", "high", 1),
    ModelChoice("second", "medium", 2),
    ModelChoice("cheap", "low", 3),
]


class RouterMachine(RuleBasedStateMachine):
    """A reference model of the documented rules, checked against the router."""

    def __init__(self) -> None:
        super().__init__()
        self.policy = RouterPolicy(
            failure_threshold=3, success_window=5, recovery_success_pct=Decimal(99), probe_every=3
        )
        self.router = ModelRouter(CHAIN, self.policy)
        self.current = "primary"
        self.in_row = {m.name: 0 for m in CHAIN}
        self.window: dict[str, deque[bool]] = {m.name: deque(maxlen=5) for m in CHAIN}
        self.cheap_only = False
        self.switch_log: list[tuple[str, str]] = []

    def _allowed(self) -> list[str]:
        if not self.cheap_only:
            return [m.name for m in CHAIN]
        cheapest = min(TIER_ORDER[m.tier] for m in CHAIN)
        return [m.name for m in CHAIN if TIER_ORDER[m.tier] == cheapest]

    @rule(ok=st.booleans(), which=st.sampled_from(["current", "primary", "other"]))
    def outcome(self, ok: bool, which: str) -> None:
        route = self.router.plan()
        assert set(route.attempts) <= set(self._allowed())
        assert len(route.attempts) == len(set(route.attempts))
        if which == "current":
            name = self.router.current
        elif which == "primary":
            name = "primary"
        else:
            name = route.attempts[-1]
        switch = self.router.record(name, ok=ok)
        self.window[name].append(ok)
        self.in_row[name] = 0 if ok else self.in_row[name] + 1
        if switch is not None:
            self.switch_log.append((switch.from_model, switch.to_model))
            assert switch.from_model == self.current
            assert switch.reason
            if ok:  # only a recovery happens on a success: back to the primary
                assert switch.to_model == "primary"
                assert name == "primary"
                assert len(self.window["primary"]) == 5
                assert all(self.window["primary"])
            else:
                assert name == self.current
                assert self.in_row[name] >= self.policy.failure_threshold
                assert switch.to_model != name
            self.current = switch.to_model
            self.in_row[self.current] = 0
        else:
            if not ok and name == self.current and len(self._allowed()) > 1:
                assert self.in_row[name] < self.policy.failure_threshold

    @rule(cheap=st.booleans())
    def budget(self, cheap: bool) -> None:
        switch = self.router.set_cheap_only(cheap)
        changed = cheap != self.cheap_only
        self.cheap_only = cheap
        if switch is not None:
            assert changed
            self.current = switch.to_model
            self.in_row[self.current] = 0

    @invariant()
    def current_agrees(self) -> None:
        assert self.router.current == self.current

    @precondition(lambda self: self.cheap_only)
    @invariant()
    def over_budget_only_the_cheapest_answers(self) -> None:
        assert self.router.plan().attempts == ("cheap",)


class BudgetMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.day_index = 0
        self.day = "day-0"
        self.store = MemoryBudgetStore()
        self.policy = BudgetPolicy(
            daily_token_limit=10_000,
            prices={
                "m": Price(Decimal("1.25"), Decimal("10")),
                "flat": Price(Decimal(3), Decimal(3)),
            },
            alert_threshold_pct=Decimal(80),
            hard_limit_pct=Decimal(120),
        )
        self.guard = BudgetGuard(self.policy, self.store, today=lambda: self.day)
        self.tokens = 0
        self.cost = Decimal(0)
        self.alerts = 0

    @rule(
        model=st.sampled_from(["m", "flat", "unpriced"]),
        tokens_in=st.integers(0, 3000),
        tokens_out=st.integers(0, 1500),
    )
    def charge(self, model: str, tokens_in: int, tokens_out: int) -> None:
        charge = self.guard.charge(model, tokens_in, tokens_out)
        price = self.policy.prices.get(model)
        expected = (
            (Decimal(tokens_in) * price.input + Decimal(tokens_out) * price.output) / 1_000_000
            if price
            else Decimal(0)
        )
        assert charge.cost_usd == expected  # exact, to the last digit
        self.tokens += tokens_in + tokens_out
        self.cost += expected
        if charge.alert:
            self.alerts += 1
            assert self.tokens * 100 >= 10_000 * 80

    @rule()
    def next_day(self) -> None:
        self.day_index += 1
        self.day = f"day-{self.day_index}"
        self.tokens = 0
        self.cost = Decimal(0)
        self.alerts = 0

    @invariant()
    def usage_and_level_agree(self) -> None:
        usage = self.guard.usage()
        assert usage.tokens == self.tokens
        assert usage.cost_usd == self.cost
        assert self.alerts <= 1
        level = self.guard.level()
        if self.tokens * 100 >= 10_000 * 120:
            assert level is BudgetLevel.EXHAUSTED
        elif self.tokens >= 10_000:
            assert level is BudgetLevel.CHEAP_ONLY
        elif self.tokens * 100 >= 10_000 * 80:
            assert level is BudgetLevel.ALERT
        else:
            assert level is BudgetLevel.OK


TestRouter = RouterMachine.TestCase
TestBudget = BudgetMachine.TestCase


def test_costs_add_up_to_the_cent() -> None:
    """A day of calls: the ledger's total equals the hand computation, to the cent."""
    store = MemoryBudgetStore()
    guard = BudgetGuard(
        BudgetPolicy(
            daily_token_limit=10**9,
            prices={
                "gpt-5": Price(Decimal(15), Decimal(15)),
                "deepseek": Price(Decimal("0.14"), Decimal("0.28")),
            },
        ),
        store,
        today=lambda: "2025-10-17",
    )
    costs = [guard.charge("gpt-5", 12_345, 678).cost_usd for _ in range(100)]
    costs += [guard.charge("deepseek", 9_000, 1_100).cost_usd for _ in range(1000)]
    assert costs[0] == Decimal("0.195345")  # (12345 + 678) × 15 / 1e6
    assert costs[-1] == Decimal("0.001568")  # 9000 × 0.14 / 1e6 + 1100 × 0.28 / 1e6
    assert guard.usage().cost_usd == Decimal("19.5345") + Decimal("1.568")
    assert f"{guard.usage().cost_usd:.2f}" == "21.10"
