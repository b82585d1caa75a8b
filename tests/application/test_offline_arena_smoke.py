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


def test_the_prompts_sharpe_is_the_views_sharpe(tmp_path: Path) -> None:
    """The ratio a trader is shown in its prompt is the one the leaderboard shows."""
    arena = OfflineArena.open(tmp_path)
    arena.run_sync(minutes=8 * 60)
    with api_client(arena.config) as client:
        board = {e["id"]: e["sharpe"] for e in client.get("/api/leaderboard").json()["leaderboard"]}
    traders = {t: arena.engine.app.get_trader(t) for t in board}
    assert any(s != 0 for s in board.values())
    for trader_id, sharpe in board.items():
        assert traders[trader_id].sharpe() == sharpe
