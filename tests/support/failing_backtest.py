"""Worker jobs for ``backtest --workers`` tests (module level: a spawn process imports them
by name): one that fails for a chosen trader, and one that never finishes on its own."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from infrastructure import bootstrap

#: The trader whose worker fails.
FAILING = "btc-hold"


def fail_for_one_trader(
    config: bootstrap.LoadedConfig,
    plan: bootstrap.BacktestPlan,
    progress: Callable[[bootstrap.Progress], None],
) -> bootstrap.BacktestResult:
    """The worker with ``FAILING`` raises at once; the others hang (until stopped), so a
    run that waited for them instead of stopping them would time out."""
    if FAILING in plan.traders:
        raise RuntimeError(f"the venue of {FAILING} is on fire")
    time.sleep(600)
    return bootstrap.run_backtest(config, plan, progress)


def die_for_one_trader(
    config: bootstrap.LoadedConfig,
    plan: bootstrap.BacktestPlan,
    progress: Callable[[bootstrap.Progress], None],
) -> bootstrap.BacktestResult:
    """The worker with ``FAILING`` dies without a word (as if killed); the others hang."""
    if FAILING in plan.traders:
        os._exit(3)
    time.sleep(600)
    return bootstrap.run_backtest(config, plan, progress)
