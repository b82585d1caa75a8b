"""The configuration's traders as the application's settings: each trader's own risk
limits and breakers, falling back to the executor's defaults."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from application.settings import TraderSettings
from domain.breakers import BreakerLimits, TripAction
from domain.risk import RiskLimits
from domain.triggers import IndicatorKind, IndicatorRule, TriggerRules
from infrastructure.config.loader import LoadedConfig
from infrastructure.config.models import BreakerParams, TraderConfig, TriggersConfig


def trader_settings(config: LoadedConfig, trader: TraderConfig) -> TraderSettings:
    ex = config.executor
    rp = trader.risk_params

    def pick(value: Any, default: Any) -> Any:
        return default if value is None else value

    limits = RiskLimits(
        max_positions=pick(rp.max_positions, ex.max_positions),
        max_position_size_usd=Decimal(
            str(pick(rp.max_position_size_usd, ex.max_position_size_usd))
        ),
        max_margin_usage_pct=Decimal(str(pick(rp.max_margin_usage_pct, ex.max_margin_usage_pct))),
        major_coin_leverage=pick(rp.major_coin_leverage, ex.major_coin_leverage),
        altcoin_leverage=pick(rp.altcoin_leverage, ex.altcoin_leverage),
        min_risk_reward=Decimal(str(pick(rp.min_risk_reward_ratio, ex.min_risk_reward))),
        min_confidence_pct=Decimal(str(pick(rp.min_confidence, ex.min_confidence))),
    )
    total = Decimal(str(config.manager.manager.total_equity_usd))
    allocation = (total * Decimal(str(trader.allocation_pct)) / 100).quantize(Decimal("0.01"))
    return TraderSettings(
        config_id=trader.id,
        name=trader.name or trader.id,
        model=trader.model,
        allocation=allocation,
        coins=tuple(trader.coins),
        decision_interval_s=trader.decision_interval or ex.decision_interval,
        decision_timeout_s=ex.decision_timeout,
        limits=limits,
        slippage_bps=Decimal(str(trader.market_ioc_slippage_bps)),
        system_template=str(config.resolve("Manager", trader.prompt_template)),
        user_template=str(config.resolve("Manager", trader.executor_prompt_template)),
        exchange=trader.exchange_provider,
        market=trader.market_provider,
        auto_start=trader.auto_start,
        stop_loss_enabled=rp.stop_loss_enabled,
        take_profit_enabled=rp.take_profit_enabled,
        breakers=_breakers(ex.breakers, rp.breakers),
        blindfold=trader.blindfold,
        triggers=None if trader.triggers is None else trigger_rules(trader.triggers),
    )


def trigger_rules(cfg: TriggersConfig) -> TriggerRules:
    return TriggerRules(
        max_interval_s=cfg.max_interval,
        min_interval_s=cfg.min_interval,
        atr_move=cfg.atr_move,
        atr_period=cfg.atr_period,
        bar_s=cfg.bar,
        on_fill=cfg.on_fill,
        on_stop_or_target=cfg.on_stop_or_target,
        funding_window_s=cfg.funding_window,
        invalidation=cfg.invalidation,
        indicators=tuple(
            IndicatorRule(
                kind=IndicatorKind(rule.kind),
                fast=rule.fast or 9,
                slow=rule.slow or 21,
                period=rule.period or 14,
                above=rule.above,
                below=rule.below,
                coins=tuple(rule.coins),
            )
            for rule in cfg.indicators
        ),
    )


def _breakers(defaults: BreakerParams, own: BreakerParams) -> BreakerLimits:
    def pick(name: str) -> Any:
        value = getattr(own, name)
        return getattr(defaults, name) if value is None else value

    def pct(name: str) -> Decimal | None:
        value = pick(name)
        return None if value is None else Decimal(str(value))

    return BreakerLimits(
        max_daily_loss_pct=pct("max_daily_loss_pct"),
        max_drawdown_pct=pct("max_drawdown_pct"),
        reentry_cooldown_s=pick("reentry_cooldown"),
        max_new_positions_per_hour=pick("max_new_positions_per_hour"),
        min_holding_s=pick("min_holding_time"),
        on_trip=TripAction(pick("on_trip") or TripAction.REFUSE_ENTRIES.value),
        cooldown_after_losses=pick("cooldown_after_losses"),
        loss_cooldown_s=pick("loss_cooldown") or 3600.0,
        min_sharpe=pick("min_sharpe"),
        sharpe_min_returns=pick("sharpe_min_returns") or 24,
        sharpe_slowdown=pick("sharpe_slowdown") or 3.0,
    )
