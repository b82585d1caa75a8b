"""No withdraw and no account-wide close-all anywhere in the engine or the API.

Moving money off the venue or closing every position of the account (other traders' and
the operator's own included) is never something a trader, a breaker or a control route
may do. The only way to flatten is per trader, through the trader's own reduce-only closes.
This test fails the build if any module calls such a method of the Hyperliquid SDK (or the
account-wide helpers built on them). The simulator is the venue, not the engine: it answers
those actions for clients and is exempt.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

#: hyperliquid.exchange.Exchange methods that move money or act on the whole account.
FORBIDDEN = frozenset(
    {
        "withdraw_from_bridge",
        "usd_transfer",
        "usd_class_transfer",
        "spot_transfer",
        "send_asset",
        "sub_account_transfer",
        "sub_account_spot_transfer",
        "vault_usd_transfer",
        "approve_agent",
        "approve_builder_fee",
        "convert_to_multi_sig_user",
        "market_close_all",
        "close_all",
        "cancel_all",
    }
)
PACKAGES = ("domain", "application", "projections", "infrastructure", "interfaces")
EXEMPT = ("infrastructure/simulator/",)  # the venue itself


def calls_of(source: str) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in FORBIDDEN:
                found.append((node.lineno, node.func.id))
        elif isinstance(node, ast.Attribute) and node.attr in FORBIDDEN:
            found.append((node.lineno, node.attr))  # a call, or a bound method passed around
    return found


def test_no_module_calls_a_withdraw_or_account_wide_close() -> None:
    offenders = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            relative = path.relative_to(REPO).as_posix()
            if relative.startswith(EXEMPT):
                continue
            for line, name in calls_of(path.read_text(encoding="utf-8")):
                offenders.append(f"{relative}:{line}: {name}")
    assert not offenders, "money-out or account-wide calls:\n" + "\n".join(offenders)


def test_the_check_can_fail(tmp_path: Path) -> None:
    source = "async def oops(exchange):\n    await exchange.withdraw_from_bridge(100, '0x')\n"
    assert calls_of(source) == [(2, "withdraw_from_bridge")]
    assert calls_of("f = sdk.usd_transfer\n") == [(1, "usd_transfer")]
    assert calls_of("sdk.market_close('BTC')\n") == []  # per-coin closes are the trader's
