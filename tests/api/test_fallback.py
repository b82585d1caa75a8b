"""Redis down: the JSON files serve. No views yet: a clear 503, not a 500."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from infrastructure import bootstrap
from infrastructure.bootstrap import LoadedConfig
from infrastructure.views.readers import ViewReaders
from interfaces.http.app import create_app
from tests.support.arena import DEFAULT_CONFIG, api_client

ROUTES = (
    "/api/account-totals",
    "/api/account-totals?lastHourlyMarker=1",
    "/api/analytics",
    "/api/analytics/ema-cross",
    "/api/analytics/btc-hold",
    "/api/crypto-prices",
    "/api/leaderboard",
    "/api/since-inception-values",
    "/api/trades",
    "/api/positions",
    "/api/positions?limit=2",
    "/api/conversations",
)
VIEW_FILE = {
    "/api/account-totals": "account-totals.json",
    "/api/analytics": "analytics.json",
    "/api/analytics/ema-cross": "analytics.json",
    "/api/crypto-prices": "crypto-prices.json",
    "/api/leaderboard": "leaderboard.json",
    "/api/since-inception-values": "since-inception-values.json",
    "/api/trades": "trades.json",
    "/api/positions": "positions.json",
    "/api/conversations": "conversations.json",
}


def closed_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def without_server_time(body: dict[str, Any]) -> dict[str, Any]:
    assert type(body.pop("serverTime")) is int
    return body


@pytest.fixture(scope="module")
def redis_down_client(arena_config: LoadedConfig) -> Iterator[Any]:
    """The real app over readers whose Redis URL points at a closed port."""
    url = f"redis://127.0.0.1:{closed_port()}/0"

    def readers() -> ViewReaders:
        return ViewReaders(
            bootstrap.namespaces(arena_config),
            redis_url=url,
            keys=bootstrap.redis_keys(arena_config),
            timeout_s=0.5,
        )

    with TestClient(create_app(readers, metrics=False)) as client:
        yield client


@pytest.mark.parametrize("url", ROUTES)
def test_redis_down_serves_the_json_files(redis_down_client: Any, client: Any, url: str) -> None:
    started = time.monotonic()
    response = redis_down_client.get(url)
    assert time.monotonic() - started < 5
    assert response.status_code == 200, response.text[:300]
    reference = client.get(url)
    assert reference.status_code == 200
    assert without_server_time(response.json()) == without_server_time(reference.json())


def test_redis_down_healthz_reports_it(redis_down_client: Any) -> None:
    response = redis_down_client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["redis"].startswith("down"), body
    assert body["views"] == "ok (json)"


def test_redis_down_configured_through_the_config(arena_config: LoadedConfig) -> None:
    # The same, wired by bootstrap from ``Cache__0__Host`` as the deployed API is.
    env = {"Cache__0__Host": f"127.0.0.1:{closed_port()}"}
    config = bootstrap.load_config(DEFAULT_CONFIG, data_dir=arena_config.data_dir, env=env)
    assert bootstrap.redis_node(config) is not None
    with api_client(config) as client:
        board = client.get("/api/leaderboard")
        assert board.status_code == 200
        assert len(board.json()["leaderboard"]) == 3
        health = client.get("/healthz").json()
    assert health["redis"].startswith("down"), health
    assert health["views"] == "ok (json)"


# -- before any view exists -------------------------------------------------------------------


def empty_config(data_dir: Path) -> LoadedConfig:
    return bootstrap.load_config(DEFAULT_CONFIG, data_dir=data_dir, env={})


@pytest.fixture
def empty_client(tmp_path: Path) -> Iterator[Any]:
    data = tmp_path / "data"
    data.mkdir()
    with api_client(empty_config(data)) as client:
        yield client
    assert sorted(p.name for p in data.iterdir()) == [], "the API wrote into the data dir"


@pytest.mark.parametrize("url", list(VIEW_FILE))
def test_no_views_yet_is_a_clear_503(empty_client: Any, url: str) -> None:
    response = empty_client.get(url)
    assert response.status_code == 503, response.text[:300]
    body = response.json()
    assert body["status_code"] == 503
    assert body["detail"] == (
        f"{VIEW_FILE[url]} has not been written yet; the views are catching up"
    )


def test_no_views_yet_healthz_says_missing(empty_client: Any) -> None:
    response = empty_client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["views"] == "missing"


def test_no_views_yet_bad_input_is_still_4xx(empty_client: Any) -> None:
    assert empty_client.get("/api/analytics/a%20b").status_code == 400
    assert empty_client.get("/api/positions?limit=0").status_code == 400
    assert empty_client.get("/api/nope").status_code == 404


@pytest.mark.parametrize("url", ["/api/leaderboard", "/api/trades", "/api/analytics/ema-cross"])
def test_an_empty_namespace_is_a_clear_503(tmp_path: Path, url: str) -> None:
    config = empty_config(tmp_path / "data")
    bootstrap.namespaces(config).ensure_current()  # CURRENT -> r1, with no files in it
    with api_client(config) as client:
        response = client.get(url)
    assert response.status_code == 503
    assert "has not been written yet" in response.json()["detail"]


def test_a_corrupt_view_file_is_a_503_not_a_500(tmp_path: Path) -> None:
    config = empty_config(tmp_path / "data")
    namespaces = bootstrap.namespaces(config)
    directory = namespaces.directory(namespaces.ensure_current())
    (directory / "trades.json").write_bytes(b'{"trades": [')
    with api_client(config) as client:
        response = client.get("/api/trades")
    assert response.status_code == 503
    assert response.json()["detail"].startswith("trades.json could not be read")
