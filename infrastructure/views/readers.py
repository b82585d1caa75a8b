"""Read the view documents for the API: Redis first, the JSON files when Redis is absent or
down. Only the known file names can be read, and only inside the data directory."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import Hashable
from pathlib import Path

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from infrastructure.views.jsonfile import POINTER, Namespaces
from infrastructure.views.redis_store import RedisKeys
from projections.documents import FILES

log = logging.getLogger("nof0.api")

#: A file changed less than this long ago gets no marker (it is read and compared): two
#: writes inside one tick of the file system's clock, of equal size, onto a reused inode,
#: would otherwise look unchanged.
SETTLED_S = 1.0

MODEL_FILE = re.compile(r"^analytics-([A-Za-z0-9][A-Za-z0-9._-]{0,63})\.json$")


def is_view_file(filename: str) -> bool:
    if filename in FILES:
        return True
    return MODEL_FILE.fullmatch(filename) is not None and ".." not in filename


class ViewReaders:
    def __init__(
        self,
        namespaces: Namespaces,
        *,
        redis_url: str | None = None,
        redis_password: str | None = None,
        keys: RedisKeys | None = None,
        retry_after_s: float = 5.0,
        timeout_s: float = 0.5,
    ) -> None:
        self.namespaces = namespaces
        self.keys = keys
        self.retry_after_s = retry_after_s
        self._redis = (
            aioredis.Redis.from_url(
                redis_url,
                password=redis_password or None,
                socket_timeout=timeout_s,
                socket_connect_timeout=timeout_s,
            )
            if redis_url
            else None
        )
        self._redis_down_until = 0.0
        self.last_source = ""
        self._pointer_path = os.fspath(namespaces.root / POINTER)
        self._pointer_stat: tuple[int, int, int] | None = None
        self._namespace: str | None = None
        self._namespace_dir: str | None = None

    @property
    def redis_configured(self) -> bool:
        return self._redis is not None

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()

    async def read(self, filename: str) -> bytes | None:
        raw, _ = await self.read_marked(filename)
        return raw

    def _redis_usable(self) -> bool:
        return (
            self._redis is not None
            and self.keys is not None
            and time.monotonic() >= self._redis_down_until
        )

    def _read_file(self, filename: str) -> bytes | None:
        namespace = self.namespaces.current()
        if namespace is None:
            return None
        directory = self.namespaces.directory(namespace).resolve()
        path = (directory / filename).resolve()
        if path.parent != directory:
            raise ValueError(f"{filename!r} is outside the views directory")
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None

    async def read_marked(self, filename: str) -> tuple[bytes | None, Hashable | None]:
        if not is_view_file(filename):
            raise ValueError(f"{filename!r} is not a view")
        if self._redis_usable():
            assert self._redis is not None and self.keys is not None  # noqa: PT018 - narrowing
            try:
                version = await self._redis.get(self.keys.version)
                namespace = await self._redis.get(self.keys.pointer)
                if isinstance(namespace, bytes):
                    value = await self._redis.get(self.keys.document(namespace.decode(), filename))
                    if isinstance(value, bytes):
                        self.last_source = "redis"
                        return value, ("redis", version) if isinstance(version, bytes) else None
            except (RedisError, OSError) as exc:
                self._redis_down_until = time.monotonic() + self.retry_after_s
                log.warning("redis is unavailable (%s); serving the JSON files", exc)
        # The file's marker first: a write landing between the two makes it stale, so the
        # next request reads again (never the other way round).
        marker = self._file_marker(filename)
        self.last_source = "json"
        return await asyncio.to_thread(self._read_file, filename), marker

    async def marker(self, filename: str) -> Hashable | None:
        """Redis: the views' version counter (raised in every write's transaction and at
        every flip). JSON files: the active namespace and the file's inode, mtime and size
        (two ``stat`` calls, no read)."""
        if not is_view_file(filename):
            raise ValueError(f"{filename!r} is not a view")
        if self._redis_usable():
            assert self._redis is not None and self.keys is not None  # noqa: PT018 - narrowing
            try:
                version = await self._redis.get(self.keys.version)
            except (RedisError, OSError) as exc:
                self._redis_down_until = time.monotonic() + self.retry_after_s
                log.warning("redis is unavailable (%s); serving the JSON files", exc)
            else:
                # No counter: views written by an engine from before it; read every time.
                return ("redis", version) if isinstance(version, bytes) else None
        return self._file_marker(filename)

    def _file_marker(self, filename: str) -> Hashable | None:
        # Plain strings, not pathlib: this runs on every request of a view route.
        try:
            pointer = os.stat(self._pointer_path)
        except FileNotFoundError:
            return None
        if time.time() - pointer.st_mtime < SETTLED_S:
            return None
        seen = (pointer.st_ino, pointer.st_mtime_ns, pointer.st_size)
        if seen != self._pointer_stat:
            self._namespace = self.namespaces.current()
            self._namespace_dir = (
                None
                if self._namespace is None
                else os.fspath(self.namespaces.directory(self._namespace))
            )
            self._pointer_stat = seen
        if self._namespace_dir is None:
            return None
        try:
            found = os.stat(f"{self._namespace_dir}/{filename}")
        except FileNotFoundError:
            return None
        if time.time() - found.st_mtime < SETTLED_S:
            return None
        return ("json", self._namespace, found.st_ino, found.st_mtime_ns, found.st_size)

    async def redis_status(self) -> str:
        if self._redis is None:
            return "not configured"
        try:
            await self._redis.ping()
        except (RedisError, OSError) as exc:
            return f"down ({type(exc).__name__})"
        return "up"


def views_root(data_dir: Path) -> Path:
    return data_dir / "views"
