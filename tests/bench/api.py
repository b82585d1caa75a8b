"""The query API against a static file server: ``python -m tests.bench.api [--seconds S]``.

Both serve the same two view files (nof1's real leaderboard, ~1.5 kB, and trades, ~270 kB,
from ``shared/contracts``): ours through ``nof0 serve`` (the production setting: one worker
per core), nginx from the files, with as many workers. ``wrk`` drives both the same way:

* the most each answers (one wrk thread, 32 keep-alive connections);
* the latency at a fixed 1,000 requests/s (10 connections, each pausing 10 ms between
  requests: wrk's ``delay()``), p50 and p99.

nginx and wrk come from the machine's package manager: ``nox -s bench`` installs them
when it runs as root with apt; otherwise each missing part is skipped with the reason.
Client and servers share the machine's cores, the same for both.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.conftest import REPO

CAPTURES = REPO.parent / "shared" / "contracts" / "nof1-api"
ROUTES = {"/api/leaderboard": "leaderboard.json", "/api/trades": "trades.json"}
FIXED_RATE = 1000
RATE_CONNECTIONS = 10
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def wait_until_up(port: int, path: str, deadline_s: float = 60) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(
                    f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
                )
                if sock.recv(16).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"nothing answered 200 on port {port} {path} within {deadline_s} s")


def views(directory: Path) -> Path:
    """A data directory whose views are nof1's captured documents (trades get our one
    extra required field, ``close_reason``)."""
    namespace = directory / "views" / "r1"
    namespace.mkdir(parents=True)
    (directory / "views" / "CURRENT").write_text("r1")
    shutil.copy(CAPTURES / "leaderboard.json", namespace / "leaderboard.json")
    trades = json.loads((CAPTURES / "trades.json").read_text())
    for trade in trades["trades"]:
        trade.setdefault("close_reason", "signal")
    (namespace / "trades.json").write_text(json.dumps(trades, indent=2))
    return namespace


@contextmanager
def ours(data_dir: Path, port: int, workers: int, log: Path) -> Iterator[None]:
    command = [
        sys.executable,
        "-m",
        "interfaces.cli",
        "serve",
        "--data-dir",
        str(data_dir),
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until_up(port, "/api/leaderboard")
        yield
    finally:
        process.terminate()
        process.wait(timeout=30)


NGINX_CONF = """
{user}
worker_processes {workers};
pid {root}/nginx.pid;
error_log {root}/error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  sendfile on; tcp_nopush on; tcp_nodelay on;
  keepalive_requests 1000000;
  client_body_temp_path {root}/body; proxy_temp_path {root}/proxy;
  fastcgi_temp_path {root}/fastcgi; uwsgi_temp_path {root}/uwsgi; scgi_temp_path {root}/scgi;
  server {{
    listen 127.0.0.1:{port};
    default_type application/json;
{locations}
  }}
}}
"""


@contextmanager
def nginx(binary: str, files: Path, port: int, workers: int, root: Path) -> Iterator[None]:
    locations = "\n".join(
        f"    location = {route} {{ alias {files / name}; }}" for route, name in ROUTES.items()
    )
    root.mkdir()
    conf = root / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            user="user root;" if os.geteuid() == 0 else "",  # the files are in a 0700 temp dir
            workers=workers,
            root=root,
            port=port,
            locations=locations,
        )
    )
    process = subprocess.Popen(
        [binary, "-p", str(root), "-c", str(conf), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until_up(port, "/api/leaderboard", deadline_s=15)
        yield
    finally:
        process.terminate()
        process.wait(timeout=30)


def wrk(binary: str, url: str, seconds: float, script: Path | None = None) -> dict[str, float]:
    connections = RATE_CONNECTIONS if script else 32
    command = [binary, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency"]
    if script is not None:
        command += ["-s", str(script)]
    output = subprocess.run(
        [*command, url], capture_output=True, text=True, check=True, timeout=seconds + 60
    ).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if rate is None or "Non-2xx" in output or "Socket errors" in output:
        raise RuntimeError(f"wrk on {url} failed:\n{output}")
    latency = {
        q: float(value) * UNITS[unit]
        for q, value, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)$", output, re.M)
    }
    return {
        "requests_per_s": round(float(rate.group(1))),
        "p50_ms": round(latency["50"], 3),
        "p99_ms": round(latency["99"], 3),
    }


def measure(binary: str, port: int, seconds: float, paced: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for route in ROUTES:
        url = f"http://127.0.0.1:{port}{route}"
        wrk(binary, url, 1)  # warm: the first answers encode the views, pages are cached
        results[route] = {
            "most": wrk(binary, url, seconds),
            f"at_{FIXED_RATE}": wrk(binary, url, seconds, paced),
        }
    return results


def run(seconds: float = 5.0, workers: int | None = None) -> dict[str, Any]:
    from interfaces.serve import default_workers

    if not CAPTURES.is_dir():
        return {"skipped": f"{CAPTURES} is missing (the shared contracts are not beside us)"}
    wrk_binary = shutil.which("wrk")
    if wrk_binary is None:
        return {"skipped": "wrk is not installed (apt-get install wrk; nox -s bench does)"}
    workers = workers or default_workers()
    results: dict[str, Any] = {"workers": workers}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        files = views(data)
        results["body_bytes"] = {r: (files / n).stat().st_size for r, n in ROUTES.items()}
        paced = Path(tmp) / "paced.lua"
        paced.write_text(f"function delay() return {RATE_CONNECTIONS * 1000 // FIXED_RATE} end\n")
        port = free_port()
        with ours(data, port, workers, Path(tmp) / "serve.log"):
            results["nof0"] = measure(wrk_binary, port, seconds, paced)
        nginx_binary = shutil.which("nginx") or (
            "/usr/sbin/nginx" if Path("/usr/sbin/nginx").is_file() else None
        )
        if nginx_binary is None:
            results["nginx"] = {"skipped": "nginx is not installed (apt-get install nginx-light)"}
            return results
        port = free_port()
        with nginx(nginx_binary, files, port, workers, Path(tmp) / "nginx"):
            results["nginx"] = measure(wrk_binary, port, seconds, paced)
    results["ratio"] = {
        route: round(
            results["nof0"][route]["most"]["requests_per_s"]
            / results["nginx"][route]["most"]["requests_per_s"],
            3,
        )
        for route in ROUTES
    }
    return results


def report(results: dict[str, Any]) -> None:
    print("\nquery API vs nginx on the same view files (wrk: 1 thread, keep-alive)")
    if "skipped" in results:
        print(f"  skipped: {results['skipped']}")
        return
    print(f"  {results['workers']} workers each (nof0 serve; nginx worker_processes)")
    for route, size in results["body_bytes"].items():
        line = f"  {route:<17} {size:>8,} B"
        for server in ("nof0", "nginx"):
            row = results[server]
            if "skipped" in row:
                line += f"   {server}: skipped ({row['skipped']})"
                continue
            most, paced = row[route]["most"], row[route][f"at_{FIXED_RATE}"]
            line += (
                f"   {server} {most['requests_per_s']:>7,} req/s "
                f"(at {paced['requests_per_s']:,}/s p50 {paced['p50_ms']:.2f} ms "
                f"p99 {paced['p99_ms']:.2f} ms)"
            )
        if "ratio" in results:
            line += f"   ratio {results['ratio'][route]:.2f}x"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    results = run(args.seconds, args.workers)
    report(results)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
