"""Load and validate the configuration, reporting *every* problem with file, line and field.

``etc/nof0.yaml`` references the other five files; paths inside a file are relative to
that file's directory. ``${VAR}`` and ``${VAR:-default}`` are filled from the
environment; an unset variable gives an empty value (which, for example, keeps the
embedded SQLite event store when ``Postgres.DataSource`` is ``${Postgres__DataSource}``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from application.redaction import install_log_redaction, register_secrets
from infrastructure.config.check import governance_problems
from infrastructure.config.documents import Path_, _Document, _line, display, format_field
from infrastructure.config.documents import Problem as Problem  # re-exported: the public name
from infrastructure.config.models import (
    ExchangeConfig,
    ExecutorConfig,
    LLMConfig,
    MainConfig,
    ManagerConfig,
    MarketConfig,
)
from infrastructure.config.secrets import secret_values

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_SECRET = re.compile(r"(key|pass|secret|private|token)", re.IGNORECASE)
SECTIONS = ("LLM", "Executor", "Manager", "Exchange", "Market")

M = TypeVar("M", bound=BaseModel)


class ConfigError(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{len(problems)} configuration problem(s):\n{lines}")


@dataclass(frozen=True)
class LoadedConfig:
    path: Path
    main: MainConfig
    llm: LLMConfig
    executor: ExecutorConfig
    manager: ManagerConfig
    exchange: ExchangeConfig
    market: MarketConfig
    files: Mapping[str, Path]
    data_dir: Path
    #: Control route credentials: token id → token (from the environment; never logged).
    control_tokens: Mapping[str, str] = field(default_factory=dict, repr=False)
    #: False for a backtest's own SQLite store: commits are not waited for on disk
    #: (``infrastructure.eventstore_unsynced``); the live engine's are always durable.
    durable_events: bool = True
    #: True for a backtest's own store: no other process writes it (see TradingApp).
    sole_writer: bool = False

    def resolve(self, section: str, relative: str) -> Path:
        """A path written in ``section``'s file, resolved against that file's directory."""
        path = Path(os.path.expanduser(relative))
        if path.is_absolute():
            return path
        return (self.files[section].parent / path).resolve()


# -- YAML with line numbers and ${VAR} --------------------------------------------------


def _names(value: str) -> str:
    return ", ".join(f"${{{m.group(1)}}}" for m in _VAR.finditer(value))


def _substitute(value: str, env: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(the value with variables filled, the name of an unset variable it was made of)."""
    whole = _VAR.fullmatch(value.strip())
    if whole:
        name, default = whole.group(1), whole.group(2)
        filled = env.get(name, "")
        if filled == "":
            if default is not None:
                return default, None
            return None, name
        return filled, None

    def fill(match: re.Match[str]) -> str:
        return env.get(match.group(1), "") or (match.group(2) or "")

    return _VAR.sub(fill, value), None


_SCALARS = yaml.constructor.SafeConstructor()


def _build(node: yaml.Node, loc: Path_, doc: _Document, env: Mapping[str, str]) -> Any:
    doc.lines[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            result[key] = _build(value_node, (*loc, key), doc, env)
            # Point problems at the key's line, not at the first line of a block value.
            doc.lines[(*loc, key)] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*loc, i), doc, env) for i, item in enumerate(node.value)]
    assert isinstance(node, yaml.ScalarNode)
    if node.tag == "tag:yaml.org,2002:str" or "${" in node.value:
        if "${" not in node.value:
            return node.value
        filled, unset = _substitute(node.value, env)
        if unset:
            doc.unset_vars[loc] = unset
        if filled is None:
            return None
        doc.from_env[loc] = _names(node.value)
        if node.style in ("'", '"'):
            return filled  # a quoted "${X}" stays a string, whatever X holds
        # An unquoted variable is read as a YAML scalar, so Tls: ${X} with X=true is a bool.
        try:
            value = yaml.safe_load(filled) if filled.strip() else ""
        except yaml.YAMLError:
            return filled
        return value if isinstance(value, (str, int, float, bool)) else filled
    return _SCALARS.construct_object(node, deep=True)


def read_yaml(path: Path, env: Mapping[str, str]) -> tuple[_Document | None, list[Problem]]:
    name = display(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, [Problem(name, "", "file not found", "an existing YAML file")]
    except OSError as exc:
        return None, [Problem(name, "", f"cannot read the file: {exc.strerror}")]
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        return None, [Problem(name, "", f"invalid YAML: {problem}", "valid YAML", line)]
    doc = _Document(path=path, data=None)
    if node is None:
        return None, [Problem(name, "", "the file is empty", "a YAML mapping")]
    doc.data = _build(node, (), doc, env)
    if not isinstance(doc.data, dict):
        return None, [Problem(name, "", "the top level is not a mapping", "key: value pairs", 1)]
    return doc, []


def _data_loc(doc: _Document, loc: tuple[Any, ...]) -> Path_:
    """Drop pydantic's union tags from an error location, keeping the keys that exist."""
    node: Any = doc.data
    result: list[str | int] = []
    for part in loc:
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and part < len(node)
        if in_dict or in_list:
            node = node[part]
            result.append(part)
        elif isinstance(node, dict) and isinstance(part, str) and node.get("type") == part:
            continue
        else:
            result.append(part)
            node = None
    return tuple(result)


def _may_echo(doc: _Document, loc: Path_, field_name: str, value: Any) -> bool:
    """Only short scalars that are not secrets and did not come from the environment."""
    if _SECRET.search(field_name) or not isinstance(value, (str, int, float, bool)):
        return False
    if any(
        loc[: len(env_loc)] == env_loc or env_loc[: len(loc)] == loc for env_loc in doc.from_env
    ):
        return False
    return len(repr(value)) < 60


def validate(doc: _Document, model: type[M]) -> tuple[M | None, list[Problem]]:
    name = display(doc.path)
    try:
        return model.model_validate(doc.data), []
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = _data_loc(doc, tuple(error["loc"]))
            field_name = format_field(loc)
            message = error["msg"]
            if error["type"] == "extra_forbidden":
                message = "unknown field (a typo?)"
            elif error["type"] == "missing":
                message = "missing required field"
                unset = doc.unset_vars.get(loc)
                if unset:
                    message += f": ${{{unset}}} is not set"
            elif loc in doc.from_env:
                message += f" (the value of {doc.from_env[loc]})"
            elif _may_echo(doc, loc, field_name, error.get("input")) and "got " not in message:
                message += f", got {error['input']!r}"
            problems.append(Problem(name, field_name, message, line=_line(doc, loc)))
        return None, problems


# -- the whole configuration ------------------------------------------------------------


def load_config(
    path: Path | str,
    *,
    env: Mapping[str, str] | None = None,
    data_dir: Path | str | None = None,
    governance: bool = True,
) -> LoadedConfig:
    """Load everything or raise :class:`ConfigError` listing every problem found.

    A file with schema errors does not stop the others from being read, nor the
    cross-file rules from running on what was written.
    """

    env = os.environ if env is None else env
    main_path = Path(path).expanduser().resolve()
    problems: list[Problem] = []
    main_doc, found = read_yaml(main_path, env)
    problems += found
    if main_doc is None:
        raise ConfigError(problems)
    main, found = validate(main_doc, MainConfig)
    problems += found

    models: dict[str, type[BaseModel]] = {
        "LLM": LLMConfig,
        "Executor": ExecutorConfig,
        "Manager": ManagerConfig,
        "Exchange": ExchangeConfig,
        "Market": MarketConfig,
    }
    files: dict[str, Path] = {"Main": main_path}
    loaded: dict[str, BaseModel] = {}
    docs: dict[str, _Document] = {"Main": main_doc}
    for section, model in models.items():
        ref = (
            main_doc.data.get(section, {}).get("File")
            if isinstance(main_doc.data.get(section), dict)
            else None
        )
        if not isinstance(ref, str) or not ref:
            continue  # reported by the schema check of nof0.yaml
        section_path = (main_path.parent / os.path.expanduser(ref)).resolve()
        files[section] = section_path
        doc, found = read_yaml(section_path, env)
        if doc is None:
            problems += [
                Problem(
                    display(main_path),
                    f"{section}.File",
                    f"{ref!r} does not exist ({display(section_path)})",
                    "a path relative to this file",
                    _line(main_doc, (section, "File")),
                )
                if p.message == "file not found"
                else p
                for p in found
            ]
            continue
        docs[section] = doc
        value, found = validate(doc, model)
        problems += found
        if value is not None:
            loaded[section] = value

    # Registered before anything can fail, so no later text can carry them.
    register_secrets(value for doc in docs.values() for value in secret_values(doc.data))
    tokens: dict[str, str] = {}
    if main is not None:
        tokens, found = _control_tokens(main, main_doc, env)
        problems += found
        register_secrets(env.get(spec.Env, "") for spec in main.Control.Tokens)
    install_log_redaction()
    resolved_data = _data_dir(main_path, main_doc, data_dir)
    if governance:
        problems += governance_problems(docs, resolved_data)
    if problems or main is None or len(loaded) < len(models):
        raise ConfigError(problems)
    assert resolved_data is not None
    return LoadedConfig(
        path=main_path,
        main=main,
        llm=loaded["LLM"],  # type: ignore[arg-type]
        executor=loaded["Executor"],  # type: ignore[arg-type]
        manager=loaded["Manager"],  # type: ignore[arg-type]
        exchange=loaded["Exchange"],  # type: ignore[arg-type]
        market=loaded["Market"],  # type: ignore[arg-type]
        files=files,
        data_dir=resolved_data,
        control_tokens=tokens,
    )


#: A control token guesses no faster than its length allows.
MIN_CONTROL_TOKEN = 16


def _control_tokens(
    main: MainConfig, doc: _Document, env: Mapping[str, str]
) -> tuple[dict[str, str], list[Problem]]:
    tokens: dict[str, str] = {}
    problems: list[Problem] = []
    name = display(doc.path)
    for i, spec in enumerate(main.Control.Tokens):
        where = f"Control.Tokens[{i}]"
        value = env.get(spec.Env, "")
        if spec.Id in tokens:
            problems.append(Problem(name, f"{where}.Id", f"token id {spec.Id!r} is used twice"))
        elif value and len(value) < MIN_CONTROL_TOKEN:
            problems.append(
                Problem(
                    name,
                    f"{where}.Env",
                    f"${{{spec.Env}}} holds a token shorter than {MIN_CONTROL_TOKEN} characters",
                    "a long random token, e.g. `openssl rand -hex 24`",
                    _line(doc, ("Control", "Tokens", i)),
                )
            )
        elif value:
            tokens[spec.Id] = value
    return tokens, problems


def _data_dir(main_path: Path, main_doc: _Document, override: Path | str | None) -> Path | None:
    if override is not None:
        return Path(override).expanduser().resolve()
    raw = main_doc.data.get("DataPath", MainConfig.model_fields["DataPath"].default)
    if not isinstance(raw, str):
        return None
    data_path = Path(os.path.expanduser(raw))
    return data_path if data_path.is_absolute() else (main_path.parent / data_path).resolve()
