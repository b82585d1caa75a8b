"""Hyperliquid's perpetual metadata for the arena's default universe.

The live venue's ``meta`` is authoritative at run time (the adapter reads it at start-up);
this table serves configuration checks and the views, which must work offline.
"""

from __future__ import annotations

from domain.risk import AssetRules

HYPERLIQUID_ASSETS: dict[str, AssetRules] = {
    "BTC": AssetRules("BTC", sz_decimals=5, max_leverage=40),
    "ETH": AssetRules("ETH", sz_decimals=4, max_leverage=25),
    "SOL": AssetRules("SOL", sz_decimals=2, max_leverage=20),
    "BNB": AssetRules("BNB", sz_decimals=3, max_leverage=10),
    "DOGE": AssetRules("DOGE", sz_decimals=0, max_leverage=10),
    "XRP": AssetRules("XRP", sz_decimals=0, max_leverage=20),
}
