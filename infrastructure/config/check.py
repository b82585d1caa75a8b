"""Cross-file governance rules (ARCHITECTURE.md §7, the seed's 配置治理黄金守则).

The rules read the files' data as written (variables filled), not the validated models,
so they still run when a file has schema errors: ``nof0 check`` reports every problem at
once. A value of the wrong type is left to the schema errors and skipped here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from infrastructure.config.documents import Problem, _Document, _line, display, format_field
from infrastructure.config.durations import parse_duration
from infrastructure.config.models import (
    DEFAULT_COINS,
    KEYLESS_PROVIDERS,
    ExecutorConfig,
    ManagerSection,
)
from infrastructure.hyperliquid.assets import HYPERLIQUID_ASSETS
from infrastructure.models.baseline import PREFIX as BASELINE_PREFIX
from infrastructure.models.baseline import STRATEGIES as BASELINE_STRATEGIES
from infrastructure.models.baseline import known_baseline
from infrastructure.prompts.renderer import read_version_header

MARKET_CAPABILITIES = frozenset(
    {"candles_3m", "candles_4h", "mids", "open_interest", "funding", "mark_price", "replay"}
)
EXCHANGE_CAPABILITIES = frozenset(
    {
        "market_orders",
        "limit_orders",
        "reduce_only",
        "trigger_orders",
        "leverage",
        "cross_margin",
        "isolated_margin",
        "cancel",
        "modify",
    }
)
MARKET_NEEDS = frozenset({"candles_3m", "candles_4h", "mids"})
EXCHANGE_NEEDS = frozenset({"market_orders", "reduce_only", "leverage"})

Add = Callable[..., None]


def _get(data: Any, *path: str | int, kind: type | tuple[type, ...] | None = None) -> Any:
    """The value at ``path`` when every step exists (and it has ``kind``), else None."""
    node = data
    for part in path:
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                return None
        elif not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    if kind is not None and not isinstance(node, kind):
        return None
    if isinstance(node, bool) and kind is not None and kind is not bool:
        return None  # YAML's true/false is not a number
    return node


def _default(model: type[Any], name: str) -> Any:
    return model.model_fields[name].default


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _duration(value: Any, default: float) -> float | None:
    if value is None:
        return default
    try:
        return parse_duration(value)
    except ValueError:
        return None


def _resolve(doc: _Document, relative: str) -> Path:
    path = Path(os.path.expanduser(relative))
    return path if path.is_absolute() else (doc.path.parent / path).resolve()


def governance_problems(docs: Mapping[str, _Document], data_dir: Path | None) -> list[Problem]:
    """Every cross-file rule violated by the documents given (sections may be missing)."""

    problems: list[Problem] = []

    def add(section: str, loc: tuple[Any, ...], message: str, expected: str = "") -> None:
        doc = docs[section]
        problems.append(
            Problem(display(doc.path), format_field(loc), message, expected, _line(doc, loc))
        )

    data = {section: doc.data for section, doc in docs.items()}
    exchanges = _get(data.get("Exchange"), "providers", kind=dict) or {}
    markets = _get(data.get("Market"), "providers", kind=dict) or {}
    if "Exchange" in docs:
        _check_defaults_and_capabilities(
            add, "Exchange", exchanges, data["Exchange"], EXCHANGE_CAPABILITIES
        )
    if "Market" in docs:
        _check_defaults_and_capabilities(
            add, "Market", markets, data["Market"], MARKET_CAPABILITIES
        )
        _check_standby(add, markets)
    if "Manager" in docs:
        _check_traders(add, docs, data, exchanges, markets)
    if "Executor" in docs:
        _check_output_schema(add, docs["Executor"])
    if "Main" in docs:
        _check_main(add, docs["Main"], data_dir)
    return problems


def _check_defaults_and_capabilities(
    add: Add, section: str, providers: dict[str, Any], data: Any, known: frozenset[str]
) -> None:
    default = _get(data, "default", kind=str)
    if default is not None and providers and default not in providers:
        add(
            section,
            ("default",),
            f"unknown provider {default!r}",
            f"one of {', '.join(sorted(providers))}",
        )
    for name, provider in providers.items():
        listed = _get(provider, "capabilities", kind=list) or []
        unknown = [c for c in listed if isinstance(c, str) and c not in known]
        if unknown:
            add(
                section,
                ("providers", name, "capabilities"),
                f"unknown capabilities {', '.join(unknown)}",
                f"names among {', '.join(sorted(known))}",
            )


def _check_standby(add: Add, markets: dict[str, Any]) -> None:
    """Hot standby lists name other defined providers, never the provider itself."""
    for name, provider in markets.items():
        standby = _get(provider, "standby", kind=list) or []
        for i, other in enumerate(standby):
            if not isinstance(other, str):
                continue
            if other == name:
                add(
                    "Market",
                    ("providers", name, "standby", i),
                    "a provider cannot stand by for itself",
                )
            elif other not in markets:
                add(
                    "Market",
                    ("providers", name, "standby", i),
                    f"unknown market provider {other!r}",
                    f"one of {', '.join(sorted(markets))}",
                )


def _check_traders(
    add: Add,
    docs: Mapping[str, _Document],
    data: Mapping[str, Any],
    exchanges: dict[str, Any],
    markets: dict[str, Any],
) -> None:
    traders = _get(data["Manager"], "traders", kind=list) or []
    executor = data.get("Executor")
    default_interval = _duration(
        _get(executor, "decision_interval"), _default(ExecutorConfig, "decision_interval")
    )
    timeout = _duration(
        _get(executor, "decision_timeout"), _default(ExecutorConfig, "decision_timeout")
    )
    total = 0.0
    for i, trader in enumerate(traders):
        if not isinstance(trader, dict):
            continue
        here = ("traders", i)
        trader_id = _get(trader, "id", kind=str) or f"#{i}"
        coins = _get(trader, "coins", kind=list) or DEFAULT_COINS
        coins = [c.strip().upper() for c in coins if isinstance(c, str)]
        total += _number(trader.get("allocation_pct")) or 0.0

        name = _get(trader, "exchange_provider", kind=str)
        provider = exchanges.get(name) if name is not None else None
        if name is not None and "Exchange" in docs and provider is None:
            add(
                "Manager",
                (*here, "exchange_provider"),
                f"unknown exchange provider {name!r}",
                f"one of {', '.join(sorted(exchanges)) or '(none defined)'} (exchange.yaml)",
            )
        if isinstance(provider, dict):
            _check_needs(
                add,
                "Exchange",
                name,
                provider,
                EXCHANGE_NEEDS,
                trader_id,
                "the capabilities the trader uses",
            )
            kind = provider.get("type")
            if kind == "sim":
                unknown = [c for c in coins if c not in HYPERLIQUID_ASSETS]
                if unknown:
                    add(
                        "Manager",
                        (*here, "coins"),
                        f"the simulator does not list {', '.join(unknown)}",
                        f"coins among {', '.join(HYPERLIQUID_ASSETS)}",
                    )
            elif kind == "hyperliquid" and not (
                provider.get("private_key") and provider.get("main_address")
            ):
                add(
                    "Exchange",
                    ("providers", name),
                    f"trader {trader_id!r} trades here, but private_key or main_address is empty",
                    "both set (from the environment, e.g. ${HYPERLIQUID_PRIVATE_KEY})",
                )

        name = _get(trader, "market_provider", kind=str)
        market = markets.get(name) if name is not None else None
        if name is not None and "Market" in docs and market is None:
            add(
                "Manager",
                (*here, "market_provider"),
                f"unknown market provider {name!r}",
                f"one of {', '.join(sorted(markets)) or '(none defined)'} (market.yaml)",
            )
        if isinstance(market, dict):
            _check_needs(
                add,
                "Market",
                name,
                market,
                MARKET_NEEDS,
                trader_id,
                "the capabilities the prompt uses",
            )
            offered = _get(market, "coins", kind=list) or DEFAULT_COINS
            if market.get("type") == "replay" and all(isinstance(c, str) for c in offered):
                offered = [c.upper() for c in offered]
                unknown = [c for c in coins if c not in offered]
                if unknown:
                    add(
                        "Manager",
                        (*here, "coins"),
                        f"market provider {name!r} has no {', '.join(unknown)}",
                        f"coins among {', '.join(offered)}",
                    )

        model = _get(trader, "model", kind=str)
        if model and "LLM" in docs:
            _check_model(add, docs["LLM"], i, trader_id, model)
            fallbacks = _get(trader, "fallback_models", kind=list)
            for name in fallbacks or []:
                if isinstance(name, str):
                    _check_model(add, docs["LLM"], i, trader_id, name, role="falls back to")
        if "Executor" in docs:
            for key in ("prompt_template", "executor_prompt_template"):
                value = _get(trader, key, kind=str)
                if value:
                    _check_template(add, docs, i, key, value)

        interval = _duration(trader.get("decision_interval"), default_interval or 0.0)
        if interval and timeout is not None and timeout >= interval:
            add(
                "Manager",
                (*here, "decision_interval"),
                f"the decision timeout ({timeout:g}s) is not shorter than the interval "
                f"({interval:g}s)",
                "an interval longer than executor.yaml's timeout",
            )

    reserve = _number(_get(data["Manager"], "manager", "reserve_equity_pct"))
    if reserve is None:
        reserve = float(_default(ManagerSection, "reserve_equity_pct"))
    if not 0 <= reserve < 100:
        return  # an impossible reserve is a schema error already
    limit = 100 - reserve
    if total > limit + 1e-9:
        add(
            "Manager",
            ("traders",),
            f"allocation_pct sums to {total:g}, more than 100 − reserve_equity_pct "
            f"({reserve:g}) = {limit:g}",
            f"a sum of at most {limit:g}",
        )


def _check_needs(
    add: Add,
    section: str,
    name: str,
    provider: dict[str, Any],
    needs: frozenset[str],
    trader: str,
    expected: str,
) -> None:
    listed = _get(provider, "capabilities", kind=list)
    if not listed:
        return  # missing or empty capabilities are schema errors already
    missing = needs - {c for c in listed if isinstance(c, str)}
    if missing:
        add(
            section,
            ("providers", name, "capabilities"),
            f"trader {trader!r} needs {', '.join(sorted(missing))}",
            expected,
        )


def _check_model(
    add: Add, llm: _Document, index: int, trader: str, model: str, role: str = "uses"
) -> None:
    if model.startswith(BASELINE_PREFIX):
        if not known_baseline(model):
            known = ", ".join(BASELINE_PREFIX + k for k in BASELINE_STRATEGIES)
            add(
                "Manager",
                ("traders", index, "model"),
                f"unknown baseline model {model!r}",
                f"one of {known}",
            )
        return
    models = _get(llm.data, "models", kind=dict) or {}
    spec = models.get(model)
    if not isinstance(spec, dict):
        names = sorted(models) + [BASELINE_PREFIX + k for k in BASELINE_STRATEGIES]
        add(
            "Manager",
            ("traders", index, "model"),
            f"unknown model {model!r}",
            f"a model defined in llm.yaml or a baseline: {', '.join(names)}",
        )
        return
    if spec.get("provider") in KEYLESS_PROVIDERS:
        return
    if spec.get("api_key") or _get(llm.data, "api_key"):
        return
    var = llm.unset_vars.get(("models", model, "api_key")) or llm.unset_vars.get(("api_key",))
    hint = f"set ${{{var}}}" if var else "set api_key in llm.yaml (from an environment variable)"
    add(
        "LLM",
        ("models", model, "api_key"),
        f"trader {trader!r} uses model {model!r}, which has no API key",
        hint,
    )


def _check_template(
    add: Add, docs: Mapping[str, _Document], index: int, key: str, value: str
) -> None:
    executor = docs["Executor"].data
    version_wanted = _get(executor, "prompt_schema_version", kind=str)
    strict = _get(executor, "prompt_validation", "strict_mode")
    require = _get(executor, "prompt_validation", "require_version_header")
    strict = True if strict is None else bool(strict)
    require = True if require is None else bool(require)
    path = _resolve(docs["Manager"], value)
    loc = ("traders", index, key)
    if not path.is_file():
        add("Manager", loc, f"{value!r} does not exist", "a template path relative to manager.yaml")
        return
    version = read_version_header(path)
    if version is None:
        if require:
            add(
                "Manager",
                loc,
                f"{value} has no 'Version:' header",
                f"a first line like {{# Version: {version_wanted or 'v1.0.0'} #}}",
            )
        return
    if strict and version_wanted is not None and version != version_wanted:
        add(
            "Manager",
            loc,
            f"{Path(value).name} declares Version {version}",
            f"{version_wanted} (executor.yaml prompt_schema_version)",
        )


def _check_output_schema(add: Add, doc: _Document) -> None:

    enabled = _get(doc.data, "output_validation", "enabled")
    if enabled is False:
        return
    schema_path = _get(doc.data, "output_validation", "schema_path", kind=str) or ""
    path = _resolve(doc, schema_path) if schema_path else None
    if path is None or not path.is_file():
        add(
            "Executor",
            ("output_validation", "schema_path"),
            f"{schema_path or '(empty)'} does not exist",
            "the decision JSON Schema next to the prompt templates",
        )
        return
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        add(
            "Executor",
            ("output_validation", "schema_path"),
            f"{display(path)} is not valid JSON ({exc})",
            "a JSON Schema",
        )
        return
    wanted = _get(doc.data, "prompt_schema_version", kind=str)
    strict = _get(doc.data, "prompt_validation", "strict_mode")
    declared = schema.get("prompt_schema_version") if isinstance(schema, dict) else None
    if (strict is None or strict) and wanted is not None and declared != wanted:
        add(
            "Executor",
            ("output_validation", "schema_path"),
            f"{display(path)} declares prompt_schema_version {declared!r}",
            f"{wanted!r} (prompt_schema_version)",
        )


def _check_main(add: Add, doc: _Document, data_dir: Path | None) -> None:

    etc_dir = doc.path.parent
    if data_dir is not None and (data_dir == etc_dir or etc_dir in data_dir.parents):
        add(
            "Main",
            ("DataPath",),
            f"{display(data_dir)} is inside the configuration directory",
            "a data directory outside etc/ (nothing writes to etc/ at run time)",
        )
    dsn = _get(doc.data, "Postgres", "DataSource", kind=str)
    if dsn and not dsn.startswith(("postgres://", "postgresql://")):
        add(
            "Main",
            ("Postgres", "DataSource"),
            "not a PostgreSQL URL",
            "postgresql://user:password@host:port/dbname, or empty for SQLite",
        )
    for i, node in enumerate(_get(doc.data, "Cache", kind=list) or []):
        host = _get(node, "Host", kind=str)
        if host and (":" not in host or not host.rsplit(":", 1)[1].isdigit()):
            add("Main", ("Cache", i, "Host"), f"{host!r} has no port", "host:port")
