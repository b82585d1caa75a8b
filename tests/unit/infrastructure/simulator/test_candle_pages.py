"""The simulator's own candles answer like the venue's time-range queries: at most 500 rows,
the oldest first, so a client pages by the last open time; the history downloader does."""

from __future__ import annotations

from pathlib import Path

from infrastructure.hyperliquid.transport import InProcessTransport
from infrastructure.market.download import HistoryDownloader
from infrastructure.market.history import HistoryStore
from infrastructure.simulator.candles import MAX_ROWS
from tests.unit.infrastructure.simulator.simkit import T0, prices, venue

MINUTE = 60_000


def test_answers_are_capped_and_the_downloader_pages_through_them(tmp_path: Path) -> None:
    sim = venue()
    for n in range(1, 1201):
        sim.advance(T0 + n * MINUTE, prices({"ETH": f"{2000 + n % 50}"}))
    request = {"coin": "ETH", "interval": "1m", "startTime": T0, "endTime": T0 + 1200 * MINUTE}
    rows = sim.info({"type": "candleSnapshot", "req": request})
    assert len(rows) == MAX_ROWS
    assert [r["t"] for r in rows] == [T0 + n * MINUTE for n in range(MAX_ROWS)]

    seen: list[dict[str, object]] = []

    def handler(path: str, body: object) -> tuple[int, object]:
        assert isinstance(body, dict)
        seen.append(body)
        return 200, sim.info(body)

    store = HistoryStore.open(tmp_path)
    downloader = HistoryDownloader(
        InProcessTransport(handler), store, now_ms=lambda: T0 + 1200 * MINUTE + 30_000
    )
    done = downloader.candles("ETH", "1m", T0, T0 + 1200 * MINUTE)
    starts = [b["req"]["startTime"] for b in seen]  # type: ignore[index]
    assert starts == [T0, T0 + 500 * MINUTE, T0 + 1000 * MINUTE]
    assert done.stored == 1200  # the one still forming (T0 + 1200 min) is not stored
    stored = store.raw_candles("ETH", "1m")
    assert [r.open_time_ms for r in stored] == [T0 + n * MINUTE for n in range(1200)]
    assert stored[1].open == rows[1]["o"]
    store.close()
