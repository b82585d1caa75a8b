"""What a simulated venue is made of: its assets, its synthetic book and its fee/limit settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType


@dataclass(frozen=True)
class SimAsset:
    name: str
    sz_decimals: int
    max_leverage: int
    only_isolated: bool = False


#: Index = Hyperliquid asset id, in the order of ``info_meta_trimmed_composed.json``.
DEFAULT_UNIVERSE: tuple[SimAsset, ...] = (
    SimAsset("BTC", 5, 40),
    SimAsset("ETH", 4, 25),
    SimAsset("SOL", 2, 20),
    SimAsset("BNB", 3, 10),
    SimAsset("DOGE", 0, 10),
    SimAsset("XRP", 0, 20),
)


@dataclass(frozen=True)
class BookModel:
    """Synthetic depth around the mid.

    The best bid/ask sit ``spread_bps / 2`` from the mid; each deeper level is ``step_bps``
    further and ``growth`` times bigger. Level notional comes from ``level_usd`` (key ``"*"``
    is the default for unlisted coins); ``jitter`` scales seeded uniform noise on sizes.
    """

    spread_bps: Decimal = Decimal(1)
    levels: int = 20
    step_bps: Decimal = Decimal(1)
    level_usd: Mapping[str, Decimal] = field(
        hash=False,  # a mapping is unhashable; the config stays usable as a key
        default_factory=lambda: MappingProxyType(
            {
                "BTC": Decimal(250_000),
                "ETH": Decimal(150_000),
                "SOL": Decimal(60_000),
                "*": Decimal(25_000),
            }
        ),
    )
    growth: Decimal = Decimal("1.15")
    jitter: Decimal = Decimal("0.3")
    #: The half-spread scaled by (1 + spread_jitter × u), u seeded per price update.
    spread_jitter: Decimal = Decimal(0)

    def usd_for(self, coin: str) -> Decimal:
        return self.level_usd.get(coin, self.level_usd.get("*", Decimal(25_000)))


DEFAULT_DUPLICATE_CLOID_ERROR = "Duplicate cloid: an open order already uses this client order id."


@dataclass(frozen=True)
class SimConfig:
    universe: tuple[SimAsset, ...] = DEFAULT_UNIVERSE
    taker_fee: Decimal = Decimal("0.00045")
    maker_fee: Decimal = Decimal("0.00015")
    funding_rate: Decimal = Decimal("0.0000125")  # hourly, used when no rate is fed
    book: BookModel = field(default_factory=BookModel)
    seed: int = 0
    max_open_orders: int = 1000
    schedule_cancel_min_volume: Decimal = Decimal(0)
    fills_kept: int = 10_000
    duplicate_cloid_error: str = DEFAULT_DUPLICATE_CLOID_ERROR
    orders_kept: int = 10_000  # terminal orders remembered per account (orderStatus, history)
    funding_kept: int = 10_000  # funding rows kept per account and per coin
