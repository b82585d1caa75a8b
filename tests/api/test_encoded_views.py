"""The view routes answer bytes encoded once per change of the view, gzip when asked."""

from __future__ import annotations

import gzip
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from infrastructure import bootstrap
from infrastructure.bootstrap import LoadedConfig
from infrastructure.files import atomic_write
from tests.support.arena import DEFAULT_CONFIG, api_client

PLAIN_ROUTES = (
    "/api/account-totals",
    "/api/analytics",
    "/api/crypto-prices",
    "/api/leaderboard",
    "/api/since-inception-values",
    "/api/trades",
    "/api/positions",
    "/api/conversations",
    "/api/status",
)


def without_server_time(body: dict[str, Any]) -> dict[str, Any]:
    assert type(body.pop("serverTime")) is int
    return body


@pytest.mark.parametrize("route", PLAIN_ROUTES)
def test_a_view_is_decoded_once_while_it_has_not_changed(client: Any, route: str) -> None:
    cache = client.app.state.encoded
    first = client.get(route)
    assert first.status_code == 200
    before = cache.encodes
    times = set()
    for _ in range(5):
        again = client.get(route)
        assert again.status_code == 200
        assert without_server_time(again.json()) == without_server_time(first.json())
        times.add(again.json()["serverTime"])
    assert cache.encodes == before  # no decode, no encode: the kept bytes went out
    assert max(times) >= first.json()["serverTime"]  # serverTime is still fresh each time


@pytest.mark.parametrize("route", ["/api/trades", "/api/account-totals", "/api/analytics"])
def test_a_large_view_goes_gzipped_to_a_client_that_takes_gzip(client: Any, route: str) -> None:
    plain = client.get(route, headers={"Accept-Encoding": "identity"})
    packed = client.get(route, headers={"Accept-Encoding": "gzip"})
    assert plain.status_code == packed.status_code == 200
    assert "content-encoding" not in plain.headers
    assert packed.headers["content-encoding"] == "gzip"
    assert packed.headers["vary"] == "accept-encoding"
    assert int(packed.headers["content-length"]) < int(plain.headers["content-length"])
    # httpx inflates it; what arrives is the same document.
    assert without_server_time(packed.json()) == without_server_time(plain.json())
    # The two representations have their own tags, and either one answers 304.
    assert packed.headers["etag"] != plain.headers["etag"]
    for tag in (packed.headers["etag"], plain.headers["etag"]):
        again = client.get(route, headers={"If-None-Match": tag, "Accept-Encoding": "gzip"})
        assert again.status_code == 304
        assert again.headers["etag"] == packed.headers["etag"]


def test_a_small_view_goes_as_it_is(client: Any) -> None:
    response = client.get("/api/crypto-prices", headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert len(response.content) < 1024
    assert "content-encoding" not in response.headers


def test_the_gzip_body_is_a_plain_gzip_file(client: Any) -> None:
    # Read the raw bytes as sent (no client-side inflating), as curl --compressed would.
    with client.stream("GET", "/api/trades", headers={"Accept-Encoding": "gzip"}) as response:
        raw = b"".join(response.iter_raw())
    document = msgspec.json.decode(gzip.decompress(raw))
    assert isinstance(document["trades"], list)


# -- a view that changes ----------------------------------------------------------------------


@pytest.fixture
def own_views(tmp_path: Path) -> Iterator[tuple[Path, Any]]:
    config: LoadedConfig = bootstrap.load_config(DEFAULT_CONFIG, data_dir=tmp_path / "data", env={})
    namespaces = bootstrap.namespaces(config)
    directory = namespaces.directory(namespaces.ensure_current())
    with api_client(config) as test_client:
        yield directory, test_client


def leaderboard(equity: float) -> bytes:
    row = {
        "id": "a",
        "num_trades": 1,
        "sharpe": 0.1,
        "win_dollars": 1.0,
        "num_losses": 0,
        "lose_dollars": 0.0,
        "return_pct": 0.0,
        "equity": equity,
        "num_wins": 1,
    }
    return msgspec.json.encode({"leaderboard": [row]})


def settle(path: Path, seconds_ago: float) -> None:
    """Date the file back, as a view written a while ago is."""
    past = time.time() - seconds_ago
    os.utime(path, (past, past))


@pytest.mark.parametrize("settled", [False, True], ids=["just-written", "settled"])
def test_a_changed_view_is_served_at_once(own_views: tuple[Path, Any], settled: bool) -> None:
    directory, client = own_views
    path = directory / "leaderboard.json"
    atomic_write(path, leaderboard(1000.0))
    if settled:
        settle(path, 60)
    first = client.get("/api/leaderboard")
    assert first.json()["leaderboard"][0]["equity"] == 1000.0
    # The same size, written within the same second: only the content tells them apart.
    atomic_write(path, leaderboard(2000.0))
    if settled:
        settle(path, 30)
    second = client.get("/api/leaderboard")
    assert second.json()["leaderboard"][0]["equity"] == 2000.0
    assert second.headers["etag"] != first.headers["etag"]
    assert (
        client.get("/api/leaderboard", headers={"If-None-Match": first.headers["etag"]}).status_code
        == 200
    )


def test_a_view_that_turns_corrupt_is_a_503_not_the_old_document(
    own_views: tuple[Path, Any],
) -> None:
    directory, client = own_views
    path = directory / "leaderboard.json"
    atomic_write(path, leaderboard(1000.0))
    assert client.get("/api/leaderboard").status_code == 200
    atomic_write(path, b'{"leaderboard": [')
    response = client.get("/api/leaderboard")
    assert response.status_code == 503
    assert response.json()["detail"].startswith("leaderboard.json could not be read")


def test_a_rebuild_flipping_the_namespace_is_served_at_once(
    own_views: tuple[Path, Any], tmp_path: Path
) -> None:
    directory, client = own_views
    atomic_write(directory / "leaderboard.json", leaderboard(1000.0))
    settle(directory / "leaderboard.json", 60)
    assert client.get("/api/leaderboard").json()["leaderboard"][0]["equity"] == 1000.0
    namespaces = bootstrap.namespaces(
        bootstrap.load_config(DEFAULT_CONFIG, data_dir=tmp_path / "data", env={})
    )
    fresh = namespaces.create()
    atomic_write(namespaces.directory(fresh) / "leaderboard.json", leaderboard(3000.0))
    settle(namespaces.directory(fresh) / "leaderboard.json", 60)
    namespaces.flip(fresh)
    assert client.get("/api/leaderboard").json()["leaderboard"][0]["equity"] == 3000.0
