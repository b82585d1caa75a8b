"""``nof0 sim serve``: the simulated venue over HTTP, priced by a wall-clock synthetic feed.

Funding: each ``--fund ADDRESS:USDC`` account is funded **once**, when the venue has never
seen it (no account, no agent). A restarted server with the same ``--state`` directory does
not fund it again, so a restart never adds money behind the traders' backs; to give an
account more, use another state directory (or another address).

Prices: with a state directory the feed's seed and anchor are kept in ``feed.json`` there, so
a restarted server continues the same price path (the tape is as long as it needs to be)
instead of jumping back to the anchor prices under open positions. A different ``--seed``
starts a new path anchored at the restart.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import FrameType

from infrastructure.simulator.config import DEFAULT_UNIVERSE, SimConfig
from infrastructure.simulator.engine import SimVenue
from infrastructure.simulator.feed import FeedThread, SyntheticFeed, wall_ms
from infrastructure.simulator.gateway import SimGateway
from infrastructure.simulator.server import SimServer

log = logging.getLogger("nof0.sim")

DEFAULT_COINS: tuple[str, ...] = tuple(asset.name for asset in DEFAULT_UNIVERSE)
FEED_FILE = "feed.json"


@dataclass
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 3001
    funds: list[tuple[str, Decimal]] = field(default_factory=list)
    vaults: list[tuple[str, str]] = field(default_factory=list)  # (vault, leader)
    state_dir: Path | None = None
    seed: int = 7
    coins: tuple[str, ...] = DEFAULT_COINS
    history_days: int = 14
    weight_per_minute: int | None = 1200  # None: no rate limit
    feed_period_s: float = 1.0


def _feed_anchor(options: ServeOptions) -> int | None:
    """The saved anchor of this seed's price path, if the state directory has one."""
    if options.state_dir is None:
        return None
    path = options.state_dir / FEED_FILE
    try:
        saved = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except ValueError:
        log.warning("%s is unreadable; the price path starts afresh", path)
        return None
    if not isinstance(saved, dict) or saved.get("seed") != options.seed:
        return None
    anchor = saved.get("anchor_ms")
    return anchor if isinstance(anchor, int) and not isinstance(anchor, bool) else None


def _save_feed(options: ServeOptions, feed: SyntheticFeed) -> None:
    if options.state_dir is None:
        return
    path = options.state_dir / FEED_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"seed": feed.seed, "anchor_ms": feed.anchor_ms}))
    tmp.replace(path)


def open_gateway(options: ServeOptions) -> tuple[SimGateway, SyntheticFeed]:
    """The venue (loaded from the state directory if any), funded and configured, with its
    feed attached and priced at the wall clock's now."""
    unknown = [coin for coin in options.coins if coin not in DEFAULT_COINS]
    if unknown:
        raise ValueError(f"the simulator does not list {', '.join(unknown)}")
    venue = SimVenue.open(SimConfig(seed=options.seed), options.state_dir)
    gateway = SimGateway(venue, weight_per_minute=options.weight_per_minute)
    feed = SyntheticFeed(
        options.coins,
        options.seed,
        history_days=options.history_days,
        start_ms=_feed_anchor(options),
    )
    _save_feed(options, feed)
    gateway.set_candle_source(feed.candles)
    now = max(wall_ms(), gateway.now_ms)
    gateway.advance(now, feed.mids(now), funding_rates=feed.funding_rates(now))
    for address, usdc in options.funds:
        if gateway.resolve_signer(address) is None:
            gateway.fund(address, usdc)
            log.info("funded %s with %s USDC", address.lower(), usdc)
        else:
            log.info("%s is known to the venue: not funded again", address.lower())
    for vault, leader in options.vaults:
        gateway.set_vault_leader(vault, leader)
    return gateway, feed


@contextmanager
def _signals_set(stop: threading.Event) -> Iterator[None]:
    """SIGINT/SIGTERM set ``stop`` while serving (only the main thread can catch signals)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def serve(
    options: ServeOptions,
    *,
    stop: threading.Event | None = None,
    ready: Callable[[str], None] | None = None,
) -> None:
    """Serve until ``stop`` is set (or SIGINT/SIGTERM in the main thread); ``ready(url)`` is
    called once the server accepts requests."""
    stop = stop or threading.Event()
    gateway, feed = open_gateway(options)
    ticker = FeedThread(gateway, feed, options.feed_period_s)
    server = SimServer(gateway, options.host, options.port)
    with _signals_set(stop):
        ticker.start()
        try:
            url = server.start()
            try:
                if ready is not None:
                    ready(url)
                while not stop.wait(0.5):  # short waits: signal handlers run in between
                    pass
            finally:
                server.stop()
        finally:
            ticker.stop()
    log.info("simulator stopped")
