"""``nof0 projections rebuild --processes N``: the views reduced side by side in N
processes are the views one process writes; a count below one is refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from infrastructure import bootstrap
from tests.support.archive import SERVER_VARIABLES, cli, views
from tests.support.arena import DEFAULT_CONFIG, OfflineArena


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SERVER_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def config_for(data_dir: Path) -> bootstrap.LoadedConfig:
    return bootstrap.load_config(DEFAULT_CONFIG, data_dir=data_dir, env={})


def test_several_processes_rebuild_the_views_one_process_writes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arena = OfflineArena.open(tmp_path / "one")
    arena.run_sync(minutes=45)
    shutil.copytree(tmp_path / "one", tmp_path / "three")
    assert (
        cli("projections", "rebuild", "--data-dir", str(tmp_path / "one"), "--processes", "1") == 0
    )
    assert (
        cli("projections", "rebuild", "--data-dir", str(tmp_path / "three"), "--processes", "3")
        == 0
    )
    out = capsys.readouterr().out
    assert sum(line.startswith("rebuilt ") for line in out.splitlines()) == 2
    one, three = views(config_for(tmp_path / "one")), views(config_for(tmp_path / "three"))
    assert len(one) > 5
    assert one == three


def test_fewer_than_one_process_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli("projections", "rebuild", "--data-dir", str(tmp_path), "--processes", "0") == 2
    assert "--processes must be at least 1" in capsys.readouterr().err
