"""Benchmark of the simulated venue: in-memory orders per second for alternating IOC market
orders (open long, close reduce-only), as an SDK ``market_open``/``market_close`` sends them
(5 % slippage limit). The price moves every 100 orders, which rebuilds the synthetic book.

``python -m tests.bench.sim_engine [N]``
"""

from __future__ import annotations

import sys
import time
from decimal import Decimal
from typing import Any

from infrastructure.simulator.engine import SimConfig, SimVenue

T0 = 1_790_000_000_000
USER = "0x" + "a1" * 20
BTC = 0


def _order(is_buy: bool, px: str, reduce_only: bool) -> dict[str, Any]:
    wire = {
        "a": BTC,
        "b": is_buy,
        "p": px,
        "s": "0.01",
        "r": reduce_only,
        "t": {"limit": {"tif": "Ioc"}},
    }
    return {"type": "order", "orders": [wire], "grouping": "na"}


def run(n: int) -> dict[str, float]:
    sim = SimVenue.open(SimConfig(), None)
    sim.fund(USER, Decimal(1_000_000))
    mids = (Decimal(80_000), Decimal(80_040))
    sim.advance(T0, {"BTC": mids[0]})
    buy, sell = _order(True, "84000", False), _order(False, "76000", True)
    filled = 0
    started = time.perf_counter()
    for i in range(n):
        if i % 100 == 99:
            sim.advance(T0 + i, {"BTC": mids[(i // 100) % 2]})
        response = sim.exchange(USER, buy if i % 2 == 0 else sell)
        filled += "filled" in response["response"]["data"]["statuses"][0]
    seconds = time.perf_counter() - started
    return {
        "orders": float(n),
        "filled": float(filled),
        "seconds": round(seconds, 3),
        "orders_per_s": round(n / seconds, 1),
    }


if __name__ == "__main__":
    print(run(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000))
