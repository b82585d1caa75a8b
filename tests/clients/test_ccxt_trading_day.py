"""ccxt's ``hyperliquid`` class against ``nof0 sim serve``: a trading day in miniature.

Runs in the ``ccxt`` nox session, which installs ccxt (pinned) in its own environment; the
default suite does not collect it (marker ``ccxt``). Every call is answered in the venue's
shapes, so ccxt parses it as it parses Hyperliquid's own answers.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from eth_account import Account

ccxt = pytest.importorskip("ccxt", reason="ccxt is installed by the ccxt nox session only")

pytestmark = pytest.mark.ccxt
SYMBOL = "ETH/USDC:USDC"
FUND = 100_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    master = Account.create()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = Path(sys.executable).with_name("nof0")
    argv = [str(command), "sim", "serve", "--port", str(port), "--rate-limit", "off"]
    argv += ["--fund", f"{master.address}:{FUND}"]
    workdir = tmp_path_factory.mktemp("sim")
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=workdir
    ) as server:
        try:
            deadline = time.monotonic() + 60
            while True:
                assert server.poll() is None, f"nof0 sim serve exited: {server.communicate()}"
                try:
                    if requests.post(url + "/info", json={"type": "meta"}, timeout=2).ok:
                        break
                except requests.ConnectionError:
                    pass
                assert time.monotonic() < deadline, "nof0 sim serve did not answer in 60 s"
                time.sleep(0.2)
            yield url, master
        finally:
            if server.poll() is None:
                server.send_signal(signal.SIGTERM)
            server.communicate(timeout=30)


@pytest.fixture(scope="module")
def exchange(served: tuple[str, Any]) -> Any:
    url, master = served
    client = ccxt.hyperliquid(
        {
            "walletAddress": master.address,
            "privateKey": master.key.hex(),
            "timeout": 10_000,
        }
    )
    # The simulator signs as testnet does (phantom agent source "b"): ccxt's sandbox mode.
    client.set_sandbox_mode(True)
    client.urls["api"] = {"public": url, "private": url}
    return client


def test_markets_status_time_and_public_data(exchange: Any) -> None:
    markets = exchange.load_markets()
    assert SYMBOL in markets
    assert markets[SYMBOL]["swap"] is True
    assert markets[SYMBOL]["precision"]["amount"] is not None
    status = exchange.fetch_status()
    assert status["status"] == "ok"
    assert isinstance(exchange.fetch_time(), int)
    ticker = exchange.fetch_ticker(SYMBOL)
    assert ticker["last"] > 0
    book = exchange.fetch_order_book(SYMBOL)
    assert book["bids"][0][0] < book["asks"][0][0]
    candles = exchange.fetch_ohlcv(SYMBOL, "1m", limit=5)
    assert candles
    assert len(candles[0]) == 6


def test_balance_is_the_funded_account(exchange: Any) -> None:
    balance = exchange.fetch_balance()
    assert balance["USDC"]["total"] == pytest.approx(FUND)
    assert balance["USDC"]["free"] == pytest.approx(FUND)


def test_a_trading_day_in_miniature(exchange: Any) -> None:
    exchange.load_markets()
    exchange.set_margin_mode("cross", SYMBOL, {"leverage": 5})
    exchange.set_leverage(5, SYMBOL, {"marginMode": "cross"})
    price = exchange.fetch_ticker(SYMBOL)["last"]

    # Open a position with a stop and a target on the venue.
    opened = exchange.create_order(
        SYMBOL,
        "market",
        "buy",
        0.5,
        price,
        {
            "stopLoss": {"triggerPrice": round(price * 0.9, 1)},
            "takeProfit": {"triggerPrice": round(price * 1.1, 1)},
        },
    )
    assert opened["id"]
    (position,) = exchange.fetch_positions([SYMBOL])
    assert position["side"] == "long"
    assert position["contracts"] == pytest.approx(0.5)
    protections = [o for o in exchange.fetch_open_orders(SYMBOL) if o.get("reduceOnly")]
    assert len(protections) == 2, protections

    # A resting limit order with a client id: modify it, then cancel by id.
    first_cloid = "0x" + "ab" * 16
    resting = exchange.create_order(
        SYMBOL, "limit", "buy", 0.1, round(price * 0.8, 1), {"clientOrderId": first_cloid}
    )
    edited = exchange.edit_order(resting["id"], SYMBOL, "limit", "buy", 0.2, round(price * 0.79, 1))
    assert edited["id"] != resting["id"]
    mine = {o["id"]: o for o in exchange.fetch_open_orders(SYMBOL)}
    assert edited["id"] in mine
    assert mine[edited["id"]]["clientOrderId"] == first_cloid  # kept across the modify
    assert mine[edited["id"]]["amount"] == pytest.approx(0.2)
    exchange.cancel_order(edited["id"], SYMBOL)
    assert edited["id"] not in {o["id"] for o in exchange.fetch_open_orders(SYMBOL)}

    # Another one, modified, then cancelled by its client id.
    second_cloid = "0x" + "cd" * 16
    resting = exchange.create_order(
        SYMBOL, "limit", "buy", 0.1, round(price * 0.8, 1), {"clientOrderId": second_cloid}
    )
    exchange.edit_order(resting["id"], SYMBOL, "limit", "buy", 0.15, round(price * 0.78, 1))
    exchange.cancel_order(None, SYMBOL, {"clientOrderId": second_cloid})
    left = [o for o in exchange.fetch_open_orders(SYMBOL) if not o.get("reduceOnly")]
    assert left == []

    # The venue's refusals come back as ccxt's errors carrying the venue's words.
    with pytest.raises(ccxt.BaseError, match="minimum value"):
        exchange.create_order(SYMBOL, "limit", "buy", 0.001, round(price * 0.8, 1))

    # Close; the fills and the funding history are there.
    exchange.create_order(SYMBOL, "market", "sell", 0.5, price, {"reduceOnly": True})
    assert [p for p in exchange.fetch_positions([SYMBOL]) if p["contracts"]] == []
    trades = exchange.fetch_my_trades(SYMBOL)
    assert len(trades) >= 2
    assert {t["side"] for t in trades} >= {"buy", "sell"}
    assert all(t["fee"]["cost"] is not None for t in trades)
    # The venue needs a startTime for userFunding (ccxt sends one only with `since`).
    funding = exchange.fetch_funding_history(SYMBOL, since=0)
    assert isinstance(funding, list)
    rates = exchange.fetch_funding_rate_history(SYMBOL, since=0, limit=5)
    assert isinstance(rates, list)
    with pytest.raises(ccxt.BaseError, match="Failed to deserialize"):
        exchange.fetch_funding_history(SYMBOL)  # as the venue answers it
