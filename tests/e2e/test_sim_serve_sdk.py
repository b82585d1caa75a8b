"""The official SDK, end to end over HTTP, against the simulator's server.

A local master key is funded by the venue (configuration, as ``--fund`` does) and approves an
agent with ``Exchange.approve_agent()``; the agent trades for the master. Prices and time are
moved by the test (``gateway.advance``), not by a feed, so every scenario is deterministic.
The last tests run ``tests/e2e/sdk_session.py`` against ``serve()`` and against the real
``nof0 sim serve`` command.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from eth_account import Account
from eth_account.signers.local import LocalAccount
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info
from hyperliquid.utils.error import ClientError
from hyperliquid.utils.types import Cloid

from infrastructure.simulator.errors import DESERIALIZE
from infrastructure.simulator.serve import ServeOptions
from tests.support.sim_server import Sim, running_sim, serving

SESSION_SCRIPT = Path(__file__).with_name("sdk_session.py")
HOUR_MS = 3_600_000
GTC = {"limit": {"tif": "Gtc"}}


@dataclass
class Trader:
    sim: Sim
    master: LocalAccount
    info: Info
    agent: Exchange

    @property
    def user(self) -> str:
        return str(self.master.address)


def ok_statuses(answer: Any) -> list[Any]:
    assert answer["status"] == "ok", answer
    statuses: list[Any] = answer["response"]["data"]["statuses"]
    return statuses


def szi(info: Info, user: str, coin: str) -> Decimal:
    for entry in info.user_state(user)["assetPositions"]:
        if entry["position"]["coin"] == coin:
            return Decimal(entry["position"]["szi"])
    return Decimal(0)


def fund_and_approve(sim: Sim, usdc: int) -> tuple[LocalAccount, Exchange]:
    master: LocalAccount = Account.create()
    sim.gateway.fund(master.address, Decimal(usdc))
    answer, agent_key = sim.exchange(master).approve_agent()
    assert answer == {"status": "ok", "response": {"type": "default"}}
    agent = Account.from_key(agent_key)
    return master, sim.exchange(agent, account_address=master.address)


@pytest.fixture
def trader() -> Iterator[Trader]:
    with running_sim() as sim:
        master, agent = fund_and_approve(sim, 1_000_000)
        yield Trader(sim, master, sim.info(), agent)


# -- positions and orders ------------------------------------------------------------------------


def test_market_open_and_close(trader: Trader) -> None:
    opened = ok_statuses(trader.agent.market_open("BTC", True, 0.01))[0]
    assert Decimal(opened["filled"]["totalSz"]) == Decimal("0.01")
    assert szi(trader.info, trader.user, "BTC") == Decimal("0.01")
    state = trader.info.user_state(trader.user)
    assert Decimal(state["marginSummary"]["accountValue"]) < Decimal(1_000_000)  # fee and spread
    closed = ok_statuses(trader.agent.market_close("BTC"))[0]
    assert Decimal(closed["filled"]["totalSz"]) == Decimal("0.01")
    assert szi(trader.info, trader.user, "BTC") == 0
    fills = trader.info.user_fills(trader.user)
    assert [f["dir"] for f in fills] == ["Close Long", "Open Long"]  # newest first
    assert trader.agent.market_close("BTC") is None  # nothing left to close


def test_resting_limit_cancel_modify_and_cloids(trader: Trader) -> None:
    agent, info, user = trader.agent, trader.info, trader.user
    first = Cloid.from_int(1)
    resting = ok_statuses(agent.order("BTC", True, 0.01, 95_000, GTC, cloid=first))[0]
    oid = resting["resting"]["oid"]
    assert resting["resting"]["cloid"] == first.to_raw()
    assert [(o["oid"], o["limitPx"]) for o in info.open_orders(user)] == [(oid, "95000.0")]

    modified = ok_statuses(agent.modify_order(oid, "BTC", True, 0.02, 94_000, GTC, cloid=first))
    new_oid = modified[0]["resting"]["oid"]
    [order] = info.frontend_open_orders(user)
    assert (order["oid"], order["limitPx"], order["sz"]) == (new_oid, "94000.0", "0.02")
    by_cloid = info.query_order_by_cloid(user, first)
    assert by_cloid["status"] == "order"
    assert by_cloid["order"]["status"] == "open"
    assert by_cloid["order"]["order"]["oid"] == new_oid

    assert ok_statuses(agent.cancel("BTC", new_oid)) == ["success"]
    assert ok_statuses(agent.cancel("BTC", new_oid))[0] == {
        "error": "Order was never placed, already canceled, or filled."
    }

    second = Cloid.from_int(2)
    ok_statuses(agent.order("BTC", False, 0.01, 105_000, GTC, cloid=second))
    assert ok_statuses(agent.cancel_by_cloid("BTC", second)) == ["success"]
    assert info.query_order_by_cloid(user, second)["order"]["status"] == "canceled"
    assert info.open_orders(user) == []
    assert info.query_order_by_cloid(user, Cloid.from_int(3)) == {"status": "unknownOid"}


def _triggers(info: Info, user: str) -> dict[str, dict[str, Any]]:
    """Trigger orders by cloid, top-level or attached as children."""
    found: dict[str, dict[str, Any]] = {}
    for order in info.frontend_open_orders(user):
        for one in [order, *order.get("children", [])]:
            if one.get("isTrigger"):
                found[one["cloid"]] = one
    return found


def _trigger(px: int, tpsl: str) -> dict[str, Any]:
    return {"trigger": {"triggerPx": px, "isMarket": True, "tpsl": tpsl}}


def test_standalone_tp_and_sl_fire_on_the_mark(trader: Trader) -> None:
    agent, info, user = trader.agent, trader.info, trader.user
    ok_statuses(agent.market_open("BTC", True, 0.01))
    tp, sl = Cloid.from_int(11), Cloid.from_int(12)
    ok_statuses(agent.order("BTC", False, 0.01, 104_000, _trigger(104_000, "tp"), True, tp))
    ok_statuses(agent.order("BTC", False, 0.01, 94_000, _trigger(95_000, "sl"), True, sl))
    triggers = _triggers(info, user)
    assert triggers[tp.to_raw()]["orderType"] == "Take Profit Market"
    assert triggers[sl.to_raw()]["orderType"] == "Stop Market"
    assert triggers[sl.to_raw()]["triggerPx"] == "95000.0"

    trader.sim.advance({"BTC": Decimal(101_000)})  # not yet
    assert szi(info, user, "BTC") == Decimal("0.01")
    trader.sim.advance({"BTC": Decimal(104_500)})
    assert szi(info, user, "BTC") == 0
    assert info.query_order_by_cloid(user, tp)["order"]["status"] in ("filled", "triggered")
    assert info.frontend_open_orders(user) == []  # the stop went with the position


def test_normal_tpsl_children_wait_for_the_parent(trader: Trader) -> None:
    agent, info, user = trader.agent, trader.info, trader.user
    entry, tp, sl = Cloid.from_int(21), Cloid.from_int(22), Cloid.from_int(23)
    orders: list[Any] = [
        {"coin": "BTC", "is_buy": True, "sz": 0.01, "limit_px": 99_000, "order_type": GTC,
         "reduce_only": False, "cloid": entry},
        {"coin": "BTC", "is_buy": False, "sz": 0.01, "limit_px": 103_000,
         "order_type": _trigger(104_000, "tp"), "reduce_only": True, "cloid": tp},
        {"coin": "BTC", "is_buy": False, "sz": 0.01, "limit_px": 94_000,
         "order_type": _trigger(95_000, "sl"), "reduce_only": True, "cloid": sl},
    ]  # fmt: skip
    statuses = ok_statuses(agent.bulk_orders(orders, grouping="normalTpsl"))
    assert "resting" in statuses[0]
    assert statuses[1:] == ["waitingForFill", "waitingForFill"]
    assert set(_triggers(info, user)) == {tp.to_raw(), sl.to_raw()}

    trader.sim.advance({"BTC": Decimal(98_500)})  # the parent fills as maker
    assert szi(info, user, "BTC") == Decimal("0.01")
    assert info.query_order_by_cloid(user, entry)["order"]["status"] == "filled"
    trader.sim.advance({"BTC": Decimal(104_100)})
    assert szi(info, user, "BTC") == 0


def test_position_tpsl(trader: Trader) -> None:
    agent, info, user = trader.agent, trader.info, trader.user
    ok_statuses(agent.market_open("BTC", True, 0.01))
    tp, sl = Cloid.from_int(31), Cloid.from_int(32)
    orders: list[Any] = [
        {"coin": "BTC", "is_buy": False, "sz": 0.01, "limit_px": 103_000,
         "order_type": _trigger(104_000, "tp"), "reduce_only": True, "cloid": tp},
        {"coin": "BTC", "is_buy": False, "sz": 0.01, "limit_px": 94_000,
         "order_type": _trigger(95_000, "sl"), "reduce_only": True, "cloid": sl},
    ]  # fmt: skip
    statuses = ok_statuses(agent.bulk_orders(orders, grouping="positionTpsl"))
    assert statuses == ["waitingForTrigger", "waitingForTrigger"]
    triggers = _triggers(info, user)
    assert all(triggers[c.to_raw()]["isPositionTpsl"] for c in (tp, sl))
    trader.sim.advance({"BTC": Decimal(94_900)})  # the stop fires
    assert szi(info, user, "BTC") == 0
    assert info.query_order_by_cloid(user, sl)["order"]["status"] in ("filled", "triggered")


def test_leverage_and_isolated_margin(trader: Trader) -> None:
    agent, info, user = trader.agent, trader.info, trader.user
    assert agent.update_leverage(5, "ETH", is_cross=False)["status"] == "ok"
    ok_statuses(agent.market_open("ETH", True, 1.0))

    def eth() -> dict[str, Any]:
        [entry] = [
            p["position"]
            for p in info.user_state(user)["assetPositions"]
            if p["position"]["coin"] == "ETH"
        ]
        position: dict[str, Any] = entry
        return position

    before = eth()
    assert before["leverage"]["type"] == "isolated"
    assert before["leverage"]["value"] == 5
    assert agent.update_isolated_margin(100, "ETH")["status"] == "ok"
    after = eth()
    assert Decimal(after["marginUsed"]) - Decimal(before["marginUsed"]) == Decimal(100)
    assert Decimal(after["leverage"]["rawUsd"]) - Decimal(before["leverage"]["rawUsd"]) == 100
    switched = agent.update_leverage(10, "ETH", is_cross=True)
    assert switched == {
        "status": "err",
        "response": "Cannot switch leverage type with open position.",
    }
    assert agent.update_leverage(3, "BTC", is_cross=True)["status"] == "ok"
    ok_statuses(agent.market_open("BTC", True, 0.01))
    btc = [p for p in info.user_state(user)["assetPositions"] if p["position"]["coin"] == "BTC"]
    assert btc[0]["position"]["leverage"] == {"type": "cross", "value": 3}
    assert agent.update_isolated_margin(10, "BTC")["status"] == "err"


def test_partial_fill_beyond_the_synthetic_depth(trader: Trader) -> None:
    book = trader.info.l2_snapshot("SOL")
    depth = sum(Decimal(level["sz"]) for level in book["levels"][1])
    wanted = float((depth * Decimal("1.5")).quantize(Decimal("0.01")))
    filled = ok_statuses(trader.agent.market_open("SOL", True, wanted))[0]["filled"]
    assert Decimal(filled["totalSz"]) == depth < Decimal(str(wanted))
    assert szi(trader.info, trader.user, "SOL") == depth


def test_funding_over_an_hour_boundary(trader: Trader) -> None:
    agent, info, user = trader.agent, trader.info, trader.user
    ok_statuses(agent.market_open("BTC", True, 0.1))
    start = trader.sim.gateway.now_ms
    boundary = start - start % HOUR_MS + HOUR_MS
    trader.sim.advance({"BTC": Decimal(100_000)}, to_ms=boundary + 5)
    rows = info.user_funding_history(user, start)
    assert len(rows) == 1
    delta = rows[0]["delta"]
    assert (delta["type"], delta["coin"], delta["szi"]) == ("funding", "BTC", "0.1")
    rate = Decimal(delta["fundingRate"])
    assert rate > 0
    assert Decimal(delta["usdc"]) == -Decimal("0.1") * Decimal(100_000) * rate  # longs pay
    assert rows[0]["time"] >= boundary


def test_the_deposit_is_in_the_non_funding_ledger(trader: Trader) -> None:
    rows = trader.info.user_non_funding_ledger_updates(trader.user, 0)
    assert [row["delta"] for row in rows] == [{"type": "deposit", "usdc": "1000000.0"}]


def test_cross_liquidation_shows_in_fills(trader: Trader) -> None:
    sim = trader.sim
    thin: LocalAccount = Account.create()
    sim.gateway.fund(thin.address, Decimal(1_000))
    exchange = sim.exchange(thin)
    ok_statuses(exchange.market_open("BTC", True, 0.19))  # ~$19k at 20x cross on $1k
    assert szi(trader.info, thin.address, "BTC") == Decimal("0.19")
    sim.advance({"BTC": Decimal(90_000)})
    assert szi(trader.info, thin.address, "BTC") == 0
    [liquidation] = [f for f in trader.info.user_fills(thin.address) if "liquidation" in f]
    assert liquidation["liquidation"]["liquidatedUser"] == thin.address.lower()
    assert liquidation["dir"] == "Close Long"
    assert liquidation["liquidation"]["method"] in ("market", "backstop")


# -- refusals --------------------------------------------------------------------------------


def test_unauthorised_key_is_refused(trader: Trader) -> None:
    stranger: LocalAccount = Account.create()
    outsider = trader.sim.exchange(stranger, account_address=trader.user)
    answer = outsider.order("BTC", True, 0.01, 95_000, GTC)
    assert answer == {
        "status": "err",
        "response": f"User or API Wallet {stranger.address.lower()} does not exist.",
    }
    assert trader.info.open_orders(trader.user) == []


def test_reused_nonce_is_refused(trader: Trader, monkeypatch: pytest.MonkeyPatch) -> None:
    frozen = int(time.time() * 1000)
    monkeypatch.setattr("hyperliquid.exchange.get_timestamp_ms", lambda: frozen)
    first = trader.agent.order("BTC", True, 0.01, 95_000, GTC)
    assert "resting" in ok_statuses(first)[0]
    second = trader.agent.order("BTC", True, 0.01, 94_000, GTC)
    assert second == {"status": "err", "response": f"Invalid nonce: duplicate nonce {frozen}"}
    assert len(trader.info.open_orders(trader.user)) == 1


def test_weight_budget_answers_429() -> None:
    with running_sim(weight_per_minute=50) as sim:
        info = sim.info()  # spotMeta + meta: 40
        for _ in range(5):
            info.all_mids()  # 2 each: the budget is spent
        with pytest.raises(ClientError) as raised:
            info.all_mids()
    assert raised.value.status_code == 429
    assert raised.value.error_message == "null"


def test_bad_info_type_is_422(trader: Trader) -> None:
    with pytest.raises(ClientError) as raised:
        trader.info.post("/info", {"type": "noSuchRequest"})
    assert raised.value.status_code == 422
    assert raised.value.error_message == DESERIALIZE


# -- the session script, against serve() and the CLI ---------------------------------------------


def run_session(url: str, master: LocalAccount) -> None:
    result = subprocess.run(  # the key goes on argv only: never into what is printed
        [sys.executable, str(SESSION_SCRIPT), "--url", url, "--master-key", master.key.hex()],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert master.key.hex()[2:] not in result.stdout + result.stderr
    assert result.returncode == 0, f"sdk_session.py failed:\n{result.stdout}\n{result.stderr}"
    assert "session OK" in result.stdout


def test_sdk_session_against_serve() -> None:
    master: LocalAccount = Account.create()
    options = ServeOptions(port=0, funds=[(master.address, Decimal(100_000))], history_days=1)
    with serving(options, start_timeout_s=60) as url:
        run_session(url, master)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.mark.slow
def test_sdk_session_against_the_cli(tmp_path: Path) -> None:
    command = Path(sys.executable).with_name("nof0")
    assert command.exists(), f"no console script at {command}"
    master: LocalAccount = Account.create()
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [str(command), "sim", "serve", "--port", str(port), "--fund", f"{master.address}:100000"]
    argv += ["--state", str(tmp_path / "sim")]
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path
    ) as server:
        try:
            deadline = time.monotonic() + 60
            while True:
                assert server.poll() is None, f"nof0 sim serve exited: {server.communicate()}"
                try:
                    with requests.Session() as probe:
                        if probe.post(url + "/info", json={"type": "meta"}, timeout=2).ok:
                            break
                except requests.ConnectionError:
                    pass
                assert time.monotonic() < deadline, "nof0 sim serve did not answer in 60 s"
                time.sleep(0.2)
            run_session(url, master)
        finally:
            if server.poll() is None:
                server.send_signal(signal.SIGTERM)
            out, err = server.communicate(timeout=30)
    assert server.returncode == 0, f"exit {server.returncode}:\n{out}\n{err}"
    assert f"listening on {url}" in out + err
