from __future__ import annotations

from pathlib import Path

from tests.support.arena import OfflineArena, api_client


def test_the_shipped_arena_trades_and_serves_all_views(tmp_path: Path) -> None:
    arena = OfflineArena.open(tmp_path)
    arena.run_sync(minutes=90)
    with api_client(arena.config) as client:
        board = client.get("/api/leaderboard").json()["leaderboard"]
        assert len(board) >= 3
        assert any(entry["num_trades"] > 0 for entry in board)
