"""The gates' memory files: written atomically per trader, read back; a damaged file or an
unwritable directory is logged and costs only the memory."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from infrastructure.trigger_store import FileGateMemory


def test_a_saved_memory_is_read_back_per_trader(tmp_path: Path) -> None:
    memory = FileGateMemory(tmp_path / "triggers")
    memory.save("alpha", {"version": 1, "reference": {"BTC": 100000.5}})
    memory.save("beta~paper", {"version": 1})
    assert memory.load("alpha") == {"version": 1, "reference": {"BTC": 100000.5}}
    assert memory.load("beta~paper") == {"version": 1}
    assert memory.load("gamma") is None
    assert sorted(p.name for p in (tmp_path / "triggers").iterdir()) == [
        "alpha.json",
        "beta_paper.json",
    ]


def test_a_damaged_file_is_logged_and_not_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    memory = FileGateMemory(tmp_path)
    memory.path("alpha").write_text('{"version": 1, "coi')
    memory.path("beta").write_text("[1, 2]")
    with caplog.at_level(logging.WARNING, logger="nof0.triggers"):
        assert memory.load("alpha") is None
        assert memory.load("beta") is None
    assert "alpha.json unreadable" in caplog.text
    assert "beta.json is not an object" in caplog.text


def test_an_unwritable_directory_is_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "triggers"
    blocker.write_text("a file where the directory should be")
    memory = FileGateMemory(blocker)
    with caplog.at_level(logging.WARNING, logger="nof0.triggers"):
        memory.save("alpha", {"version": 1})
        memory.save("alpha", {"version": 1})
    assert caplog.text.count("not written") == 1
    assert memory.load("alpha") is None
