"""What the query API needs to read views (implemented in infrastructure)."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Protocol


class DocumentReader(Protocol):
    last_source: str

    @property
    def redis_configured(self) -> bool: ...

    async def read(self, filename: str) -> bytes | None:
        """The stored document, or None when the view has not been written yet."""
        ...

    async def marker(self, filename: str) -> Hashable | None:
        """A cheap value that moves whenever the document may have changed (compared by
        equality), or None when the reader cannot tell: the caller reads the document."""
        ...

    async def redis_status(self) -> str: ...

    async def close(self) -> None: ...
