"""Run the shipped offline arena deterministically (a manual clock, ticks driven by the test)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infrastructure import bootstrap
from infrastructure.clock import ManualClock

REPO = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = REPO / "etc" / "nof0.yaml"
#: The nine nof1 routes (analytics/{modelId} for one of the shipped traders).
ROUTES = (
    "/api/account-totals",
    "/api/analytics",
    "/api/analytics/ema-cross",
    "/api/crypto-prices",
    "/api/leaderboard",
    "/api/since-inception-values",
    "/api/trades",
    "/api/positions",
    "/api/conversations",
)


@dataclass
class OfflineArena:
    config: bootstrap.LoadedConfig
    engine: bootstrap.Engine
    clock: ManualClock

    @classmethod
    def open(
        cls,
        data_dir: Path,
        *,
        config_path: Path = DEFAULT_CONFIG,
        env: dict[str, str] | None = None,
    ) -> OfflineArena:
        config = bootstrap.load_config(config_path, data_dir=data_dir, env=env or {})
        start = config.market.providers[config.market.default]
        clock = ManualClock(start.start)  # type: ignore[union-attr]
        engine = bootstrap.build_engine(config, clock=clock)
        return cls(config, engine, clock)

    async def run(self, minutes: int, *, step_s: float = 60.0) -> None:
        """Start (register, resume, reconcile), then tick for ``minutes`` simulated minutes."""
        await self.engine.start()
        steps = int(minutes * 60 / step_s)
        for _ in range(steps):
            self.clock.advance(step_s)
            await self.engine.arena.tick()
            await self.engine.arena.drain()

    def project(self) -> None:
        """Bring every view target (JSON files, Redis when configured) up to date."""
        for target in self.engine.worker.targets:
            while self.engine.worker.pump(target):
                pass
        tables = self.engine.worker.tables
        if tables is not None:
            while tables.pump():
                pass

    def run_sync(self, minutes: int) -> None:
        asyncio.run(self.run(minutes))
        self.project()

    def views_dir(self) -> Path:
        ns = bootstrap.namespaces(self.config)
        current = ns.current()
        assert current is not None
        return ns.directory(current)


def api_client(config: bootstrap.LoadedConfig) -> Any:
    """A Litestar test client over the real app reading this arena's views."""
    from litestar.testing import TestClient

    from interfaces.http.app import create_app

    app = create_app(lambda: bootstrap.build_readers(config), metrics=False)
    return TestClient(app)
