"""The LLM budget guard: tokens and cost per UTC day, shared by every trader.

* Cost comes from each response's token usage and the configured price per million tokens
  (one price, or separate input and output prices), in Decimal.
* At ``alert_threshold_pct`` of the daily token limit an alert goes out (once a day).
* Over the limit only the cheapest tier of models is used; past ``hard_limit_pct`` no
  model is asked at all and cycles are skipped with reason ``budget``.
* Usage is saved after every charge, so a restart does not reset the day.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

MILLION = Decimal(1_000_000)


@dataclass(frozen=True)
class Price:
    """USD per million tokens."""

    input: Decimal
    output: Decimal

    def cost(self, tokens_in: int, tokens_out: int) -> Decimal:
        return (Decimal(tokens_in) * self.input + Decimal(tokens_out) * self.output) / MILLION


@dataclass(frozen=True)
class BudgetPolicy:
    daily_token_limit: int
    prices: Mapping[str, Price]
    alert_threshold_pct: Decimal = Decimal(80)
    hard_limit_pct: Decimal = Decimal(120)


class BudgetLevel(StrEnum):
    OK = "ok"
    ALERT = "alert"  # past the alert threshold: every tier still allowed
    CHEAP_ONLY = "cheap_only"  # past the daily limit: the cheapest tier only
    EXHAUSTED = "exhausted"  # past the hard limit: no model is asked


@dataclass(frozen=True)
class BudgetUsage:
    day: str  # UTC date, YYYY-MM-DD
    tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    calls: int = 0
    alerted: bool = False


class BudgetStore(Protocol):
    def load(self) -> BudgetUsage | None: ...

    def save(self, usage: BudgetUsage) -> None: ...


class MemoryBudgetStore:
    def __init__(self) -> None:
        self.usage: BudgetUsage | None = None

    def load(self) -> BudgetUsage | None:
        return self.usage

    def save(self, usage: BudgetUsage) -> None:
        self.usage = usage


@dataclass(frozen=True)
class Charge:
    cost_usd: Decimal
    level: BudgetLevel
    alert: str | None  # a message when this charge crossed the alert threshold


def utc_day() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


class BudgetGuard:
    def __init__(
        self,
        policy: BudgetPolicy,
        store: BudgetStore,
        today: Callable[[], str] = utc_day,
    ) -> None:
        self.policy = policy
        self.store = store
        self.today = today

    def usage(self) -> BudgetUsage:
        day = self.today()
        usage = self.store.load()
        return usage if usage is not None and usage.day == day else BudgetUsage(day=day)

    def level(self) -> BudgetLevel:
        return self._level(self.usage().tokens)

    def _level(self, tokens: int) -> BudgetLevel:
        limit = Decimal(self.policy.daily_token_limit)
        used = Decimal(tokens)
        if used * 100 >= limit * self.policy.hard_limit_pct:
            return BudgetLevel.EXHAUSTED
        if used >= limit:
            return BudgetLevel.CHEAP_ONLY
        if used * 100 >= limit * self.policy.alert_threshold_pct:
            return BudgetLevel.ALERT
        return BudgetLevel.OK

    def price(self, model: str, tokens_in: int, tokens_out: int) -> Decimal:
        price = self.policy.prices.get(model)
        return price.cost(tokens_in, tokens_out) if price else Decimal(0)

    def charge(self, model: str, tokens_in: int, tokens_out: int) -> Charge:
        """Record one answered call; return its cost and the level after it."""
        usage = self.usage()
        cost = self.price(model, tokens_in, tokens_out)
        tokens = usage.tokens + tokens_in + tokens_out
        level = self._level(tokens)
        alert = None
        if level is not BudgetLevel.OK and not usage.alerted:
            limit = self.policy.daily_token_limit
            alert = (
                f"LLM usage reached {tokens:,} tokens ({tokens * 100 / limit:.0f}% of the "
                f"daily limit {limit:,}); spent {usage.cost_usd + cost:.4f} USD today"
            )
        self.store.save(
            replace(
                usage,
                tokens=tokens,
                cost_usd=usage.cost_usd + cost,
                calls=usage.calls + 1,
                alerted=usage.alerted or alert is not None,
            )
        )
        return Charge(cost_usd=cost, level=level, alert=alert)
