"""The published decision JSON Schema (``prompts/decision/decision.schema.json``), per coin."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator


class DecisionSchema:
    """Checks each coin's item against the schema; the answer for ``SchemaCheck``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        Draft202012Validator.check_schema(self.document)
        self.version = str(self.document.get("prompt_schema_version", ""))
        self._validator = Draft202012Validator(self.document)

    def __call__(self, items: Mapping[str, Any]) -> dict[str, str]:
        problems: dict[str, str] = {}
        for error in self._validator.iter_errors(dict(items)):
            path = list(error.absolute_path)
            coin = str(path[0]) if path else ""
            where = ".".join(str(p) for p in path[1:]) or "item"
            problems.setdefault(coin, f"{where}: {error.message}"[:300])
        return problems
