"""Helpers for the event-archive tests: run the CLI, compare views, rewrite archives."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from infrastructure import bootstrap
from interfaces.cli import main
from tests.support.arena import DEFAULT_CONFIG

#: Environment variables that would point the shipped configuration at real servers.
SERVER_VARIABLES = ("Postgres__DataSource", "Cache__0__Host", "Cache__0__Pass", "NOF0_CONFIG")


def cli(*args: str, config: Path = DEFAULT_CONFIG) -> int:
    command, action, *rest = args
    return main([command, action, "--config", str(config), *rest])


def views(config: bootstrap.LoadedConfig) -> dict[str, bytes]:
    """The current namespace's view files, by name."""
    ns = bootstrap.namespaces(config)
    current = ns.current()
    assert current is not None
    return {p.name: p.read_bytes() for p in sorted(ns.directory(current).iterdir())}


def split(path: Path) -> tuple[dict[str, Any], list[bytes], dict[str, Any]]:
    lines = path.read_bytes().splitlines(keepends=True)
    return json.loads(lines[0]), lines[1:-1], json.loads(lines[-1])


def write_archive(path: Path, header: dict[str, Any], events: list[bytes]) -> None:
    """A well-formed archive (right count and digest) around ``events``."""
    digest = hashlib.sha256(b"".join(events)).hexdigest()
    header = {**header, "events": len(events)}
    trailer = {"end": "nof0-events", "events": len(events), "sha256": digest}
    path.write_bytes(
        json.dumps(header).encode()
        + b"\n"
        + b"".join(events)
        + json.dumps(trailer).encode()
        + b"\n"
    )
