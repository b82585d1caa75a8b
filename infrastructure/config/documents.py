"""What the loader and the checks share: a parsed file with its line numbers, a problem found
in it, and how both are shown (kept apart so that ``check`` need not import ``loader``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    file: str
    field: str
    message: str
    expected: str = ""
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        text = f"{where}: {self.field or '(file)'}: {self.message}"
        return f"{text} (expected {self.expected})" if self.expected else text


@dataclass
class _Document:
    path: Path
    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)
    unset_vars: dict[Path_, str] = field(default_factory=dict)
    from_env: dict[Path_, str] = field(default_factory=dict)  # values filled from variables


def display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def format_field(loc: Path_) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _line(doc: _Document, loc: Path_) -> int | None:
    while loc:
        if loc in doc.lines:
            return doc.lines[loc]
        loc = loc[:-1]
    return doc.lines.get(())
