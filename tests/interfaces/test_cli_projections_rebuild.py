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


def test_a_given_store_rebuilds_in_one_process_only(tmp_path: Path) -> None:
    config = config_for(tmp_path / "data")
    app = bootstrap.open_app(config)
    # The children would reopen the store the configuration names, not necessarily this.
    with pytest.raises(ValueError, match="one process"):
        bootstrap.rebuild_projections(config, app=app, processes=2)
    assert bootstrap.rebuild_projections(config, app=app, processes=1).events == 0


@pytest.mark.postgres
def test_a_rebuild_process_reads_postgresql_over_one_connection(postgres_schema: str) -> None:
    from tests.conftest import POSTGRES_DSN

    config = bootstrap.load_config(
        DEFAULT_CONFIG,
        env={"Postgres__DataSource": POSTGRES_DSN, "Postgres__Schema": postgres_schema},
    )
    bootstrap.open_app(config).close()  # the tables, made by the engine
    reader = bootstrap.open_app(config, create_tables=False, pool_size=1)
    try:
        pool = reader.recorder.datastore.pool  # type: ignore[attr-defined]
        assert (pool.min_size, pool.max_size) == (1, 1)
        assert reader.max_position() == 0
    finally:
        reader.close()
