"""The configuration loader: YAML, file references, schema errors, ${VAR}, lines, secrets, paths.

Every test works on a copy of the shipped ``etc/`` and ``prompts/`` in ``tmp_path`` (same
relative layout, so ``../prompts/...`` and ``../data`` still resolve) and edits the copy.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from infrastructure.config.loader import ConfigError, Problem, load_config
from tests.support.workspace import Workspace


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "arena")


def only(problems: list[Problem]) -> Problem:
    assert len(problems) == 1, "\n".join(str(p) for p in problems)
    return problems[0]


def in_file(problem: Problem, path: Path) -> bool:
    return Path(problem.file).resolve() == path.resolve()


def find(problems: list[Problem], path: Path, field: str) -> Problem:
    found = [p for p in problems if in_file(p, path) and p.field == field]
    assert len(found) == 1, f"no single {field} in {path}:\n" + "\n".join(map(str, problems))
    return found[0]


# -- the copy itself -----------------------------------------------------------------------


def test_the_unmodified_copy_loads(ws: Workspace) -> None:
    config = ws.load()
    assert config.path == ws.main
    assert [t.id for t in config.manager.traders] == ["ema-cross", "random-walk", "btc-hold"]


# -- YAML errors, empty and missing files ---------------------------------------------------


@pytest.mark.parametrize(
    ("name", "old", "new", "bad_line"),
    [
        # A key indented under a scalar: the parser stops on the inserted line.
        ("executor.yaml", "min_risk_reward: 3.0\n", "min_risk_reward: 3.0\n  stray: 1\n", "stray"),
        # A tab cannot start a token.
        ("market.yaml", "    seed: 7\n", "\tseed: 7\n", "seed: 7"),
        # A second ': ' on one line of the main file.
        ("nof0.yaml", "Name: nof0\n", "Name: nof0: arena\n", "Name: nof0: arena"),
    ],
)
def test_bad_yaml_syntax_is_reported_with_its_file_and_line(
    ws: Workspace, name: str, old: str, new: str, bad_line: str
) -> None:
    ws.replace(name, old, new)
    problem = only(ws.problems())
    assert in_file(problem, ws.file(name))
    assert problem.field == ""
    assert problem.message.startswith("invalid YAML: ")
    assert problem.expected == "valid YAML"
    assert problem.line == ws.line(name, bad_line)


def test_the_yaml_error_line_is_the_line_of_the_mistake(ws: Workspace) -> None:
    ws.replace(
        "manager.yaml",
        "    allocation_pct: 30\n    auto_start",
        "    allocation_pct: 30\n   x: 1\n    auto_start",
    )
    problem = only(ws.problems())
    assert in_file(problem, ws.file("manager.yaml"))
    assert problem.line == ws.line("manager.yaml", "   x: 1")
    assert f"manager.yaml:{problem.line}: (file): invalid YAML" in str(problem)


@pytest.mark.parametrize("content", ["", "\n\n", "# only a comment\n"])
def test_an_empty_section_file_is_reported(ws: Workspace, content: str) -> None:
    ws.file("market.yaml").write_text(content, encoding="utf-8")
    problem = only(ws.problems())
    assert in_file(problem, ws.file("market.yaml"))
    assert problem.field == ""
    assert problem.message == "the file is empty"
    assert problem.expected == "a YAML mapping"


def test_an_empty_main_file_is_reported(ws: Workspace) -> None:
    ws.main.write_text("# nothing here\n", encoding="utf-8")
    problem = only(ws.problems())
    assert in_file(problem, ws.main)
    assert problem.message == "the file is empty"


def test_a_file_whose_top_level_is_a_list_is_reported(ws: Workspace) -> None:
    ws.file("exchange.yaml").write_text("- paper_trading\n- hyperliquid\n", encoding="utf-8")
    problem = only(ws.problems())
    assert in_file(problem, ws.file("exchange.yaml"))
    assert problem.message == "the top level is not a mapping"
    assert problem.expected == "key: value pairs"
    assert problem.line == 1


@pytest.mark.parametrize("section", ["LLM", "Executor", "Manager", "Exchange", "Market"])
def test_a_missing_referenced_file_is_reported_against_its_file_field(
    ws: Workspace, section: str
) -> None:
    name = f"{section.lower()}.yaml"
    ws.file(name).unlink()
    problem = only(ws.problems())
    assert in_file(problem, ws.main)
    assert problem.field == f"{section}.File"
    assert problem.message.startswith(f"{name!r} does not exist")
    assert str(ws.file(name)) in problem.message
    assert problem.expected == "a path relative to this file"
    assert problem.line == ws.line("nof0.yaml", f"File: {name}")


def test_a_misspelt_file_reference_is_reported_with_the_written_name(ws: Workspace) -> None:
    ws.replace("nof0.yaml", "File: manager.yaml", "File: managers.yaml")
    problem = only(ws.problems())
    assert in_file(problem, ws.main)
    assert problem.field == "Manager.File"
    assert "'managers.yaml' does not exist" in problem.message
    assert problem.line == ws.line("nof0.yaml", "File: managers.yaml")


def test_a_missing_main_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nowhere" / "nof0.yaml", env={})
    problem = only(info.value.problems)
    assert problem.field == ""
    assert problem.message == "file not found"
    assert problem.expected == "an existing YAML file"
    assert "nof0.yaml" in problem.file


def test_problems_in_several_files_are_all_reported(ws: Workspace) -> None:
    ws.replace("executor.yaml", "max_positions: 4", "max_postions: 4")
    ws.replace("manager.yaml", "  total_equity_usd: 10000", "  total_equity_usd: 0")
    ws.replace("market.yaml", "speed: 60", "speed: fast")
    problems = ws.problems()
    assert len(problems) == 3, "\n".join(map(str, problems))
    find(problems, ws.file("executor.yaml"), "max_postions")
    find(problems, ws.file("manager.yaml"), "manager.total_equity_usd")
    find(problems, ws.file("market.yaml"), "providers.replay.speed")


def test_a_mistake_in_the_main_file_does_not_hide_those_in_the_others(ws: Workspace) -> None:
    # nof0.yaml's file references are fine, so the five files can still be read and checked.
    ws.replace("nof0.yaml", "Port: 8888", "Port: 0")
    ws.replace("executor.yaml", "max_positions: 4", "max_postions: 4")
    problems = ws.problems()
    find(problems, ws.main, "Port")
    find(problems, ws.file("executor.yaml"), "max_postions")
    assert len(problems) == 2, "\n".join(map(str, problems))


# -- unknown keys and type errors ---------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "old", "new", "field"),
    [
        ("executor.yaml", "max_positions: 4", "max_postions: 4", "max_postions"),
        (
            "executor.yaml",
            "  strict_mode: true",
            "  strict_mod: true",
            "prompt_validation.strict_mod",
        ),
        ("nof0.yaml", "Port: 8888", "Prot: 8888", "Prot"),
        ("llm.yaml", "    cost_tier: high", "    cost_teir: high", "models.gpt-5.cost_teir"),
        (
            "exchange.yaml",
            "    fee_maker_bps: 1.5",
            "    fee_makr_bps: 1.5",
            "providers.paper_trading.fee_makr_bps",
        ),
        ("market.yaml", "    speed: 60", "    sped: 60", "providers.replay.sped"),
    ],
)
def test_an_unknown_key_is_reported_as_a_typo(
    ws: Workspace, name: str, old: str, new: str, field: str
) -> None:
    ws.replace(name, old, new)
    problem = only(ws.problems())
    assert in_file(problem, ws.file(name))
    assert problem.field == field
    assert problem.message == "unknown field (a typo?)"
    assert problem.line == ws.line(name, new.strip())


def test_a_typo_in_a_required_trader_field_reports_the_typo_and_the_missing_field(
    ws: Workspace,
) -> None:
    ws.replace(
        "manager.yaml", "    allocation_pct: 30\n    coins", "    alocation_pct: 30\n    coins"
    )
    problems = ws.problems()
    assert len(problems) == 2, "\n".join(map(str, problems))
    typo = find(problems, ws.file("manager.yaml"), "traders[2].alocation_pct")
    assert typo.message == "unknown field (a typo?)"
    assert typo.line == ws.line("manager.yaml", "alocation_pct")
    missing = find(problems, ws.file("manager.yaml"), "traders[2].allocation_pct")
    assert missing.message == "missing required field"
    assert missing.line == ws.line("manager.yaml", "- id: btc-hold")


@pytest.mark.parametrize(
    ("name", "old", "new", "field", "fragments"),
    [
        (
            "executor.yaml",
            "max_positions: 4",
            "max_positions: four",
            "max_positions",
            ["valid integer", "got 'four'"],
        ),
        (
            "nof0.yaml",
            "Port: 8888",
            "Port: 99999",
            "Port",
            ["less than or equal to 65535", "got 99999"],
        ),
        (
            "nof0.yaml",
            "Env: dev",
            "Env: staging",
            "Env",
            ["'test', 'dev' or 'prod'", "got 'staging'"],
        ),
        (
            "manager.yaml",
            "    coins: [BTC]",
            "    coins: BTC",
            "traders[2].coins",
            ["valid list", "got 'BTC'"],
        ),
        (
            "manager.yaml",
            "  reserve_equity_pct: 10",
            "  reserve_equity_pct: 100",
            "manager.reserve_equity_pct",
            ["less than 100", "got 100"],
        ),
        (
            "llm.yaml",
            "    temperature: 0.6",
            "    temperature: hot",
            "models.deepseek-chat.temperature",
            ["valid number", "got 'hot'"],
        ),
        (
            "market.yaml",
            "    speed: 60",
            "    speed: -1",
            "providers.replay.speed",
            ["greater than 0", "got -1"],
        ),
    ],
)
def test_a_type_error_names_the_field_and_what_was_given(
    ws: Workspace, name: str, old: str, new: str, field: str, fragments: list[str]
) -> None:
    ws.replace(name, old, new)
    problem = only(ws.problems())
    assert in_file(problem, ws.file(name))
    assert problem.field == field
    for fragment in fragments:
        assert fragment in problem.message
    assert problem.line == ws.line(name, new.strip())


def test_a_provider_with_an_unknown_type_names_the_known_types(ws: Workspace) -> None:
    ws.replace("exchange.yaml", "type: sim ", "type: simulator ")
    problem = only(ws.problems())
    assert in_file(problem, ws.file("exchange.yaml"))
    assert problem.field == "providers.paper_trading"
    assert "'simulator'" in problem.message
    assert "'sim', 'hyperliquid'" in problem.message


def test_a_replay_start_without_a_timezone_is_rejected(ws: Workspace) -> None:
    ws.replace("market.yaml", '"2025-10-17T00:00:00Z"', '"2025-10-17T00:00:00"')
    problem = only(ws.problems())
    assert problem.field == "providers.replay.start"
    assert "must include a timezone" in problem.message
    assert problem.line == ws.line("market.yaml", "start:")


# -- durations -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "seconds"),
    [
        ("500ms", 0.5),
        ("90s", 90.0),
        ("3m", 180.0),
        ("1h", 3600.0),
        ("1.5h", 5400.0),
        ("1d", 86400.0),
        ("45", 45.0),
        ("2.5", 2.5),
        ("0", 0.0),
        ('"10 s"', 10.0),
    ],
)
def test_durations_accept_units_and_plain_seconds(
    ws: Workspace, written: str, seconds: float
) -> None:
    ws.replace("executor.yaml", "decision_interval: 3m", f"decision_interval: {written}")
    config = ws.load(governance=False)
    assert config.executor.decision_interval == pytest.approx(seconds)


def test_durations_in_every_file_are_read_as_seconds(ws: Workspace) -> None:
    config = ws.load()
    assert config.main.Postgres.MaxLifetime == 300.0
    assert config.main.Projections.PollInterval == 0.5
    assert config.executor.decision_timeout == 60.0
    assert config.manager.manager.rebalance_interval == 3600.0
    assert config.manager.traders[2].decision_interval == 900.0
    assert config.exchange.providers["paper_trading"].retry.backoff == pytest.approx(0.2)
    assert config.market.providers["replay"].max_staleness == 90.0


@pytest.mark.parametrize(
    ("written", "fragment"),
    [
        ("3 minutes", "expected a duration such as 500ms, 60s, 3m or 1h"),
        ("1w", "expected a duration such as 500ms, 60s, 3m or 1h"),
        ("-5s", "expected a duration such as 500ms, 60s, 3m or 1h"),
        ("h", "expected a duration such as 500ms, 60s, 3m or 1h"),
        ('""', "expected a duration such as 500ms, 60s, 3m or 1h"),
        ("true", "expected a duration such as 500ms, 60s, 3m or 1h"),
        ("[3m]", "expected a duration such as 500ms, 60s, 3m or 1h"),
        ("-5", "a duration cannot be negative"),
    ],
)
def test_bad_durations_are_rejected(ws: Workspace, written: str, fragment: str) -> None:
    ws.replace("executor.yaml", "decision_timeout: 60s", f"decision_timeout: {written}")
    problem = only(ws.problems())
    assert in_file(problem, ws.file("executor.yaml"))
    assert problem.field == "decision_timeout"
    assert fragment in problem.message
    assert problem.line == ws.line("executor.yaml", "decision_timeout:")


def test_a_bad_duration_is_quoted_once_in_its_message(ws: Workspace) -> None:
    ws.replace("executor.yaml", "decision_interval: 3m", "decision_interval: 3 minutes")
    problem = only(ws.problems())
    assert problem.field == "decision_interval"
    assert problem.message.count("'3 minutes'") == 1, problem.message


# -- ${VAR} --------------------------------------------------------------------------------


def test_a_set_variable_fills_the_value(ws: Workspace) -> None:
    config = ws.load(
        {"Postgres__DataSource": "postgresql://arena@db:5432/nof0", "Cache__0__Host": "r:6379"}
    )
    assert config.main.Postgres.DataSource == "postgresql://arena@db:5432/nof0"
    assert config.main.Cache[0].Host == "r:6379"


def test_an_unset_variable_gives_the_fields_default(ws: Workspace) -> None:
    ws.replace("nof0.yaml", "  MaxOpen: 25", '  MaxOpen: "${PG_MAX_OPEN}"')
    ws.replace("executor.yaml", "max_positions: 4", "max_positions: ${MAX_POSITIONS}")
    config = ws.load()
    assert config.main.Postgres.MaxOpen == 25
    assert config.main.Postgres.DataSource == ""
    assert config.main.Cache[0].Tls is False
    assert config.executor.max_positions == 4


def test_a_variable_set_to_the_empty_string_counts_as_unset(ws: Workspace) -> None:
    ws.replace("executor.yaml", "max_positions: 4", "max_positions: ${MAX_POSITIONS:-2}")
    config = ws.load({"MAX_POSITIONS": "", "Postgres__DataSource": ""})
    assert config.executor.max_positions == 2
    assert config.main.Postgres.DataSource == ""


def test_the_default_after_colon_dash_applies_only_when_unset(ws: Workspace) -> None:
    ws.replace(
        "nof0.yaml", "  MaxOpen: 25", "  MaxOpen: ${PG_MAX_OPEN:-7}\n  Schema: ${PG_SCHEMA:-arena}"
    )
    unset = ws.load()
    assert unset.main.Postgres.MaxOpen == 7
    assert unset.main.Postgres.Schema == "arena"
    set_ = ws.load({"PG_MAX_OPEN": "40", "PG_SCHEMA": "blue"})
    assert set_.main.Postgres.MaxOpen == 40
    assert set_.main.Postgres.Schema == "blue"


def test_variables_inside_a_longer_string_are_filled(ws: Workspace) -> None:
    ws.replace(
        "nof0.yaml",
        '  DataSource: "${Postgres__DataSource}"',
        '  DataSource: "postgresql://${PG_USER}@${PG_HOST:-127.0.0.1}:5432/${PG_DB:-nof0}"',
    )
    ws.replace(
        "nof0.yaml", '  - Host: "${Cache__0__Host}"', '  - Host: "${REDIS_HOST:-localhost}:6379"'
    )
    defaults = ws.load({"PG_USER": "arena"})
    assert defaults.main.Postgres.DataSource == "postgresql://arena@127.0.0.1:5432/nof0"
    assert defaults.main.Cache[0].Host == "localhost:6379"
    filled = ws.load({"PG_USER": "u", "PG_HOST": "db", "PG_DB": "x", "REDIS_HOST": "cache"})
    assert filled.main.Postgres.DataSource == "postgresql://u@db:5432/x"
    assert filled.main.Cache[0].Host == "cache:6379"


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("false", False)])
def test_a_filled_variable_is_read_as_yaml(ws: Workspace, value: str, expected: bool) -> None:
    config = ws.load({"Cache__0__Tls": value})
    assert config.main.Cache[0].Tls is expected


def test_a_filled_number_is_read_as_a_number(ws: Workspace) -> None:
    ws.replace("executor.yaml", "max_positions: 4", "max_positions: ${MAX_POSITIONS}")
    config = ws.load({"MAX_POSITIONS": "6"})
    assert config.executor.max_positions == 6


def test_a_filled_variable_of_the_wrong_type_is_reported(ws: Workspace) -> None:
    problem = only(ws.problems({"Cache__0__Tls": "maybe"}))
    assert in_file(problem, ws.main)
    assert problem.field == "Cache[0].Tls"
    assert "valid boolean" in problem.message
    # Values from the environment may be secrets: the variable is named, never echoed.
    assert "(the value of ${Cache__0__Tls})" in problem.message
    assert "maybe" not in problem.message
    assert problem.line == ws.line("nof0.yaml", "Tls: ${Cache__0__Tls}")


@pytest.mark.parametrize("password", ["20251017", "null"])
def test_a_quoted_variable_stays_a_string(ws: Workspace, password: str) -> None:
    # nof0.yaml writes Pass: "${Cache__0__Pass}" in quotes: a numeric password, or one that
    # reads as YAML null, must still be the password, not a type error or no password.
    config = ws.load({"Cache__0__Host": "127.0.0.1:6379", "Cache__0__Pass": password})
    assert config.main.Cache[0].Pass == password


def test_an_unset_variable_in_a_required_field_is_named(ws: Workspace) -> None:
    ws.replace("nof0.yaml", "File: llm.yaml", "File: ${LLM_FILE}")
    problem = only(ws.problems())
    assert in_file(problem, ws.main)
    assert problem.field == "LLM.File"
    assert problem.message == "missing required field: ${LLM_FILE} is not set"
    assert problem.line == ws.line("nof0.yaml", "File: ${LLM_FILE}")


def test_a_set_variable_in_a_file_reference_is_used(ws: Workspace) -> None:
    ws.replace("nof0.yaml", "File: llm.yaml", "File: ${LLM_FILE:-llm.yaml}")
    (ws.etc / "llm-alt.yaml").write_text(ws.file("llm.yaml").read_text(encoding="utf-8"))
    assert ws.load().files["LLM"] == ws.file("llm.yaml")
    assert ws.load({"LLM_FILE": "llm-alt.yaml"}).files["LLM"] == ws.etc / "llm-alt.yaml"


# -- line numbers -----------------------------------------------------------------------------


def test_lines_point_at_nested_fields_in_every_file(ws: Workspace) -> None:
    ws.replace("manager.yaml", '    model: "baseline:random"', '    model: ""')
    ws.replace("exchange.yaml", "      max_attempts: 3", "      max_attempts: 0")
    ws.replace("llm.yaml", "  alert_threshold_pct: 80", "  alert_threshold_pct: 0")
    ws.replace("executor.yaml", "  require_version_header: true", "  require_version_header: 2")
    ws.replace("market.yaml", "    history_days: 12", "    history_days: 3")
    problems = ws.problems()
    assert len(problems) == 5, "\n".join(map(str, problems))
    cases = [
        ("manager.yaml", "traders[1].model", 'model: ""'),
        ("exchange.yaml", "providers.paper_trading.retry.max_attempts", "max_attempts: 0"),
        ("llm.yaml", "budget.alert_threshold_pct", "alert_threshold_pct: 0"),
        ("executor.yaml", "prompt_validation.require_version_header", "require_version_header"),
        ("market.yaml", "providers.replay.history_days", "history_days: 3"),
    ]
    for name, field, fragment in cases:
        assert find(problems, ws.file(name), field).line == ws.line(name, fragment), field


def test_lines_point_at_nested_fields_in_the_main_file(ws: Workspace) -> None:
    ws.replace("nof0.yaml", "  BatchSize: 500", "  BatchSize: 0")
    ws.replace("nof0.yaml", "    SQL: 10000", "    SQL: lots")
    problems = ws.problems()
    assert len(problems) == 2, "\n".join(map(str, problems))
    batch = find(problems, ws.main, "Projections.BatchSize")
    assert batch.line == ws.line("nof0.yaml", "BatchSize: 0")
    sql = find(problems, ws.main, "Logging.SlowThreshold.SQL")
    assert sql.line == ws.line("nof0.yaml", "SQL: lots")


def test_lines_point_at_list_items(ws: Workspace) -> None:
    ws.replace(
        "market.yaml",
        "    coins: [BTC, ETH, SOL, BNB, DOGE, XRP]",
        "    coins:\n      - BTC\n      - ETH\n      - 7\n",
    )
    ws.replace("manager.yaml", "    coins: [BTC]", "    coins: [BTC, btc]")
    problems = ws.problems()
    assert len(problems) == 2, "\n".join(map(str, problems))
    item = find(problems, ws.file("market.yaml"), "providers.replay.coins[2]")
    assert item.line == ws.line("market.yaml", "- 7")
    twice = find(problems, ws.file("manager.yaml"), "traders[2].coins")
    assert "lists a coin twice" in twice.message
    assert twice.line == ws.line("manager.yaml", "coins: [BTC, btc]")


def test_a_problem_with_a_block_value_points_at_its_key(ws: Workspace) -> None:
    # Cache written as a mapping instead of a list: the problem is the key on its own line.
    ws.replace("nof0.yaml", "Cache:\n  - Host", "Cache:\n    Host")
    problem = only(ws.problems())
    assert problem.field == "Cache"
    assert "valid list" in problem.message
    assert problem.line == ws.line("nof0.yaml", "Cache:")


def test_problem_text_is_file_line_field_message_expected(ws: Workspace) -> None:
    ws.file("market.yaml").unlink()
    problem = only(ws.problems())
    line = ws.line("nof0.yaml", "File: market.yaml")
    assert str(problem).startswith(f"{problem.file}:{line}: Market.File: 'market.yaml' does not")
    assert str(problem).endswith("(expected a path relative to this file)")


# -- secrets -------------------------------------------------------------------------------

FAKE_KEY = "0xfeedface0ddba11c0ffee"
FAKE_API_KEY = "sk-live-4f9a1c"
FAKE_PASSWORD = "hunter2-s3cret"


def _hyperliquid_provider(type_: str, private_key: str) -> str:
    return (
        f"  hl:\n    type: {type_}\n    private_key: {private_key}\n"
        '    main_address: "0x14791697260e4c9a71f18484c9f997b308e59325"\n'
        "    timeout: 5s\n    retry: {max_attempts: 1}\n"
        "    capabilities: [market_orders]\n"
    )


def test_a_private_key_of_the_wrong_type_is_not_shown(ws: Workspace) -> None:
    ws.append("exchange.yaml", _hyperliquid_provider("hyperliquid", f"{{hex: {FAKE_KEY}}}"))
    error = ws.error()
    problem = only(error.problems)
    assert problem.field == "providers.hl.private_key"
    assert "valid string" in problem.message
    assert FAKE_KEY not in str(error)


def test_an_unquoted_hex_private_key_read_as_a_number_is_not_shown(ws: Workspace) -> None:
    key = "0x5eed5eed5eed"
    ws.append("exchange.yaml", _hyperliquid_provider("hyperliquid", key))
    error = ws.error()
    assert only(error.problems).field == "providers.hl.private_key"
    assert key not in str(error)
    assert str(int(key, 16)) not in str(error)


def test_an_api_key_of_the_wrong_type_is_not_shown(ws: Workspace) -> None:
    ws.replace(
        "llm.yaml",
        '    model_name: "openai/gpt-5"',
        f'    model_name: "openai/gpt-5"\n    api_key: [{FAKE_API_KEY}]',
    )
    error = ws.error()
    problem = only(error.problems)
    assert problem.field == "models.gpt-5.api_key"
    assert FAKE_API_KEY not in str(error)


def test_an_api_key_in_the_wrong_place_is_not_shown(ws: Workspace) -> None:
    ws.replace(
        "manager.yaml",
        '    model: "baseline:ema_cross"',
        f'    model: "baseline:ema_cross"\n    api_key: "{FAKE_API_KEY}"',
    )
    error = ws.error()
    problem = only(error.problems)
    assert problem.field == "traders[0].api_key"
    assert problem.message == "unknown field (a typo?)"
    assert FAKE_API_KEY not in str(error)


def test_a_password_of_the_wrong_type_is_not_shown(ws: Workspace) -> None:
    ws.replace("nof0.yaml", '    Pass: "${Cache__0__Pass}"', f"    Pass: [{FAKE_PASSWORD}]")
    error = ws.error()
    assert only(error.problems).field == "Cache[0].Pass"
    assert FAKE_PASSWORD not in str(error)


def _misspelt_provider_type(ws: Workspace) -> tuple[dict[str, str], str]:
    ws.append("exchange.yaml", _hyperliquid_provider("hyperliqud", f'"{FAKE_KEY}"'))
    return {}, FAKE_KEY


def _cache_as_mapping(ws: Workspace) -> tuple[dict[str, str], str]:
    ws.replace("nof0.yaml", "Cache:\n  - Host", "Cache:\n    Host")  # the '-' forgotten
    return {"Cache__0__Pass": FAKE_PASSWORD}, FAKE_PASSWORD


def _dsn_under_postgres(ws: Workspace) -> tuple[dict[str, str], str]:
    ws.replace(
        "nof0.yaml",
        'Postgres:\n  DataSource: "${Postgres__DataSource}"   # empty: the embedded SQLite event '
        "store\n  MaxOpen: 25\n  MaxIdle: 10\n  MaxLifetime: 5m\n",
        'Postgres: "${Postgres__DataSource}"\n',
    )
    return {"Postgres__DataSource": f"postgresql://arena:{FAKE_PASSWORD}@db/nof0"}, FAKE_PASSWORD


@pytest.mark.parametrize(
    "misshape",
    [_misspelt_provider_type, _cache_as_mapping, _dsn_under_postgres],
    ids=["misspelt-provider-type", "cache-as-mapping", "dsn-under-postgres"],
)
def test_a_secret_inside_a_misshapen_section_is_not_shown(
    ws: Workspace, misshape: Callable[[Workspace], tuple[dict[str, str], str]]
) -> None:
    env, secret = misshape(ws)
    error = ws.error(env)
    assert error.problems
    assert secret not in str(error)


# -- paths ----------------------------------------------------------------------------------


def test_files_are_resolved_next_to_the_main_file(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = ws.load()
    assert dict(config.files) == {
        "Main": ws.main,
        "LLM": ws.file("llm.yaml"),
        "Executor": ws.file("executor.yaml"),
        "Manager": ws.file("manager.yaml"),
        "Exchange": ws.file("exchange.yaml"),
        "Market": ws.file("market.yaml"),
    }
    assert config.data_dir == ws.root / "data"


def test_resolve_uses_the_directory_of_the_sections_file(ws: Workspace) -> None:
    (ws.etc / "traders").mkdir()
    ws.file("manager.yaml").rename(ws.etc / "traders" / "manager.yaml")
    ws.replace("nof0.yaml", "File: manager.yaml", "File: traders/manager.yaml")
    text = (ws.etc / "traders" / "manager.yaml").read_text(encoding="utf-8")
    (ws.etc / "traders" / "manager.yaml").write_text(
        text.replace("../prompts/", "../../prompts/"), encoding="utf-8"
    )
    config = ws.load()
    assert config.files["Manager"] == ws.etc / "traders" / "manager.yaml"
    assert config.resolve("Manager", "../../prompts/decision/system.j2") == (
        ws.root / "prompts" / "decision" / "system.j2"
    )
    assert config.resolve("Executor", "../prompts/decision/decision.schema.json") == (
        ws.root / "prompts" / "decision" / "decision.schema.json"
    )
    assert config.resolve("Manager", "/abs/file.j2") == Path("/abs/file.j2")
    assert config.resolve("Manager", "~/t.j2") == Path("~/t.j2").expanduser()


def test_paths_inside_a_moved_file_are_relative_to_that_file(ws: Workspace) -> None:
    (ws.etc / "exec").mkdir()
    ws.file("executor.yaml").rename(ws.etc / "exec" / "executor.yaml")
    ws.replace("nof0.yaml", "File: executor.yaml", "File: exec/executor.yaml")
    # schema_path still says ../prompts/..., which from etc/exec/ does not exist.
    problem = only(ws.problems())
    assert in_file(problem, ws.etc / "exec" / "executor.yaml")
    assert problem.field == "output_validation.schema_path"
    ws.replace("exec/executor.yaml", '"../prompts/', '"../../prompts/')
    assert ws.load().files["Executor"] == ws.etc / "exec" / "executor.yaml"


def test_a_relative_data_path_is_relative_to_the_main_file(ws: Workspace) -> None:
    ws.replace("nof0.yaml", "DataPath: ../data", "DataPath: ../state/arena-1")
    assert ws.load().data_dir == ws.root / "state" / "arena-1"


def test_an_absolute_data_path_is_kept(ws: Workspace, tmp_path: Path) -> None:
    target = tmp_path / "abs-data"
    ws.replace("nof0.yaml", "DataPath: ../data", f"DataPath: {target}")
    assert ws.load().data_dir == target


def test_the_data_dir_argument_overrides_data_path(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert ws.load(data_dir=tmp_path / "second").data_dir == tmp_path / "second"
    monkeypatch.chdir(tmp_path)
    # A relative --data-dir is relative to the working directory, not to nof0.yaml.
    assert ws.load(data_dir="third").data_dir == tmp_path.resolve() / "third"


def test_loading_writes_nothing(ws: Workspace) -> None:
    before = sorted(p.relative_to(ws.root) for p in ws.root.rglob("*"))
    ws.load()
    ws.load(data_dir=ws.root / "other")
    assert sorted(p.relative_to(ws.root) for p in ws.root.rglob("*")) == before
