"""Read a run's view documents (a backtest's directory or an arena's data directory)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import msgspec

from infrastructure.views.jsonfile import Namespaces
from projections.documents import (
    AccountTotalsDocument,
    AnalyticsDocument,
    PositionsDocument,
    TradesDocument,
)

T = TypeVar("T")


class ReportError(Exception):
    """The run cannot be reported on; the message says why and what to do."""


@dataclass(frozen=True)
class RunDocuments:
    account_totals: AccountTotalsDocument
    trades: TradesDocument
    analytics: AnalyticsDocument | None


def _decode(directory: Path, filename: str, kind: type[T], *, required: bool = True) -> T | None:
    path = directory / filename
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if required:
            raise ReportError(
                f"{path} is missing: the views have not been written yet (run the arena or "
                "the backtest first, or 'nof0 projections rebuild')"
            ) from None
        return None
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.DecodeError as exc:
        raise ReportError(f"{path} could not be read: {exc}") from exc


def read_positions(data_dir: Path) -> PositionsDocument | None:
    """The run's open positions at its end (None: no views or no positions view)."""
    namespaces = Namespaces(data_dir / "views")
    current = namespaces.current()
    if current is None:
        return None
    return _decode(
        namespaces.directory(current), "positions.json", PositionsDocument, required=False
    )


def read_run(data_dir: Path) -> RunDocuments:
    if not data_dir.is_dir():
        raise ReportError(f"{data_dir} is not a directory (give a run's data directory)")
    namespaces = Namespaces(data_dir / "views")
    current = namespaces.current()
    if current is None:
        raise ReportError(f"{data_dir} has no views (expected {data_dir / 'views' / 'CURRENT'})")
    directory = namespaces.directory(current)
    account_totals = _decode(directory, "account-totals.json", AccountTotalsDocument)
    trades = _decode(directory, "trades.json", TradesDocument)
    if account_totals is None or trades is None:  # pragma: no cover - required ones raise
        raise ReportError(f"{directory} lacks the account rows or the trades")
    analytics = _decode(directory, "analytics.json", AnalyticsDocument, required=False)
    return RunDocuments(account_totals, trades, analytics)
