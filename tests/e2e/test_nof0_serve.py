"""``nof0 serve``: the query API alone, in worker processes, over an arena's views."""

from __future__ import annotations

import asyncio
import gzip
import http.client
import json
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from interfaces.serve import no_delay
from tests.e2e.test_nof0_run import environment, free_port
from tests.support.arena import REPO, ROUTES, OfflineArena, api_client


def request(port: int, route: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", route, headers=headers)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def without_server_time(body: bytes) -> Any:
    document = json.loads(body)
    assert type(document.pop("serverTime")) is int
    return document


def wait_until_up(port: int, process: subprocess.Popen[str]) -> None:
    for _ in range(200):
        if process.poll() is not None:
            raise AssertionError(f"nof0 serve exited with {process.returncode}")
        try:
            if request(port, "/healthz")[0] == 200:
                return
        except OSError:
            pass
        asyncio.run(asyncio.sleep(0.2))
    raise AssertionError("nof0 serve did not answer within 40 s")


@pytest.fixture(scope="module")
def arena(tmp_path_factory: pytest.TempPathFactory) -> OfflineArena:
    arena = OfflineArena.open(tmp_path_factory.mktemp("serve") / "data")
    arena.run_sync(minutes=90)
    return arena


def test_serve_answers_what_the_engine_api_answers_from_two_workers(
    arena: OfflineArena, tmp_path: Path
) -> None:
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "interfaces.cli",
            "serve",
            "--data-dir",
            str(arena.config.data_dir),
            "--port",
            str(port),
            "--workers",
            "2",
        ],
        cwd=REPO,
        env=environment(),
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until_up(port, process)
        with api_client(arena.config) as reference:
            for route in ROUTES:
                status, _, body = request(port, route)
                assert status == 200, (route, body[:200])
                expected = reference.get(route, headers={"Accept-Encoding": "identity"})
                assert without_server_time(body) == without_server_time(expected.content), route
        status, headers, packed = request(
            port, "/api/account-totals", **{"Accept-Encoding": "gzip"}
        )
        assert status == 200
        assert headers["content-encoding"] == "gzip"
        assert isinstance(json.loads(gzip.decompress(packed))["accountTotals"], list)
        status, _, body = request(port, "/api/account-totals", **{"If-None-Match": headers["etag"]})
        assert (status, body) == (304, b"")
        # Control stays with the engine: these workers say so, they do not act.
        control = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        control.request(
            "POST", "/api/control/kill", body=b"{}", headers={"Authorization": "Bearer x"}
        )
        assert control.getresponse().status in {403, 404, 503}
        control.close()
        assert request(port, "/api/nope")[0] == 404
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C
        code = process.wait(timeout=30)
        log.close()
    assert code == 0, (tmp_path / "serve.log").read_text()


def test_serve_refuses_a_bad_worker_count(arena: OfflineArena) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "interfaces.cli",
            "serve",
            "--data-dir",
            str(arena.config.data_dir),
            "--workers",
            "0",
        ],
        cwd=REPO,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--workers must be at least 1, not 0" in result.stderr
    assert "Traceback" not in result.stderr


def test_accepted_connections_get_nagle_turned_off() -> None:
    # uvicorn hands its workers a listening socket made with proto 0; asyncio then leaves
    # Nagle on, and each keep-alive answer's body waits for the client's delayed ACK.
    async def accepted_no_delay(fix: bool) -> int:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # proto 0, as uvicorn's
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                if fix:
                    no_delay(transport)
                sock = transport.get_extra_info("socket")
                seen.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        server = await asyncio.get_running_loop().create_server(Probe, sock=listener)
        port = listener.getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        value = await asyncio.wait_for(seen, 5)
        writer.close()
        server.close()
        return value

    assert asyncio.run(accepted_no_delay(fix=True)) != 0
