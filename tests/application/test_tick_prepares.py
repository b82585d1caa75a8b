"""The tick prepares what its traders share (the snapshot, the shared parts of their prompts)
before their cycles; every question recorded is the one a whole rendering in the cycle gives,
and the traders' histories are the same."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from application.ports import RenderedPrompt
from domain.trader import Trader
from infrastructure.prompts.renderer import JinjaPromptRenderer
from tests.bench.operations import _cloned_traders as cloned_traders
from tests.support.arena import OfflineArena
from tests.support.workspace import Workspace


class WholeRenderer:
    """Renders each prompt whole, in the cycle, with nothing prepared by the tick."""

    def __init__(self, like: JinjaPromptRenderer) -> None:
        self.inner = JinjaPromptRenderer(
            root=like.root,
            schema_version=like.schema_version,
            strict=like.strict,
            require_header=like.require_header,
            split=False,
        )

    def render(self, **kwargs: Any) -> RenderedPrompt:
        return self.inner.render(**kwargs)


def history(arena: OfflineArena) -> dict[str, list[tuple[str, Any]]]:
    out = {}
    for config_id in arena.engine.arena.trader_ids:
        events = list(arena.engine.app.trader_events(config_id))
        out[config_id] = [
            (
                type(e).__name__,
                (e.cycle_id, e.snapshot, e.snapshot_digest, e.prompt_digest, e.user_prompt)
                if isinstance(e, Trader.DecisionRequested)
                else None,
            )
            for e in events
        ]
    return out


def run(tmp: Path, *, whole: bool) -> tuple[dict[str, list[tuple[str, Any]]], int]:
    ws = Workspace(tmp / "arena")
    cloned_traders(ws, 6)  # the shipped traders, six of them deciding together every 3 min
    arena = OfflineArena.open(tmp / "data", config_path=ws.main)
    prepared = 0
    renderer = arena.engine.arena.renderer
    assert isinstance(renderer, JinjaPromptRenderer)
    if whole:
        other = WholeRenderer(renderer)
        arena.engine.arena.renderer = other
        for state in arena.engine.arena._states.values():
            state.cycle.renderer = other
    else:
        prepare = renderer.prepare

        def counting(**kwargs: Any) -> None:
            nonlocal prepared
            prepared += 1
            prepare(**kwargs)

        renderer.prepare = counting  # type: ignore[method-assign]
    asyncio.run(arena.run(minutes=30))
    return history(arena), prepared


def test_prepared_prompts_record_what_whole_renderings_do(tmp_path: Path) -> None:
    split, prepared = run(tmp_path / "split", whole=False)
    whole, _ = run(tmp_path / "whole", whole=True)
    assert prepared > 0
    asked = [e for events in split.values() for e in events if e[0] == "DecisionRequested"]
    assert len(asked) > prepared  # several traders of a tick shared one preparation
    assert split == whole
