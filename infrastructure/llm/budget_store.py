"""Today's LLM usage in a small JSON file under the data directory (atomically replaced)."""

from __future__ import annotations

from pathlib import Path

import msgspec

from application.budget import BudgetUsage
from infrastructure.files import atomic_write


class FileBudgetStore:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> BudgetUsage | None:
        try:
            return msgspec.json.decode(self.path.read_bytes(), type=BudgetUsage)
        except FileNotFoundError:
            return None
        except msgspec.DecodeError:
            # A damaged file must not reset the day to zero silently: refuse to guess.
            raise ValueError(f"the LLM budget file {self.path} is damaged") from None

    def save(self, usage: BudgetUsage) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, msgspec.json.encode(usage))
