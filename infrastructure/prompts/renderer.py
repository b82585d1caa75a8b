"""Render the system and user prompts from versioned Jinja2 templates.

Every template starts with a ``Version:`` header (inside a Jinja comment, so it is not
sent to the model). In strict mode a header that differs from ``prompt_schema_version``
refuses to load, naming the file. Undefined variables are errors (StrictUndefined).
The digest is the sha256 of the rendered messages.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta
from jinja2 import nodes

from application.cycle import PromptError
from application.ports import (
    AccountView,
    MarketSnapshot,
    PromptLimits,
    RenderedPrompt,
    prompt_digest,
)

_HEADER = re.compile(r"Version:\s*([^\s#}*]+)")
HEADER_LINES = 5


class PromptVersionError(Exception):
    """A template's Version header is missing or differs from the schema version."""


def read_version_header(path: Path) -> str | None:
    """The ``Version:`` value in the first lines of a template, if any."""
    with path.open(encoding="utf-8") as handle:
        for _ in range(HEADER_LINES):
            line = handle.readline()
            if not line:
                break
            match = _HEADER.search(line)
            if match:
                return match.group(1)
    return None


def _num(value: Any, digits: int = 6) -> str:
    """Compact number formatting for prompts (no float noise, no scientific notation)."""
    if type(value) is not float:
        if value is None:
            return "n/a"
        if not isinstance(value, Decimal):
            return str(value)
        value = float(value)
    if value == 0:
        return "0"
    if -1e-3 < value < 1e-3:
        return f"{value:.3e}"
    text = f"{value:.{digits}g}"
    return f"{value:.2f}" if "e" in text else text


def _series(values: list[float], digits: int = 6) -> str:
    return "[" + ", ".join([_num(v, digits) for v in values]) + "]"


def _sig(value: Any, digits: int = 5) -> str:
    """``value`` to ``digits`` significant digits, plain notation, no trailing zeros (the
    compact layout): 107041.3 → "107041", 0.0728843 → "0.0729" (3), 69.87 → "70" (2). Values
    under 1e-4 in magnitude keep two digits in e-notation (funding rates)."""
    if value is None:
        return "n/a"
    number = float(value)
    if number == 0 or not math.isfinite(number):
        return "0" if number == 0 else str(number)
    if abs(number) < 1e-4:
        return f"{number:.1e}"
    decimals = digits - 1 - math.floor(math.log10(abs(number)))
    if decimals <= 0:
        return str(int(round(number, decimals)))
    text = f"{number:.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _row(values: list[float], digits: int = 5) -> str:
    """A series as space-separated numbers (no brackets, no commas)."""
    return " ".join([_sig(v, digits) for v in values])


def _bp(values: list[float], reference: Any) -> str:
    """A price series as whole basis points from ``reference`` (the current price), signed:
    two tokens a value instead of three or four, at 0.01 % resolution."""
    ref = float(reference)
    return _bp_of([v - ref for v in values], ref, digits=6)


def _bp_of(values: list[float], reference: Any, digits: int = 3) -> str:
    """A series (an oscillator in price units, like MACD) as whole basis points of
    ``reference``: -3158 at a price of 107041 → "-295". Without a reference (a price of 0),
    the values themselves to ``digits`` significant digits."""
    ref = float(reference)
    if ref == 0:
        return _row(values, digits)
    return " ".join([_signed_bp(v / ref) for v in values])


def _signed_bp(fraction: float) -> str:
    bp = round(fraction * 10_000)
    return f"{bp:+d}" if bp else "0"


def _py(value: Any) -> str:
    """A Python-literal rendering (nof1 shows positions as dict literals)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_py(v)}" for k, v in value.items()) + "}"
    if isinstance(value, Decimal):
        return _num(value, 8)
    if isinstance(value, float):
        return _num(value, 8)
    return repr(value)


class _SeriesMemo:
    """Formatted series kept by the identity of the list they came from.

    Traders on the same coins in one tick share one snapshot (``SharedSnapshots``), so their
    prompts format the very same series lists: formatting them once per tick instead of once
    per trader took most of the render out of a 100-trader tick. An entry holds its list,
    so the list's id cannot be reused while the entry lives; the oldest entries go first.
    """

    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self._entries: dict[tuple[Any, ...], tuple[object, str]] = {}

    def wrap(self, fn: Callable[..., str]) -> Callable[..., str]:
        entries = self._entries

        def memoized(values: Any, *args: Any) -> str:
            if not isinstance(values, list | tuple):
                return fn(values, *args)
            try:
                key = (fn, id(values), *args)
                hit = entries.get(key)
            except TypeError:  # an unhashable argument: nothing to key on
                return fn(values, *args)
            if hit is not None and hit[0] is values:
                return hit[1]
            text = fn(values, *args)
            entries[key] = (values, text)
            if len(entries) > self.capacity:
                del entries[next(iter(entries))]
            return text

        return memoized


#: What a part of a prompt may read and still be shared by the traders of a tick: the time,
#: the snapshot's coins (one shared snapshot per tick, ``SharedSnapshots``) and the limits.
#: ``account`` and ``positions`` are each trader's own.
_SHARED_NAMES = frozenset({"now", "coins", "limits"})
#: Top-level nodes a template may be cut between (a template with any other is rendered
#: whole) ...
_SELF_CONTAINED = (nodes.Output, nodes.If, nodes.For)
#: ... and nodes it must hold nowhere, since a later part could read what they define (a
#: ``set`` inside a top-level ``if`` sets the template's variable, for one).
_DEFINING = (
    nodes.Assign,
    nodes.AssignBlock,
    nodes.Macro,
    nodes.CallBlock,
    nodes.Import,
    nodes.FromImport,
    nodes.Include,
    nodes.Extends,
    nodes.Block,
    nodes.Scope,
    nodes.ScopedEvalContextModifier,
)


@dataclass(frozen=True)
class _Part:
    """A run of a template's top-level nodes, rendered on its own. ``shared``: it reads
    only ``_SHARED_NAMES`` (``names``), so its text is kept for the next trader."""

    template: jinja2.Template
    names: frozenset[str]
    shared: bool


@dataclass(frozen=True)
class _Template:
    id: str
    version: str
    template: jinja2.Template
    #: The template cut into parts whose texts, joined, are its text (None: rendered whole).
    parts: tuple[_Part, ...] | None = None


def _split(env: jinja2.Environment, source: str) -> tuple[_Part, ...] | None:
    """Cut a template at its top level into runs of nodes that read only what the traders
    of a tick share, and runs that read a trader's own: the market part of the user prompt
    is then rendered once per snapshot, not once per trader. Jinja renders a template as
    its top-level nodes' outputs in turn, so the parts' texts joined are the whole text.
    None when nothing would be shared or a node could pass state to a later one."""
    tree = env.parse(source)
    body = tree.body
    if not body or not all(isinstance(node, _SELF_CONTAINED) for node in body):
        return None
    if next(tree.find_all(_DEFINING), None) is not None:
        return None
    runs: list[tuple[bool, list[nodes.Node], set[str]]] = []
    for node in body:
        names = jinja2.meta.find_undeclared_variables(_tree(env, [node]))
        shared = names <= _SHARED_NAMES
        if runs and runs[-1][0] == shared:
            runs[-1][1].append(node)
            runs[-1][2].update(names)
        else:
            runs.append((shared, [node], set(names)))
    if not any(shared for shared, _, _ in runs):
        return None
    return tuple(
        _Part(env.from_string(_tree(env, run)), frozenset(names), shared)
        for shared, run, names in runs
    )


def _tree(env: jinja2.Environment, body: list[nodes.Node]) -> nodes.Template:
    tree = nodes.Template(body, lineno=1)
    tree.set_environment(env)
    return tree


class _SharedTexts:
    """The texts of shared parts, by part and by what they read: the time, the snapshot (by
    identity, held so its id cannot be reused while the entry lives) and the limits (by
    value). The oldest entries go first."""

    def __init__(self, capacity: int = 512) -> None:
        self.capacity = capacity
        self._entries: dict[tuple[Any, ...], tuple[object, str]] = {}

    def render(
        self, part: _Part, context: dict[str, Any], snapshot: MarketSnapshot, limits: Any
    ) -> str:
        names = part.names
        try:
            key = (
                id(part),
                context["now"] if "now" in names else None,
                id(snapshot) if "coins" in names else None,
                limits if "limits" in names else None,
            )
            hit = self._entries.get(key)
        except TypeError:  # limits that cannot be hashed: nothing to key on
            return part.template.render(**context)
        if hit is not None and hit[0] is snapshot:
            return hit[1]
        text = part.template.render(**context)
        self._entries[key] = (snapshot, text)
        if len(self._entries) > self.capacity:
            del self._entries[next(iter(self._entries))]
        return text


class JinjaPromptRenderer:
    def __init__(
        self,
        *,
        root: Path,
        schema_version: str,
        strict: bool = True,
        require_header: bool = True,
        split: bool = True,
    ) -> None:
        """``split``: shared parts of a prompt rendered once per snapshot (False: every
        template rendered whole, the reference the split rendering is tested against)."""
        self.root = root
        self.split = split
        self.schema_version = schema_version
        self.strict = strict
        self.require_header = require_header
        self._env = jinja2.Environment(
            undefined=jinja2.StrictUndefined,
            autoescape=False,  # noqa: S701 - prompts are plain text, not HTML
            keep_trailing_newline=False,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        memo = _SeriesMemo()
        self._env.filters["num"] = _num
        self._env.filters["series"] = memo.wrap(_series)
        self._env.filters["py"] = _py
        self._env.filters["sig"] = _sig
        self._env.filters["row"] = memo.wrap(_row)
        self._env.filters["bp"] = memo.wrap(_bp)
        self._env.filters["bp_of"] = memo.wrap(_bp_of)
        self._shared = _SharedTexts()
        self._by_name: dict[str, _Template] = {}  # absolute names as strings → templates
        self._now: tuple[datetime | None, str] = (None, "")  # the last time, formatted
        self._cache: dict[Path, _Template] = {}
        self._named: dict[Path, _Template] = {}  # absolute names as given → their template

    def load(self, path: Path) -> _Template:
        """Load (once) and version-check a template."""
        # Every cycle names its templates: the names already seen skip the filesystem
        # (resolving a path is a few stat calls, a tenth of a render).
        named = self._named.get(path) if path.is_absolute() else None
        if named is not None:
            return named
        given = path
        path = path.resolve()
        cached = self._cache.get(path)
        if cached is not None:
            if given.is_absolute():
                self._named[given] = cached
            return cached
        if not path.is_file():
            raise PromptVersionError(f"prompt template {path} does not exist")
        version = read_version_header(path)
        if version is None and self.require_header:
            raise PromptVersionError(f"prompt template {path} has no 'Version:' header")
        if self.strict and version is not None and version != self.schema_version:
            raise PromptVersionError(
                f"prompt template {path} declares Version {version}, but "
                f"prompt_schema_version is {self.schema_version}"
            )
        source = path.read_text(encoding="utf-8")
        try:
            template = self._env.from_string(source)
            parts = _split(self._env, source) if self.split else None
        except jinja2.TemplateSyntaxError as exc:
            raise PromptVersionError(f"prompt template {path}:{exc.lineno}: {exc.message}") from exc
        try:
            template_id = str(path.relative_to(self.root.resolve()))
        except ValueError:
            template_id = str(path)
        loaded = _Template(template_id, version or "", template, parts)
        self._cache[path] = loaded
        if given.is_absolute():
            self._named[given] = loaded
        return loaded

    def _load_named(self, name: str) -> _Template:
        path = Path(name)
        loaded = self.load(path)
        if path.is_absolute():  # a relative name is resolved against the current directory
            self._by_name[name] = loaded
        return loaded

    def render(
        self,
        *,
        system_template: str,
        user_template: str,
        snapshot: MarketSnapshot,
        account: AccountView,
        limits: PromptLimits,
        as_of: datetime,
    ) -> RenderedPrompt:
        try:
            system = self._by_name.get(system_template) or self._load_named(system_template)
            user = self._by_name.get(user_template) or self._load_named(user_template)
        except PromptVersionError as exc:
            raise PromptError(str(exc)) from exc
        context = self._shared_context(snapshot, limits, as_of)
        context["account"] = account
        context["positions"] = [_position_dict(p) for p in account.positions]
        try:
            system_text = self._text(system, context, snapshot, limits).strip() + "\n"
            user_text = self._text(user, context, snapshot, limits).strip() + "\n"
        except jinja2.TemplateError as exc:
            raise PromptError(f"rendering failed: {exc}") from exc
        digest = prompt_digest(system_text, user_text)
        return RenderedPrompt(
            template=f"{system.id}+{user.id}",
            version=user.version or system.version,
            schema_version=self.schema_version,
            system=system_text,
            user=user_text,
            digest=digest,
        )

    def prepare(
        self,
        *,
        system_template: str,
        user_template: str,
        snapshot: MarketSnapshot,
        limits: PromptLimits,
        as_of: datetime,
    ) -> None:
        """Render the parts of these templates that the traders of a tick share (the market,
        the limits) for this snapshot, before their cycles: the tick's work, done once. A
        failure is left for the cycles, which meet it again and record it."""
        try:
            loaded = [
                self._by_name.get(n) or self._load_named(n)
                for n in (system_template, user_template)
            ]
            context = self._shared_context(snapshot, limits, as_of)
            for template in loaded:
                for part in template.parts or ():
                    if part.shared:
                        self._shared.render(part, context, snapshot, limits)
        except (PromptVersionError, jinja2.TemplateError):
            return

    def _shared_context(
        self, snapshot: MarketSnapshot, limits: PromptLimits, as_of: datetime
    ) -> dict[str, Any]:
        if self._now[0] is not as_of:  # the traders of a tick share their as_of
            self._now = (as_of, as_of.strftime("%Y-%m-%d %H:%M:%S UTC"))
        return {
            "now": self._now[1],
            "coins": [snapshot.coins[c] for c in snapshot.coins],
            "limits": limits,
        }

    def _text(
        self, loaded: _Template, context: dict[str, Any], snapshot: MarketSnapshot, limits: Any
    ) -> str:
        """The template's text: its shared parts as kept for this snapshot, its own parts
        rendered for this trader (byte for byte the whole template's rendering)."""
        if loaded.parts is None:
            return loaded.template.render(**context)
        shared = self._shared
        return "".join(
            [
                shared.render(part, context, snapshot, limits)
                if part.shared
                else part.template.render(**context)
                for part in loaded.parts
            ]
        )


def _position_dict(position: Any) -> dict[str, Any]:
    """One open position in nof1's key order, with the exit plan and entry reason."""
    return {
        "symbol": position.coin,
        "quantity": position.quantity,
        "entry_price": position.entry_price,
        "current_price": position.current_price,
        "liquidation_price": position.liquidation_price,
        "unrealized_pnl": round(position.unrealized_pnl, 2),
        "leverage": position.leverage,
        "exit_plan": {
            "profit_target": position.profit_target,
            "stop_loss": position.stop_loss,
            "invalidation_condition": position.invalidation_condition,
        },
        "confidence": position.confidence,
        "risk_usd": position.risk_usd,
        "entry_reason": position.justification,
        "notional_usd": round(position.notional_usd, 2),
    }
