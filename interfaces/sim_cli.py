"""``nof0 sim serve``: run the Hyperliquid simulator as an HTTP server for the official SDK.

    nof0 sim serve [--host H] [--port P] [--fund ADDRESS:USDC]... [--vault VAULT:LEADER]...
                   [--state DIR] [--seed N]

Each ``--fund`` account is funded once: a restarted server with the same ``--state`` does not
fund it again (see ``infrastructure.simulator.serve``).
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path

from infrastructure import bootstrap

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def _address(text: str, what: str) -> str:
    if not _ADDRESS.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"{what} {text!r} is not an address (0x and 40 hex digits)"
        )
    return text.lower()


def fund_spec(text: str) -> tuple[str, Decimal]:
    """``ADDRESS:USDC`` → (address, amount); an argparse type."""
    address, sep, amount = text.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected ADDRESS:USDC, got {text!r}")
    try:
        usdc = Decimal(amount.strip())
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"the amount {amount!r} is not a number") from None
    if not usdc.is_finite() or usdc <= 0:
        raise argparse.ArgumentTypeError(f"the amount {amount!r} must be a positive number")
    return _address(address.strip(), "the account"), usdc


def vault_spec(text: str) -> tuple[str, str]:
    """``VAULT:LEADER`` → (vault, leader); an argparse type."""
    vault, sep, leader = text.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected VAULT:LEADER, got {text!r}")
    return _address(vault.strip(), "the vault"), _address(leader.strip(), "the leader")


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"the port {text!r} is not a number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"the port {port} is not within 0-65535 (0: any free)")
    return port


def rate_limit(text: str) -> int | None:
    """``--rate-limit``: request weight per minute per client, or ``off``."""
    if text.strip().lower() == "off":
        return None
    try:
        weight = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"the rate limit {text!r} is not a number of weight per minute, nor 'off'"
        ) from None
    if weight < 1:
        raise argparse.ArgumentTypeError("the rate limit must be at least 1 (or 'off')")
    return weight


def _seed(text: str) -> int:
    try:
        seed = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"the seed {text!r} is not an integer") from None
    if seed < 0:
        raise argparse.ArgumentTypeError("the seed must not be negative")
    return seed


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Add ``sim serve`` to the ``nof0`` sub-commands (``subparsers`` from
    ``add_subparsers``)."""
    sim = subparsers.add_parser("sim", help="the Hyperliquid simulator")
    actions = sim.add_subparsers(dest="action", required=True, metavar="ACTION")
    serve = actions.add_parser(
        "serve",
        help="serve the simulator over HTTP (/info, /exchange) for the official SDK",
        description="Serve a simulated Hyperliquid venue priced by a seeded synthetic feed "
        "that follows the wall clock. Point the SDK at the printed URL.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="listen address (default: 127.0.0.1)")
    serve.add_argument("--port", type=_port, default=3001, help="port (default: 3001; 0: any)")
    serve.add_argument(
        "--fund",
        type=fund_spec,
        action="append",
        default=[],
        metavar="ADDRESS:USDC",
        help="fund this account once (repeatable; not again after a restart with --state)",
    )
    serve.add_argument(
        "--vault",
        type=vault_spec,
        action="append",
        default=[],
        metavar="VAULT:LEADER",
        help="let LEADER (or its agents) trade for VAULT (repeatable)",
    )
    serve.add_argument(
        "--state", type=Path, default=None, metavar="DIR", help="keep the venue in DIR"
    )
    serve.add_argument("--seed", type=_seed, default=7, help="price path seed (default: 7)")
    serve.add_argument(
        "--rate-limit",
        type=rate_limit,
        default=1200,
        metavar="N|off",
        help="request weight per minute per client (default: 1200, the venue's); off: none",
    )
    return sim


def run(args: argparse.Namespace) -> int:
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO,
            format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
            datefmt="%H:%M:%S",
        )
    options = bootstrap.ServeOptions(
        host=args.host,
        port=args.port,
        funds=list(args.fund),
        vaults=list(args.vault),
        state_dir=args.state,
        seed=args.seed,
        weight_per_minute=args.rate_limit,
    )

    def ready(url: str) -> None:
        sys.stdout.write(f"simulator listening on {url}\n")
        sys.stdout.flush()

    try:
        bootstrap.serve_simulator(options, ready=ready)
    except (OSError, ValueError) as exc:  # port taken, unreadable state, unknown coin
        sys.stderr.write(f"nof0 sim serve: {exc}\n")
        return 1
    return 0
