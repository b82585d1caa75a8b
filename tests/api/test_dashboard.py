"""The dashboard as create_app serves it (no browser), and conditional GET on the views."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from interfaces.http.conditional import entity_tag, matches
from interfaces.http.dashboard import STATIC

ASSETS = {
    "app.js": "text/javascript",
    "app.css": "text/css",
}


def test_the_page_is_served_at_the_root_as_html(client: Any) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "<title>nof0 arena</title>" in response.text
    for name in ASSETS:
        assert f'"/assets/{name}"' in response.text


@pytest.mark.parametrize(("name", "kind"), sorted(ASSETS.items()))
def test_each_asset_is_served_with_its_content_type(client: Any, name: str, kind: str) -> None:
    response = client.get(f"/assets/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == kind
    assert response.content == (STATIC / name).read_bytes()


def test_an_unknown_asset_is_404_and_nothing_outside_static_is_served(client: Any) -> None:
    assert client.get("/assets/nope.js").status_code == 404
    assert client.get("/assets/../dashboard.py").status_code == 404
    assert client.get("/assets/%2e%2e/dashboard.py").status_code == 404


def test_the_page_needs_no_network_beyond_this_server() -> None:
    """No CDN, no font or script from elsewhere: every URL in the assets is local."""
    for path in Path(STATIC).iterdir():
        text = path.read_text()
        urls = set(re.findall(r"https?://[^\s\"'`)]+", text))
        assert urls <= {"http://www.w3.org/2000/svg"}, (path.name, urls)


def test_every_asset_the_page_names_exists() -> None:
    html = (STATIC / "index.html").read_text()
    named = re.findall(r'(?:src|href)="/assets/([^"]+)"', html)
    assert named
    for name in named:
        assert (STATIC / name).is_file(), name


def test_the_page_reads_only_existing_api_routes(client: Any) -> None:
    script = (STATIC / "app.js").read_text()
    block = re.search(r"const ROUTES = \[(.*?)\];", script, re.S)
    assert block is not None
    routes = re.findall(r'"([a-z-]+)"', block.group(1))
    assert len(routes) >= 8
    for route in routes:
        assert client.get(f"/api/{route}").status_code == 200, route


def test_the_dashboard_is_not_in_the_openapi_document(client: Any) -> None:
    paths = client.get("/schema/openapi.json").json()["paths"]
    assert "/" not in paths
    assert not any(path.startswith("/assets") for path in paths)


# -- ETag / If-None-Match -----------------------------------------------------------------


@pytest.mark.parametrize("route", ["/api/leaderboard", "/api/account-totals", "/api/status"])
def test_a_view_route_answers_304_while_the_view_has_not_moved(client: Any, route: str) -> None:
    first = client.get(route)
    tag = first.headers["etag"]
    assert re.fullmatch(r'"[0-9a-f]{24}(-gzip)?"', tag)  # the gzip form has its own tag
    assert first.headers["cache-control"] == "no-cache"
    again = client.get(route)
    assert again.headers["etag"] == tag  # serverTime differs, the tag does not
    unchanged = client.get(route, headers={"If-None-Match": tag})
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged.headers["etag"] == tag
    other = client.get(route, headers={"If-None-Match": '"0000"'})
    assert other.status_code == 200
    assert other.json()["serverTime"] > 0


def test_errors_carry_no_etag(client: Any) -> None:
    response = client.get("/api/analytics/nobody")
    assert response.status_code == 404
    assert "etag" not in response.headers


def test_the_tag_ignores_server_time_only() -> None:
    a = b'{"leaderboard":[{"equity":1.5}],"serverTime":1700000000000}'
    b = b'{"leaderboard":[{"equity":1.5}],"serverTime":1700000009999}'
    c = b'{"leaderboard":[{"equity":1.6}],"serverTime":1700000000000}'
    assert entity_tag(a) == entity_tag(b)
    assert entity_tag(a) != entity_tag(c)
    # A string that merely mentions serverTime is escaped by the encoder and stays hashed.
    d = b'{"note":"\\"serverTime\\":1","serverTime":1}'
    e = b'{"note":"\\"serverTime\\":2","serverTime":1}'
    assert entity_tag(d) != entity_tag(e)


@pytest.mark.parametrize(
    ("header", "expected"),
    [('"abc"', True), ('W/"abc"', True), ('"x", "abc"', True), ("*", True), ('"abd"', False)],
)
def test_if_none_match_lists(header: str, expected: bool) -> None:
    assert matches(header, '"abc"') is expected


# -- the risk desk's refusals per cycle (for the model chat) ------------------------------


def test_status_lists_the_recent_risk_refusals_with_their_cycle(client: Any) -> None:
    from projections.status import RISK_REFUSALS_KEPT

    traders = client.get("/api/status").json()["traders"]
    talks = client.get("/api/conversations").json()["conversations"]
    assert any(t["risk_rejections"] for t in traders), "the shipped arena has refusals"
    matched = 0
    for trader in traders:
        refusals = trader["recent_risk_rejections"]
        assert len(refusals) == min(trader["risk_rejections"], RISK_REFUSALS_KEPT)
        if not refusals:
            continue
        cycles = [r["cycle"] for r in refusals]
        assert cycles == sorted(cycles)
        assert cycles[0] >= 1
        assert cycles[-1] <= trader["cycles"]
        last, newest = refusals[-1], trader["last_risk_rejection"]
        assert (last["rule"], last["time"]) == (newest["reason"], newest["time"])
        assert newest["detail"] == f"{last['coin']} {last['signal']}: {last['detail']}"
        chatted = {c["cycle_id"] for c in talks if c["model_id"] == trader["model_id"]}
        matched += len(chatted & set(cycles))
    assert matched > 0, "a refusal's cycle is one the model chat shows"
