"""Pydantic models of the configuration files (field names as in the seed design)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from infrastructure.config.durations import parse_duration

Duration = Annotated[float, BeforeValidator(parse_duration)]
TRADER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
DEFAULT_COINS = ["BTC", "ETH", "SOL", "BNB", "DOGE", "XRP"]


class Section(BaseModel):
    """Unknown keys are errors (a typo must not silently fall back to a default); keys
    whose value is null (e.g. an unset ``${VAR}``) take the field's default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _drop_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None}
        return data


# -- nof0.yaml --------------------------------------------------------------------------


class PostgresConfig(Section):
    DataSource: str = ""
    MaxOpen: int = Field(25, ge=1)
    MaxIdle: int = Field(10, ge=0)
    MaxLifetime: Duration = 300.0
    Schema: str = Field("", pattern=r"^([a-z_][a-z0-9_]{0,62})?$")


class CacheNode(Section):
    Host: str = ""
    Type: Literal["node"] = "node"
    Pass: str = ""
    Tls: bool = False


class TTLConfig(Section):
    Short: int = Field(10, ge=1)
    Medium: int = Field(60, ge=1)
    Long: int = Field(300, ge=1)


class SlowThresholdConfig(Section):
    SQL: int = 10000
    Redis: int = 5000


class LoggingConfig(Section):
    Level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    SlowThreshold: SlowThresholdConfig = SlowThresholdConfig()
    VerboseSQL: bool = False
    VerboseLLM: bool = False


class ProjectionsConfig(Section):
    BatchSize: int = Field(500, ge=1, le=10_000)
    PollInterval: Duration = 0.5
    ConversationsPerTrader: int = Field(30, ge=1, le=1000)
    #: The seed's SQL read tables: in PostgreSQL when the events are, else DataPath/tables.sqlite3.
    SqlTables: bool = True


class FileRef(Section):
    File: str


class ControlToken(Section):
    """A credential for the control routes: the token is read from the environment
    variable ``Env``; ``Id`` is what the audit trail records (never the token)."""

    Id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,40}$")
    Env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")


class ControlConfig(Section):
    #: No token set: the control routes are off (and say so).
    Tokens: list[ControlToken] = []


class LeasesConfig(Section):
    """Several engines on one PostgreSQL share the traders through leases (off on SQLite,
    where the data directory's lock allows one engine)."""

    Enabled: bool = True
    #: Seconds a lease lasts unrenewed: how long a dead engine's traders wait for a taker.
    TTL: Duration = Field(15.0, ge=3.0, le=600.0)
    #: This engine's stable name; default: the host and the data directory.
    Owner: str = Field("", pattern=r"^([A-Za-z0-9_.:@-]{1,80})?$")


class MainConfig(Section):
    Name: str = Field("nof0", pattern=r"^[a-z][a-z0-9_]{0,30}$")
    Env: Literal["test", "dev", "prod"] = "dev"
    Host: str = "127.0.0.1"
    Port: int = Field(8888, ge=1, le=65535)
    DataPath: str = "../data"
    Postgres: PostgresConfig = PostgresConfig()
    Cache: list[CacheNode] = []
    TTL: TTLConfig = TTLConfig()
    Logging: LoggingConfig = LoggingConfig()
    Projections: ProjectionsConfig = ProjectionsConfig()
    Control: ControlConfig = ControlConfig()
    Leases: LeasesConfig = LeasesConfig()
    LLM: FileRef
    Executor: FileRef
    Manager: FileRef
    Exchange: FileRef
    Market: FileRef


# -- llm.yaml ---------------------------------------------------------------------------

KEYLESS_PROVIDERS = frozenset({"ollama", "vllm", "baseline"})


class PriceSplit(Section):
    input: float = Field(ge=0)
    output: float = Field(ge=0)


class BudgetConfig(Section):
    """Over ``daily_token_limit`` only the cheapest tier answers; past ``hard_limit_pct`` of
    it, cycles are skipped with reason ``budget``."""

    daily_token_limit: int = Field(1_000_000, ge=1)
    cost_per_million_tokens: dict[str, float | PriceSplit] = {}
    alert_threshold_pct: float = Field(80, gt=0, le=100)
    hard_limit_pct: float = Field(120, ge=100, le=1000)


class RouterConfig(Section):
    failure_threshold: int = Field(3, ge=1, le=100)
    success_window: int = Field(20, ge=1, le=1000)
    recovery_success_pct: float = Field(99, gt=0, le=100)
    probe_every: int = Field(5, ge=1, le=10_000)


class ModelConfig(Section):
    provider: Literal["openai", "anthropic", "deepseek", "openrouter", "zenmux", "ollama", "vllm"]
    model_name: str = Field(min_length=1)
    temperature: float = Field(0.7, ge=0, le=2)
    max_completion_tokens: int = Field(4096, ge=1)
    priority: int = Field(1, ge=1)
    cost_tier: Literal["high", "medium", "low"] = "medium"
    base_url: str = ""
    api_key: str = ""
    #: openai: any OpenAI-compatible endpoint (OpenAI, DeepSeek, OpenRouter, ZenMux,
    #: Ollama, vLLM); anthropic: Anthropic's Messages API.
    protocol: Literal["openai", "anthropic"] = "openai"
    #: Provider-native structured output where supported: json_object / json_schema
    #: (OpenAI-compatible), tool (Anthropic); none: plain JSON instructions.
    structured_output: Literal["none", "json_object", "json_schema", "tool"] = "none"


class PromptCacheConfig(Section):
    enabled: bool = True
    ttl: int = Field(3600, ge=0)
    max_entries: int = Field(10_000, ge=0)
    #: The cache file; empty: DataPath/llm_cache.sqlite3 (backtests share one of their own).
    path: str = ""


class LLMConfig(Section):
    base_url: str = ""
    api_key: str = ""
    default_model: str = ""
    timeout: Duration = 60.0
    max_retries: int = Field(3, ge=0, le=10)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    budget: BudgetConfig = BudgetConfig()
    router: RouterConfig = RouterConfig()
    models: dict[str, ModelConfig] = {}
    cache: PromptCacheConfig = PromptCacheConfig()


# -- executor.yaml ----------------------------------------------------------------------


class PromptValidation(Section):
    strict_mode: bool = True
    require_version_header: bool = True


class OutputValidation(Section):
    enabled: bool = True
    schema_path: str = ""
    fail_on_invalid: bool = True


class BreakerParams(Section):
    """Loss breakers and pace throttles; unset: off. In executor.yaml (``breakers``) for
    every trader, in a trader's ``risk_params.breakers`` to override it."""

    max_daily_loss_pct: float | None = Field(None, gt=0, le=100)
    max_drawdown_pct: float | None = Field(None, gt=0, le=100)
    reentry_cooldown: Duration | None = None
    max_new_positions_per_hour: int | None = Field(None, ge=1, le=10_000)
    min_holding_time: Duration | None = None
    on_trip: Literal["refuse_entries", "pause", "flatten"] | None = None
    cooldown_after_losses: int | None = Field(None, ge=1, le=1000)  # no cycle for a while
    loss_cooldown: Duration | None = None  # default 1h
    min_sharpe: float | None = None  # below it (after sharpe_min_returns hours) decide less
    sharpe_min_returns: int | None = Field(None, ge=2, le=100_000)
    sharpe_slowdown: float | None = Field(None, ge=1, le=100)


class ExecutorConfig(Section):
    prompt_schema_version: str = Field(min_length=1)
    prompt_validation: PromptValidation = PromptValidation()
    major_coin_leverage: int = Field(20, ge=1, le=50)
    altcoin_leverage: int = Field(10, ge=1, le=50)
    min_confidence: float = Field(75, ge=0, le=100)
    min_risk_reward: float = Field(3.0, gt=0)
    max_positions: int = Field(4, ge=1)
    max_position_size_usd: float = Field(1000, gt=0)
    max_margin_usage_pct: float = Field(60, gt=0, le=100)
    decision_interval: Duration = 180.0
    decision_timeout: Duration = 60.0
    max_concurrent_decisions: int = Field(1, ge=1)
    output_validation: OutputValidation = OutputValidation()
    breakers: BreakerParams = BreakerParams()


# -- manager.yaml -----------------------------------------------------------------------


class RiskParams(Section):
    max_positions: int | None = Field(None, ge=1)
    max_position_size_usd: float | None = Field(None, gt=0)
    max_margin_usage_pct: float | None = Field(None, gt=0, le=100)
    major_coin_leverage: int | None = Field(None, ge=1, le=50)
    altcoin_leverage: int | None = Field(None, ge=1, le=50)
    min_risk_reward_ratio: float | None = Field(None, gt=0)
    min_confidence: float | None = Field(None, ge=0, le=100)
    stop_loss_enabled: bool = True
    take_profit_enabled: bool = True
    breakers: BreakerParams = BreakerParams()


class IndicatorTrigger(Section):
    """One indicator gate: ``ema_cross`` (EMA ``fast`` crossed EMA ``slow``) or ``rsi``
    (RSI ``period`` crossed ``above`` upwards or ``below`` downwards), on the trigger bars."""

    kind: Literal["ema_cross", "rsi"]
    fast: int | None = Field(None, ge=1, le=1000)
    slow: int | None = Field(None, ge=2, le=1000)
    period: int | None = Field(None, ge=2, le=1000)
    above: float | None = Field(None, gt=0, lt=100)
    below: float | None = Field(None, gt=0, lt=100)
    coins: list[str] = []  # empty: every coin of the trader

    @model_validator(mode="after")
    def _fits_kind(self) -> IndicatorTrigger:
        if self.kind == "ema_cross":
            for name in ("period", "above", "below"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name}: not a setting of ema_cross (fast, slow)")
            if (self.fast or 9) >= (self.slow or 21):
                raise ValueError("fast: must be shorter than slow")
        else:
            for name in ("fast", "slow"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name}: not a setting of rsi (period, above, below)")
            if self.above is None and self.below is None:
                raise ValueError("rsi: needs above, below or both")
        return self

    @field_validator("coins")
    @classmethod
    def _coins_upper(cls, value: list[str]) -> list[str]:
        return [c.strip().upper() for c in value]


class TriggersConfig(Section):
    """Event-driven model calls (``domain.triggers``): the trader is called when a gate
    fires, and at least every ``max_interval``; a gate that cannot be evaluated falls back
    to the trader's ``decision_interval``. Absent: the fixed decision interval."""

    max_interval: Duration  # the longest the trader goes without a call
    min_interval: Duration = 0.0  # no call sooner than this after the previous one
    atr_move: float | None = Field(None, gt=0, le=100)  # k: a move of k ATR since the call
    atr_period: int = Field(14, ge=1, le=1000)
    bar: Duration = 300.0  # the bars ATR and the indicators are computed on
    on_fill: bool = False  # a fill booked outside a decision (resting order, stop, target)
    on_stop_or_target: bool = False  # a position closed outside a decision
    funding_window: Duration | None = None  # holding a position, this close to funding
    invalidation: bool = False  # a held position's invalidation price level is crossed
    indicators: list[IndicatorTrigger] = []

    @model_validator(mode="after")
    def _consistent(self) -> TriggersConfig:
        if self.max_interval <= 0:
            raise ValueError("max_interval: must be positive")
        if self.min_interval >= self.max_interval:
            raise ValueError("min_interval: must be shorter than max_interval")
        if self.bar < 1:
            raise ValueError("bar: must be at least 1s")
        if self.funding_window is not None and not 0 < self.funding_window < 3600:
            raise ValueError("funding_window: must be between 0 and 1h (funding is hourly)")
        gates = (
            self.atr_move is not None,
            self.on_fill,
            self.on_stop_or_target,
            self.funding_window is not None,
            self.invalidation,
            bool(self.indicators),
        )
        if not any(gates):
            raise ValueError(
                "no trigger enabled (atr_move, indicators, on_fill, on_stop_or_target, "
                "funding_window, invalidation); for a fixed timer use decision_interval"
            )
        return self


class TraderConfig(Section):
    id: str
    name: str = ""
    exchange_provider: str
    market_provider: str
    order_style: Literal["market_ioc", "limit_ioc"] = "market_ioc"
    market_ioc_slippage_bps: float = Field(50, ge=0, le=1000)
    prompt_template: str
    executor_prompt_template: str
    model: str = Field(min_length=1)
    #: Models to fall back to, in order; unset: every other llm.yaml model by priority;
    #: an empty list: no fallback.
    fallback_models: list[str] | None = None
    decision_interval: Duration | None = None
    allocation_pct: float = Field(gt=0, le=100)
    auto_start: bool = True
    coins: list[str] = Field(default_factory=lambda: list(DEFAULT_COINS), min_length=1)
    risk_params: RiskParams = RiskParams()
    triggers: TriggersConfig | None = None
    #: Coin names and calendar dates masked in the prompt (ASSET1…, day 0), the answer's
    #: aliases mapped back: does the model trade the market, or its memory of the period?
    blindfold: bool = False

    @model_validator(mode="after")
    def _blindfold_aliases_are_free(self) -> TraderConfig:
        clash = [c for c in self.coins if re.fullmatch(r"ASSET\d+", c)]
        if self.blindfold and clash:
            raise ValueError(f"blindfold: coin {clash[0]} looks like one of its aliases (ASSETn)")
        return self

    @field_validator("id")
    @classmethod
    def _id_is_safe(cls, value: str) -> str:
        if not TRADER_ID.fullmatch(value):
            raise ValueError(
                "must start with a letter or digit and use only letters, digits, '.', '_' "
                "or '-' (at most 64 characters)"
            )
        return value

    @field_validator("coins")
    @classmethod
    def _coins_upper(cls, value: list[str]) -> list[str]:
        coins = [c.strip().upper() for c in value]
        if len(set(coins)) != len(coins):
            raise ValueError("lists a coin twice")
        return coins

    @model_validator(mode="after")
    def _trigger_coins(self) -> TraderConfig:
        if self.triggers is not None:
            for i, rule in enumerate(self.triggers.indicators):
                unknown = sorted(set(rule.coins) - set(self.coins))
                if unknown:
                    raise ValueError(
                        f"triggers.indicators.{i}.coins: {', '.join(unknown)} not among "
                        "the trader's coins"
                    )
        return self


class ManagerSection(Section):
    total_equity_usd: float = Field(gt=0)
    reserve_equity_pct: float = Field(10, ge=0, lt=100)
    allocation_strategy: Literal["fixed", "performance_based"] = "fixed"
    rebalance_interval: Duration = 3600.0
    rebalance_max_step_pct: float = Field(20, gt=0, le=100)  # per trader per rebalance
    state_storage_backend: Literal["events"] = "events"
    state_storage_path: str = ""
    tick_interval: Duration = 1.0
    pause_failure_pct: float = Field(10, gt=0, le=100)
    pause_failure_window: int = Field(20, ge=2, le=1000)
    #: A venue failing more than this share of its requests over the window hands its
    #: traders' decisions to paper twins on the in-process simulator until it recovers.
    exchange_failure_pct: float = Field(5, gt=0, le=100)
    exchange_failure_window: Duration = 300.0
    exchange_failure_min_requests: int = Field(20, ge=1, le=100_000)
    paper_fallback: bool = True


class MonitoringConfig(Section):
    update_interval: Duration = 15.0
    #: A JSON POST per alert; empty: alerts are logged and kept in memory only.
    alert_webhook: str = ""
    alert_format: Literal["json", "slack", "discord", "telegram"] = "json"
    alert_telegram_chat_id: str = ""
    alert_dedup_window: Duration = 300.0  # repeats of an alert within it are folded
    alert_rate_per_minute: int = Field(30, ge=1, le=10_000)
    alert_queue_size: int = Field(1000, ge=1, le=1_000_000)
    alert_retries: int = Field(3, ge=0, le=10)
    alert_timeout: Duration = 5.0

    @field_validator("alert_webhook")
    @classmethod
    def _webhook(cls, value: str) -> str:
        # Never echo the value: a webhook URL embeds its secret.
        if value and not re.fullmatch(r"https?://[^\s]+", value):
            raise ValueError("must be an http(s) URL")
        return value

    metrics_exporter: Literal["prometheus", "none"] = "prometheus"
    #: An event store probe slower than this counts as a slow query.
    slow_query_ms: float = Field(250, gt=0, le=600_000)


class ManagerConfig(Section):
    manager: ManagerSection
    traders: list[TraderConfig] = Field(min_length=1)
    monitoring: MonitoringConfig = MonitoringConfig()

    @field_validator("traders")
    @classmethod
    def _unique_ids(cls, traders: list[TraderConfig]) -> list[TraderConfig]:
        seen: set[str] = set()
        for trader in traders:
            if trader.id in seen:
                raise ValueError(f"trader id {trader.id!r} is used twice")
            seen.add(trader.id)
        return traders


# -- exchange.yaml and market.yaml ------------------------------------------------------


class RetryConfig(Section):
    max_attempts: int = Field(ge=1, le=20)
    backoff: Duration = 0.2
    max_backoff: Duration = 5.0


class HealthcheckConfig(Section):
    interval: Duration = 30.0
    timeout: Duration = 5.0


class ProviderBase(Section):
    timeout: Duration
    retry: RetryConfig
    capabilities: list[str] = Field(min_length=1)
    healthcheck: HealthcheckConfig = HealthcheckConfig()


ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
PRIVATE_KEY = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")


class SimBookConfig(Section):
    """The simulator's synthetic order book around the mid."""

    spread_bps: float = Field(1.0, ge=0, le=100)
    levels: int = Field(20, ge=1, le=100)
    step_bps: float = Field(1.0, gt=0, le=100)
    level_usd: float = Field(50_000, gt=0)  # depth per level (BTC and ETH get 5× and 3×)
    #: Fill randomness: the best levels' distance from the mid varies by up to this share
    #: of the half-spread, drawn per price update from the seed (0: a fixed spread).
    spread_jitter: float = Field(0.0, ge=0, le=1)


class SimExchangeConfig(ProviderBase):
    """The in-process Hyperliquid simulator, traded through the Hyperliquid adapter."""

    type: Literal["sim"]
    fee_taker_bps: float = Field(4.5, ge=0, le=100)
    fee_maker_bps: float = Field(1.5, ge=-10, le=100)
    funding_rate_hourly: float = Field(0.0000125, ge=-0.04, le=0.04)  # without replayed rates
    seed: int = 0
    book: SimBookConfig = SimBookConfig()
    fund_usdc: float | None = Field(None, gt=0)  # default: manager.total_equity_usd
    reconcile_interval: Duration = 0.0  # 0: every tick


class HyperliquidExchangeConfig(ProviderBase):
    """Hyperliquid (mainnet, testnet, or any server speaking its API such as
    ``nof0 sim serve``)."""

    type: Literal["hyperliquid"]
    private_key: str = ""  # the API wallet (agent) key, or the main wallet's
    main_address: str = ""
    vault_address: str = ""
    testnet: bool = True
    api_url: str = ""  # empty: mainnet or testnet by ``testnet``
    #: The venue's request weight per minute and IP (Hyperliquid: 1200); engines on one
    #: host (several engines on one PostgreSQL) split it between them.
    request_weight_per_minute: int = Field(1200, ge=10, le=1_000_000)
    fee_taker_bps: float = Field(4.5, ge=0, le=100)  # for pre-trade margin estimates
    reconcile_interval: Duration = 10.0

    @field_validator("main_address", "vault_address")
    @classmethod
    def _address(cls, value: str) -> str:
        if value and not ADDRESS.fullmatch(value):
            raise ValueError("must be an address: 0x followed by 40 hex digits")
        return value

    @field_validator("private_key")
    @classmethod
    def _key(cls, value: str) -> str:
        # Never echo the value: it is a secret.
        if value and not PRIVATE_KEY.fullmatch(value):
            raise ValueError("must be 64 hex digits (optionally prefixed by 0x)")
        return value

    @field_validator("api_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value and not re.fullmatch(r"https?://[^\s/]+(:\d+)?/?", value):
            raise ValueError("must be an http(s) URL such as http://127.0.0.1:3001")
        return value.rstrip("/")


ExchangeProviderConfig = Annotated[
    SimExchangeConfig | HyperliquidExchangeConfig, Field(discriminator="type")
]


class ExchangeConfig(Section):
    default: str
    providers: dict[str, ExchangeProviderConfig] = Field(min_length=1)


class ReplayMarketConfig(ProviderBase):
    type: Literal["replay"]
    #: ``synthetic``: seeded generated candles; ``history``: recorded one-minute candles,
    #: a CSV file per coin in ``candles`` (then ``coins`` are its keys, ``days`` unused).
    #: ``recorded``: an arena's recorded snapshots (``snapshots``, written by ``nof0 replay
    #: run`` from the arena's DecisionRequested events), served at the times they were taken.
    source: Literal["synthetic", "history", "recorded"] = "synthetic"
    candles: dict[str, str] = Field(default_factory=dict)
    #: recorded only: the frames file (one msgspec JSON snapshot per line).
    snapshots: str = ""
    #: history only: the market history store (``nof0 data``) to read ``coins`` from.
    store: str = ""
    #: history only: the replay must not run past this (a backtest's --to), which the
    #: candles must cover.
    end: datetime | None = None
    seed: int = 7
    start: datetime
    speed: float = Field(60, gt=0, le=100_000)
    history_days: int = Field(12, ge=11, le=365)
    days: int = Field(60, ge=1, le=3650)
    coins: list[str] = Field(default_factory=lambda: list(DEFAULT_COINS), min_length=1)
    max_staleness: Duration = 90.0

    @field_validator("start")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("must include a timezone, e.g. 2025-10-17T00:00:00Z")
        return value

    @model_validator(mode="before")
    @classmethod
    def _history_has_candles(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        candles = data.get("candles") or {}
        if data.get("source") == "recorded":
            if candles or data.get("store"):
                raise ValueError("source: recorded reads snapshots, not candles or a store")
            if not data.get("snapshots"):
                raise ValueError("source: recorded needs snapshots: path/to/snapshots.jsonl")
            return data
        if data.get("snapshots"):
            raise ValueError("snapshots are read only with source: recorded")
        if data.get("source") == "history":
            if data.get("store"):
                if candles:
                    raise ValueError("give candles files or a history store, not both")
                return data  # the store's one-minute candles of ``coins``
            if not isinstance(candles, dict) or not candles:
                raise ValueError(
                    "source: history needs candles: {COIN: path/to/1m.csv} or store: "
                    "path/to/history/market.sqlite"
                )
            candles = {str(coin).strip().upper(): path for coin, path in candles.items()}
            return {**data, "candles": candles, "coins": list(candles)}
        if candles or data.get("store"):
            raise ValueError("candles and store are read only with source: history")
        return data


class HyperliquidMarketConfig(ProviderBase):
    type: Literal["hyperliquid"]
    testnet: bool = False
    api_url: str = ""  # empty: mainnet or testnet by ``testnet``
    #: The venue's request weight per minute and IP (Hyperliquid: 1200); engines on one
    #: host (several engines on one PostgreSQL) split it between them.
    request_weight_per_minute: int = Field(1200, ge=10, le=1_000_000)
    http_timeout: Duration = 10.0
    max_retries: int = Field(3, ge=0, le=10)
    max_staleness: Duration = 3.0
    standby: list[str] = Field(default_factory=list)  # providers to fail over to, in order

    @field_validator("api_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value and not re.fullmatch(r"https?://[^\s/]+(:\d+)?/?", value):
            raise ValueError("must be an http(s) URL such as http://127.0.0.1:3001")
        return value.rstrip("/")


MarketProviderConfig = Annotated[
    ReplayMarketConfig | HyperliquidMarketConfig, Field(discriminator="type")
]


class MarketConfig(Section):
    default: str
    providers: dict[str, MarketProviderConfig] = Field(min_length=1)
