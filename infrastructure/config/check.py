"""Cross-file governance rules (ARCHITECTURE.md §7, the seed's 配置治理黄金守则)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infrastructure.config.models import KEYLESS_PROVIDERS, ReplayMarketConfig, SimExchangeConfig
from infrastructure.models.baseline import PREFIX as BASELINE_PREFIX
from infrastructure.models.baseline import STRATEGIES as BASELINE_STRATEGIES
from infrastructure.prompts.renderer import read_version_header
from infrastructure.simulator.paper import HYPERLIQUID_ASSETS

if TYPE_CHECKING:
    from infrastructure.config.loader import LoadedConfig, Problem, _Document

MARKET_CAPABILITIES = frozenset(
    {"candles_3m", "candles_4h", "mids", "open_interest", "funding", "mark_price", "replay"}
)
EXCHANGE_CAPABILITIES = frozenset(
    {"market_orders", "limit_orders", "reduce_only", "trigger_orders", "leverage", "cross_margin",
     "isolated_margin", "cancel", "modify"}
)
MARKET_NEEDS = frozenset({"candles_3m", "candles_4h", "mids"})
EXCHANGE_NEEDS = frozenset({"market_orders", "reduce_only", "leverage"})


def governance_problems(
    config: LoadedConfig, docs: Mapping[str, _Document], env: Mapping[str, str]
) -> list[Problem]:
    from infrastructure.config.loader import Problem, _line, display

    problems: list[Problem] = []

    def add(section: str, loc: tuple[Any, ...], message: str, expected: str = "") -> None:
        doc = docs[section]
        field_name = ""
        for part in loc:
            field_name += f"[{part}]" if isinstance(part, int) else (f".{part}" if field_name else part)
        problems.append(
            Problem(display(doc.path), field_name, message, expected, _line(doc, tuple(loc)))
        )

    main, llm, ex, mgr, mkt = (
        config.main, config.llm, config.executor, config.manager, config.market
    )
    exchange = config.exchange
    exchanges = sorted(exchange.providers)
    markets = sorted(mkt.providers)
    if exchange.default not in exchange.providers:
        add("Exchange", ("default",), f"unknown provider {exchange.default!r}",
            f"one of {', '.join(exchanges)}")
    if mkt.default not in mkt.providers:
        add("Market", ("default",), f"unknown provider {mkt.default!r}",
            f"one of {', '.join(markets)}")

    for name, provider in exchange.providers.items():
        _capabilities(add, "Exchange", name, provider.capabilities, EXCHANGE_CAPABILITIES)
    for name, market in mkt.providers.items():
        _capabilities(add, "Market", name, market.capabilities, MARKET_CAPABILITIES)

    total = 0.0
    for i, trader in enumerate(mgr.traders):
        total += trader.allocation_pct
        here = ("traders", i)
        provider = exchange.providers.get(trader.exchange_provider)
        if provider is None:
            add("Manager", (*here, "exchange_provider"),
                f"unknown exchange provider {trader.exchange_provider!r}",
                f"one of {', '.join(exchanges)} (exchange.yaml)")
        else:
            missing = EXCHANGE_NEEDS - set(provider.capabilities)
            if missing:
                add("Exchange", ("providers", trader.exchange_provider, "capabilities"),
                    f"trader {trader.id!r} needs {', '.join(sorted(missing))}",
                    "the capabilities the trader uses")
            if isinstance(provider, SimExchangeConfig):
                unknown = [c for c in trader.coins if c not in HYPERLIQUID_ASSETS]
                if unknown:
                    add("Manager", (*here, "coins"),
                        f"the simulator does not list {', '.join(unknown)}",
                        f"coins among {', '.join(HYPERLIQUID_ASSETS)}")
            elif not (provider.private_key and provider.main_address):
                add("Exchange", ("providers", trader.exchange_provider),
                    f"trader {trader.id!r} trades here, but private_key or main_address is empty",
                    "both set (from the environment, e.g. ${HYPERLIQUID_PRIVATE_KEY})")
        market = mkt.providers.get(trader.market_provider)
        if market is None:
            add("Manager", (*here, "market_provider"),
                f"unknown market provider {trader.market_provider!r}",
                f"one of {', '.join(markets)} (market.yaml)")
        else:
            missing = MARKET_NEEDS - set(market.capabilities)
            if missing:
                add("Market", ("providers", trader.market_provider, "capabilities"),
                    f"trader {trader.id!r} needs {', '.join(sorted(missing))}",
                    "the capabilities the prompt uses")
            if isinstance(market, ReplayMarketConfig):
                unknown = [c for c in trader.coins if c not in market.coins]
                if unknown:
                    add("Manager", (*here, "coins"),
                        f"market provider {trader.market_provider!r} has no "
                        f"{', '.join(unknown)}",
                        f"coins among {', '.join(market.coins)}")
        _check_model(add, config, docs, env, i, trader.id, trader.model)
        for key in ("prompt_template", "executor_prompt_template"):
            _check_template(add, config, i, key, getattr(trader, key))
        interval = trader.decision_interval or ex.decision_interval
        if ex.decision_timeout >= interval:
            add("Manager", (*here, "decision_interval"),
                f"the decision timeout ({ex.decision_timeout:g}s) is not shorter than the "
                f"interval ({interval:g}s)", "an interval longer than executor.yaml's timeout")

    limit = 100 - mgr.manager.reserve_equity_pct
    if total > limit + 1e-9:
        add("Manager", ("traders",),
            f"allocation_pct sums to {total:g}, more than 100 − reserve_equity_pct "
            f"({mgr.manager.reserve_equity_pct:g}) = {limit:g}",
            f"a sum of at most {limit:g}")

    if ex.output_validation.enabled:
        schema_path = config.resolve("Executor", ex.output_validation.schema_path or "")
        if not ex.output_validation.schema_path or not schema_path.is_file():
            add("Executor", ("output_validation", "schema_path"),
                f"{ex.output_validation.schema_path or '(empty)'} does not exist",
                "the decision JSON Schema next to the prompt templates")
        else:
            try:
                schema = json.loads(schema_path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                add("Executor", ("output_validation", "schema_path"),
                    f"{display(schema_path)} is not valid JSON ({exc})", "a JSON Schema")
            else:
                declared = schema.get("prompt_schema_version")
                strict = ex.prompt_validation.strict_mode
                if strict and declared != ex.prompt_schema_version:
                    add("Executor", ("output_validation", "schema_path"),
                        f"{display(schema_path)} declares prompt_schema_version {declared!r}",
                        f"{ex.prompt_schema_version!r} (prompt_schema_version)")

    etc_dir = config.path.parent
    if config.data_dir == etc_dir or etc_dir in config.data_dir.parents:
        add("Main", ("DataPath",), f"{display(config.data_dir)} is inside the configuration "
            "directory", "a data directory outside etc/ (nothing writes to etc/ at run time)")
    dsn = main.Postgres.DataSource
    if dsn and not dsn.startswith(("postgres://", "postgresql://")):
        add("Main", ("Postgres", "DataSource"), "not a PostgreSQL URL",
            "postgresql://user:password@host:port/dbname, or empty for SQLite")
    for i, node in enumerate(main.Cache):
        host = node.Host
        if host and (":" not in host or not host.rsplit(":", 1)[1].isdigit()):
            add("Main", ("Cache", i, "Host"), f"{host!r} has no port", "host:port")
    return problems


def _capabilities(
    add: Any, section: str, name: str, listed: list[str], known: frozenset[str]
) -> None:
    unknown = [c for c in listed if c not in known]
    if unknown:
        add(section, ("providers", name, "capabilities"),
            f"unknown capabilities {', '.join(unknown)}", f"names among {', '.join(sorted(known))}")


def _check_model(
    add: Any,
    config: LoadedConfig,
    docs: Mapping[str, _Document],
    env: Mapping[str, str],
    index: int,
    trader: str,
    model: str,
) -> None:
    llm = config.llm
    if model.startswith(BASELINE_PREFIX):
        if model[len(BASELINE_PREFIX) :] not in BASELINE_STRATEGIES:
            known = ", ".join(BASELINE_PREFIX + k for k in BASELINE_STRATEGIES)
            add("Manager", ("traders", index, "model"), f"unknown baseline model {model!r}",
                f"one of {known}")
        return
    spec = llm.models.get(model)
    if spec is None:
        names = sorted(llm.models) + [BASELINE_PREFIX + k for k in BASELINE_STRATEGIES]
        add("Manager", ("traders", index, "model"), f"unknown model {model!r}",
            f"a model defined in llm.yaml or a baseline: {', '.join(names)}")
        return
    if spec.provider in KEYLESS_PROVIDERS:
        return
    if spec.api_key or llm.api_key:
        return
    doc = docs["LLM"]
    var = doc.unset_vars.get(("models", model, "api_key")) or doc.unset_vars.get(("api_key",))
    hint = f"set ${{{var}}}" if var else "set api_key in llm.yaml (from an environment variable)"
    add("LLM", ("models", model, "api_key"),
        f"trader {trader!r} uses model {model!r}, which has no API key", hint)


def _check_template(add: Any, config: LoadedConfig, index: int, key: str, value: str) -> None:
    ex = config.executor
    path = config.resolve("Manager", value)
    loc = ("traders", index, key)
    if not path.is_file():
        add("Manager", loc, f"{value!r} does not exist", "a template path relative to manager.yaml")
        return
    version = read_version_header(path)
    if version is None:
        if ex.prompt_validation.require_version_header:
            add("Manager", loc, f"{value} has no 'Version:' header",
                f"a first line like {{# Version: {ex.prompt_schema_version} #}}")
        return
    if ex.prompt_validation.strict_mode and version != ex.prompt_schema_version:
        add("Manager", loc, f"{Path(value).name} declares Version {version}",
            f"{ex.prompt_schema_version} (executor.yaml prompt_schema_version)")
