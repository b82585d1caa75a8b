"""A backtest with an LLM trader on the local OpenAI-compatible fake: the cost estimate
comes first, nothing is spent without consent, and a re-run asks the model nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from interfaces.cli import main
from tests.e2e.test_llm_arena import llm_workspace, model, strategy
from tests.support.archive import SERVER_VARIABLES
from tests.support.fake_llm import FakeLLMServer

BTC = "data/candles/BTC-PERP_FTX_1m_2021-12-31_2022-02-01.csv"
WINDOW = ("--from", "2022-01-13T00:00Z", "--to", "2022-01-13T01:00Z")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SERVER_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_an_llm_backtest_estimates_first_and_a_rerun_calls_no_model(
    shared_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    candles = f"BTC={shared_dir / BTC}"
    with FakeLLMServer(responder=strategy) as server:
        ws = llm_workspace(tmp_path, {"fake-gpt": model(server.url_openai, 1)}, "fake-gpt", [])

        def backtest(out: str, *extra: str) -> int:
            return main(
                [
                    "backtest",
                    "--config",
                    str(ws.main),
                    *WINDOW,
                    "--candles",
                    candles,
                    "--traders",
                    "random-walk",
                    "--out",
                    str(tmp_path / out),
                    *extra,
                ]
            )

        # Not a terminal and no --yes: the estimate, then a refusal; no model is asked.
        assert backtest("refused") == 1
        err = capsys.readouterr().err
        assert "random-walk (fake-gpt): up to 21 model calls" in err
        assert "pass --yes to run it" in err
        assert server.request_count == 0
        assert backtest("capped", "--yes", "--max-cost", "0.000001") == 1
        assert "is over --max-cost" in capsys.readouterr().err
        assert server.request_count == 0

        # Replicas' prompts differ (their fills do): the estimate is per replica, times N.
        assert backtest("replicas", "--seeds", "3") == 1
        assert "up to 63 model calls" in capsys.readouterr().err
        assert server.request_count == 0

        assert backtest("first", "--yes") == 0
        asked = server.request_count
        assert asked >= 15
        assert backtest("again", "--yes") == 0
        assert server.request_count == asked  # every answer came from the prompt cache
        # A counterfactual that puts ema-cross on the paid model asks first, too.
        change = ["--model", "fake-gpt", "--trader", "ema-cross", "--config", str(ws.main)]
        baseline_run = tmp_path / "baselines"
        assert (
            main(
                [
                    "backtest",
                    "--config",
                    str(ws.main),
                    *WINDOW,
                    "--candles",
                    candles,
                    "--traders",
                    "ema-cross",
                    "--out",
                    str(baseline_run),
                ]
            )
            == 0
        )
        assert main(["replay", "run", str(baseline_run), *change]) == 1
        err = capsys.readouterr().err
        assert "ema-cross (fake-gpt): up to 21 model calls" in err
        assert "replay run refused: it would call paid models" in err
        assert server.request_count == asked
    first, again = (
        json.loads((tmp_path / name / "backtest.json").read_text()) for name in ("first", "again")
    )
    assert first["fingerprint"] == again["fingerprint"]
    assert first["trades"] > 0
