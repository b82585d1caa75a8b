"""The compact prompt layout (``decision/system_compact.j2`` + ``decision/user_compact.j2``)
carries every fact of nof1's layout at its stated precision: each number is read back from
the compact text and compared with the snapshot and account it was rendered from."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from application.ports import (
    CoinSnapshot,
    IntradaySeries,
    LongTermContext,
    MarketSnapshot,
    PromptLimits,
)
from infrastructure.prompts.renderer import JinjaPromptRenderer, _bp, _bp_of, _sig
from tests.unit.infrastructure.test_prompt_renderer import account

D = Decimal
AS_OF = datetime(2025, 10, 17, 14, 3, 9, tzinfo=UTC)
LIMITS = PromptLimits(
    max_positions=3,
    major_coin_leverage=20,
    altcoin_leverage=10,
    min_confidence_pct=D("75.0"),
    min_risk_reward=D("3.0"),
    max_position_size_usd=D("2000.0"),
)
REPO = Path(__file__).resolve().parents[3]
PROMPTS = REPO / "prompts"
COMPACT = (PROMPTS / "decision" / "system_compact.j2", PROMPTS / "decision" / "user_compact.j2")
NOF1 = (PROMPTS / "decision" / "system.j2", PROMPTS / "decision" / "user.j2")


# -- the number formats ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "digits", "shown"),
    [
        (107041.3, 6, "107041"),
        (463345.76, 4, "463300"),
        (3903.6, 6, "3903.6"),
        (0.0728843, 3, "0.0729"),
        (69.87, 2, "70"),
        (99.6, 2, "100"),
        (-32.6042, 3, "-32.6"),
        (0.0, 3, "0"),
        (3.757e-05, 2, "3.8e-05"),
        (None, 3, "n/a"),
        (D("9628.8281"), 7, "9628.828"),
    ],
)
def test_significant_digits(value: float | None, digits: int, shown: str) -> None:
    assert _sig(value, digits) == shown


def test_basis_points() -> None:
    assert _bp([106463.0, 107048.0, 107041.0], 107041.0) == "-54 +1 0"
    assert _bp_of([-3158.52, 0.0, 85.3964], 107041.0) == "-295 0 +8"


# -- every fact survives ----------------------------------------------------------------------

prices = st.floats(min_value=0.05, max_value=200_000, allow_nan=False)
moves = st.lists(st.floats(min_value=-0.02, max_value=0.02), min_size=10, max_size=10)
rsis = st.lists(st.floats(min_value=0, max_value=100), min_size=10, max_size=10)
oscillators = st.lists(st.floats(min_value=-0.05, max_value=0.05), min_size=10, max_size=10)


@st.composite
def coins(draw: st.DrawFn, coin: str) -> CoinSnapshot:
    price = draw(prices)
    mids = [price * (1 + m) for m in draw(moves)]
    emas = [price * (1 + m) for m in draw(moves)]
    macd3 = [price * m / 10 for m in draw(oscillators)]
    rsi7, rsi14 = draw(rsis), draw(rsis)
    return CoinSnapshot(
        coin=coin,
        price=D(repr(price)),
        data_time=AS_OF,
        ema20=emas[-1] if draw(st.booleans()) else emas[-1] * 1.01,
        macd=macd3[-1],
        rsi7=rsi7[-1],
        rsi14=rsi14[-1],
        open_interest_latest=draw(st.floats(min_value=1, max_value=1e9)),
        open_interest_average=draw(st.floats(min_value=1, max_value=1e9)),
        funding_rate=draw(st.floats(min_value=-1e-3, max_value=1e-3)),
        intraday=IntradaySeries(mids, emas, macd3, rsi7, rsi14),
        long_term=LongTermContext(
            price * 1.03,
            price * 0.97,
            price * 0.01,
            price * 0.02,
            draw(st.floats(min_value=1, max_value=1e7)),
            draw(st.floats(min_value=1, max_value=1e7)),
            [price * m for m in draw(oscillators)],
            draw(rsis),
        ),
    )


def render(snapshot: MarketSnapshot, templates: tuple[Path, Path]) -> tuple[str, str]:
    renderer = JinjaPromptRenderer(root=PROMPTS, schema_version="v1.0.0")
    prompt = renderer.render(
        system_template=str(templates[0]),
        user_template=str(templates[1]),
        snapshot=snapshot,
        account=account(),
        limits=LIMITS,
        as_of=AS_OF,
    )
    return prompt.system, prompt.user


def close(shown: float, true: float, digits: int) -> bool:
    """``shown`` is ``true`` at ``digits`` significant digits (or tiny, in e-notation)."""
    if abs(true) < 1e-4:
        return abs(shown - true) <= max(abs(true) * 0.05, 1e-9)
    return abs(shown - true) <= abs(true) * 0.5 * 10 ** (1 - digits) * 1.0001 + 1e-12


def blocks(user: str) -> dict[str, dict[str, str]]:
    """Per coin: its header fields and its series lines, as text."""
    found: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in user.splitlines():
        head = re.match(r"^([A-Z0-9]+) price=", line)
        if head:
            current = found.setdefault(head.group(1), {})
            current.update(dict(kv.split("=") for kv in line.split()[1:]))
        elif current is not None and line.startswith(("3m ", "4h ")):
            if "=" in line:
                current.update(dict(("4h " + kv).split("=") for kv in line.split()[1:]))
            else:
                frame, name, *values = line.split()
                current[f"{frame} {name}"] = " ".join(values)
    return found


def numbers(text: str) -> list[float]:
    return [float(v) for v in text.split()]


@settings(max_examples=40, deadline=None)
@given(btc=coins("BTC"), doge=coins("DOGE"))
def test_the_compact_layout_carries_every_number(btc: CoinSnapshot, doge: CoinSnapshot) -> None:
    snapshot = MarketSnapshot(as_of=AS_OF, coins={"BTC": btc, "DOGE": doge})
    _, user = render(snapshot, COMPACT)
    seen = blocks(user)
    assert set(seen) == {"BTC", "DOGE"}
    for coin, snap in snapshot.coins.items():
        got = seen[coin]
        price = float(snap.price)
        assert close(float(got["price"]), price, 6)
        assert close(float(got["oi"]), snap.open_interest_latest, 4)
        assert close(float(got["oi_avg"]), snap.open_interest_average, 4)
        assert close(float(got["funding_1h"]), snap.funding_rate, 2)
        # The current values: shown, or equal (at their precision) to the series' last.
        for key, series, digits in (
            ("ema20", snap.intraday.ema20, 6),
            ("macd", snap.intraday.macd, 3),
            ("rsi7", snap.intraday.rsi7, 2),
            ("rsi14", snap.intraday.rsi14, 2),
        ):
            current = getattr(snap, key)
            if key in got:
                assert close(float(got[key]), current, digits)
            else:
                assert _sig(current, digits) == _sig(series[-1], digits)
        for key, series in (
            ("3m mid", snap.intraday.mid_prices),
            ("3m ema20", snap.intraday.ema20),
        ):
            for bp, true in zip(numbers(got[key]), series, strict=True):
                assert abs(price * (1 + bp / 10_000) - true) <= price * 0.5e-4 * 1.0001
        for bp, true in zip(numbers(got["4h macd"]), snap.long_term.macd, strict=True):
            assert abs(price * bp / 10_000 - true) <= price * 0.5e-4 * 1.0001
        for shown, true in zip(numbers(got["3m macd"]), snap.intraday.macd, strict=True):
            assert close(shown, true, 3)
        for key, series in (
            ("3m rsi7", snap.intraday.rsi7),
            ("3m rsi14", snap.intraday.rsi14),
            ("4h rsi14", snap.long_term.rsi14),
        ):
            for shown, true in zip(numbers(got[key]), series, strict=True):
                assert abs(shown - true) <= 0.5 + 1e-9
        long_term = snap.long_term
        for key, true, digits in (
            ("4h ema20", long_term.ema20, 6),
            ("4h ema50", long_term.ema50, 6),
            ("4h atr3", long_term.atr3, 4),
            ("4h atr14", long_term.atr14, 4),
            ("4h vol", long_term.volume_current, 4),
            ("4h vol_avg", long_term.volume_average, 4),
        ):
            assert close(float(got[key]), true, digits), (coin, key)


def test_the_account_and_positions_are_all_there() -> None:
    snap = MarketSnapshot(as_of=AS_OF, coins={})
    _, user = render(snap, COMPACT)
    assert "elapsed=1234min invocations=412" in user
    assert "return=0.411% cash=2632.28 value=3012.34 sharpe=0.812" in user
    (line,) = [ln for ln in user.splitlines() if ln.startswith("ETH ")]
    for fact in (
        "-0.4871", "3950.5", "3901.25", "4712.3", "23.99", "5x", "3825.12", "3974.2",
        "4h close above EMA50", "0.8", "45", "1900.3",
        "breakdown below the 4h EMA20 with MACD negative",
    ):  # fmt: skip
        assert fact in line, fact


def test_the_compact_system_prompt_keeps_every_rule() -> None:
    snap = MarketSnapshot(as_of=AS_OF, coins={})
    compact, _ = render(snap, COMPACT)
    nof1, _ = render(snap, NOF1)
    for fact in ("max 3 open positions", "20x BTC/ETH", "10x others", "0.75", "reward/risk ≥ 3",
                 "2000", "10 and", "stop_loss < price < profit_target",
                 "profit_target < price < stop_loss", "available cash", "buy_to_enter",
                 "sell_to_enter", "hold", "close", "invalidation_condition", "risk_usd",
                 "justification", "0.045%"):  # fmt: skip
        assert fact in compact, fact
    assert len(compact) < 0.8 * len(nof1)


def test_the_compact_user_prompt_is_under_half_of_nof1s() -> None:
    """Characters, as a stand-in the test can hold (the bench reports tokens)."""
    coin = CoinSnapshot(
        coin="BTC",
        price=D("107041"),
        data_time=AS_OF,
        ema20=106739.2,
        macd=157.75,
        rsi7=69.873,
        rsi14=63.761,
        open_interest_latest=26153.12,
        open_interest_average=25907.48,
        funding_rate=3.757e-05,
        intraday=IntradaySeries(
            [106463.0 + 64.2 * i for i in range(10)],
            [106404.0 + 37.1 * i for i in range(10)],
            [-32.6042 + 21.1 * i for i in range(9)] + [157.75],
            [55.834 + 1.5 * i for i in range(9)] + [69.873],
            [51.362 + 1.3 * i for i in range(9)] + [63.761],
        ),
        long_term=LongTermContext(
            110267.3,
            117369.1,
            1751.89,
            1932.46,
            1407.87,
            1446.17,
            [-3641.56 + 50.3 * i for i in range(10)],
            [34.908 - 0.2 * i for i in range(10)],
        ),
    )
    snap = MarketSnapshot(as_of=AS_OF, coins=dict.fromkeys(("BTC", "ETH", "SOL"), coin))
    _, compact = render(snap, COMPACT)
    _, nof1 = render(snap, NOF1)
    assert len(compact) < 0.5 * len(nof1)
