"""``nof0 check``: every problem printed at once, or OK and a summary of the arena."""

from __future__ import annotations

from pathlib import Path

import pytest

from interfaces.cli import main
from tests.support.workspace import REPO, Workspace

SHIPPED = REPO / "etc" / "nof0.yaml"
VARIABLES = (
    "ZENMUX_API_KEY",
    "Postgres__DataSource",
    "Cache__0__Host",
    "Cache__0__Pass",
    "Cache__0__Tls",
    "NOF0_CONFIG",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """``nof0 check`` reads os.environ: the shipped config must pass without any key."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


def check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str]]:
    code = main(["check", *args])
    return code, capsys.readouterr().out.splitlines()


def problem_lines(out: list[str]) -> list[str]:
    return [line for line in out if line.startswith("  - ")]


def one_line_with(out: list[str], *fragments: str) -> str:
    found = [line for line in problem_lines(out) if all(f in line for f in fragments)]
    assert len(found) == 1, f"no single problem line with {fragments}:\n" + "\n".join(out)
    return found[0]


# -- five mistakes --------------------------------------------------------------------------


def break_four_cross_file_rules(ws: Workspace) -> None:
    """An unknown exchange provider, too much allocated, an old template, a model with no key."""
    random_walk = (
        "    name: Seeded random (control for luck)\n    exchange_provider: paper_trading\n"
    )
    ws.replace("manager.yaml", random_walk, random_walk.replace("paper_trading", "paper"))
    ws.replace(
        "manager.yaml",
        "    allocation_pct: 30\n    auto_start",
        "    allocation_pct: 40\n    auto_start",
    )
    old = (ws.prompts / "user.j2").read_text(encoding="utf-8").replace("v1.0.0", "v0.9.0", 1)
    (ws.prompts / "user_v09.j2").write_text(old, encoding="utf-8")
    ws.replace(
        "manager.yaml",
        'user.j2\n    model: "baseline:btc_hold"',
        'user_v09.j2\n    model: "baseline:btc_hold"',
    )
    ws.replace("manager.yaml", 'model: "baseline:ema_cross"', "model: gpt-5")


def assert_four_cross_file_problems(ws: Workspace, out: list[str]) -> None:
    line = one_line_with(out, "traders[1].exchange_provider")
    assert line.startswith(f"  - {ws.where('manager.yaml', 'exchange_provider: paper')}: ")
    assert "unknown exchange provider 'paper'" in line
    assert "(expected one of paper_trading (exchange.yaml))" in line

    line = one_line_with(out, "manager.yaml", ": traders: ")
    assert "allocation_pct sums to 100" in line
    assert "reserve_equity_pct (10) = 90" in line
    assert "(expected a sum of at most 90)" in line

    line = one_line_with(out, "traders[2].executor_prompt_template")
    assert line.startswith(f"  - {ws.where('manager.yaml', 'user_v09.j2')}: ")
    assert "user_v09.j2 declares Version v0.9.0" in line
    assert "(expected v1.0.0 (executor.yaml prompt_schema_version))" in line

    line = one_line_with(out, "models.gpt-5.api_key")
    assert line.startswith(f"  - {ws.file('llm.yaml')}:")
    assert "trader 'ema-cross' uses model 'gpt-5', which has no API key" in line
    assert "(expected set ${ZENMUX_API_KEY})" in line


def test_five_mistakes_in_several_files_are_all_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's acceptance test: one run of ``nof0 check`` lists all five mistakes."""
    ws = Workspace(tmp_path / "arena")
    break_four_cross_file_rules(ws)
    # ... and a provider without retry (market.yaml).
    ws.replace("market.yaml", "    retry:\n      max_attempts: 1\n      backoff: 0s\n", "")

    code, out = check(capsys, "--config", str(ws.main))

    assert code != 0
    line = one_line_with(out, "providers.replay.retry")
    assert line.startswith(f"  - {ws.file('market.yaml')}:")
    assert "missing required field" in line
    assert_four_cross_file_problems(ws, out)
    assert out[0] == f"{ws.main}: 5 problem(s)"
    assert len(problem_lines(out)) == 5


def test_five_cross_file_mistakes_are_all_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = Workspace(tmp_path / "arena")
    break_four_cross_file_rules(ws)
    ws.replace("exchange.yaml", "capabilities: [", "capabilities: [teleport, ")

    code, out = check(capsys, "--config", str(ws.main))

    assert code == 1
    assert out[0] == f"{ws.main}: 5 problem(s)"
    assert len(problem_lines(out)) == 5
    assert_four_cross_file_problems(ws, out)
    line = one_line_with(out, "providers.paper_trading.capabilities")
    assert line.startswith(f"  - {ws.where('exchange.yaml', 'teleport')}: ")
    assert "unknown capabilities teleport" in line
    assert "OK" not in "\n".join(out)


def test_schema_errors_in_several_files_are_all_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = Workspace(tmp_path / "arena")
    ws.replace("executor.yaml", "max_positions: 4", "max_postions: 4")
    ws.replace("exchange.yaml", "    timeout: 5s\n    retry:", "    retry:")
    ws.replace("llm.yaml", "    temperature: 0.6", "    temperature: 3")

    code, out = check(capsys, "--config", str(ws.main))

    assert code == 1
    assert len(problem_lines(out)) == 3
    line = one_line_with(out, "max_postions")
    assert (
        line
        == f"  - {ws.where('executor.yaml', 'max_postions')}: max_postions: unknown field (a typo?)"
    )
    assert "missing required field" in one_line_with(out, "providers.paper_trading.timeout")
    line = one_line_with(out, "models.deepseek-chat.temperature")
    assert line.startswith(f"  - {ws.where('llm.yaml', 'temperature: 3')}: ")
    assert "got 3" in line


# -- the shipped configuration ------------------------------------------------------------


def test_the_shipped_config_is_ok_and_summarised(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = check(capsys, "--config", str(SHIPPED))

    assert code == 0
    assert out[0] == f"{SHIPPED}: OK"
    summary = "\n".join(out[1:])
    assert f"data directory: {REPO / 'data'}" in summary
    assert "event store: SQLite" in summary
    assert "prompt schema: v1.0.0" in summary
    traders = [line.strip() for line in out if line.strip().startswith("trader ")]
    assert len(traders) == 3
    assert traders[0].startswith("trader ema-cross: model baseline:ema_cross, 3000.00 USD")
    assert traders[1].startswith("trader random-walk: model baseline:random, 3000.00 USD")
    assert traders[2].startswith("trader btc-hold: model baseline:btc_hold, 3000.00 USD")
    assert "every 0:15:00" in traders[2]
    assert traders[2].endswith("coins BTC")


def test_the_default_config_is_etc_nof0_yaml(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    code, out = check(capsys)
    assert code == 0
    assert out[0] == "etc/nof0.yaml: OK"


def test_the_data_dir_appears_in_the_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "second-arena"
    code, out = check(capsys, "--config", str(SHIPPED), "--data-dir", str(data))
    assert code == 0
    assert f"  data directory: {data}" in out
    assert f"  event store: SQLite ({data / 'events.sqlite3'})" in out


def test_the_paper_live_profile_needs_its_key(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = str(REPO / "etc" / "paper-live" / "nof0.yaml")
    code, out = check(capsys, "--config", config)
    assert code == 1
    assert out[0] == f"{config}: 3 problem(s)"
    for model in ("gpt-5", "claude-sonnet-4.5", "deepseek-chat"):
        line = one_line_with(out, f"models.{model}.api_key")
        assert "(expected set ${ZENMUX_API_KEY})" in line

    monkeypatch.setenv("ZENMUX_API_KEY", "sk-test")
    code, out = check(capsys, "--config", config)
    assert code == 0
    assert out[0] == f"{config}: OK"
    assert "sk-test" not in "\n".join(out)


# -- a config that cannot be read ------------------------------------------------------------


def test_a_missing_config_file_is_reported_not_raised(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere" / "nof0.yaml"
    code, out = check(capsys, "--config", str(missing))
    assert code == 1
    assert out[0] == f"{missing}: 1 problem(s)"
    [line] = problem_lines(out)
    assert str(missing) in line
    assert "file not found" in line
    assert "(expected an existing YAML file)" in line


def test_a_directory_given_as_config_is_reported_not_raised(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = check(capsys, "--config", str(tmp_path))
    assert code == 1
    [line] = problem_lines(out)
    assert "cannot read the file" in line


def test_a_config_with_invalid_yaml_is_reported_not_raised(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = Workspace(tmp_path / "arena")
    ws.replace("nof0.yaml", "Port: 8888", "Port: [8888")
    code, out = check(capsys, "--config", str(ws.main))
    assert code == 1
    [line] = problem_lines(out)
    assert line.startswith(f"  - {ws.main}:")
    assert "invalid YAML" in line


# -- stranded positions ---------------------------------------------------------------------


def test_check_names_traders_with_positions_that_no_started_trader_manages(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.support.arena import OfflineArena

    ws = Workspace(tmp_path / "arena")
    data = tmp_path / "data"
    arena = OfflineArena.open(data, config_path=ws.main)
    arena.run_sync(minutes=6 * 60)
    holders = [t for t in arena.engine.arena.trader_ids if arena.engine.app.get_trader(t).positions]
    assert holders, "someone holds a position after six hours"
    code, out = check(capsys, "--config", str(ws.main), "--data-dir", str(data))
    assert code == 0
    assert not [line for line in out if "warning: trader" in line], "all are managed"

    index = arena.engine.arena.trader_ids.index(holders[0])
    ws.set("manager.yaml", ("traders", index, "auto_start"), False)
    code, out = check(capsys, "--config", str(ws.main), "--data-dir", str(data))
    (line,) = [line for line in out if "warning: trader" in line]
    assert holders[0] in line
    assert "auto_start is false" in line
    assert f"nof0 traders flatten {holders[0]}" in line
