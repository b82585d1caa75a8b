"""When a venue is failing, and when it is healthy again (the seed: 5 % of requests).

A verdict needs evidence: with fewer than ``min_requests`` in the window the venue is
neither failing nor passing, so a venue that nobody asks anything keeps its state.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

PAPER_SUFFIX = ".paper"


def paper_twin_id(config_id: str) -> str:
    """The config id of the paper twin that decides for ``config_id`` while its venue fails."""
    return f"{config_id}{PAPER_SUFFIX}"


def is_paper_twin(config_id: str) -> bool:
    return config_id.endswith(PAPER_SUFFIX)


def real_trader_id(config_id: str) -> str:
    """The configured trader a paper twin decides for (itself for a configured trader)."""
    return config_id.removesuffix(PAPER_SUFFIX)


class VenueHealth(Protocol):
    """The outcomes of a venue's recent requests (``FailureWindow`` in the metrics)."""

    @property
    def requests(self) -> int: ...

    def ratio(self) -> float: ...


@dataclass(frozen=True)
class HealthPolicy:
    max_failure_pct: Decimal = Decimal(5)
    min_requests: int = 20

    def failing(self, health: VenueHealth) -> bool:
        return health.requests >= self.min_requests and self._pct(health) > self.max_failure_pct

    def passing(self, health: VenueHealth) -> bool:
        return health.requests >= self.min_requests and self._pct(health) <= self.max_failure_pct

    @staticmethod
    def _pct(health: VenueHealth) -> Decimal:
        return Decimal(str(health.ratio())) * 100
