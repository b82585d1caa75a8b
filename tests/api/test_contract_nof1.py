"""Contract: our nine routes answer the field names and JSON types of nof1.ai.

The expected shape of each route is built from the real capture in
``shared/contracts/nof1-api`` (which fields exist) and ``api-shapes.summary.json`` (what JSON
type each has): "number" accepts an int or a float, "int" requires an integer, "null" accepts
null or an absent field. Maps keyed by coin are compared by the shape of their values, lists by
the shape of their items. Fields we add beyond nof1 are allowed; a missing field or a field of
another type fails.

Our additions beyond nof1 (allowed, listed here so they are deliberate):

* every route: ``serverTime`` — nof1's leaderboard capture has none, ours adds it;
* ``/api/trades``: ``close_reason`` (signal, stop, target, liquidation ...);
* ``/api/conversations``: ``model``, ``raw_response``, ``error``, ``tokens_in``,
  ``tokens_out``, ``cost_usd``, ``latency_ms``, ``prompt_version``, ``prompt_digest``
  (what the invocation cost and which prompt produced it);
* ``/api/positions``: the full position object of account-totals (the partly synthetic
  ``positions.json`` capture has a subset of it);
* ``/api/account-totals``: the ``buynhold_btc`` baseline rows keep nof1's model-row shape
  (``sharpe_ratio``, an ``exit_plan`` object, ``index_col: null``) where nof1's baseline rows
  omit ``sharpe_ratio`` and use ``exit_plan: "N/A"`` and ``index_col: -1``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

Kinds = frozenset[str] | None  # None: any JSON value
NUMBER = frozenset({"int", "float"})
KIND_WORDS = {
    "int": frozenset({"int"}),
    "number": NUMBER,
    "string": frozenset({"string"}),
    "bool": frozenset({"bool"}),
    "null": frozenset({"null"}),
    "object": frozenset({"object"}),
    "array": frozenset({"array"}),
}

#: Conversation fields the summary calls "less certain" (seen only in third-party captures,
#: not read by the nof1 web ModelChatPanel): not required of us.
UNCERTAIN_CONVERSATION_FIELDS = {"skill", "run_id"}


def json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    assert isinstance(value, dict), type(value)
    return "object"


def parse_kinds(text: str) -> Kinds:
    """A summary type ("number (unix s)", "int (-1 if none)", "null|object", "'long'|'short'",
    "buy_to_enter|sell_to_enter|hold|close", "any") as the JSON kinds it allows."""
    head = text.strip().split()[0]
    if head == "any":
        return None
    kinds: set[str] = set()
    for alternative in head.split("|"):
        word = re.match(r"[a-z]+", alternative)
        if word and word.group() == alternative and alternative in KIND_WORDS:
            kinds |= KIND_WORDS[alternative]
        else:
            kinds.add("string")  # a literal of an enum: 'long', buy_to_enter ...
    return frozenset(kinds)


def inline_fields(text: str) -> dict[str, str] | None:
    """``object {profit_target:number, stop_loss:number, ...}`` as its fields."""
    found = re.match(r"object\s*\{([^}]*)\}", text.strip())
    if not found or not found.group(1).strip():
        return None
    pairs = (part.split(":", 1) for part in found.group(1).split(","))
    return {name.strip(): kind.strip() for name, kind in pairs}


# -- shapes -------------------------------------------------------------------------------


@dataclass
class Leaf:
    kinds: Kinds

    @property
    def optional(self) -> bool:
        return self.kinds == frozenset({"null"})


@dataclass
class Obj:
    fields: dict[str, Shape] = field(default_factory=dict)


@dataclass
class MapOf:
    value: Shape | None  # None: nothing to compare (an empty map in the capture)


@dataclass
class ListOf:
    item: Shape | None


Shape = Leaf | Obj | MapOf | ListOf


def merge(a: Shape | None, b: Shape | None) -> Shape | None:
    """The shape that both observations allow (lists of items, values of coin maps)."""
    if a is None or b is None:
        return a or b
    if isinstance(a, Obj) and isinstance(b, Obj):
        names = dict.fromkeys([*a.fields, *b.fields])
        fields = {n: merge(a.fields.get(n), b.fields.get(n)) for n in names}
        return Obj({n: s for n, s in fields.items() if s is not None})
    if isinstance(a, MapOf) and isinstance(b, MapOf):
        return MapOf(merge(a.value, b.value))
    if isinstance(a, ListOf) and isinstance(b, ListOf):
        return ListOf(merge(a.item, b.item))
    if isinstance(a, Leaf) and isinstance(b, Leaf):
        return Leaf(None if a.kinds is None or b.kinds is None else a.kinds | b.kinds)
    raise AssertionError(f"the capture mixes shapes {a} and {b}")


def coin_map(spec: Any) -> Any | None:
    """The value spec of a ``{"<SYMBOL>": ...}`` map, else None."""
    if isinstance(spec, dict):
        keys = [k for k in spec if not k.startswith("_")]
        if len(keys) == 1 and re.fullmatch(r"<[A-Z]+>", keys[0]):
            return spec[keys[0]]
    return None


def from_spec(spec: Any) -> Shape:
    """A shape from the summary alone (the conversations item)."""
    if isinstance(spec, str):
        inner = inline_fields(spec)
        if inner is not None:
            return Obj({name: Leaf(parse_kinds(kind)) for name, kind in inner.items()})
        return Leaf(parse_kinds(spec))
    if isinstance(spec, list):
        return ListOf(from_spec(spec[0]) if spec else None)
    value = coin_map(spec)
    if value is not None:
        return MapOf(from_spec(value))
    return Obj({k: from_spec(v) for k, v in spec.items() if not k.startswith("_")})


def from_capture(capture: Any, spec: Any) -> Shape:
    """A shape from a real capture (which fields) typed by the summary (which JSON types).

    Fields the summary lists but the capture lacks are required too (the partly synthetic
    positions capture trims the position object); a capture field the summary does not cover
    keeps the capture's own JSON type.
    """
    if isinstance(spec, str):
        if isinstance(capture, dict) and spec.lstrip().startswith("object"):
            inner = inline_fields(spec)
            if inner is not None:
                return Obj({name: Leaf(parse_kinds(kind)) for name, kind in inner.items()})
            if "metrics" in spec:  # "object of float/int metrics": the capture's keys, numbers
                return Obj({name: Leaf(NUMBER) for name in capture})
        return Leaf(parse_kinds(spec))
    if isinstance(capture, list):
        item_spec = spec[0] if isinstance(spec, list) and spec else None
        item: Shape | None = None
        for element in capture:
            item = merge(item, from_capture(element, item_spec))
        return ListOf(item)
    if isinstance(capture, dict):
        value_spec = coin_map(spec)
        if value_spec is not None:
            value: Shape | None = None
            for element in capture.values():
                value = merge(value, from_capture(element, value_spec))
            return MapOf(value)
        spec = spec if isinstance(spec, dict) else {}
        fields = {k: from_capture(v, spec.get(k)) for k, v in capture.items()}
        for name, sub in spec.items():
            if not name.startswith("_") and name not in fields:
                fields[name] = from_spec(sub)
        return Obj(fields)
    return Leaf(frozenset({json_kind(capture)}))


# -- comparison ------------------------------------------------------------------------------


@dataclass
class Report:
    errors: dict[str, int] = field(default_factory=dict)  # message -> how many values
    additions: set[str] = field(default_factory=set)
    seen: set[str] = field(default_factory=set)  # leaf paths our response was checked at

    def error(self, message: str) -> None:
        self.errors[message] = self.errors.get(message, 0) + 1


def check(ours: Any, shape: Shape, path: str, report: Report) -> None:
    kind = json_kind(ours)
    if isinstance(shape, Leaf):
        report.seen.add(path)
        if shape.kinds is not None and kind not in shape.kinds:
            named = shape.kinds - NUMBER | ({"number"} if shape.kinds >= NUMBER else set())
            expected = "|".join(sorted(named))
            report.error(f"{path}: {kind}, nof1 has {expected}")
        return
    if isinstance(shape, Obj):
        if kind != "object":
            report.error(f"{path}: {kind}, nof1 has an object")
            return
        for name, sub in shape.fields.items():
            if name in ours:
                check(ours[name], sub, f"{path}.{name}", report)
            elif isinstance(sub, Leaf) and sub.optional:
                report.seen.add(f"{path}.{name}")
            else:
                report.error(f"{path}.{name}: missing")
        report.additions |= {f"{path}.{name}" for name in ours if name not in shape.fields}
        return
    if isinstance(shape, MapOf):
        if kind != "object":
            report.error(f"{path}: {kind}, nof1 has a map keyed by coin")
            return
        if shape.value is not None:
            for coin, value in ours.items():
                assert re.fullmatch(r"[A-Z0-9]+", coin), f"{path}: key {coin!r} is not a coin"
                check(value, shape.value, f"{path}{{}}", report)
        return
    if kind != "array":
        report.error(f"{path}: {kind}, nof1 has a list")
        return
    if shape.item is not None:
        for item in ours:
            check(item, shape.item, f"{path}[]", report)


def leaf_paths(shape: Shape | None, path: str) -> set[str]:
    if shape is None:
        return set()
    if isinstance(shape, Leaf):
        return {path}
    if isinstance(shape, Obj):
        return set().union(*(leaf_paths(s, f"{path}.{n}") for n, s in shape.fields.items()))
    if isinstance(shape, MapOf):
        return leaf_paths(shape.value, f"{path}{{}}")
    return leaf_paths(shape.item, f"{path}[]")


def compare(ours: dict[str, Any], shape: Shape) -> Report:
    report = Report()
    check(ours, shape, "$", report)
    assert not report.errors, "differs from nof1:\n  " + "\n  ".join(
        f"{message} (x{count})" for message, count in report.errors.items()
    )
    # Not vacuous: every field of the nof1 shape was compared on at least one of our values.
    unchecked = leaf_paths(shape, "$") - report.seen
    assert not unchecked, f"no value of ours to compare at {sorted(unchecked)}"
    return report


# -- the nine routes --------------------------------------------------------------------------

#: route -> (capture file, summary key of its shape)
CAPTURED = {
    "/api/account-totals": (
        "account-totals.trimmed-sample.json",
        "GET /api/account-totals?lastHourlyMarker=<int, optional>",
    ),
    "/api/positions": ("positions.json", "GET /api/positions?limit=<int, default 1000>"),
    "/api/trades": ("trades.json", "GET /api/trades"),
    "/api/since-inception-values": (
        "since-inception-values.json",
        "GET /api/since-inception-values",
    ),
    "/api/leaderboard": ("leaderboard.json", "GET /api/leaderboard"),
    "/api/analytics": ("analytics.json", "GET /api/analytics"),
    "/api/crypto-prices": ("crypto-prices.json", "GET /api/crypto-prices"),
}
CONVERSATIONS_REAL = (
    "GET /api/conversations (real nof1 shape, as read by the nof0 web ModelChatPanel "
    "and third-party captures)"
)


@pytest.fixture(scope="module")
def contracts(shared_dir: Path) -> Path:
    directory = shared_dir / "contracts" / "nof1-api"
    if not directory.is_dir():
        pytest.skip(f"{directory} is not present")
    return directory


@pytest.fixture(scope="module")
def summary(contracts: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((contracts / "api-shapes.summary.json").read_text())
    return loaded


def load(contracts: Path, name: str) -> Any:
    return json.loads((contracts / name).read_text())


def ours(client: Any, url: str) -> dict[str, Any]:
    response = client.get(url)
    assert response.status_code == 200, response.text[:300]
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize("route", list(CAPTURED))
def test_route_matches_the_nof1_capture(
    client: Any, contracts: Path, summary: dict[str, Any], route: str
) -> None:
    capture_file, summary_key = CAPTURED[route]
    capture = load(contracts, capture_file)
    shape = from_capture(capture, summary[summary_key])
    compare(ours(client, route), shape)


def test_leaderboard_server_time_is_our_addition(
    client: Any, contracts: Path, summary: dict[str, Any]
) -> None:
    capture = load(contracts, "leaderboard.json")
    assert "serverTime" not in capture
    shape = from_capture(capture, summary["GET /api/leaderboard"])
    report = compare(ours(client, "/api/leaderboard"), shape)
    assert "$.serverTime" in report.additions


def test_trades_close_reason_is_our_addition(
    client: Any, contracts: Path, summary: dict[str, Any]
) -> None:
    shape = from_capture(load(contracts, "trades.json"), summary["GET /api/trades"])
    report = compare(ours(client, "/api/trades"), shape)
    assert report.additions == {"$.trades[].close_reason"}


@pytest.mark.parametrize("model", ["ema-cross", "random-walk", "btc-hold"])
def test_model_analytics_matches_the_nof1_capture(
    client: Any, contracts: Path, summary: dict[str, Any], model: str
) -> None:
    # nof1's analytics-<model>.json wraps the one ModelAnalytics in a one-element list, as we do;
    # its items have the shape of the /api/analytics items.
    capture = load(contracts, "analytics-gpt-5.json")
    assert isinstance(capture["analytics"], list)
    assert len(capture["analytics"]) == 1
    spec = {
        "analytics": summary["GET /api/analytics"]["analytics"],
        "serverTime": summary["GET /api/analytics"]["serverTime"],
    }
    body = ours(client, f"/api/analytics/{model}")
    compare(body, from_capture(capture, spec))
    assert len(body["analytics"]) == 1


def test_analytics_tables_have_every_nof1_metric(client: Any, contracts: Path) -> None:
    # The same check, said plainly: each breakdown table has the key set of nof1's tables.
    (captured, *_) = load(contracts, "analytics.json")["analytics"]
    for item in ours(client, "/api/analytics")["analytics"]:
        for table, metrics in captured.items():
            if table.endswith("_table"):
                assert set(metrics) <= set(item[table]), (table, set(metrics) - set(item[table]))


def test_conversations_match_the_real_nof1_item(client: Any, summary: dict[str, Any]) -> None:
    # conversations.synthetic-placeholder.json is hand-written (role/content messages); the real
    # nof1 item is the one the summary describes.
    spec = summary[CONVERSATIONS_REAL]
    item_spec = {
        k: v for k, v in spec["conversations"][0].items() if k not in UNCERTAIN_CONVERSATION_FIELDS
    }
    shape = from_spec({"conversations": [item_spec], "serverTime": "int (unix ms)"})
    report = compare(ours(client, "/api/conversations"), shape)
    assert report.additions >= {
        "$.conversations[].model",
        "$.conversations[].cost_usd",
        "$.conversations[].tokens_in",
        "$.conversations[].tokens_out",
    }


# -- the comparison itself can fail -----------------------------------------------------------


def test_the_comparison_catches_missing_and_mistyped_fields(
    contracts: Path, summary: dict[str, Any]
) -> None:
    capture = load(contracts, "account-totals.trimmed-sample.json")
    shape = from_capture(capture, summary[CAPTURED["/api/account-totals"][1]])
    compare(capture, shape)  # nof1 matches itself
    row = capture["accountTotals"][0]
    position = next(iter(row["positions"].values()))

    def fails(mutate: Any) -> str:
        broken = json.loads(json.dumps(capture))
        mutate(broken["accountTotals"][0], next(iter(broken["accountTotals"][0]["positions"])))
        report = Report()
        check(broken, shape, "$", report)
        assert report.errors
        return next(iter(report.errors))

    assert "missing" in fails(lambda r, c: r.pop("cum_pnl_pct"))
    assert "float" in fails(lambda r, c: r.update(since_inception_hourly_marker=1.5))
    assert "string" in fails(lambda r, c: r["positions"][c].update(quantity="1"))
    assert "int" in fails(lambda r, c: r["positions"][c].update(index_col=-1))
    assert "null" in fails(lambda r, c: r["positions"][c].update(risk_usd=None))
    assert "missing" in fails(lambda r, c: r["positions"][c]["exit_plan"].pop("stop_loss"))
    assert position["index_col"] is None
    # index_col may be absent (the null of nof1), an int where nof1 says number may be a float.
    report = Report()
    relaxed = json.loads(json.dumps(capture))
    for r in relaxed["accountTotals"]:
        for p in r["positions"].values():
            p.pop("index_col")
            p["leverage"] = float(p["leverage"])
    check(relaxed, shape, "$", report)
    assert report.errors == {}
