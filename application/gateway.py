"""Ask the models for a decision: budget, routing, the prompt digest cache and attempts.

Within one cycle the gateway tries the router's models in order until one gives a
readable decision or the decision deadline passes. A model that times out, is rate
limited, fails, refuses, or answers something unreadable is an *attempt* failure; only
when every attempt failed is the cycle an ``LLMFailed``. Nothing here writes events: the
outcome lists what happened and the decision cycle records it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Protocol

from application.budget import BudgetGuard, BudgetLevel
from application.ports import DecisionModel, DecisionReply, DecisionRequest, ModelError
from application.routing import ModelRouter, Switch
from domain.decision import DecisionParseError, ParsedDecision
from domain.values import LLMFailureReason


@dataclass(frozen=True)
class ModelSpec:
    """What the gateway needs to know of a configured model besides the client."""

    name: str
    tier: str = "free"
    cacheable: bool = False
    sampling: str = ""  # everything that changes the answer besides the prompt


class DecisionCache(Protocol):
    def get(self, key: str) -> DecisionReply | None: ...

    def put(self, key: str, reply: DecisionReply) -> None: ...


@dataclass(frozen=True)
class Attempt:
    model: str
    reason: str
    detail: str
    raw_text: str = ""
    latency_ms: int = 0


@dataclass
class GatewayOutcome:
    model: str = ""  # the configured model that answered
    reply: DecisionReply | None = None
    parsed: ParsedDecision | None = None
    failures: list[Attempt] = field(default_factory=list)
    switches: list[Switch] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)
    probe: bool = False

    @property
    def final_failure(self) -> Attempt | None:
        return None if self.reply is not None or not self.failures else self.failures[-1]


def cache_key(spec: ModelSpec, prompt_digest: str) -> str:
    material = json.dumps([spec.name, spec.sampling, prompt_digest], separators=(",", ":"))
    return hashlib.sha256(material.encode()).hexdigest()


class DecisionGateway:
    def __init__(
        self,
        *,
        models: Mapping[str, DecisionModel],
        specs: Mapping[str, ModelSpec],
        router: ModelRouter,
        budget: BudgetGuard | None = None,
        cache: DecisionCache | None = None,
        deadline_s: float = 60.0,
    ) -> None:
        self.models = dict(models)
        self.specs = dict(specs)
        self.router = router
        self.budget = budget
        self.cache = cache
        self.deadline_s = deadline_s

    @property
    def current_model(self) -> str:
        return self.router.current

    def asks_outside(self) -> bool:
        """Whether asking may leave the process (a vendor's model, costing money or time):
        then the question is recorded before it is asked. Unknown names count as outside."""
        return not self.models or not all(
            getattr(model, "in_process", False) is True for model in self.models.values()
        )

    def budget_level(self) -> BudgetLevel:
        return self.budget.level() if self.budget is not None else BudgetLevel.OK

    def prepare(self) -> list[Switch]:
        """Before a cycle: let the budget steer the router (switches to record)."""
        switch = self.router.set_cheap_only(self.budget_level() is BudgetLevel.CHEAP_ONLY)
        return [switch] if switch else []

    async def decide(
        self,
        request: DecisionRequest,
        read: Callable[[str], ParsedDecision],
    ) -> GatewayOutcome:
        outcome = GatewayOutcome()
        route = self.router.plan()
        outcome.probe = route.probe
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.deadline_s
        for name in route.attempts:
            remaining = deadline - loop.time()
            if remaining <= 0:
                outcome.failures.append(
                    Attempt(
                        name,
                        LLMFailureReason.TIMEOUT.value,
                        f"the decision deadline of {self.deadline_s:g}s passed",
                    )
                )
                break
            if self.budget_level() is BudgetLevel.EXHAUSTED:
                outcome.failures.append(
                    Attempt(name, "budget", "the daily LLM budget is exhausted")
                )
                break
            reply, failure = await self._call(name, request, remaining)
            if failure is not None:
                outcome.failures.append(failure)
                self._record(outcome, name, ok=False)
                continue
            assert reply is not None
            try:
                parsed = read(reply.text)
            except DecisionParseError as exc:
                outcome.failures.append(
                    Attempt(name, exc.reason.value, exc.detail, reply.text, reply.latency_ms)
                )
                self._charge(outcome, name, reply)
                self._record(outcome, name, ok=False)
                continue
            outcome.reply = self._charge(outcome, name, reply)
            outcome.parsed = parsed
            outcome.model = name
            self._record(outcome, name, ok=True)
            self._remember(name, request, reply)
            return outcome
        return outcome

    async def _call(
        self, name: str, request: DecisionRequest, remaining: float
    ) -> tuple[DecisionReply | None, Attempt | None]:
        spec = self.specs.get(name, ModelSpec(name))
        key = cache_key(spec, request.prompt.digest)
        if self.cache is not None and spec.cacheable:
            hit = self.cache.get(key)
            if hit is not None:
                return replace(hit, cached=True, cost_usd=Decimal(0), latency_ms=0), None
        model = self.models.get(name)
        if model is None:
            return None, Attempt(
                name, LLMFailureReason.MODEL_ERROR.value, f"model {name!r} is not configured"
            )
        started = asyncio.get_running_loop().time()
        try:
            reply = await asyncio.wait_for(model.decide(request), timeout=remaining)
        except TimeoutError:
            latency = int((asyncio.get_running_loop().time() - started) * 1000)
            return None, Attempt(
                name,
                LLMFailureReason.TIMEOUT.value,
                f"no answer within the {self.deadline_s:g}s decision deadline",
                "",
                latency,
            )
        except ModelError as exc:
            return None, Attempt(name, exc.reason, exc.detail, "", exc.latency_ms)
        return reply, None

    def _charge(self, outcome: GatewayOutcome, name: str, reply: DecisionReply) -> DecisionReply:
        if reply.cached or self.budget is None:
            return reply
        charge = self.budget.charge(name, reply.tokens_in, reply.tokens_out)
        if charge.alert:
            outcome.alerts.append(charge.alert)
        return replace(reply, cost_usd=charge.cost_usd)

    def _record(self, outcome: GatewayOutcome, name: str, *, ok: bool) -> None:
        switch = self.router.record(name, ok=ok)
        if switch is not None:
            outcome.switches.append(switch)

    def _remember(self, name: str, request: DecisionRequest, reply: DecisionReply) -> None:
        spec = self.specs.get(name, ModelSpec(name))
        if self.cache is not None and spec.cacheable and not reply.cached:
            self.cache.put(cache_key(spec, request.prompt.digest), reply)
