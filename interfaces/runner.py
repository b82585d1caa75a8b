"""``nof0 run``: the engine, the projection worker and the query API in one process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator

import uvicorn

from infrastructure import bootstrap
from interfaces.http.app import LeaseBoard, create_app
from interfaces.http.control import ControlAccess

log = logging.getLogger("nof0")


class _Server(uvicorn.Server):
    """Uvicorn without its own signal handling: the runner owns Ctrl-C."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def run_arena(config: bootstrap.LoadedConfig, *, host: str, port: int) -> int:
    with bootstrap.engine_lock(config):
        engine = bootstrap.build_engine(config)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)

        for line in bootstrap.describe(config):
            log.info("%s", line)
        await engine.start()
        for finding in engine.findings:
            log.info("start-up: %s", finding)

        access = ControlAccess(
            control=bootstrap.operator_control(
                config, app=engine.app, clock=engine.clock, alerts=engine.alerts
            ),
            tokens=config.control_tokens,
            kill_targets=lambda: bootstrap.control_traders(config, engine.app),
        )
        keeper = engine.arena.leases
        board = (
            None
            if keeper is None
            else LeaseBoard(owner=keeper.owner, live=lambda: keeper.store.live(""))
        )
        app = create_app(
            lambda: bootstrap.build_readers(config),
            title=f"nof0 ({config.main.Name})",
            control=access,
            metrics=config.manager.monitoring.metrics_exporter == "prometheus",
            engine_metrics=engine.metrics.registry,
            leases=board,
        )
        server = _Server(
            uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
        )
        server_task = asyncio.create_task(server.serve())
        engine_task = asyncio.create_task(engine.run(stop))
        log.info("query API on http://%s:%d/api/leaderboard (Ctrl-C stops)", host, port)
        waiter = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({waiter, server_task}, return_when=asyncio.FIRST_COMPLETED)
        code = 0
        if server_task in done and not stop.is_set():
            log.error("the API server stopped (is port %d in use?); stopping the engine", port)
            code = 1
        stop.set()
        log.info("stopping: finishing running cycles and flushing the views")
        await engine_task
        server.should_exit = True
        with contextlib.suppress(SystemExit):
            await server_task
        waiter.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        log.info("stopped cleanly after %d cycles", engine.arena.cycles_run)
        return code
