"""Start the simulator's HTTP server in-process for tests, and sign requests like the SDK.

``running_sim()`` opens a fresh in-memory venue priced at :data:`MIDS` at the wall clock's
now, serves it on a free 127.0.0.1 port with a :class:`~tests.support.hl_faults.FaultPlan`
as the interceptor, and closes every SDK client it handed out (their ``requests`` sessions
would otherwise leak sockets, and ResourceWarnings fail the tests).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info
from hyperliquid.utils.signing import sign_agent, sign_l1_action

from infrastructure.simulator.config import SimConfig
from infrastructure.simulator.engine import SimVenue
from infrastructure.simulator.gateway import SimGateway
from infrastructure.simulator.serve import ServeOptions, serve
from infrastructure.simulator.server import SimServer
from tests.support.hl_faults import FaultPlan

MIDS: dict[str, Decimal] = {
    "BTC": Decimal(100_000),
    "ETH": Decimal(3_000),
    "SOL": Decimal(150),
    "BNB": Decimal(600),
    "DOGE": Decimal("0.2"),
    "XRP": Decimal("2.5"),
}
TIMEOUT_S = 10.0


def wall_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Sim:
    gateway: SimGateway
    server: SimServer
    url: str
    plan: FaultPlan
    _clients: list[Any] = field(default_factory=list)

    def advance(
        self,
        mids: Mapping[str, Decimal] | None = None,
        *,
        by_ms: int = 1_000,
        to_ms: int | None = None,
        funding_rates: Mapping[str, Decimal] | None = None,
    ) -> int:
        """Move the venue on (``by_ms`` past its time, or to ``to_ms``) with new mids; the
        venue's time never falls behind the wall clock here, so SDK nonces stay valid."""
        now = to_ms if to_ms is not None else max(self.gateway.now_ms, wall_ms()) + by_ms
        self.gateway.advance(now, mids, funding_rates=funding_rates)
        return now

    def info(self, timeout: float = TIMEOUT_S) -> Info:
        client = Info(self.url, skip_ws=True, timeout=timeout)
        self._clients.append(client)
        return client

    def exchange(
        self,
        wallet: LocalAccount,
        *,
        account_address: str | None = None,
        vault_address: str | None = None,
        timeout: float = TIMEOUT_S,
    ) -> Exchange:
        client = Exchange(
            wallet,
            self.url,
            account_address=account_address,
            vault_address=vault_address,
            timeout=timeout,
        )
        self._clients.extend((client, client.info))
        return client

    def close_clients(self) -> None:
        for client in self._clients:
            client.session.close()
        self._clients.clear()


@contextmanager
def running_sim(
    *,
    mids: Mapping[str, Decimal] | None = None,
    weight_per_minute: int = 1200,
    config: SimConfig | None = None,
    state_dir: Path | None = None,
) -> Iterator[Sim]:
    venue = SimVenue.open(config or SimConfig(), state_dir)
    gateway = SimGateway(venue, weight_per_minute=weight_per_minute)
    gateway.advance(wall_ms(), dict(MIDS if mids is None else mids))
    plan = FaultPlan()
    server = SimServer(gateway, interceptor=plan)
    url = server.start()
    sim = Sim(gateway, server, url, plan)
    try:
        yield sim
    finally:
        sim.close_clients()
        server.stop()


@contextmanager
def serving(options: ServeOptions, *, start_timeout_s: float = 120.0) -> Iterator[str]:
    """``serve(options)`` (what ``nof0 sim serve`` runs) in a thread; yields its URL."""
    stop, ready = threading.Event(), threading.Event()
    urls: list[str] = []

    def started(url: str) -> None:
        urls.append(url)
        ready.set()

    kwargs = {"stop": stop, "ready": started}
    thread = threading.Thread(target=serve, args=(options,), kwargs=kwargs)
    thread.start()
    try:
        assert ready.wait(start_timeout_s), "serve() did not become ready"
        yield urls[0]
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive(), "serve() did not stop"


# -- request bodies signed exactly as the SDK signs them -------------------------------------


def l1_body(
    wallet: LocalAccount,
    action: dict[str, Any],
    nonce: int,
    *,
    vault: str | None = None,
    expires_after: int | None = None,
    is_mainnet: bool = False,
) -> dict[str, Any]:
    signature = sign_l1_action(wallet, action, vault, nonce, expires_after, is_mainnet)
    return {
        "action": action,
        "nonce": nonce,
        "signature": signature,
        "vaultAddress": vault,
        "expiresAfter": expires_after,
    }


def approve_agent_body(
    wallet: LocalAccount, agent: str, name: str | None, nonce: int, *, is_mainnet: bool = False
) -> dict[str, Any]:
    """What ``Exchange.approve_agent`` posts (``agentName`` dropped when None, signed as "")."""
    action: dict[str, Any] = {
        "type": "approveAgent",
        "agentAddress": agent,
        "agentName": name or "",
        "nonce": nonce,
    }
    signature = sign_agent(wallet, action, is_mainnet)
    if name is None:
        del action["agentName"]
    return {
        "action": action,
        "nonce": nonce,
        "signature": signature,
        "vaultAddress": None,
        "expiresAfter": None,
    }


def order_action(
    asset: int = 0,
    *,
    is_buy: bool = True,
    px: str = "90000",
    sz: str = "0.001",
    tif: str = "Gtc",
    cloid: str | None = None,
) -> dict[str, Any]:
    wire: dict[str, Any] = {
        "a": asset,
        "b": is_buy,
        "p": px,
        "s": sz,
        "r": False,
        "t": {"limit": {"tif": tif}},
    }
    if cloid is not None:
        wire["c"] = cloid
    return {"type": "order", "orders": [wire], "grouping": "na"}
