"""What the use cases need to know about each trader and the engine (plain data)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from domain.breakers import BreakerLimits
from domain.risk import RiskLimits
from domain.trader import PausePolicy
from domain.triggers import TriggerRules


@dataclass(frozen=True)
class TraderSettings:
    config_id: str
    name: str
    model: str
    allocation: Decimal
    coins: tuple[str, ...]
    decision_interval_s: float
    decision_timeout_s: float
    limits: RiskLimits
    slippage_bps: Decimal
    system_template: str  # path of the system prompt template
    user_template: str  # path of the user prompt template
    exchange: str
    market: str
    auto_start: bool = True
    stop_loss_enabled: bool = True
    take_profit_enabled: bool = True
    breakers: BreakerLimits = field(default_factory=BreakerLimits)
    blindfold: bool = False  # coins and dates masked in the prompt (application.blindfold)
    #: Event-driven calls (``triggers``); None: the fixed decision interval, as always.
    triggers: TriggerRules | None = None


@dataclass(frozen=True)
class EngineSettings:
    schema_version: str
    tick_seconds: float = 1.0
    pause_policy: PausePolicy = field(default_factory=PausePolicy)
    order_retries: int = 3
    order_backoff_s: float = 0.2
    order_max_backoff_s: float = 2.0
    reconcile_interval_s: float = 10.0  # how often each venue account is reconciled
    #: Cycles deciding at once (a bounded pool over the model calls); 0: no bound.
    max_concurrent_decisions: int = 0
