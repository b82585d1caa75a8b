"""JSON view files: each written atomically (temp file, fsync, rename) into a namespace.

Layout under ``<data>/views``::

    CURRENT          the active namespace (replaced atomically to flip)
    r1/ r2/ ...      namespaces; a rebuild fills a new one, then flips CURRENT
    .rebuild.lock    held while a rebuild runs
"""

from __future__ import annotations

import fcntl
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from infrastructure.files import atomic_write, fsync_dir
from projections.engine import ViewOutput

_NAMESPACE = re.compile(r"^r(\d+)$")
POINTER = "CURRENT"


class Namespaces:
    """The versioned namespaces of the JSON views and the pointer to the active one."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def current(self) -> str | None:
        try:
            name = (self.root / POINTER).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return name if _NAMESPACE.match(name) and (self.root / name).is_dir() else None

    def all(self) -> list[str]:
        if not self.root.is_dir():
            return []
        names = [p.name for p in self.root.iterdir() if p.is_dir() and _NAMESPACE.match(p.name)]
        return sorted(names, key=lambda n: int(n[1:]))

    def create(self) -> str:
        self.root.mkdir(parents=True, exist_ok=True)
        numbers = [int(n[1:]) for n in self.all()]
        name = f"r{max(numbers, default=0) + 1}"
        (self.root / name).mkdir()
        return name

    def flip(self, name: str) -> None:
        if not (self.root / name).is_dir():
            raise FileNotFoundError(f"view namespace {name} does not exist")
        atomic_write(self.root / POINTER, name.encode())
        fsync_dir(self.root)

    def ensure_current(self) -> str:
        name = self.current()
        if name is None:
            name = self.create()
            self.flip(name)
        return name

    def remove(self, name: str) -> None:
        if name == self.current():
            raise ValueError(f"{name} is the active namespace")
        shutil.rmtree(self.root / name, ignore_errors=True)

    def directory(self, name: str) -> Path:
        return self.root / name

    @contextmanager
    def rebuild_lock(self) -> Iterator[None]:
        """Only one rebuild at a time (per data directory)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".rebuild.lock", "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RuntimeError("another rebuild is running on this data directory") from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


class JsonViewStore:
    """A :class:`projections.engine.ViewStore` over one namespace directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def read(self, filename: str) -> bytes | None:
        try:
            return (self.directory / filename).read_bytes()
        except FileNotFoundError:
            return None

    def write(self, output: ViewOutput) -> None:
        if not self.directory.is_dir():
            # The namespace was flipped away and removed: do not resurrect it.
            raise FileNotFoundError(f"view namespace {self.directory} is gone")
        for filename, data in output.files.items():
            atomic_write(self.directory / filename, data)
        fsync_dir(self.directory)
