"""The split rendering (the parts the traders of a tick share rendered once per snapshot, a
trader's own parts per trader) gives byte for byte the prompt and digest of the whole
template's rendering, for any snapshot, account, limits and time, and whichever trader or
snapshot came before."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from application.ports import AccountView, MarketSnapshot, PositionView, PromptLimits
from infrastructure.prompts.renderer import JinjaPromptRenderer
from tests.unit.infrastructure.test_compact_prompt import coins

PROMPTS = Path(__file__).resolve().parents[3] / "prompts"
SHIPPED = [
    (PROMPTS / "decision" / "system.j2", PROMPTS / "decision" / "user.j2"),
    (PROMPTS / "decision" / "system_compact.j2", PROMPTS / "decision" / "user_compact.j2"),
]
T0 = datetime(2025, 10, 17, 14, 3, 9, tzinfo=UTC)

decimals = st.decimals(min_value=-1e6, max_value=1e6, places=4, allow_nan=False)
positive = st.decimals(min_value=0, max_value=1e6, places=4, allow_nan=False)


@st.composite
def positions(draw: st.DrawFn, coin: str) -> PositionView:
    return PositionView(
        coin=coin,
        quantity=draw(decimals),
        entry_price=draw(positive),
        current_price=draw(positive),
        liquidation_price=draw(st.none() | positive),
        unrealized_pnl=draw(decimals),
        leverage=draw(st.integers(1, 40)),
        profit_target=draw(st.none() | positive),
        stop_loss=draw(st.none() | positive),
        invalidation_condition=draw(st.text(max_size=20)),
        confidence=draw(st.decimals(min_value=0, max_value=1, places=2)),
        risk_usd=draw(positive),
        justification=draw(st.text(max_size=30)),
        notional_usd=draw(positive),
    )


@st.composite
def accounts(draw: st.DrawFn) -> AccountView:
    held = draw(st.lists(st.sampled_from(["BTC", "DOGE"]), unique=True))
    return AccountView(
        equity=draw(decimals),
        available_cash=draw(decimals),
        return_pct=draw(decimals),
        sharpe_ratio=draw(st.floats(-5, 5)),
        positions=tuple(draw(positions(coin)) for coin in held),
        minutes_elapsed=draw(st.integers(0, 10**6)),
        invocations=draw(st.integers(0, 10**6)),
    )


limits = st.builds(
    PromptLimits,
    max_positions=st.integers(1, 6),
    major_coin_leverage=st.integers(1, 40),
    altcoin_leverage=st.integers(1, 20),
    min_confidence_pct=st.decimals(min_value=0, max_value=100, places=1),
    min_risk_reward=st.decimals(min_value=0, max_value=10, places=1),
    max_position_size_usd=positive,
)


@st.composite
def snapshots(draw: st.DrawFn) -> MarketSnapshot:
    minutes = draw(st.integers(0, 10**5))
    return MarketSnapshot(
        as_of=T0 + timedelta(minutes=minutes),
        coins={"BTC": draw(coins("BTC")), "DOGE": draw(coins("DOGE"))},
    )


# Each call: (snapshot index, account, limits); the snapshots are reused across calls as the
# traders of one tick share theirs.
calls = st.lists(st.tuples(st.integers(0, 2), accounts(), limits), min_size=1, max_size=6)
# Before some calls the tick prepares the shared parts (of any snapshot, with any limits).
preparations = st.lists(st.none() | st.tuples(st.integers(0, 2), limits), min_size=6, max_size=6)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.large_base_example])
@given(
    templates=st.sampled_from(SHIPPED),
    snaps=st.lists(snapshots(), min_size=3, max_size=3),
    sequence=calls,
    prepared=preparations,
)
def test_the_split_rendering_is_the_whole_rendering(
    templates: tuple[Path, Path],
    snaps: list[MarketSnapshot],
    sequence: list[tuple[int, AccountView, PromptLimits]],
    prepared: list[tuple[int, PromptLimits] | None],
) -> None:
    split = JinjaPromptRenderer(root=PROMPTS, schema_version="v1.0.0")
    whole = JinjaPromptRenderer(root=PROMPTS, schema_version="v1.0.0", split=False)
    system, user = templates
    assert split.load(user).parts is not None  # the shipped user prompts are split
    for (index, account, limit), preparation in zip(sequence, prepared, strict=False):
        if preparation is not None:
            snap = snaps[preparation[0]]
            split.prepare(
                system_template=str(system),
                user_template=str(user),
                snapshot=snap,
                limits=preparation[1],
                as_of=snap.as_of,
            )
        snap = snaps[index]
        prompts = [
            r.render(
                system_template=str(system),
                user_template=str(user),
                snapshot=snap,
                account=account,
                limits=limit,
                as_of=snap.as_of,
            )
            for r in (split, whole)
        ]
        assert prompts[0] == prompts[1]  # the texts, the digest, the template and versions


HEADER = "{# Version: v1.0.0 #}\n"
TEMPLATES = {
    # whitespace control at the seams between shared and own parts
    "seams": "{{ now }}\n{%- for c in coins %} {{ c.coin }}{% endfor -%}\n"
    "{{ account.equity }}{% if positions %}P{% endif %}\n  {{- limits.max_positions }}\n",
    # a top-level assignment a later node reads: rendered whole
    "assigned": "{% set n = coins | length %}{{ account.equity }} {{ n }}\n"
    "{% for c in coins %}{{ c.coin }} {{ n }}{% endfor %}\n",
    # a macro: rendered whole
    "macro": "{% macro m(x) %}[{{ x }}]{% endmacro %}{{ m(account.equity) }}"
    "{% for c in coins %}{{ m(c.coin) }}{% endfor %}",
    # a set inside a top-level if sets the template's variable: rendered whole
    "if_set": "{% if coins %}{% set n = coins | length %}{% endif %}{{ account.equity }} {{ n }}\n"
    "{% for c in coins %}{{ c.coin }}{% endfor %}\n",
    # only a trader's own parts: nothing shared
    "own": "{{ account.equity }} {{ positions | length }}\n",
    # everything shared
    "shared": "{{ now }}{% for c in coins %}{{ c.price | num }}{% endfor %}{{ limits }}\n",
}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.large_base_example])
@given(snaps=st.lists(snapshots(), min_size=2, max_size=2), sequence=calls)
def test_hand_written_templates_render_as_a_whole_would(
    snaps: list[MarketSnapshot],
    sequence: list[tuple[int, AccountView, PromptLimits]],
) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = {}
        for name, text in TEMPLATES.items():
            paths[name] = root / f"{name}.j2"
            paths[name].write_text(HEADER + text, encoding="utf-8")
        split = JinjaPromptRenderer(root=root, schema_version="v1.0.0")
        whole = JinjaPromptRenderer(root=root, schema_version="v1.0.0", split=False)
        assert split.load(paths["assigned"]).parts is None
        assert split.load(paths["macro"]).parts is None
        assert split.load(paths["if_set"]).parts is None
        assert split.load(paths["seams"]).parts is not None
        assert split.load(paths["own"]).parts is None
        for index, account, limit in sequence:
            snap = snaps[index % 2]
            for name in TEMPLATES:
                prompts = [
                    r.render(
                        system_template=str(paths["shared"]),
                        user_template=str(paths[name]),
                        snapshot=snap,
                        account=account,
                        limits=limit,
                        as_of=snap.as_of,
                    )
                    for r in (split, whole)
                ]
                assert prompts[0] == prompts[1], name


def test_a_shared_part_is_rendered_once_per_snapshot_and_limits() -> None:
    renderer = JinjaPromptRenderer(root=PROMPTS, schema_version="v1.0.0")
    system, user = SHIPPED[0]
    part = next(p for p in renderer.load(user).parts or () if p.shared)
    calls: list[int] = []
    original = part.template.render

    def counting(*args: object, **kwargs: object) -> str:
        calls.append(1)
        return original(*args, **kwargs)

    object.__setattr__(part.template, "render", counting)
    limit = PromptLimits(3, 20, 10, Decimal(75), Decimal(3), Decimal(2000))
    snap_a = MarketSnapshot(as_of=T0, coins={})
    snap_b = MarketSnapshot(as_of=T0, coins={})
    for snap in (snap_a, snap_a, snap_b, snap_a):
        renderer.render(
            system_template=str(system),
            user_template=str(user),
            snapshot=snap,
            account=AccountView(
                equity=Decimal(1),
                available_cash=Decimal(1),
                return_pct=Decimal(0),
                sharpe_ratio=0.0,
                positions=(),
                minutes_elapsed=1,
                invocations=1,
            ),
            limits=limit,
            as_of=T0,
        )
    assert len(calls) == 2  # one per snapshot; an equal but other snapshot is its own
    snap_c = MarketSnapshot(as_of=T0, coins={})
    renderer.prepare(
        system_template=str(system),
        user_template=str(user),
        snapshot=snap_c,
        limits=limit,
        as_of=T0,
    )
    assert len(calls) == 3  # prepared by the tick ...
    renderer.render(
        system_template=str(system),
        user_template=str(user),
        snapshot=snap_c,
        account=AccountView(
            equity=Decimal(1),
            available_cash=Decimal(1),
            return_pct=Decimal(0),
            sharpe_ratio=0.0,
            positions=(),
            minutes_elapsed=1,
            invocations=1,
        ),
        limits=limit,
        as_of=T0,
    )
    assert len(calls) == 3  # ... and not again by the trader's cycle
