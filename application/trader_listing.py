"""What an operator is shown about the traders in a store: a row per configured trader,
and the stranded ones (holding positions that no configured, started trader manages)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from application.trading import TradingApp


def trader_rows(app: TradingApp, configured: Sequence[str]) -> list[dict[str, Any]]:
    """One row per configured trader, in the configuration's order (registered or not)."""
    rows: list[dict[str, Any]] = []
    for config_id in configured:
        trader = app.find_trader(config_id)
        if trader is None:
            rows.append({"id": config_id, "registered": False})
            continue
        rows.append(
            {
                "id": trader.config_id,
                "registered": True,
                "model": trader.model,
                "cycles": trader.cycle_no,
                "positions": sorted(trader.positions),
                "trades": trader.num_trades,
                "paused": trader.paused,
                "pause_reason": trader.pause_reason,
            }
        )
    return rows


def stranded_traders(
    app: TradingApp, configured: Iterable[str], started: Iterable[str]
) -> list[str]:
    """A warning per registered trader with positions that is not started: removed from
    the configuration or ``auto_start: false``. It places no new entry; its stops and
    targets stay on the venue; an operator closes them (``nof0 traders flatten``)."""
    known, running = set(configured), set(started)
    lines = []
    for config_id in app.registered_trader_ids():
        if config_id in running:
            continue
        trader = app.find_trader(config_id)
        if trader is None or not trader.positions:
            continue
        held = ", ".join(sorted(trader.positions))
        if config_id in known:
            fix = f"`nof0 traders flatten {config_id}` closes them"
            why = "auto_start is false"
        else:
            fix = "put it back in manager.yaml (auto_start: false) to flatten it"
            why = "not in manager.yaml"
        lines.append(
            f"warning: trader {config_id} ({why}) holds {held}: no new entries, its stops and "
            f"targets stay on the venue; {fix}"
        )
    return lines
