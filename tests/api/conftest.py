"""Fixtures of the query API suite: one offline arena run shared by every API test."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from infrastructure.bootstrap import LoadedConfig
from tests.support.arena import OfflineArena, api_client

#: Simulated minutes the shared arena runs: two hourly markers (0 and 1) of account rows
#: (at 120 the venue's funding at 02:00 would open marker 2).
ARENA_MINUTES = 119


@pytest.fixture(scope="session")
def arena_config(tmp_path_factory: pytest.TempPathFactory) -> LoadedConfig:
    """The offline arena run once for ``ARENA_MINUTES`` minutes, its views written."""
    started = time.monotonic()
    arena = OfflineArena.open(tmp_path_factory.mktemp("arena"))
    arena.run_sync(minutes=ARENA_MINUTES)
    assert time.monotonic() - started < 30, "the offline arena is too slow for the API suite"
    return arena.config


@pytest.fixture(scope="module")
def client(arena_config: LoadedConfig) -> Iterator[Any]:
    """A ``litestar.testing.TestClient`` over the real app, reading the arena's JSON views."""
    with api_client(arena_config) as test_client:
        yield test_client
