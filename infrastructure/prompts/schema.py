"""The published decision JSON Schema (``prompts/decision/decision.schema.json``), per coin."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import fastjsonschema
from jsonschema import Draft202012Validator

#: The draft the fast check is compiled under: every keyword the decision schema uses
#: ($ref to a local pointer, propertyNames, if/then, exclusiveMinimum as a number) means the
#: same in draft 7, which is the newest fastjsonschema knows.
_FAST_DRAFT = "http://json-schema.org/draft-07/schema#"


class DecisionSchema:
    """Checks each coin's item against the schema; the answer for ``SchemaCheck``.

    Two validators over the same document: a compiled one (fastjsonschema, generated Python,
    ~0.1 ms an answer) says whether an answer is valid, and only an answer it refuses goes
    through ``jsonschema`` (~3 ms for six coins, a third of a cycle's engine time), which
    names the problems and has the last word: an answer the fast check passes is valid for
    both (a property test holds them to it), one it refuses is valid only if ``jsonschema``
    finds nothing.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        Draft202012Validator.check_schema(self.document)
        self.version = str(self.document.get("prompt_schema_version", ""))
        self._validator = Draft202012Validator(self.document)
        self._fast: Callable[[Any], Any] = fastjsonschema.compile(
            self.document | {"$schema": _FAST_DRAFT}
        )

    def __call__(self, items: Mapping[str, Any]) -> dict[str, str]:
        try:
            self._fast(dict(items))
        except fastjsonschema.JsonSchemaException:
            return self.problems(items)
        return {}

    def problems(self, items: Mapping[str, Any]) -> dict[str, str]:
        """Every coin's first problem, by the reference validator."""
        problems: dict[str, str] = {}
        for error in self._validator.iter_errors(dict(items)):
            path = list(error.absolute_path)
            coin = str(path[0]) if path else ""
            where = ".".join(str(p) for p in path[1:]) or "item"
            problems.setdefault(coin, f"{where}: {error.message}"[:300])
        return problems
