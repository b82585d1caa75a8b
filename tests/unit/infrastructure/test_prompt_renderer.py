"""Prompt rendering: the shipped templates, Version headers, StrictUndefined, the digest."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from application.cycle import PromptError
from application.ports import (
    AccountView,
    IntradaySeries,
    MarketSnapshot,
    PositionView,
    PromptLimits,
    RenderedPrompt,
)
from infrastructure.prompts.renderer import (
    JinjaPromptRenderer,
    PromptVersionError,
    read_version_header,
)
from tests.support.fakes import coin_snapshot

D = Decimal
AS_OF = datetime(2025, 10, 17, 14, 3, 9, tzinfo=UTC)
SCHEMA = "v1.0.0"
LIMITS = PromptLimits(
    max_positions=3,
    major_coin_leverage=20,
    altcoin_leverage=10,
    min_confidence_pct=D("75.0"),
    min_risk_reward=D("3.0"),
    max_position_size_usd=D("2000.0"),
)
BTC_MIDS = [
    107000.0, 107010.5, 107021.0, 107031.5, 107042.0, 107052.5, 107063.0, 107073.5, 107084.0,
    107094.5,
]  # fmt: skip


@pytest.fixture
def prompts(repo_root: Path) -> Path:
    return repo_root / "prompts"


def snapshot(btc_price: str = "107094.5") -> MarketSnapshot:
    btc = coin_snapshot("BTC", btc_price, AS_OF)
    btc = msgspec.structs.replace(
        btc,
        intraday=IntradaySeries(
            mid_prices=BTC_MIDS,
            ema20=[106990.0 + i for i in range(10)],
            macd=[12.5 + i for i in range(10)],
            rsi7=[61.25 + i for i in range(10)],
            rsi14=[55.5 + i for i in range(10)],
        ),
    )
    coins = {
        "BTC": btc,
        "ETH": coin_snapshot("ETH", "3901.25", AS_OF),
        "DOGE": coin_snapshot("DOGE", "0.191234", AS_OF),
    }
    return MarketSnapshot(as_of=AS_OF, coins=coins)


def account(*, with_position: bool = True) -> AccountView:
    position = PositionView(
        coin="ETH",
        quantity=D("-0.4871"),
        entry_price=D("3950.5"),
        current_price=D("3901.25"),
        liquidation_price=D("4712.3"),
        unrealized_pnl=D("23.989175"),
        leverage=5,
        profit_target=D("3825.12"),
        stop_loss=D("3974.2"),
        invalidation_condition="4h close above EMA50",
        confidence=D("0.8"),
        risk_usd=D("45"),
        justification="breakdown below the 4h EMA20 with MACD negative",
        notional_usd=D("1900.298875"),
    )
    return AccountView(
        equity=D("3012.34"),
        available_cash=D("2632.28"),
        return_pct=D("0.4113"),
        sharpe_ratio=0.8123,
        positions=(position,) if with_position else (),
        minutes_elapsed=1234,
        invocations=412,
    )


def renderer(prompts: Path, **kwargs: bool) -> JinjaPromptRenderer:
    return JinjaPromptRenderer(root=prompts, schema_version=SCHEMA, **kwargs)


def render_with(
    r: JinjaPromptRenderer,
    system: Path,
    user: Path,
    *,
    snap: MarketSnapshot | None = None,
    acct: AccountView | None = None,
    limits: PromptLimits = LIMITS,
) -> RenderedPrompt:
    return r.render(
        system_template=str(system),
        user_template=str(user),
        snapshot=snap or snapshot(),
        account=acct or account(),
        limits=limits,
        as_of=AS_OF,
    )


def shipped(prompts: Path) -> tuple[Path, Path]:
    return prompts / "decision" / "system.j2", prompts / "decision" / "user.j2"


# -- the shipped templates ------------------------------------------------------------------


def test_shipped_system_prompt_states_the_given_limits(prompts: Path) -> None:
    out = render_with(renderer(prompts), *shipped(prompts))
    assert "- at most 3 open positions" in out.system
    assert "at most 20x on BTC and ETH, 10x on other coins" in out.system
    assert "confidence at least 0.75 (on a 0 to 1 scale)" in out.system
    assert "reward/risk at least 3:" in out.system
    assert "≥ 3 × |price − stop_loss|" in out.system
    assert "at most 2000 USD, and at least 10 USD" in out.system
    assert "Version:" not in out.system  # the header is a Jinja comment
    other = dataclasses.replace(LIMITS, max_positions=5, altcoin_leverage=7)
    changed = render_with(renderer(prompts), *shipped(prompts), limits=other)
    assert "- at most 5 open positions" in changed.system
    assert "20x on BTC and ETH, 7x on other coins" in changed.system


def test_shipped_user_prompt_carries_the_snapshot_and_account(prompts: Path) -> None:
    out = render_with(renderer(prompts), *shipped(prompts))
    user = out.user
    assert out.template == "decision/system.j2+decision/user.j2"
    assert out.version == out.schema_version == SCHEMA
    assert user.startswith(
        "It has been 1234 minutes since you started trading. "
        "The time is 2025-10-17 14:03:09 UTC and you have been invoked 412 times."
    )
    assert "Version:" not in user
    for coin in ("BTC", "ETH", "DOGE"):
        assert f"\n### {coin}\n" in user
    assert "current_price = 107094.5, current_ema20 = 107094" in user
    assert "current_price = 0.191234," in user
    # Ten-point series, oldest → newest.
    assert (
        "Mid prices: [107000, 107010, 107021, 107032, 107042, 107052, 107063, 107074, "
        "107084, 107094]" in user
    )
    assert "MACD: [12.5, 13.5, 14.5, 15.5, 16.5, 17.5, 18.5, 19.5, 20.5, 21.5]" in user
    assert "RSI (7-period): [61.25, 62.25, 63.25" in user
    assert "RSI (14-period): [55.5, 56.5, 57.5, 58.5, 59.5, 60.5, 61.5, 62.5, 63.5, 64.5]" in user
    assert "Mid prices: [3901.25, 3901.25, 3901.25, 3901.25, 3901.25," in user
    assert "Funding rate (hourly): 1.250e-05" in user
    # Account and the open position, with its exit plan and entry reason (nof1's layout).
    assert "Total return: 0.4113%" in user
    assert "Available cash: 2632.28" in user
    assert "Account value: 3012.34" in user
    assert "Sharpe ratio: 0.8123" in user
    assert "Open positions (with the exit plan and the reason you entered):" in user
    assert (
        "{'symbol': 'ETH', 'quantity': -0.4871, 'entry_price': 3950.5, "
        "'current_price': 3901.25, 'liquidation_price': 4712.3, 'unrealized_pnl': 23.99, "
        "'leverage': 5, 'exit_plan': {'profit_target': 3825.12, 'stop_loss': 3974.2, "
        "'invalidation_condition': '4h close above EMA50'}, 'confidence': 0.8, "
        "'risk_usd': 45, 'entry_reason': 'breakdown below the 4h EMA20 with MACD negative', "
        "'notional_usd': 1900.3}" in user
    )
    assert out.user.endswith("\n")
    assert out.system.endswith("\n")


def test_shipped_user_prompt_without_positions(prompts: Path) -> None:
    out = render_with(renderer(prompts), *shipped(prompts), acct=account(with_position=False))
    assert "Open positions: none" in out.user
    assert "'symbol'" not in out.user


# -- Version headers ------------------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_a_template_with_another_version_is_refused_in_strict_mode(tmp_path: Path) -> None:
    old = write(tmp_path / "old.j2", "{# Version: v0.9.0 #}\nHello {{ account.invocations }}\n")
    good = write(tmp_path / "good.j2", "{# Version: v1.0.0 #}\nUser {{ now }}\n")
    with pytest.raises(PromptVersionError, match=r"old\.j2 declares Version v0\.9\.0"):
        renderer(tmp_path).load(old)
    with pytest.raises(PromptError) as info:
        render_with(renderer(tmp_path), old, good)
    assert str(old) in str(info.value)
    assert "prompt_schema_version is v1.0.0" in str(info.value)


def test_a_template_with_another_version_is_accepted_when_not_strict(tmp_path: Path) -> None:
    old = write(tmp_path / "old.j2", "{# Version: v0.9.0 #}\nHello {{ account.invocations }}\n")
    user = write(tmp_path / "user.j2", "{# Version: v0.9.0 #}\nAt {{ now }}\n")
    out = render_with(renderer(tmp_path, strict=False), old, user)
    assert out.system == "Hello 412\n"
    assert out.user == "At 2025-10-17 14:03:09 UTC\n"
    assert out.version == "v0.9.0"
    assert out.schema_version == SCHEMA
    assert out.template == "old.j2+user.j2"


def test_no_header_is_refused_when_required(tmp_path: Path) -> None:
    bare = write(tmp_path / "bare.j2", "Hello {{ account.invocations }}\n")
    good = write(tmp_path / "good.j2", "{# Version: v1.0.0 #}\nUser\n")
    with pytest.raises(PromptError, match=r"bare\.j2 has no 'Version:' header"):
        render_with(renderer(tmp_path), good, bare)
    # Not strict does not waive a required header.
    with pytest.raises(PromptError, match="has no 'Version:' header"):
        render_with(renderer(tmp_path, strict=False), bare, good)
    out = render_with(renderer(tmp_path, require_header=False), bare, good)
    assert out.system == "Hello 412\n"
    assert out.version == "v1.0.0"  # the user template's


def test_missing_template_and_syntax_error(tmp_path: Path) -> None:
    good = write(tmp_path / "good.j2", "{# Version: v1.0.0 #}\nUser\n")
    with pytest.raises(PromptError, match="does not exist"):
        render_with(renderer(tmp_path), tmp_path / "nowhere.j2", good)
    broken = write(tmp_path / "broken.j2", "{# Version: v1.0.0 #}\nline two\n{% if %}\n")
    with pytest.raises(PromptError, match=r"broken\.j2:3"):
        render_with(renderer(tmp_path), broken, good)


def test_an_undefined_variable_is_a_prompt_error(tmp_path: Path) -> None:
    good = write(tmp_path / "good.j2", "{# Version: v1.0.0 #}\nUser\n")
    typo = write(tmp_path / "typo.j2", "{# Version: v1.0.0 #}\nHello {{ acount.equity }}\n")
    with pytest.raises(PromptError, match=r"rendering failed.*acount"):
        render_with(renderer(tmp_path), typo, good)
    attr = write(tmp_path / "attr.j2", "{# Version: v1.0.0 #}\n{{ limits.max_leverage }}\n")
    with pytest.raises(PromptError, match="rendering failed"):
        render_with(renderer(tmp_path), good, attr)


# -- the digest -----------------------------------------------------------------------------


def test_digest_is_sha256_of_system_nul_user(prompts: Path) -> None:
    out = render_with(renderer(prompts), *shipped(prompts))
    expected = hashlib.sha256((out.system + "\x00" + out.user).encode("utf-8")).hexdigest()
    assert out.digest == expected
    assert len(out.digest) == 64
    again = render_with(renderer(prompts), *shipped(prompts))
    assert again == out


def test_digest_changes_with_the_inputs(prompts: Path) -> None:
    r = renderer(prompts)
    base = render_with(r, *shipped(prompts)).digest
    price = render_with(r, *shipped(prompts), snap=snapshot("107100.5")).digest
    acct = render_with(r, *shipped(prompts), acct=account(with_position=False)).digest
    other = dataclasses.replace(LIMITS, min_risk_reward=D("2.5"))
    limits = render_with(r, *shipped(prompts), limits=other).digest
    assert len({base, price, acct, limits}) == 4


def test_digest_separates_system_from_user(tmp_path: Path) -> None:
    # "ab" + "c" and "a" + "bc" must not collide.
    a = write(tmp_path / "a.j2", "{# Version: v1.0.0 #}\nab\n")
    b = write(tmp_path / "b.j2", "{# Version: v1.0.0 #}\nc\n")
    c = write(tmp_path / "c.j2", "{# Version: v1.0.0 #}\na\n")
    d = write(tmp_path / "d.j2", "{# Version: v1.0.0 #}\nbc\n")
    r = renderer(tmp_path)
    assert render_with(r, a, b).digest != render_with(r, c, d).digest


# -- read_version_header --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("{# Version: v1.0.0 #}\nbody\n", "v1.0.0"),
        ("{#Version:v2.3.4#}\n", "v2.3.4"),
        ("{# Description: x #}\n{# Version:   v1.2 #}\n", "v1.2"),
        ("\n\n\n\n{# Version: v5 #}\n", "v5"),  # fifth line: still the header
        ("\n\n\n\n\n{# Version: v6 #}\n", None),  # sixth line: body, not header
        ("body\n" * 20 + "{# Version: v1.0.0 #}\n", None),
        ("", None),
        ("{# no version here #}", None),
    ],
)
def test_read_version_header_only_looks_at_the_first_lines(
    tmp_path: Path, text: str, version: str | None
) -> None:
    path = write(tmp_path / "t.j2", text)
    assert read_version_header(path) == version


def test_shipped_templates_declare_the_schema_version(prompts: Path) -> None:
    system, user = shipped(prompts)
    assert read_version_header(system) == read_version_header(user) == SCHEMA


def test_series_formatted_once_per_snapshot_never_leak_into_another(prompts: Path) -> None:
    """One renderer serves every trader: series of a shared snapshot are formatted once,
    and prompts rendered from other snapshots, interleaved, are what a fresh renderer gives."""
    shared = renderer(prompts)
    system, user = shipped(prompts)
    compact = prompts / "decision" / "system_compact.j2", prompts / "decision" / "user_compact.j2"
    snaps = [snapshot(), snapshot("98000.5"), snapshot()]
    changed = msgspec.structs.replace(
        snaps[1].coins["BTC"],
        intraday=msgspec.structs.replace(
            snaps[1].coins["BTC"].intraday, mid_prices=[97000.0 + 3 * i for i in range(10)]
        ),
    )
    snaps[1] = MarketSnapshot(as_of=AS_OF, coins=snaps[1].coins | {"BTC": changed})
    for _ in range(2):
        for snap in snaps:
            for pair in (shipped(prompts), compact):
                got = render_with(shared, *pair, snap=snap)
                fresh = render_with(renderer(prompts), *pair, snap=snap)
                assert got == fresh
    once = render_with(shared, system, user, snap=snaps[1])
    assert "97000" in once.user
    assert "97000" not in render_with(shared, system, user).user
