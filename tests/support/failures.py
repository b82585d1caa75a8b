"""Faults at the engine's real boundaries, for tests/e2e/test_failure_matrix.py.

* :class:`EventStoreRefuses`: the SQLite event store refuses the writes of chosen event
  topics (a trigger in the database file itself, so the engine's own connections see it).
* :class:`ViewDiskFull`: the file system under the JSON views is full (``ENOSPC`` from the
  write the view store's atomic writer does, after part of the data went to the temp file).
* :func:`closed_port`: a loopback port nothing listens on (Redis or PostgreSQL "down").
* :func:`llm_workspace`: the shipped arena with ``random-walk`` on OpenAI-compatible models
  served by the local fake vendor (tests/support/fake_llm.py), on an account of its own.
"""

from __future__ import annotations

import errno
import os
import socket
import sqlite3
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

from tests.support.arena import OfflineArena
from tests.support.workspace import Workspace

LLM_TRADER = "random-walk"


def closed_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def tick(arena: OfflineArena, minutes: int) -> None:
    """Run the started arena on, one simulated minute a tick, one event loop throughout."""
    for _ in range(minutes):
        arena.clock.advance(60)
        await arena.engine.arena.tick()
        await arena.engine.arena.drain()


async def project_once(arena: OfflineArena) -> None:
    """One pass of the projection worker's own loop (its error handling included)."""
    import asyncio

    stopped = asyncio.Event()
    stopped.set()  # the final pass: every target once, then return
    await arena.engine.worker.run(stopped)


def event_names(arena: OfflineArena, after: int = 0) -> list[str]:
    return [type(e).__name__ for _, e in arena.engine.app.read_events(after, 1_000_000)]


def events_after(arena: OfflineArena, after: int, name: str) -> list[Any]:
    return [
        e for _, e in arena.engine.app.read_events(after, 1_000_000) if type(e).__name__ == name
    ]


class EventStoreRefuses:
    """While active, the SQLite event store aborts every insert of the given topics."""

    def __init__(self, database: Path, *topics: str, message: str = "database or disk is full"):
        self.database = database
        self.topics = topics
        self.message = message

    def __enter__(self) -> EventStoreRefuses:
        listed = ", ".join(f"'{t}'" for t in self.topics)
        with sqlite3.connect(self.database) as conn:
            conn.execute(
                "CREATE TRIGGER failure_matrix_refuse BEFORE INSERT ON stored_events "
                f"WHEN NEW.topic IN ({listed}) "
                f"BEGIN SELECT RAISE(ABORT, '{self.message}'); END"
            )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with sqlite3.connect(self.database) as conn:
            conn.execute("DROP TRIGGER IF EXISTS failure_matrix_refuse")


class _FullFile:
    """A file on a full disk: takes part of the first write, then ``ENOSPC``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __enter__(self) -> _FullFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.inner.close()

    def write(self, data: bytes) -> int:
        self.inner.write(data[: len(data) // 2])
        self.inner.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class _FileSystem:
    """``os`` as ``infrastructure.files`` sees it; files opened under ``full`` are full."""

    def __init__(self, full: Path) -> None:
        self.full = full.resolve()
        self.refused: list[Path] = []

    def fdopen(self, fd: int, *args: Any, **kwargs: Any) -> Any:
        handle = os.fdopen(fd, *args, **kwargs)
        path = Path(os.readlink(f"/proc/self/fd/{fd}"))
        if path.is_relative_to(self.full):
            self.refused.append(path)
            return _FullFile(handle)
        return handle

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)


class ViewDiskFull:
    """The disk under ``directory`` is full for the durable writer (``infrastructure.files``)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, directory: Path) -> None:
        if not Path("/proc/self/fd").is_dir():
            pytest.skip("needs /proc/self/fd to tell which file a descriptor is")
        self.monkeypatch = monkeypatch
        self.fs = _FileSystem(directory)

    @property
    def refused(self) -> list[Path]:
        return self.fs.refused

    def __enter__(self) -> ViewDiskFull:
        import infrastructure.files

        self.monkeypatch.setattr(infrastructure.files, "os", self.fs)
        return self

    def __exit__(self, *exc: object) -> None:
        import infrastructure.files

        self.monkeypatch.setattr(infrastructure.files, "os", os)


API_KEY = "sk-test-failure-matrix-0b9d"


def llm_model(url: str, priority: int) -> dict[str, Any]:
    return {
        "provider": "openai",
        "model_name": f"fake-{priority}",
        "base_url": url,
        "temperature": 0.2,
        "max_completion_tokens": 1024,
        "priority": priority,
        "cost_tier": "medium",
    }


def llm_workspace(
    root: Path,
    models: dict[str, dict[str, Any]],
    trader_model: str,
    fallbacks: list[str],
    *,
    timeout: str = "5s",
    max_retries: int = 0,
) -> Workspace:
    """The shipped arena; ``random-walk`` decides with ``trader_model`` (then ``fallbacks``)."""
    ws = Workspace(root / "arena")
    ws.set("llm.yaml", ("api_key",), API_KEY)
    ws.set("llm.yaml", ("models",), models)
    ws.set("llm.yaml", ("budget", "cost_per_million_tokens"), dict.fromkeys(models, 1.0))
    ws.set("llm.yaml", ("timeout",), timeout)
    ws.set("llm.yaml", ("max_retries",), max_retries)
    ws.set("manager.yaml", ("traders", 1, "model"), trader_model)
    ws.set("manager.yaml", ("traders", 1, "fallback_models"), fallbacks)
    # It trades BTC, which btc-hold holds on the shared paper account: its own account.
    ws.set(
        "exchange.yaml",
        ("providers", "paper_llm"),
        {
            "type": "sim",
            "timeout": "5s",
            "retry": {"max_attempts": 3, "backoff": "200ms", "max_backoff": "2s"},
            "capabilities": ["market_orders", "reduce_only", "trigger_orders", "leverage"],
            "fund_usdc": 3000,
        },
    )
    ws.set("manager.yaml", ("traders", 1, "exchange_provider"), "paper_llm")
    return ws
