"""Cross-file governance rules (ARCHITECTURE.md §7, the seed's 配置治理黄金守则).

Each test breaks one rule in a copy of the shipped offline arena (which is clean) and
asserts the single problem it causes: its file, field, line where the field is written,
what is wrong and what is expected.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infrastructure.config.loader import Problem
from tests.support.workspace import Workspace


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "arena")


def only(problems: list[Problem]) -> Problem:
    assert len(problems) == 1, "\n".join(str(p) for p in problems)
    return problems[0]


def assert_at(problem: Problem, path: Path, field: str) -> None:
    assert Path(problem.file).resolve() == path.resolve(), str(problem)
    assert problem.field == field, str(problem)


def test_the_helper_round_trip_keeps_the_copy_valid(ws: Workspace) -> None:
    for name in ("nof0.yaml", "llm.yaml", "executor.yaml", "manager.yaml", "market.yaml"):
        ws.set(name, ("__probe__",), 1)
        ws.set(name, ("__probe__",))
    config = ws.load()
    assert len(config.manager.traders) == 3


# -- unknown provider ids -----------------------------------------------------------------


def test_a_traders_unknown_exchange_provider(ws: Workspace) -> None:
    ws.set("manager.yaml", ("traders", 1, "exchange_provider"), "papertrading")
    problem = only(ws.problems())
    assert_at(problem, ws.file("manager.yaml"), "traders[1].exchange_provider")
    assert problem.message == "unknown exchange provider 'papertrading'"
    assert problem.expected == "one of paper_trading (exchange.yaml)"
    assert problem.line == ws.line("manager.yaml", "exchange_provider: papertrading")


def test_a_traders_unknown_market_provider(ws: Workspace) -> None:
    ws.set("manager.yaml", ("traders", 2, "market_provider"), "hyperliquid")
    problem = only(ws.problems())
    assert_at(problem, ws.file("manager.yaml"), "traders[2].market_provider")
    assert problem.message == "unknown market provider 'hyperliquid'"
    assert problem.expected == "one of replay (market.yaml)"
    assert problem.line == ws.line("manager.yaml", "market_provider: hyperliquid")


@pytest.mark.parametrize(
    ("name", "old", "new", "known"),
    [
        ("exchange.yaml", "default: paper_trading", "default: paper", "paper_trading"),
        ("market.yaml", "default: replay", "default: replays", "replay"),
    ],
)
def test_an_unknown_default_provider(
    ws: Workspace, name: str, old: str, new: str, known: str
) -> None:
    ws.replace(name, old, new)
    problem = only(ws.problems())
    assert_at(problem, ws.file(name), "default")
    assert problem.message == f"unknown provider {new.split(': ')[1]!r}"
    assert problem.expected == f"one of {known}"
    assert problem.line == ws.line(name, new)


# -- allocation -------------------------------------------------------------------------------


def test_allocations_above_100_minus_the_reserve(ws: Workspace) -> None:
    ws.set("manager.yaml", ("traders", 0, "allocation_pct"), 31)
    problem = only(ws.problems())
    assert_at(problem, ws.file("manager.yaml"), "traders")
    assert "allocation_pct sums to 91" in problem.message
    assert "100 − reserve_equity_pct (10) = 90" in problem.message
    assert problem.expected == "a sum of at most 90"
    assert problem.line == ws.line("manager.yaml", "traders:")


def test_a_larger_reserve_lowers_the_allocation_limit(ws: Workspace) -> None:
    ws.replace("manager.yaml", "  reserve_equity_pct: 10", "  reserve_equity_pct: 15")
    problem = only(ws.problems())
    assert_at(problem, ws.file("manager.yaml"), "traders")
    assert "allocation_pct sums to 90" in problem.message
    assert "(15) = 85" in problem.message
    assert problem.expected == "a sum of at most 85"


def test_allocations_exactly_at_the_limit_pass(ws: Workspace) -> None:
    ws.set("manager.yaml", ("traders", 0, "allocation_pct"), 20)
    ws.set("manager.yaml", ("traders", 1, "allocation_pct"), 45.5)
    ws.set("manager.yaml", ("traders", 2, "allocation_pct"), 24.5)
    assert sum(t.allocation_pct for t in ws.load().manager.traders) == 90


# -- prompt templates ---------------------------------------------------------------------


def test_a_template_whose_version_differs_from_the_executors(ws: Workspace) -> None:
    path = ws.template("old_user.j2", "v0.9.0")
    ws.set("manager.yaml", ("traders", 0, "executor_prompt_template"), path)
    problem = only(ws.problems())
    assert_at(problem, ws.file("manager.yaml"), "traders[0].executor_prompt_template")
    assert problem.message == "old_user.j2 declares Version v0.9.0"
    assert problem.expected == "v1.0.0 (executor.yaml prompt_schema_version)"
    assert problem.line == ws.line("manager.yaml", "old_user.j2")


def test_a_changed_schema_version_flags_every_template(ws: Workspace) -> None:
    ws.replace(
        "executor.yaml", 'prompt_schema_version: "v1.0.0"', 'prompt_schema_version: "v1.1.0"'
    )
    ws.set("executor.yaml", ("output_validation", "enabled"), False)
    problems = ws.problems()
    assert len(problems) == 6, "\n".join(map(str, problems))
    for i in range(3):
        for key, name in (
            ("prompt_template", "system.j2"),
            ("executor_prompt_template", "user.j2"),
        ):
            [problem] = [p for p in problems if p.field == f"traders[{i}].{key}"]
            assert problem.message == f"{name} declares Version v1.0.0"
            assert problem.expected == "v1.1.0 (executor.yaml prompt_schema_version)"


def test_a_version_mismatch_is_allowed_outside_strict_mode(ws: Workspace) -> None:
    path = ws.template("old_user.j2", "v0.9.0")
    ws.set("manager.yaml", ("traders", 0, "executor_prompt_template"), path)
    ws.set("executor.yaml", ("prompt_validation", "strict_mode"), False)
    assert ws.load().manager.traders[0].executor_prompt_template == path


def test_a_template_without_a_version_header(ws: Workspace) -> None:
    path = ws.template("bare.j2", None)
    ws.set("manager.yaml", ("traders", 2, "prompt_template"), path)
    problem = only(ws.problems())
    assert_at(problem, ws.file("manager.yaml"), "traders[2].prompt_template")
    assert problem.message == f"{path} has no 'Version:' header"
    assert problem.expected == "a first line like {# Version: v1.0.0 #}"
    assert problem.line == ws.line("manager.yaml", "bare.j2")


def test_a_missing_header_is_allowed_when_not_required(ws: Workspace) -> None:
    ws.set("manager.yaml", ("traders", 2, "prompt_template"), ws.template("bare.j2", None))
    ws.set("executor.yaml", ("prompt_validation", "require_version_header"), False)
    assert ws.load().manager.traders[2].prompt_template.endswith("bare.j2")


def test_a_missing_template(ws: Workspace) -> None:
    ws.set("manager.yaml", ("traders", 1, "prompt_template"), "../prompts/decision/sytem.j2")
    problem = only(ws.problems())
    assert_at(problem, ws.file("manager.yaml"), "traders[1].prompt_template")
    assert problem.message == "'../prompts/decision/sytem.j2' does not exist"
    assert problem.expected == "a template path relative to manager.yaml"
    assert problem.line == ws.line("manager.yaml", "sytem.j2")


def test_template_paths_are_relative_to_manager_yaml_not_the_working_directory(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ws.prompts)
    ws.set("manager.yaml", ("traders", 1, "prompt_template"), "system.j2")
    problem = only(ws.problems())
    assert_at(problem, ws.file("manager.yaml"), "traders[1].prompt_template")
    assert problem.message == "'system.j2' does not exist"


# -- providers: timeout, retry, capabilities ------------------------------------------------


@pytest.mark.parametrize("key", ["timeout", "retry", "capabilities"])
@pytest.mark.parametrize(
    ("name", "provider"), [("exchange.yaml", "paper_trading"), ("market.yaml", "replay")]
)
def test_a_provider_without_a_required_field(
    ws: Workspace, name: str, provider: str, key: str
) -> None:
    ws.set(name, ("providers", provider, key))
    problem = only(ws.problems())
    assert_at(problem, ws.file(name), f"providers.{provider}.{key}")
    assert problem.message == "missing required field"


@pytest.mark.parametrize(
    ("name", "provider"), [("exchange.yaml", "paper_trading"), ("market.yaml", "replay")]
)
def test_a_provider_with_no_capabilities(ws: Workspace, name: str, provider: str) -> None:
    ws.set(name, ("providers", provider, "capabilities"), [])
    problem = only(ws.problems())
    assert_at(problem, ws.file(name), f"providers.{provider}.capabilities")
    assert "at least 1 item" in problem.message


def test_a_retry_without_max_attempts(ws: Workspace) -> None:
    ws.set("exchange.yaml", ("providers", "paper_trading", "retry", "max_attempts"))
    problem = only(ws.problems())
    assert_at(problem, ws.file("exchange.yaml"), "providers.paper_trading.retry.max_attempts")
    assert problem.message == "missing required field"


@pytest.mark.parametrize(
    ("name", "provider", "unknown", "known"),
    [
        ("exchange.yaml", "paper_trading", "teleport", "cancel, cross_margin, isolated_margin"),
        ("market.yaml", "replay", "candles_1m", "candles_3m, candles_4h, funding, mark_price"),
    ],
)
def test_unknown_capabilities(
    ws: Workspace, name: str, provider: str, unknown: str, known: str
) -> None:
    ws.replace(name, "capabilities: [", f"capabilities: [{unknown}, ")
    problem = only(ws.problems())
    assert_at(problem, ws.file(name), f"providers.{provider}.capabilities")
    assert problem.message == f"unknown capabilities {unknown}"
    assert problem.expected.startswith("names among ")
    assert known in problem.expected
    assert problem.line == ws.line(name, "capabilities:")


@pytest.mark.parametrize(
    ("name", "provider", "dropped", "expected"),
    [
        ("exchange.yaml", "paper_trading", "leverage", "the capabilities the trader uses"),
        ("market.yaml", "replay", "mids", "the capabilities the prompt uses"),
    ],
)
def test_a_provider_lacking_a_capability_its_traders_need(
    ws: Workspace, name: str, provider: str, dropped: str, expected: str
) -> None:
    ws.replace(name, f" {dropped},", "")
    problems = ws.problems()
    assert len(problems) == 3, "\n".join(map(str, problems))
    for problem, trader in zip(problems, ["ema-cross", "random-walk", "btc-hold"], strict=True):
        assert_at(problem, ws.file(name), f"providers.{provider}.capabilities")
        assert problem.message == f"trader {trader!r} needs {dropped}"
        assert problem.expected == expected


def test_a_live_exchange_without_keys(ws: Workspace) -> None:
    ws.set(
        "exchange.yaml",
        ("providers", "hl"),
        {
            "type": "hyperliquid",
            "private_key": "${HYPERLIQUID_PRIVATE_KEY}",
            "main_address": "",
            "timeout": "5s",
            "retry": {"max_attempts": 3},
            "capabilities": ["market_orders", "reduce_only", "leverage"],
        },
    )
    ws.set("manager.yaml", ("traders", 0, "exchange_provider"), "hl")
    problem = only(ws.problems())
    assert_at(problem, ws.file("exchange.yaml"), "providers.hl")
    assert problem.message == (
        "trader 'ema-cross' trades here, but private_key or main_address is empty"
    )
    assert "${HYPERLIQUID_PRIVATE_KEY}" in problem.expected


# -- models and keys -----------------------------------------------------------------------


def test_a_traders_model_without_an_api_key(ws: Workspace) -> None:
    ws.set("manager.yaml", ("traders", 0, "model"), "gpt-5")
    problem = only(ws.problems())
    assert_at(problem, ws.file("llm.yaml"), "models.gpt-5.api_key")
    assert problem.message == "trader 'ema-cross' uses model 'gpt-5', which has no API key"
    assert problem.expected == "set ${ZENMUX_API_KEY}"
    # models.gpt-5 has no api_key line: the problem points at the model's block.
    model = ws.file("llm.yaml").read_text(encoding="utf-8").splitlines().index("  gpt-5:") + 1
    assert problem.line in (model, model + 1)


def test_the_hint_names_the_models_own_variable(ws: Workspace) -> None:
    ws.set("llm.yaml", ("models", "claude-sonnet-4.5", "api_key"), "${ANTHROPIC_API_KEY}")
    ws.set("manager.yaml", ("traders", 1, "model"), "claude-sonnet-4.5")
    problem = only(ws.problems())
    assert_at(problem, ws.file("llm.yaml"), "models.claude-sonnet-4.5.api_key")
    assert problem.message == (
        "trader 'random-walk' uses model 'claude-sonnet-4.5', which has no API key"
    )
    assert problem.expected == "set ${ANTHROPIC_API_KEY}"
    assert problem.line == ws.line("llm.yaml", "${ANTHROPIC_API_KEY}")


def test_the_hint_without_any_variable(ws: Workspace) -> None:
    ws.set("llm.yaml", ("api_key",))
    ws.set("manager.yaml", ("traders", 2, "model"), "deepseek-chat")
    problem = only(ws.problems())
    assert_at(problem, ws.file("llm.yaml"), "models.deepseek-chat.api_key")
    assert problem.expected == "set api_key in llm.yaml (from an environment variable)"


def test_every_trader_without_a_key_is_reported(ws: Workspace) -> None:
    ws.set("manager.yaml", ("traders", 0, "model"), "gpt-5")
    ws.set("manager.yaml", ("traders", 2, "model"), "gpt-5")
    problems = ws.problems()
    assert [p.message for p in problems] == [
        "trader 'ema-cross' uses model 'gpt-5', which has no API key",
        "trader 'btc-hold' uses model 'gpt-5', which has no API key",
    ]


@pytest.mark.parametrize(
    "env", [{"ZENMUX_API_KEY": "sk-test"}, {"ANTHROPIC_API_KEY": "sk-ant-test"}]
)
def test_a_key_from_the_environment_satisfies_the_rule(ws: Workspace, env: dict[str, str]) -> None:
    ws.set("llm.yaml", ("models", "claude-sonnet-4.5", "api_key"), "${ANTHROPIC_API_KEY}")
    ws.set("manager.yaml", ("traders", 1, "model"), "claude-sonnet-4.5")
    assert ws.load(env).manager.traders[1].model == "claude-sonnet-4.5"


@pytest.mark.parametrize("provider", ["ollama", "vllm"])
def test_local_model_servers_need_no_key(ws: Workspace, provider: str) -> None:
    ws.set("llm.yaml", ("api_key",))
    ws.set(
        "llm.yaml",
        ("models", "local"),
        {"provider": provider, "model_name": "qwen3:8b", "base_url": "http://127.0.0.1:11434"},
    )
    ws.set("manager.yaml", ("traders", 0, "model"), "local")
    assert ws.load().llm.models["local"].provider == provider


def test_baseline_models_need_no_key(ws: Workspace) -> None:
    ws.set("llm.yaml", ("api_key",))
    ws.set("llm.yaml", ("models",), {})
    assert [t.model for t in ws.load().manager.traders] == [
        "baseline:ema_cross",
        "baseline:random",
        "baseline:btc_hold",
    ]


def test_an_unknown_baseline_model(ws: Workspace) -> None:
    ws.set("manager.yaml", ("traders", 1, "model"), "baseline:momentum")
    problem = only(ws.problems())
    assert_at(problem, ws.file("manager.yaml"), "traders[1].model")
    assert problem.message == "unknown baseline model 'baseline:momentum'"
    assert problem.expected == "one of baseline:ema_cross, baseline:btc_hold, baseline:random"
    assert problem.line == ws.line("manager.yaml", "baseline:momentum")


def test_a_model_not_defined_in_llm_yaml(ws: Workspace) -> None:
    ws.set("manager.yaml", ("traders", 0, "model"), "gpt-6")
    problem = only(ws.problems())
    assert_at(problem, ws.file("manager.yaml"), "traders[0].model")
    assert problem.message == "unknown model 'gpt-6'"
    assert problem.expected.startswith("a model defined in llm.yaml or a baseline: ")
    for name in ("claude-sonnet-4.5", "deepseek-chat", "gpt-5", "baseline:ema_cross"):
        assert name in problem.expected
    assert problem.line == ws.line("manager.yaml", "model: gpt-6")


# -- decision timing ----------------------------------------------------------------------


def test_a_decision_timeout_not_shorter_than_the_interval(ws: Workspace) -> None:
    ws.replace("executor.yaml", "decision_timeout: 60s", "decision_timeout: 3m")
    problems = ws.problems()
    # ema-cross and random-walk decide every 3m (equal: refused); btc-hold every 15m.
    assert len(problems) == 2, "\n".join(map(str, problems))
    for i, problem in enumerate(problems):
        assert_at(problem, ws.file("manager.yaml"), f"traders[{i}].decision_interval")
        assert problem.message == (
            "the decision timeout (180s) is not shorter than the interval (180s)"
        )
        assert problem.expected == "an interval longer than executor.yaml's timeout"
    assert [p.line for p in problems] == ws.lines("manager.yaml", "decision_interval: 3m")


def test_a_trader_inherits_the_executors_interval(ws: Workspace) -> None:
    ws.set("manager.yaml", ("traders", 1, "decision_interval"))
    ws.replace("executor.yaml", "decision_interval: 3m", "decision_interval: 30s")
    problem = only(ws.problems())
    assert_at(problem, ws.file("manager.yaml"), "traders[1].decision_interval")
    assert problem.message == "the decision timeout (60s) is not shorter than the interval (30s)"


# -- coins --------------------------------------------------------------------------------


def test_coins_the_market_does_not_have(ws: Workspace) -> None:
    ws.replace("market.yaml", "coins: [BTC, ETH, SOL, BNB, DOGE, XRP]", "coins: [BTC, ETH]")
    problems = ws.problems()
    # btc-hold trades BTC only; the other two trade the six default coins.
    assert len(problems) == 2, "\n".join(map(str, problems))
    for i, problem in enumerate(problems):
        assert_at(problem, ws.file("manager.yaml"), f"traders[{i}].coins")
        assert problem.message == "market provider 'replay' has no SOL, BNB, DOGE, XRP"
        assert problem.expected == "coins among BTC, ETH"


def test_coins_the_simulator_does_not_list(ws: Workspace) -> None:
    ws.replace("market.yaml", "coins: [BTC, ETH, SOL, BNB, DOGE, XRP]", "coins: [BTC, PEPE]")
    ws.set("manager.yaml", ("traders", 0, "coins"), ["BTC"])
    ws.set("manager.yaml", ("traders", 1, "coins"), ["BTC"])
    ws.set("manager.yaml", ("traders", 2, "coins"), ["BTC", "pepe"])
    problem = only(ws.problems())
    assert_at(problem, ws.file("manager.yaml"), "traders[2].coins")
    assert problem.message == "the simulator does not list PEPE"
    assert problem.expected == "coins among BTC, ETH, SOL, BNB, DOGE, XRP"


# -- the output schema --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "shown"),
    [("../prompts/decision/decision.json", "../prompts/decision/decision.json"), ("", "(empty)")],
)
def test_a_missing_output_schema(ws: Workspace, written: str, shown: str) -> None:
    ws.set("executor.yaml", ("output_validation", "schema_path"), written)
    problem = only(ws.problems())
    assert_at(problem, ws.file("executor.yaml"), "output_validation.schema_path")
    assert problem.message == f"{shown} does not exist"
    assert problem.expected == "the decision JSON Schema next to the prompt templates"
    assert problem.line == ws.line("executor.yaml", "schema_path:")


def test_a_missing_schema_is_allowed_when_output_validation_is_off(ws: Workspace) -> None:
    ws.set("executor.yaml", ("output_validation", "schema_path"), "nowhere.json")
    ws.set("executor.yaml", ("output_validation", "enabled"), False)
    assert ws.load().executor.output_validation.enabled is False


def test_an_output_schema_for_another_prompt_version(ws: Workspace) -> None:
    path = ws.prompts / "decision.schema.json"
    schema = json.loads(path.read_text(encoding="utf-8"))
    schema["prompt_schema_version"] = "v0.9.0"
    path.write_text(json.dumps(schema), encoding="utf-8")
    problem = only(ws.problems())
    assert_at(problem, ws.file("executor.yaml"), "output_validation.schema_path")
    assert problem.message.endswith("decision.schema.json declares prompt_schema_version 'v0.9.0'")
    assert problem.expected == "'v1.0.0' (prompt_schema_version)"


def test_an_output_schema_that_is_not_json(ws: Workspace) -> None:
    (ws.prompts / "decision.schema.json").write_text("{not json", encoding="utf-8")
    problem = only(ws.problems())
    assert_at(problem, ws.file("executor.yaml"), "output_validation.schema_path")
    assert "decision.schema.json is not valid JSON" in problem.message
    assert problem.expected == "a JSON Schema"


# -- the data path ------------------------------------------------------------------------


@pytest.mark.parametrize("written", ["state", ".", "./runtime/data"])
def test_a_data_path_inside_the_etc_directory(ws: Workspace, written: str) -> None:
    ws.replace("nof0.yaml", "DataPath: ../data ", f"DataPath: {written} ")
    problem = only(ws.problems())
    assert_at(problem, ws.main, "DataPath")
    assert "is inside the configuration directory" in problem.message
    assert problem.expected.startswith("a data directory outside etc/")
    assert problem.line == ws.line("nof0.yaml", "DataPath:")


def test_a_data_dir_argument_inside_etc_is_refused_too(ws: Workspace) -> None:
    problem = only(ws.problems(data_dir=ws.etc / "data"))
    assert_at(problem, ws.main, "DataPath")
    assert "is inside the configuration directory" in problem.message


def test_a_data_dir_argument_outside_etc_replaces_a_bad_data_path(ws: Workspace) -> None:
    ws.replace("nof0.yaml", "DataPath: ../data ", "DataPath: state ")
    assert ws.load(data_dir=ws.root / "data2").data_dir == ws.root / "data2"


def test_a_sibling_directory_whose_name_starts_like_etc_is_outside(ws: Workspace) -> None:
    ws.replace("nof0.yaml", "DataPath: ../data ", "DataPath: ../etc-data ")
    assert ws.load().data_dir == ws.root / "etc-data"


# -- Postgres and Cache -------------------------------------------------------------------


@pytest.mark.parametrize("dsn", ["mysql://root@db/nof0", "127.0.0.1:5432", "host=db dbname=x"])
def test_a_data_source_that_is_not_a_postgres_url(ws: Workspace, dsn: str) -> None:
    problem = only(ws.problems({"Postgres__DataSource": dsn}))
    assert_at(problem, ws.main, "Postgres.DataSource")
    assert problem.message == "not a PostgreSQL URL"
    assert problem.expected == "postgresql://user:password@host:port/dbname, or empty for SQLite"
    assert problem.line == ws.line("nof0.yaml", "DataSource:")


@pytest.mark.parametrize("dsn", ["postgresql://u@db:5432/x", "postgres://u:p@db/x"])
def test_postgres_urls_are_accepted(ws: Workspace, dsn: str) -> None:
    assert ws.load({"Postgres__DataSource": dsn}).main.Postgres.DataSource == dsn


@pytest.mark.parametrize("host", ["redis.local", "127.0.0.1:redis", "10.0.0.7:port"])
def test_a_cache_host_without_a_port(ws: Workspace, host: str) -> None:
    problem = only(ws.problems({"Cache__0__Host": host}))
    assert_at(problem, ws.main, "Cache[0].Host")
    assert problem.message == f"{host!r} has no port"
    assert problem.expected == "host:port"
    assert problem.line == ws.line("nof0.yaml", 'Host: "${Cache__0__Host}"')


def test_a_cache_host_with_a_port_is_accepted(ws: Workspace) -> None:
    assert ws.load({"Cache__0__Host": "redis.local:6380"}).main.Cache[0].Host == "redis.local:6380"


# -- several rules at once ----------------------------------------------------------------


def test_every_broken_rule_is_reported_at_once(ws: Workspace) -> None:
    ws.set("manager.yaml", ("traders", 1, "exchange_provider"), "paper")
    ws.set("manager.yaml", ("traders", 2, "allocation_pct"), 50)
    ws.set("manager.yaml", ("traders", 0, "model"), "baseline:momentum")
    ws.replace("exchange.yaml", "capabilities: [", "capabilities: [teleport, ")
    ws.replace("nof0.yaml", "DataPath: ../data ", "DataPath: state ")
    problems = ws.problems({"Cache__0__Host": "redis"})
    fields = sorted((Path(p.file).name, p.field) for p in problems)
    assert fields == [
        ("exchange.yaml", "providers.paper_trading.capabilities"),
        ("manager.yaml", "traders"),
        ("manager.yaml", "traders[0].model"),
        ("manager.yaml", "traders[1].exchange_provider"),
        ("nof0.yaml", "Cache[0].Host"),
        ("nof0.yaml", "DataPath"),
    ]
