"""The ``performance_based`` allocation strategy, run by the arena at ``rebalance_interval``.

It reads each configured trader's KPIs from its books, applies :func:`domain.capital.rebalance`
and records every change as ``Trader.CapitalReallocated`` with the inputs that decided it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from application.trading import TradingApp
from domain.capital import CapitalPolicy, Reallocation, TraderKPIs, rebalance

log = logging.getLogger("nof0.engine")


@dataclass
class Rebalancer:
    app: TradingApp
    traders: Sequence[str]
    pool: Decimal  # total equity less the reserve
    interval_s: float
    policy: CapitalPolicy
    last_run: datetime | None = None

    def due(self, now: datetime) -> bool:
        return self.last_run is None or now - self.last_run >= timedelta(seconds=self.interval_s)

    def kpis(self) -> list[TraderKPIs]:
        rows = []
        for config_id in self.traders:
            trader = self.app.find_trader(config_id)
            if trader is None:
                continue
            account = trader.account(trader.marks)
            rows.append(
                TraderKPIs(
                    trader=config_id,
                    allocation=trader.allocation,
                    equity=account.equity,
                    peak_equity=trader.peak_equity,
                    margin_used=account.margin_used,
                    sharpe=trader.sharpe(),
                    returns=trader.returns_n,
                    model_cost=trader.model_cost,
                    net_pnl=account.equity - trader.allocation,
                )
            )
        return rows

    def run(self, now: datetime) -> list[Reallocation]:
        self.last_run = now
        changes = rebalance(self.kpis(), pool=self.pool, policy=self.policy)
        for change in changes:
            trader = self.app.get_trader(change.trader)
            trader.reallocate(change.allocation, change.inputs, now)
            self.app.save_trader(trader)
            log.info(
                "trader=%s capital %s → %s (score %s)",
                change.trader,
                change.previous,
                change.allocation,
                change.inputs["score"],
            )
        return changes
