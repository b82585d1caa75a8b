"""What the query API needs to read views (implemented in infrastructure)."""

from __future__ import annotations

from typing import Protocol


class DocumentReader(Protocol):
    last_source: str

    @property
    def redis_configured(self) -> bool: ...

    async def read(self, filename: str) -> bytes | None:
        """The stored document, or None when the view has not been written yet."""
        ...

    async def redis_status(self) -> str: ...

    async def close(self) -> None: ...
