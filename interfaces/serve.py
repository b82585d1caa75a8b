"""``nof0 serve``: the query API alone, in worker processes, reading the views an engine
writes (``nof0 run`` elsewhere, on the same data directory or the same Redis).

This is the production setting for the API: one worker per core, each with its own kept
encodings of the views. Operator control stays with the engine's own API (``nof0 run``):
these workers answer that control is off, and ``/metrics`` has the request metrics only.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import socket

import uvicorn
from litestar import Litestar
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from infrastructure import bootstrap
from interfaces.http.app import create_app

CONFIG_ENV = "NOF0_SERVE_CONFIG"
DATA_DIR_ENV = "NOF0_SERVE_DATA_DIR"
log = logging.getLogger("nof0")


def app_from_environment() -> Litestar:
    """The app of one worker process (uvicorn imports this by name in each worker)."""
    config = bootstrap.load_config(
        os.environ[CONFIG_ENV], data_dir=os.environ.get(DATA_DIR_ENV) or None
    )
    return create_app(
        lambda: bootstrap.build_readers(config),
        title=f"nof0 ({config.main.Name})",
        metrics=config.manager.monitoring.metrics_exporter == "prometheus",
    )


def no_delay(transport: asyncio.BaseTransport) -> None:
    """Turn Nagle off on an accepted connection. asyncio does so only for sockets whose
    ``proto`` is TCP, and the listening socket uvicorn hands to its workers has proto 0:
    without this, each keep-alive response's body waited ~40 ms for the client's delayed
    ACK of its headers."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in {socket.AF_INET, socket.AF_INET6}:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class NoDelayHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        no_delay(transport)
        super().connection_made(transport)


def _have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)))


def serve(
    config: bootstrap.LoadedConfig,
    config_path: str,
    *,
    host: str,
    port: int,
    workers: int,
) -> int:
    os.environ[CONFIG_ENV] = os.path.abspath(config_path)
    os.environ[DATA_DIR_ENV] = str(config.data_dir)
    log.info(
        "query API on http://%s:%d/api/leaderboard, %d worker(s), views of %s (Ctrl-C stops)",
        host,
        port,
        workers,
        config.data_dir,
    )
    uvicorn.run(
        "interfaces.serve:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
        lifespan="on",
        http="interfaces.serve:NoDelayHttpToolsProtocol",  # by name: each worker imports it
        loop="uvloop" if _have("uvloop") else "asyncio",
    )
    return 0
