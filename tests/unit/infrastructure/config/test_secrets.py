"""Every secret a configuration resolves is found, wherever it is written."""

from __future__ import annotations

from pathlib import Path

from application.redaction import MARKER, redact
from infrastructure.config.loader import load_config
from infrastructure.config.secrets import connection_password, secret_values
from tests.support.workspace import Workspace


def test_secret_keys_and_passwords_inside_connection_strings_are_found() -> None:
    data = {
        "api_key": "sk-top-level-1",
        "models": {"m": {"api_key": "sk-model-22", "max_completion_tokens": 4096}},
        "Postgres": {"DataSource": "postgresql://nof0:pg-pass-333@db:5432/nof0"},
        "Cache": [{"Host": "127.0.0.1:6379", "Pass": "redis-pass-4444"}],
        "providers": {"hl": {"private_key": "0x" + "ab" * 32, "main_address": "0x" + "cd" * 20}},
        "alerts": {"webhook_url": "https://user:hook-secret-55@hooks.example/x", "token_env": "X"},
        "libpq": "host=db password='quoted pw 66' dbname=x",
    }
    found = set(secret_values(data))
    assert found == {
        "sk-top-level-1",
        "sk-model-22",
        "pg-pass-333",
        "redis-pass-4444",
        "0x" + "ab" * 32,
        "hook-secret-55",
        "https://user:hook-secret-55@hooks.example/x",  # a webhook URL is a secret whole
        "quoted pw 66",
    }


def test_connection_passwords_are_url_decoded() -> None:
    assert connection_password("postgresql://u:p%40ss%2Fword@h/db") == "p@ss/word"
    assert connection_password("redis://127.0.0.1:6379") is None
    assert connection_password("host=h dbname=d") is None


def test_loading_a_configuration_registers_its_secrets(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "arena")
    ws.set("llm.yaml", ("api_key",), "${TEST_SECRET_LLM_KEY}")
    env = {
        "TEST_SECRET_LLM_KEY": "sk-from-the-environment-77",
        "Cache__0__Pass": "redis-env-pass-88",
    }
    load_config(ws.main, env=env, data_dir=tmp_path / "data")
    text = "echo sk-from-the-environment-77 and redis-env-pass-88"
    assert redact(text) == f"echo {MARKER} and {MARKER}"
