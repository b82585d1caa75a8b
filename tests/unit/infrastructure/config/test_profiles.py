"""The shipped configuration profiles, loaded as they are (read only)."""

from __future__ import annotations

from pathlib import Path

import pytest

from infrastructure.bootstrap import describe, redis_node
from infrastructure.config.loader import ConfigError, load_config

REPO = Path(__file__).resolve().parents[4]
OFFLINE = REPO / "etc" / "nof0.yaml"
PAPER_LIVE = REPO / "etc" / "paper-live" / "nof0.yaml"
PAPER_LIVE_TRADERS = [
    ("gpt-5", "gpt-5"),
    ("claude-sonnet-4-5", "claude-sonnet-4.5"),
    ("deepseek-chat-v3-1", "deepseek-chat"),
]


def test_the_offline_arena_loads_with_an_empty_environment() -> None:
    config = load_config(OFFLINE, env={})
    assert config.path == OFFLINE
    assert config.data_dir == REPO / "data"
    assert [t.id for t in config.manager.traders] == ["ema-cross", "random-walk", "btc-hold"]
    assert all(t.model.startswith("baseline:") for t in config.manager.traders)
    assert config.exchange.providers[config.exchange.default].type == "sim"
    assert config.market.providers[config.market.default].type == "replay"
    assert config.executor.prompt_schema_version == "v1.0.0"


def test_the_offline_arena_uses_the_embedded_stores_when_the_variables_are_empty() -> None:
    for env in ({}, {"Postgres__DataSource": "", "Cache__0__Host": "", "Cache__0__Pass": ""}):
        config = load_config(OFFLINE, env=env)
        assert config.main.Postgres.DataSource == ""
        assert [node.Host for node in config.main.Cache] == [""]
        assert redis_node(config) is None
        summary = describe(config)
        assert f"event store: SQLite ({REPO / 'data' / 'events.sqlite3'})" in summary
        assert "views: JSON files" in summary


def test_the_offline_arena_uses_postgres_and_redis_when_the_variables_are_set() -> None:
    env = {
        "Postgres__DataSource": "postgresql://postgres@127.0.0.1:5432/test",
        "Cache__0__Host": "127.0.0.1:6379",
        "Cache__0__Pass": "s3cret",
        "Cache__0__Tls": "true",
    }
    config = load_config(OFFLINE, env=env)
    assert config.main.Postgres.DataSource == "postgresql://postgres@127.0.0.1:5432/test"
    node = config.main.Cache[0]
    assert (node.Host, node.Pass, node.Tls) == ("127.0.0.1:6379", "s3cret", True)
    assert redis_node(config) == node
    summary = describe(config)
    assert "event store: PostgreSQL" in summary
    assert "views: JSON files + Redis" in summary


def test_the_offline_arena_allocates_exactly_up_to_the_reserve() -> None:
    config = load_config(OFFLINE, env={})
    total = sum(t.allocation_pct for t in config.manager.traders)
    assert total == 100 - config.manager.manager.reserve_equity_pct


@pytest.mark.parametrize("env", [{}, {"ZENMUX_API_KEY": ""}, {"OPENAI_API_KEY": "sk-other"}])
def test_paper_live_fails_without_the_zenmux_key(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(PAPER_LIVE, env=env)
    problems = info.value.problems
    assert len(problems) == 3, "\n".join(map(str, problems))
    llm = PAPER_LIVE.parent / "llm.yaml"
    for problem, (trader, model) in zip(problems, PAPER_LIVE_TRADERS, strict=True):
        assert Path(problem.file).resolve() == llm
        assert problem.field == f"models.{model}.api_key"
        assert problem.message == f"trader {trader!r} uses model {model!r}, which has no API key"
        assert problem.expected == "set ${ZENMUX_API_KEY}"
    text = str(info.value)
    assert text.startswith("3 configuration problem(s):")
    assert text.count("${ZENMUX_API_KEY}") == 3


def test_paper_live_passes_with_the_zenmux_key() -> None:
    config = load_config(PAPER_LIVE, env={"ZENMUX_API_KEY": "sk-test"})
    assert config.llm.api_key == "sk-test"
    assert [(t.id, t.model) for t in config.manager.traders] == PAPER_LIVE_TRADERS
    assert config.data_dir == REPO / "data" / "paper-live"
    assert config.market.providers["hyperliquid"].type == "hyperliquid"
    assert config.exchange.providers["paper_trading"].type == "sim"
    assert config.resolve("Manager", config.manager.traders[0].prompt_template) == (
        REPO / "prompts" / "decision" / "system.j2"
    )


def test_paper_live_takes_postgres_and_redis_from_the_environment() -> None:
    env = {
        "ZENMUX_API_KEY": "sk-test",
        "Postgres__DataSource": "postgresql://nof0@db:5432/nof0",
        "Cache__0__Host": "cache:6379",
    }
    config = load_config(PAPER_LIVE, env=env)
    assert config.main.Postgres.DataSource == "postgresql://nof0@db:5432/nof0"
    assert config.main.Cache[0].Host == "cache:6379"


def test_the_two_profiles_keep_their_data_apart() -> None:
    offline = load_config(OFFLINE, env={})
    live = load_config(PAPER_LIVE, env={"ZENMUX_API_KEY": "sk-test"})
    assert offline.data_dir != live.data_dir
    assert offline.main.Name != live.main.Name
