"""Benchmark of the simulator's HTTP server: ``python -m tests.bench.sim_server [--seconds S]``.

Requests per second through keep-alive ``requests.Session`` clients against a server started
in this process (clients and server share the interpreter, as they would not in production):

* ``/info allMids`` (the lightest request);
* signed ``/exchange`` orders (small IOC orders alternating buy/sell, filled against the
  synthetic book). The bodies are signed before the clock starts, so the figure is the
  server's: parsing, signature recovery (libsecp256k1 through coincurve), nonce
  check and matching.

Each with one client and with four client threads. The weight budget is lifted for the run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import requests
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_keys.backends import get_backend

from infrastructure.simulator.config import SimConfig
from infrastructure.simulator.engine import SimVenue
from infrastructure.simulator.gateway import SimGateway
from infrastructure.simulator.server import SimServer
from tests.support.sim_server import MIDS, l1_body, order_action, wall_ms

THREADS = 4
#: Bodies signed in advance per client and second of run: enough for libsecp256k1 speed
#: (pure-Python signing of that many would take minutes, so fewer under its backend).
ORDERS_PER_SECOND_GUESS = 2500 if "CoinCurve" in type(get_backend()).__name__ else 250


def _rate(url: str, path: str, bodies: list[list[Any]], seconds: float) -> tuple[float, int, int]:
    """(requests/s, requests, failures) with one thread per body list."""
    counts = [0] * len(bodies)
    failures = [0] * len(bodies)
    start = threading.Barrier(len(bodies) + 1)
    deadline: list[float] = []

    def client(index: int) -> None:
        with requests.Session() as session:
            start.wait()
            for body in bodies[index]:
                if time.perf_counter() >= deadline[0]:
                    break
                response = session.post(url + path, json=body, timeout=30)
                ok = response.status_code == 200 and not (
                    path == "/exchange" and response.json().get("status") != "ok"
                )
                counts[index] += 1
                failures[index] += not ok

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    deadline.append(began + seconds)
    start.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    return sum(counts) / elapsed, sum(counts), sum(failures)


def _orders(wallet: LocalAccount, count: int, first_nonce: int) -> list[Any]:
    return [
        l1_body(
            wallet,
            order_action(is_buy=i % 2 == 0, px="105000" if i % 2 == 0 else "95000", tif="Ioc"),
            first_nonce + i,
        )
        for i in range(count)
    ]


def run(seconds: float = 3.0, *, log: Callable[[str], None] = print) -> dict[str, float]:
    gateway = SimGateway(SimVenue.open(SimConfig(), None), weight_per_minute=10**12)
    now = wall_ms()
    gateway.advance(now, MIDS)
    wallets: list[LocalAccount] = [Account.create() for _ in range(THREADS)]
    for wallet in wallets:
        gateway.fund(wallet.address, Decimal(10_000_000))
    per_client = max(50, int(seconds * ORDERS_PER_SECOND_GUESS))
    log(f"signing {per_client * (THREADS + 1)} orders ...")
    single = [_orders(wallets[0], per_client, now)]
    several = [_orders(w, per_client, now + per_client) for w in wallets]
    info = {"type": "allMids"}
    results: dict[str, float] = {}
    with SimServer(gateway) as server:
        url = server.url
        for name, path, bodies in (
            ("info_allMids_1", "/info", [[info] * 10**7]),
            ("info_allMids_4", "/info", [[info] * 10**7 for _ in range(THREADS)]),
            ("exchange_order_1", "/exchange", single),
            ("exchange_order_4", "/exchange", several),
        ):
            rate, total, failed = _rate(url, path, bodies, seconds)
            if failed:
                raise RuntimeError(f"{name}: {failed} of {total} requests failed")
            if path == "/exchange" and total >= sum(len(b) for b in bodies):
                log(f"{name}: ran out of signed bodies: raise ORDERS_PER_SECOND_GUESS")
            results[name] = round(rate, 1)
            log(f"{name:>18}: {rate:8.1f} requests/s ({total} in {seconds:g} s)")
    return results


NATIVE = "eth_keys.backends.NativeECCBackend"


def run_native(seconds: float) -> dict[str, float]:
    """The same run under eth_keys' pure-Python curve (the figure before coincurve), in a
    child process: the backend is chosen when eth_keys is imported."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.bench.sim_server", "--seconds", str(seconds), "--quiet"],
        env={**os.environ, "ECC_BACKEND_CLASS": NATIVE},
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    figures: dict[str, float] = json.loads(done.stdout)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--quiet", action="store_true", help="print only the JSON figures")
    args = parser.parse_args()
    figures = run(args.seconds, log=(lambda _: None) if args.quiet else print)
    print(json.dumps({**figures, "backend": type(get_backend()).__name__}, indent=2))


if __name__ == "__main__":
    main()
