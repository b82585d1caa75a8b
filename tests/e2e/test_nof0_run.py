"""``nof0 run`` as a user runs it: a real process, a real port, Ctrl-C, a restart, a rebuild.

The issue's acceptance checks: within 60 s the leaderboard lists at least three traders
and one has trades; all nine routes answer 200; a restart keeps counting from where it
was; ``nof0 projections rebuild`` gives the same view contents apart from serverTime.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import POSTGRES_DSN, REDIS_URL, REPO
from tests.support.arena import ROUTES

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def get(port: int, route: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{route}", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, None
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, None


def nof0(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "interfaces.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@contextmanager
def running(
    data: Path, port: int, env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[str]]:
    with log.open("a") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "interfaces.cli",
                "run",
                "--port",
                str(port),
                "--data-dir",
                str(data),
            ],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)


def stop(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGINT)  # Ctrl-C
    return process.wait(timeout=30)


def wait_for_trades(port: int, deadline_s: float) -> dict[str, Any]:
    started = time.monotonic()
    while time.monotonic() - started < deadline_s:
        status, body = get(port, "/api/leaderboard")
        board = body["leaderboard"] if status == 200 else []
        if len(board) >= 3 and any(entry["num_trades"] > 0 for entry in board):
            return {"elapsed": time.monotonic() - started, "board": board}
        time.sleep(0.5)
    raise AssertionError(f"no trades within {deadline_s} s")


def snapshot(port: int) -> dict[str, Any]:
    result = {}
    for route in ROUTES:
        status, body = get(port, route)
        assert status == 200, route
        assert isinstance(body["serverTime"], int)
        body.pop("serverTime")
        result[route.removeprefix("/api/")] = body
    return result


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("Postgres__", "Cache__"))}
    env.update(extra)
    return env


def run_scenario(tmp_path: Path, env: dict[str, str]) -> None:
    data = tmp_path / "data"
    log = tmp_path / "nof0.log"
    port = free_port()
    started = time.monotonic()
    with running(data, port, env, log) as process:
        result = wait_for_trades(port, deadline_s=60 - (time.monotonic() - started) + 5)
        assert time.monotonic() - started < 60, "the leaderboard took longer than 60 s"
        assert {e["id"] for e in result["board"]} >= {"ema-cross", "random-walk", "btc-hold"}
        for route in ROUTES:
            assert get(port, route)[0] == 200, route
        assert get(port, "/healthz")[0] == 200
        assert stop(process) == 0
    text = log.read_text()
    assert "stopped cleanly" in text, text[-2000:]
    assert "Traceback" not in text, text

    # Stop and start again: the counts keep growing from where they were.
    port = free_port()
    with running(data, port, env, log) as process:
        time.sleep(2)
        status, body = get(port, "/api/since-inception-values")
        deadline = time.monotonic() + 20
        while status != 200 and time.monotonic() < deadline:
            time.sleep(0.5)
            status, body = get(port, "/api/since-inception-values")
        first = {v["model_id"]: v["num_invocations"] for v in body["sinceInceptionValues"]}
        trades_first = {t["id"] for t in get(port, "/api/trades")[1]["trades"]}
        time.sleep(12)
        _, body = get(port, "/api/since-inception-values")
        later = {v["model_id"]: v["num_invocations"] for v in body["sinceInceptionValues"]}
        trades_later = {t["id"] for t in get(port, "/api/trades")[1]["trades"]}
        assert later["ema-cross"] > first["ema-cross"] > 0
        assert trades_first <= trades_later
        assert stop(process) == 0
    assert "resuming the replay clock" in log.read_text()

    # With the engine stopped, a rebuild gives the same views (apart from serverTime).
    status = nof0("projections", "status", "--data-dir", str(data), env=env)
    assert status.returncode == 0, status.stderr
    assert "portfolio_v1" in status.stdout
    views = data / "views"
    written = (views / "CURRENT").read_text().strip()
    before = {p.name: _without_view(p) for p in (views / written).glob("*.json")}
    rebuilt = nof0("projections", "rebuild", "--data-dir", str(data), env=env)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "readers switched" in rebuilt.stdout
    fresh = (views / "CURRENT").read_text().strip()
    assert fresh != written
    assert not (views / written).exists()  # the old namespace is gone after the flip
    after = {p.name: _without_view(p) for p in (views / fresh).glob("*.json")}
    assert len(before) >= 9
    assert before == after


def _without_view(path: Path) -> Any:
    document = json.loads(path.read_text())
    document.pop("_view", None)
    return document


def test_nof0_run_offline(tmp_path: Path) -> None:
    run_scenario(tmp_path, environment())


@pytest.mark.postgres
@pytest.mark.redis
def test_nof0_run_on_postgres_and_redis(tmp_path: Path) -> None:
    import uuid

    import psycopg
    import redis

    schema = f"e2e_{uuid.uuid4().hex[:10]}"
    etc = tmp_path / "etc"
    import shutil

    shutil.copytree(REPO / "etc", etc, ignore=shutil.ignore_patterns("paper-live"))
    shutil.copytree(REPO / "prompts", tmp_path / "prompts")
    main = (etc / "nof0.yaml").read_text()
    main = main.replace("Name: nof0", f"Name: {schema}")
    main = main.replace("  MaxLifetime: 5m", f"  MaxLifetime: 5m\n  Schema: {schema}")
    (etc / "nof0.yaml").write_text(main)
    env = environment(
        Postgres__DataSource=POSTGRES_DSN,
        Cache__0__Host=REDIS_URL,
        NOF0_CONFIG=str(etc / "nof0.yaml"),
    )
    try:
        run_scenario(tmp_path, env)
        with psycopg.connect(POSTGRES_DSN) as conn:
            count = conn.execute(f'SELECT count(*) FROM "{schema}".nof0_events').fetchone()
        assert count is not None
        assert count[0] > 0
    finally:
        with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        client = redis.Redis.from_url(f"redis://{REDIS_URL}/0")
        for key in client.scan_iter(match=f"nof0:{schema}:*"):
            client.delete(key)
        client.close()
