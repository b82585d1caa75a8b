"""The write fence in a real PostgreSQL: a trader's events are stored only while this
engine holds the trader's lease; after another engine took it nothing is written."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from application.leases import LeaseKeeper, trader_lease
from application.trading import TradingApp
from domain.trader import Trader
from infrastructure.bootstrap import FENCED_RECORDER_TOPIC
from infrastructure.eventstore import APP_PREFIX
from infrastructure.fenced_recorder import FencedPostgresRecorder, lease_fence
from infrastructure.leases import PostgresLeaseStore
from tests.conftest import POSTGRES_DSN

pytestmark = pytest.mark.postgres
AT = datetime(2026, 12, 7, tzinfo=UTC)


def test_events_are_refused_once_another_engine_holds_the_lease(
    postgres_env: dict[str, str], postgres_schema: str
) -> None:
    env = {**postgres_env, f"{APP_PREFIX}_APPLICATION_RECORDER_TOPIC": FENCED_RECORDER_TOPIC}
    app = TradingApp(env=env)
    recorder = app.recorder
    assert isinstance(recorder, FencedPostgresRecorder)
    leases = PostgresLeaseStore(POSTGRES_DSN, postgres_schema)
    keeper = LeaseKeeper(leases, "one", ("alpha",), ttl=30)
    keeper.tick()
    recorder.fence = lease_fence(keeper, ["alpha"], [])
    trader = Trader.register(
        config_id="alpha", name="alpha", model="m", allocation=Decimal(100), coins=["BTC"], at=AT
    )
    app.save_trader(trader)  # held: stored
    assert app.get_trader("alpha").allocation == Decimal(100)

    # Another engine takes the lease (as after this one stalled past its ttl).
    held = keeper.held[trader_lease("alpha")]
    leases.release(held)
    other = PostgresLeaseStore(POSTGRES_DSN, postgres_schema)
    assert other.acquire(trader_lease("alpha"), "two", 30) is not None
    trader.allocate(Decimal(500), AT)
    with pytest.raises(Exception, match="nof0 lease lost"):
        app.save_trader(trader)
    fresh = TradingApp(env=env)
    assert fresh.get_trader("alpha").allocation == Decimal(100)  # nothing of it was stored
