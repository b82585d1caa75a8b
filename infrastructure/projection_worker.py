"""Keeps the views up to date while the engine runs, and rebuilds them on demand."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import RedisError

from infrastructure.views.jsonfile import JsonViewStore, Namespaces
from infrastructure.views.redis_store import RedisNamespaces, RedisViewStore
from infrastructure.views.sql_tables import STORE_ERRORS, SqlTablesWorker
from projections.engine import CatchUp, EventSource, Projector, ViewStore

log = logging.getLogger("nof0.projections")

MAX_BATCHES_PER_PUMP = 20
TABLE_ERRORS: tuple[type[Exception], ...] = (*STORE_ERRORS, ValueError)


@dataclass
class Target:
    """One place views are written to (the JSON files, or Redis)."""

    label: str
    current: Callable[[], str | None]
    open_store: Callable[[str], ViewStore]
    namespace: str | None = None
    catchup: CatchUp | None = None
    error: str = ""
    retry_at: float = 0.0
    events: int = 0


def json_target(namespaces: Namespaces) -> Target:
    return Target(
        label="json",
        current=namespaces.ensure_current,
        open_store=lambda ns: JsonViewStore(namespaces.directory(ns)),
    )


def redis_target(
    store_factory: Callable[[str], RedisViewStore],
    namespaces: RedisNamespaces,
    follow: Callable[[], str | None],
) -> Target:
    def current() -> str | None:
        wanted = follow()
        if wanted is not None and namespaces.current() != wanted:
            namespaces.flip(wanted)  # Redis lost its pointer (restart) or lags a flip
        return wanted

    return Target(label="redis", current=current, open_store=store_factory)


@dataclass
class ProjectionWorker:
    source: EventSource
    projectors: Callable[[], Sequence[Projector[Any]]]
    targets: list[Target]
    batch_size: int = 500
    poll_s: float = 0.5
    retry_s: float = 5.0
    started: float = field(default_factory=time.monotonic)
    #: The SQL read tables (SQLite or PostgreSQL), when configured.
    tables: SqlTablesWorker | None = None
    _tables_retry_at: float = 0.0

    def pump(self, target: Target) -> int:
        """Bring one target up to the head of the log (bounded work per call)."""
        namespace = target.current()
        if namespace is None:
            return 0
        if namespace != target.namespace or target.catchup is None:
            if target.namespace is not None:
                log.info("%s views: switching to namespace %s", target.label, namespace)
            target.catchup = CatchUp(
                self.source,
                target.open_store(namespace),
                self.projectors(),
                batch_size=self.batch_size,
            )
            target.namespace = namespace
        processed = 0
        for _ in range(MAX_BATCHES_PER_PUMP):
            read = target.catchup.step()
            processed += read
            if read < self.batch_size:
                break
        target.events += processed
        return processed

    async def run(self, stop: asyncio.Event) -> None:
        while True:
            final = stop.is_set()
            for target in self.targets:
                if time.monotonic() < target.retry_at and not final:
                    continue
                try:
                    await asyncio.to_thread(self.pump, target)
                    if target.error:
                        log.info("%s views recovered", target.label)
                    target.error = ""
                except (RedisError, OSError, ValueError) as exc:
                    # A view store being down never stops the engine; retry later.
                    if not target.error:
                        log.warning("%s views not updated: %s", target.label, exc)
                    target.error = f"{type(exc).__name__}: {exc}"
                    target.retry_at = time.monotonic() + self.retry_s
                    target.catchup = None
            if self.tables is not None and (final or time.monotonic() >= self._tables_retry_at):
                await self._pump_tables(self.tables)
            if final:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.poll_s)

    async def _pump_tables(self, tables: SqlTablesWorker) -> None:
        try:
            await asyncio.to_thread(tables.pump)
            if tables.error:
                log.info("SQL tables (%s) recovered", tables.store.label)
            tables.error = ""
        except TABLE_ERRORS as exc:
            # Like every view store: a database being down never stops the engine.
            if not tables.error:
                log.warning("SQL tables (%s) not updated: %s", tables.store.label, exc)
            tables.error = f"{type(exc).__name__}: {exc}"
            self._tables_retry_at = time.monotonic() + self.retry_s
