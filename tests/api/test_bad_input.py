"""Bad input gets a clear 4xx, never a 500, and never a file outside the data directory."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from infrastructure.bootstrap import LoadedConfig, build_readers, load_config
from infrastructure.views.jsonfile import Namespaces
from infrastructure.views.readers import ViewReaders, is_view_file, views_root
from interfaces.http.app import create_app
from tests.support.arena import DEFAULT_CONFIG

SENTINEL = "SENTINEL-OUTSIDE-THE-VIEWS-7f3a9c"
#: What leaks would look like: /etc/passwd, and sentinel files planted outside the views.
LEAK_MARKERS = (SENTINEL, "root:x:0:0", "root:*:0:0")


@pytest.fixture(scope="module")
def planted(arena_config: LoadedConfig) -> list[Path]:
    """Files that look like views but lie outside the views directory of the arena."""
    data = arena_config.data_dir
    paths = [
        data / "analytics.json",
        data / "analytics-ema-cross.json",
        data / "views" / "analytics-ema-cross.json",
        data / "views" / "leaderboard.json",
        data.parent / "analytics-ema-cross.json",
        data.parent / "secret.json",
    ]
    for path in paths:
        path.write_text(f'{{"analytics": [], "leaderboard": [], "note": "{SENTINEL}"}}')
    return paths


def assert_no_leak(text: str) -> None:
    for marker in LEAK_MARKERS:
        assert marker not in text


# -- model ids -----------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["gpt-5", "nobody", "EMA-CROSS", "ema-cross-2", "buynhold_btc"])
def test_unknown_model_id_is_404(client: Any, planted: list[Path], model: str) -> None:
    response = client.get(f"/api/analytics/{model}")
    assert response.status_code == 404
    body = response.json()
    assert body["status_code"] == 404
    assert model in body["detail"]
    assert_no_leak(response.text)


BAD_IDS = [
    "..%2F..%2Fetc%2Fpasswd",
    "..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "..%2Fsecret",
    "../x",
    "../../secret",
    "..",
    "%2e%2e",
    "%2e%2e%2f%2e%2e%2fsecret",
    ".hidden",
    "a" * 200,
    "a/b",
    "a%2Fb",
    "a%5Cb",
    "..%5C..%5Csecret",
    "analytics.json",
    "analytics",
    "a..b",
    "a%20b",
    "%20",
    "a%00b",
    "模型",
    "ema-cross%0A",
    "é",
]


@pytest.mark.parametrize("model", BAD_IDS)
def test_path_like_or_malformed_id_is_a_4xx_and_leaks_nothing(
    client: Any, planted: list[Path], model: str
) -> None:
    response = client.get(f"/api/analytics/{model}")
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:200])
    assert response.status_code != 500
    assert_no_leak(response.text)
    assert "analytics" not in response.json() or response.json()["analytics"] == []


@pytest.mark.parametrize(
    ("model", "status"),
    [("a" * 200, 400), ("a" * 65, 400), ("a%20b", 400), ("模型", 400), ("%2e%2e", 400)],
)
def test_malformed_id_is_400_with_a_clear_message(client: Any, model: str, status: int) -> None:
    response = client.get(f"/api/analytics/{model}")
    assert response.status_code == status
    assert "model id" in response.json()["detail"]


def test_longest_allowed_id_is_a_404_not_a_400(client: Any) -> None:
    response = client.get(f"/api/analytics/{'a' * 64}")
    assert response.status_code == 404


# -- query values --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/api/account-totals?lastHourlyMarker=abc",
        "/api/account-totals?lastHourlyMarker=-1",
        "/api/account-totals?lastHourlyMarker=1e9999",
        "/api/account-totals?lastHourlyMarker=1.5",
        "/api/account-totals?lastHourlyMarker=" + "9" * 5000,
        "/api/account-totals?lastHourlyMarker=0x10",
        "/api/account-totals?lastHourlyMarker=nan",
        "/api/account-totals?lastHourlyMarker=",
        "/api/positions?limit=0",
        "/api/positions?limit=-5",
        "/api/positions?limit=abc",
        "/api/positions?limit=1e9999",
        "/api/positions?limit=100001",
        "/api/positions?limit=" + "9" * 5000,
    ],
)
def test_bad_query_value_is_400(client: Any, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 400, response.text[:200]
    body = response.json()
    assert body["status_code"] == 400
    assert "Validation failed" in body["detail"]
    assert "Traceback" not in response.text


@pytest.mark.parametrize(
    "url",
    [
        "/api/account-totals?lastHourlyMarker=" + "x" * 60_000,
        "/api/positions?limit=" + "9" * 60_000,
        "/api/positions?limit=abc&" + "&".join(f"junk{i}=" + "y" * 50 for i in range(1000)),
    ],
)
def test_a_huge_bad_query_gets_a_short_error(client: Any, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 400
    assert len(response.content) < 1500, "the echo of the query is bounded"
    body = response.json()
    assert "Validation failed" in body["detail"]
    assert "more characters" in body["detail"]
    assert body["extra"][0]["source"] == "query"


def test_a_marker_beyond_every_row_answers_no_rows(client: Any) -> None:
    response = client.get("/api/account-totals?lastHourlyMarker=99999999999999999999999999")
    assert response.status_code == 200
    assert response.json()["accountTotals"] == []
    assert response.json()["lastHourlyMarkerRead"] == 1


@pytest.mark.parametrize(
    "url",
    [
        "/api/nope",
        "/api/analytics/ema-cross/extra",
        "/api",
        "/api/trades.json",
        "/views/r1/trades.json",
        "/api/../views/CURRENT",
        "/etc/passwd",
    ],
)
def test_unknown_route_is_404(client: Any, planted: list[Path], url: str) -> None:
    response = client.get(url)
    assert response.status_code == 404
    assert_no_leak(response.text)


def test_wrong_method_is_405(client: Any) -> None:
    assert client.post("/api/trades").status_code == 405


# -- ViewReaders.read directly ---------------------------------------------------------------


def make_views(root: Path) -> tuple[Namespaces, Path]:
    """A data dir with one active namespace holding a real leaderboard file."""
    namespaces = Namespaces(views_root(root / "data"))
    directory = namespaces.directory(namespaces.ensure_current())
    (directory / "leaderboard.json").write_bytes(b'{"leaderboard": []}')
    (directory / "analytics-ema-cross.json").write_bytes(b'{"analytics": []}')
    return namespaces, directory


def read(readers: ViewReaders, filename: str) -> bytes | None:
    async def go() -> bytes | None:
        try:
            return await readers.read(filename)
        finally:
            await readers.close()

    return asyncio.run(go())


def test_reader_reads_the_known_view_files(tmp_path: Path) -> None:
    namespaces, _ = make_views(tmp_path)
    readers = ViewReaders(namespaces)
    assert read(readers, "leaderboard.json") == b'{"leaderboard": []}'
    assert read(readers, "analytics-ema-cross.json") == b'{"analytics": []}'
    assert read(readers, "trades.json") is None  # a known view, not written yet
    assert readers.last_source == "json"


@pytest.mark.parametrize(
    "filename",
    [
        "CURRENT",
        ".rebuild.lock",
        "secret.json",
        "leaderboard",
        "leaderboard.json.tmp",
        "LEADERBOARD.JSON",
        "analytics-.json",
        "analytics-..json",
        "analytics-a..json",
        "analytics-.hidden.json",
        "analytics-" + "a" * 65 + ".json",
        "",
        ".",
        "..",
    ],
)
def test_reader_rejects_names_outside_the_view_list(tmp_path: Path, filename: str) -> None:
    namespaces, _ = make_views(tmp_path)
    assert not is_view_file(filename)
    with pytest.raises(ValueError, match="is not a view"):
        read(ViewReaders(namespaces), filename)


@pytest.mark.parametrize(
    "filename",
    [
        "../leaderboard.json",
        "r1/leaderboard.json",
        "./leaderboard.json",
        "/etc/passwd",
        "..\\leaderboard.json",
        "analytics-a/b.json",
        "analytics-../../x.json",
        "analytics-a\\b.json",
        "leaderboard.json/",
        "leaderboard.json\x00",
    ],
)
def test_reader_rejects_names_with_separators(tmp_path: Path, filename: str) -> None:
    namespaces, _ = make_views(tmp_path)
    assert not is_view_file(filename)
    with pytest.raises(ValueError, match="is not a view"):
        read(ViewReaders(namespaces), filename)


@pytest.mark.parametrize("filename", ["analytics-x.json\n", "analytics-ema-cross.json\n"])
def test_reader_rejects_a_name_with_a_trailing_newline(tmp_path: Path, filename: str) -> None:
    # Not a view name: only the exact names are readable. (A regex anchored with "$" also
    # matches before a final newline; \Z or fullmatch does not.)
    namespaces, directory = make_views(tmp_path)
    (directory / filename).write_text(SENTINEL)
    with pytest.raises(ValueError, match="is not a view"):
        read(ViewReaders(namespaces), filename)
    assert not is_view_file(filename)


@pytest.mark.parametrize("filename", ["leaderboard.json", "analytics-evil.json", "trades.json"])
def test_reader_does_not_follow_a_symlink_out_of_the_namespace(
    tmp_path: Path, filename: str
) -> None:
    namespaces, directory = make_views(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    target = outside / "secret.json"
    target.write_text(SENTINEL)
    link = directory / filename
    link.unlink(missing_ok=True)
    os.symlink(target, link)

    # Refusing (ValueError) or answering "no such view" (None) are both fine; the content is not.
    outcome: bytes | ValueError | None
    try:
        outcome = read(ViewReaders(namespaces), filename)
    except ValueError as exc:
        outcome = exc
    if isinstance(outcome, ValueError):
        assert "outside the views directory" in str(outcome)
    else:
        assert outcome is None, f"{filename} followed a symlink to {target}: {outcome!r}"


def test_reader_does_not_follow_a_symlink_to_a_sibling_namespace(tmp_path: Path) -> None:
    namespaces, directory = make_views(tmp_path)
    other = namespaces.directory(namespaces.create())
    (other / "trades.json").write_text(SENTINEL)
    os.symlink(other / "trades.json", directory / "trades.json")
    with pytest.raises(ValueError, match="outside the views directory"):
        read(ViewReaders(namespaces), "trades.json")


def test_reader_reads_nothing_without_a_current_namespace(tmp_path: Path) -> None:
    root = tmp_path / "data" / "views"
    (root / "r1").mkdir(parents=True)
    (root / "r1" / "leaderboard.json").write_text(SENTINEL)
    namespaces = Namespaces(root)
    assert read(ViewReaders(namespaces), "leaderboard.json") is None
    # A pointer that is not a namespace name is ignored, not followed.
    (root / "CURRENT").write_text("../../outside")
    assert read(ViewReaders(namespaces), "leaderboard.json") is None
    (root / "CURRENT").write_text("r1")
    assert read(ViewReaders(namespaces), "leaderboard.json") == SENTINEL.encode()


def lenient_client(config: LoadedConfig) -> TestClient[Any]:
    """The real app, returning what a server would send instead of raising its errors."""
    app = create_app(lambda: build_readers(config), metrics=False)
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture
def escaping_views(arena_config: LoadedConfig, tmp_path: Path) -> LoadedConfig:
    """A copy of the arena's views where two view files are symlinks to a file outside."""
    data = tmp_path / "data"
    shutil.copytree(arena_config.data_dir / "views", data / "views")
    current = Namespaces(views_root(data)).current()
    assert current is not None
    secret = tmp_path / "secret.json"
    secret.write_text(f'{{"leaderboard": [], "analytics": [], "note": "{SENTINEL}"}}')
    for name in ("leaderboard.json", "analytics-ema-cross.json"):
        link = data / "views" / current / name
        link.unlink()
        os.symlink(secret, link)
    return load_config(DEFAULT_CONFIG, data_dir=data, env={})


def test_api_does_not_serve_a_view_file_symlinked_out_of_the_data_dir(
    escaping_views: LoadedConfig,
) -> None:
    with lenient_client(escaping_views) as client:
        assert client.get("/api/trades").status_code == 200  # the other views still serve
        for url in ("/api/leaderboard", "/api/analytics/ema-cross"):
            response = client.get(url)
            assert response.status_code != 200, url
            assert_no_leak(response.text)
            assert "Traceback" not in response.text


def test_a_view_file_escaping_the_data_dir_is_refused_with_503(
    escaping_views: LoadedConfig,
) -> None:
    with lenient_client(escaping_views) as client:
        response = client.get("/api/leaderboard")
    assert response.status_code == 503
    assert response.json()["detail"] == "leaderboard.json cannot be read"
    assert SENTINEL not in response.text


class ExplodingReader:
    """A reader failing in a way no route expects (a bug), to exercise the 500 handler."""

    last_source = ""
    redis_configured = False

    async def read(self, filename: str) -> bytes | None:
        raise RuntimeError(f"boom while reading {filename}")

    async def marker(self, filename: str) -> None:
        raise RuntimeError(f"boom while looking at {filename}")

    async def redis_status(self) -> str:
        return "not configured"

    async def close(self) -> None:
        return None


def test_an_unexpected_error_gets_the_json_500_body() -> None:
    app = create_app(ExplodingReader, metrics=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/api/leaderboard")
    assert response.status_code == 500
    content_type = response.headers.get("content-type", "")
    assert content_type.startswith("application/json"), f"500 body {response.text!r}"
    assert response.json() == {"status_code": 500, "detail": "internal error"}
    assert "boom" not in response.text
