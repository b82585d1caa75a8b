"""A copy of etc/ and prompts/ in a temporary directory, for configuration tests."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from infrastructure.config.loader import ConfigError, LoadedConfig, Problem, load_config

REPO = Path(__file__).resolve().parents[2]
MISSING = object()


class Workspace:
    """etc/ and prompts/ copied under ``root`` with their layout; edits apply to the copy."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.etc = self.root / "etc"
        self.prompts = self.root / "prompts" / "decision"
        shutil.copytree(REPO / "etc", self.etc)
        shutil.copytree(REPO / "prompts", self.root / "prompts")

    @property
    def main(self) -> Path:
        return self.etc / "nof0.yaml"

    def file(self, name: str) -> Path:
        return self.etc / name

    def replace(self, name: str, old: str, new: str) -> None:
        path = self.file(name)
        text = path.read_text(encoding="utf-8")
        assert text.count(old) == 1, f"{old!r} must occur exactly once in {name}"
        path.write_text(text.replace(old, new), encoding="utf-8")

    def append(self, name: str, text: str) -> None:
        path = self.file(name)
        path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")

    def set(self, name: str, where: tuple[str | int, ...], value: Any = MISSING) -> None:
        """Set (or, without ``value``, delete) ``where`` in ``name`` and rewrite it as YAML."""
        path = self.file(name)
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        node = data
        for part in where[:-1]:
            node = node[part]
        if value is MISSING:
            del node[where[-1]]
        else:
            node[where[-1]] = value
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")

    def lines(self, name: str, fragment: str) -> list[int]:
        text = self.file(name).read_text(encoding="utf-8").splitlines()
        exact = [n for n, line in enumerate(text, 1) if line.strip() == fragment]
        return exact or [n for n, line in enumerate(text, 1) if fragment in line]

    def line(self, name: str, fragment: str) -> int:
        """The 1-based line equal to ``fragment`` once stripped, or else containing it."""
        found = self.lines(name, fragment)
        assert len(found) == 1, f"{fragment!r} is on lines {found} of {name}"
        return found[0]

    def where(self, name: str, fragment: str) -> str:
        """``file:line`` as ``nof0 check`` prints it."""
        return f"{self.file(name)}:{self.line(name, fragment)}"

    def template(self, name: str, version: str | None) -> str:
        """A copy of user.j2 under prompts/decision/ with another (or no) Version header."""
        text = (self.prompts / "user.j2").read_text(encoding="utf-8")
        header = "{# Version: v1.0.0 #}\n"
        assert text.startswith(header)
        new = f"{{# Version: {version} #}}\n" if version else "{# no header #}\n"
        (self.prompts / name).write_text(new + text[len(header) :], encoding="utf-8")
        return f"../prompts/decision/{name}"

    def load(self, env: Mapping[str, str] | None = None, **kwargs: Any) -> LoadedConfig:
        return load_config(self.main, env={} if env is None else env, **kwargs)

    def error(self, env: Mapping[str, str] | None = None, **kwargs: Any) -> ConfigError:
        with pytest.raises(ConfigError) as info:
            self.load(env, **kwargs)
        return info.value

    def problems(self, env: Mapping[str, str] | None = None, **kwargs: Any) -> list[Problem]:
        return self.error(env, **kwargs).problems
