"""A trading session against a Hyperliquid-compatible URL, using only the official SDK.

    python tests/e2e/sdk_session.py --url http://127.0.0.1:3001 --master-key 0x…

(or the key in the environment variable ``NOF0_SIM_MASTER_KEY``). The master account must be
funded on the venue (``nof0 sim serve --fund ADDRESS:USDC``). The session:

1. approves a fresh local agent key with the master key;
2. opens a BTC long with the agent and checks it in ``clearinghouseState``;
3. places a take-profit and a stop-loss and checks both in ``frontendOpenOrders``;
4. closes the position and checks the account is flat;
5. shows that a key nobody approved is refused, and that a reused nonce is refused.

Exit status 0 when every check holds, 1 with the failed check otherwise (2: the venue could
not be reached or answered something unreadable). Keys are never printed.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import eth_account
import hyperliquid.exchange as sdk_exchange
import requests
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info
from hyperliquid.utils.error import ClientError, ServerError
from hyperliquid.utils.types import Cloid

COIN = "BTC"
SIZE = 0.001


class CheckFailed(Exception):
    pass


def check(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def say(text: str) -> None:
    print(text, flush=True)


def statuses(answer: Any, what: str) -> list[Any]:
    check(
        isinstance(answer, dict) and answer.get("status") == "ok",
        f"{what}: expected status ok, got {answer!r}",
    )
    data = answer["response"].get("data") or {}
    found: list[Any] = data.get("statuses", [])
    for entry in found:
        if isinstance(entry, dict) and "error" in entry:
            raise CheckFailed(f"{what}: {entry['error']}")
    return found


def position(info: Info, user: str) -> float:
    state = info.user_state(user)
    for entry in state["assetPositions"]:
        if entry["position"]["coin"] == COIN:
            return float(entry["position"]["szi"])
    return 0.0


def session(url: str, master_key: str, timeout: float) -> None:
    try:
        master = eth_account.Account.from_key(master_key)
    except Exception:
        raise CheckFailed("the master key is not a valid private key") from None
    user = master.address
    info = Info(url, skip_ws=True, timeout=timeout)
    clients: list[Any] = [info]
    try:
        boss = Exchange(master, url, timeout=timeout)
        clients += [boss, boss.info]
        say(
            f"master {user}: account value {info.user_state(user)['marginSummary']['accountValue']}"
        )

        answer, agent_key = boss.approve_agent()
        statuses(answer, "approveAgent")
        agent = eth_account.Account.from_key(agent_key)
        say(f"approved agent {agent.address}")
        trader = Exchange(agent, url, account_address=user, timeout=timeout)
        clients += [trader, trader.info]

        statuses(trader.update_leverage(10, COIN, is_cross=True), "updateLeverage")
        filled = statuses(trader.market_open(COIN, True, SIZE), "market_open")[0]
        check("filled" in filled, f"market_open: expected a fill, got {filled!r}")
        held = position(info, user)
        say(f"clearinghouseState: {COIN} szi {held} (filled at {filled['filled']['avgPx']})")
        check(held == SIZE, f"clearinghouseState: expected szi {SIZE}, got {held}")

        mid = float(info.all_mids()[COIN])
        take, stop = round(mid * 1.05), round(mid * 0.95)
        tp_cloid, sl_cloid = Cloid.from_int(101), Cloid.from_int(102)
        for px, kind, cloid in ((take, "tp", tp_cloid), (stop, "sl", sl_cloid)):
            trigger = {"trigger": {"triggerPx": px, "isMarket": True, "tpsl": kind}}
            statuses(trader.order(COIN, False, SIZE, px, trigger, True, cloid), f"place {kind}")
        orders = info.frontend_open_orders(user)
        triggers = {o["cloid"]: o for o in orders if o["coin"] == COIN and o["isTrigger"]}
        for cloid, px, label in ((tp_cloid, take, "take profit"), (sl_cloid, stop, "stop loss")):
            found = triggers.get(cloid.to_raw())
            check(found is not None, f"frontendOpenOrders: no {label} ({cloid.to_raw()})")
            assert found is not None
            check(float(found["triggerPx"]) == px, f"{label}: trigger {found['triggerPx']} != {px}")
            say(f"{label}: {found['orderType']}, {found['triggerCondition']}")

        closed = statuses(trader.market_close(COIN), "market_close")[0]
        check("filled" in closed, f"market_close: expected a fill, got {closed!r}")
        check(position(info, user) == 0.0, "after market_close the account is not flat")
        say("closed: flat")
        for cloid in (tp_cloid, sl_cloid):  # reduce-only leftovers, if the venue kept them
            if any(o.get("cloid") == cloid.to_raw() for o in info.frontend_open_orders(user)):
                trader.cancel_by_cloid(COIN, cloid)

        stranger = eth_account.Account.create()
        outsider = Exchange(stranger, url, timeout=timeout)
        clients += [outsider, outsider.info]
        refused = outsider.order(COIN, True, SIZE, round(mid * 0.8), {"limit": {"tif": "Gtc"}})
        text = str(refused.get("response")) if isinstance(refused, dict) else ""
        check(
            refused.get("status") == "err" and "does not exist" in text,
            f"an unapproved key was not refused: {refused!r}",
        )
        check(stranger.address.lower() in text.lower(), f"refusal names another address: {text}")
        say(f"unapproved key refused: {text}")

        frozen = sdk_exchange.get_timestamp_ms()
        original = sdk_exchange.get_timestamp_ms
        sdk_exchange.get_timestamp_ms = lambda: frozen  # both orders carry the same nonce
        try:
            low = round(mid * 0.8)
            first = trader.order(COIN, True, SIZE * 20, low, {"limit": {"tif": "Gtc"}})
            second = trader.order(COIN, True, SIZE * 20, low, {"limit": {"tif": "Gtc"}})
        finally:
            sdk_exchange.get_timestamp_ms = original
        resting = statuses(first, "first order")[0]
        check("resting" in resting, f"the first order should rest, got {resting!r}")
        check(
            second.get("status") == "err" and "nonce" in str(second.get("response")),
            f"a reused nonce was not refused: {second!r}",
        )
        say(f"reused nonce refused: {second['response']}")
        statuses(trader.cancel(COIN, resting["resting"]["oid"]), "cancel")
    finally:
        for client in clients:
            client.session.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="the venue's base URL")
    parser.add_argument(
        "--master-key",
        default=os.environ.get("NOF0_SIM_MASTER_KEY"),
        help="the funded master's private key (default: $NOF0_SIM_MASTER_KEY)",
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="per request, in seconds")
    args = parser.parse_args(argv)
    if not args.master_key:
        parser.error("a master key is needed (--master-key or NOF0_SIM_MASTER_KEY)")
    try:
        session(args.url.rstrip("/"), args.master_key, args.timeout)
    except CheckFailed as failed:
        print(f"FAILED: {failed}", file=sys.stderr, flush=True)
        return 1
    except (requests.RequestException, ClientError, ServerError, KeyError, ValueError) as exc:
        # Never the key: these come from the transport and from parsing answers.
        print(f"ERROR: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 2
    say("session OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
