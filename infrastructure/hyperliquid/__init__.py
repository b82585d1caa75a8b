"""Hyperliquid: the transport, the exchange adapter and the market data provider.

The same adapter trades on the real venue and on the simulator (``nof0 sim serve`` or the
in-process venue), so the code that runs in paper trading is the code that runs live.
"""
