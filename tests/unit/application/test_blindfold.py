"""The blindfold: coin names and dates masked in the prompt, the answer's aliases back."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from application.blindfold import Blindfold
from application.ports import RenderedPrompt


def test_coins_and_dates_are_masked_and_aliases_come_back() -> None:
    blind = Blindfold(["BTC", "ETH", "ETHFI"])
    masked = blind.mask(
        "Now 2025-10-17 14:03:09 UTC. BTC, ETHFI and ETH-PERP; entry 2025-10-15T08:00:00Z. XBTC",
        date(2025, 10, 17),
    )
    assert masked == (
        "Now day 0 14:03:09 UTC. ASSET1, ASSET3 and ASSET2-PERP; entry day -2 08:00:00Z. XBTC"
    )
    answer = '{"ASSET1": {"signal": "hold"}, "ASSET3": {"signal": "close"}, "ASSET9": {}}'
    assert blind.unmask(answer) == (
        '{"BTC": {"signal": "hold"}, "ETHFI": {"signal": "close"}, "ASSET9": {}}'
    )


def test_a_blindfolded_prompt_has_its_own_digest_and_names_no_coin() -> None:
    prompt = RenderedPrompt("t", "v", "v1.0.0", "trade BTC", "BTC at 2024-03-01 00:00", "d")
    blind = Blindfold(["BTC"]).prompt(prompt, datetime(2024, 3, 1, tzinfo=UTC))
    assert "BTC" not in blind.system + blind.user
    assert "2024" not in blind.user
    assert blind.digest != prompt.digest
    assert blind.template == "t+blindfold"


def test_a_coin_named_like_an_alias_is_refused() -> None:
    with pytest.raises(ValueError, match="ASSET2"):
        Blindfold(["BTC", "ASSET2"])
