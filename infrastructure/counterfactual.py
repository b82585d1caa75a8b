"""``nof0 replay run RUN --prompt | --model | --risk``: a backtest decided again under one
change, on the same recorded market path, compared side by side with the original.

The run's ``backtest.json`` says what it ran (window, candle files and their SHA-256,
traders, seed); the counterfactual is the same backtest with the change applied to the
chosen traders, into ``RUN/counterfactuals/<n>``. Both runs step the same clock over the
same candles, so their cycles match by time: the comparison lists the cycles whose
decisions differ, and per trader the trades, net P&L, return and model cost of each.
Models answer from the prompt digest cache where the prompt did not change (an LLM
trader's unchanged cycles cost nothing).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pydantic

from application.counterfactual import (
    CycleDecisions,
    DecisionDiff,
    align,
    compare,
    cycle_decisions,
)
from application.trading import TradingApp
from domain.trader import Trader
from infrastructure.backtest import (
    STEP,
    BacktestError,
    BacktestPlan,
    BacktestResult,
    backtest_config,
    trader_records,
)
from infrastructure.config.loader import LoadedConfig
from infrastructure.config.models import RiskParams
from infrastructure.eventstore import open_trading_app, sqlite_env
from infrastructure.market.history_tape import HistoryError
from infrastructure.market.recorded import RecordedError, frames_from_snapshots, write_frames
from projections.report import RunReport, TraderReport


@dataclass(frozen=True)
class Change:
    prompt: Path | None = None  # a system prompt template
    model: str | None = None
    risk: Mapping[str, str] = dataclasses.field(default_factory=dict)
    traders: Sequence[str] = ()  # who gets the change; empty: every trader of the run
    blindfold: bool = False  # coin names and dates masked in the prompt

    def describe(self) -> str:
        parts = []
        if self.prompt is not None:
            parts.append(f"prompt {self.prompt}")
        if self.model is not None:
            parts.append(f"model {self.model}")
        parts += [f"{key}={value}" for key, value in self.risk.items()]
        if self.blindfold:
            parts.append("blindfold")
        return ", ".join(parts) or "no change"


@dataclass(frozen=True)
class TraderComparison:
    trader: str
    changed: bool  # the change applies to this trader
    decisions: DecisionDiff
    original: TraderReport | None
    counterfactual: TraderReport | None
    original_cost: float
    counterfactual_cost: float
    cached: int  # the counterfactual's answers served from the digest cache


@dataclass(frozen=True)
class Comparison:
    run: Path
    out: Path
    change: Change
    traders: list[TraderComparison]
    original_fingerprint: str
    counterfactual_fingerprint: str
    #: The original is a recorded arena (its own venue and fills); the counterfactual ran
    #: on the simulator at the recorded prices, so P&L differences mix the change with that.
    recorded_arena: bool = False


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def recorded_plan(run: Path, out: Path) -> BacktestPlan:
    """The plan a backtest ran, from its ``backtest.json``; the candles must be unchanged."""
    try:
        summary: dict[str, Any] = json.loads((run / "backtest.json").read_text())
    except FileNotFoundError:
        raise BacktestError(
            f"{run} holds no backtest.json and no arena's events: replay run re-decides the "
            "cycles of a backtest (nof0 backtest) or of an arena (the data directory nof0 "
            "run traded in)"
        ) from None
    except (OSError, ValueError) as exc:
        raise BacktestError(f"{run / 'backtest.json'} could not be read: {exc}") from exc
    recorded = summary["candles"]
    plan = BacktestPlan(
        start=datetime.fromisoformat(summary["from"]),
        end=datetime.fromisoformat(summary["to"]),
        candles={},
        out=out,
        traders=list(summary["traders"]),
        seed=int(summary.get("seed", 0)),
        spread_jitter=summary.get("spread_jitter"),
    )
    if "store" in recorded:
        plan = dataclasses.replace(plan, store=Path(recorded["store"]), coins=recorded["coins"])
        try:
            same = plan.store_tape().digest() == recorded["sha256"]
        except HistoryError as exc:
            raise BacktestError(f"the run's candles cannot be read again: {exc}") from exc
        if not same:
            raise BacktestError(
                f"the candles in {plan.store} changed since the run (their SHA-256 differs): "
                "the market path would not be the same"
            )
        return plan
    candles = {}
    for coin, entry in recorded.items():
        path = Path(entry["file"])
        if not path.is_file() or _sha256(path) != entry["sha256"]:
            raise BacktestError(
                f"the {coin} candles {path} are missing or changed since the run (their "
                "SHA-256 differs): the market path would not be the same"
            )
        candles[coin] = path
    return dataclasses.replace(plan, candles=candles)


def changed_config(config: LoadedConfig, change: Change, traders: Sequence[str]) -> LoadedConfig:
    unknown = [t for t in change.traders if t not in traders]
    if unknown:
        raise BacktestError(
            f"the run has no trader {', '.join(unknown)} (it has {', '.join(traders)})"
        )
    targets = set(change.traders or traders)
    updated = []
    for trader in config.manager.traders:
        if trader.id not in targets:
            updated.append(trader)
            continue
        update: dict[str, Any] = {}
        if change.prompt is not None:
            if not change.prompt.is_file():
                raise BacktestError(f"--prompt {change.prompt} is not a file")
            update["prompt_template"] = str(change.prompt.resolve())
        if change.model is not None:
            update["model"] = change.model
        if change.blindfold:
            update["blindfold"] = True
        if change.risk:
            try:
                update["risk_params"] = RiskParams.model_validate(
                    {**trader.risk_params.model_dump(), **change.risk}
                )
            except pydantic.ValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()
                )
                raise BacktestError(f"--risk: {problems}") from None
        updated.append(trader.model_copy(update=update))
    manager = config.manager.model_copy(update={"traders": updated})
    return dataclasses.replace(config, manager=manager)


def _same_as_recorded(config: LoadedConfig, run: Path, plan: BacktestPlan) -> None:
    """Refuse when the configuration differs from the run's in anything but the change: the
    comparison would count that difference as the change's."""
    recorded = json.loads((run / "backtest.json").read_text()).get("trader_configs")
    if recorded is None:
        raise BacktestError(
            f"{run / 'backtest.json'} does not record its traders' settings (made by an older "
            "nof0): run the backtest again"
        )
    now = trader_records(backtest_config(config, dataclasses.replace(plan, out=run)))
    for trader in plan.traders:
        before, current = recorded.get(trader, {}), now.get(trader, {})
        differing = sorted(
            key for key in before.keys() | current.keys() if before.get(key) != current.get(key)
        )
        if differing:
            raise BacktestError(
                f"{trader}'s configuration has changed since the run ({', '.join(differing)}): "
                "the comparison would count that as the change's doing; restore it, or run a "
                "new backtest"
            )


def _decisions(app: TradingApp, trader: str) -> CycleDecisions:
    return cycle_decisions(app.trader_events(trader))


#: A recorded arena's cycles and the counterfactual's match within this: the replay steps to
#: each recorded instant, but a trader may come due at another trader's instant after its own.
RECORDED_MATCH_S = 60.0


def recorded_arena_plan(config: LoadedConfig, original: TradingApp, out: Path) -> BacktestPlan:
    """The plan of a counterfactual over a recorded arena (a data directory ``nof0 run``
    wrote): its traders' recorded snapshots written to ``<out>-snapshots.jsonl`` and served
    at the times they were taken; its traders are those that have cycles."""
    snapshots: list[tuple[datetime, str]] = []
    traders = []
    for trader in config.manager.traders:
        asked = [
            (e.as_of, e.snapshot)
            for e in original.trader_events(trader.id)
            if isinstance(e, Trader.DecisionRequested) and e.snapshot
        ]
        if asked:
            traders.append(trader.id)
            snapshots += asked
    if not snapshots:
        raise BacktestError(
            "the arena has no recorded cycle of a configured trader (nothing to re-decide): "
            "give a data directory nof0 run has traded in, with its configuration"
        )
    try:
        frames = frames_from_snapshots(snapshots)
    except RecordedError as exc:
        raise BacktestError(str(exc)) from exc
    path = out.parent / f"{out.name}-snapshots.jsonl"
    write_frames(frames, path)
    start = frames[0].as_of - STEP  # the run then steps to each recorded cycle's instant
    return BacktestPlan(
        start=start,
        end=frames[-1].as_of + STEP,
        candles={},
        out=out,
        traders=traders,
        coins=sorted(frames[-1].coins),
        snapshots=path,
        simulate_venues=True,  # a live arena's traders re-decide on the simulator
    )


def replay_run(
    config: LoadedConfig,
    run: Path,
    change: Change,
    *,
    run_backtest: Callable[[LoadedConfig, BacktestPlan], BacktestResult],
    read: Callable[[Path], RunReport],
    approve: Callable[[LoadedConfig, BacktestPlan], bool] = lambda config, plan: True,
    out: Path | None = None,
    open_arena: Callable[[], TradingApp] | None = None,
) -> Comparison:
    """``open_arena``: the event store of ``run`` when it is a recorded arena (a data
    directory without ``backtest.json``); its cycles' snapshots are decided again."""
    if not change.prompt and not change.model and not change.risk and not change.blindfold:
        raise BacktestError(
            "nothing to change: give --prompt, --model, --risk KEY=VALUE or --blindfold"
        )
    if out is None:
        counterfactuals = run / "counterfactuals"
        taken = len(list(counterfactuals.iterdir())) if counterfactuals.is_dir() else 0
        out = counterfactuals / str(taken + 1)
    recorded_arena = not (run / "backtest.json").exists() and open_arena is not None
    original_app: TradingApp | None = None
    if recorded_arena:
        assert open_arena is not None
        original_app = open_arena()
        plan = recorded_arena_plan(config, original_app, out)
    else:
        plan = recorded_plan(run, out)
        _same_as_recorded(config, run, plan)
    unknown_risk = [key for key in change.risk if key not in RiskParams.model_fields]
    if unknown_risk:
        raise BacktestError(
            f"--risk {', '.join(unknown_risk)}: not a risk parameter (they are: "
            f"{', '.join(RiskParams.model_fields)})"
        )
    changed = changed_config(config, change, plan.traders)
    if not approve(changed, plan):
        raise BacktestError("the model calls were not approved (see the estimate above)")
    result = run_backtest(changed, plan)
    if original_app is None:
        original_app = open_trading_app(sqlite_env(run / "events.sqlite3"))
    changed_app = open_trading_app(sqlite_env(out / "events.sqlite3"))
    before, after = read(run), read(out)
    by_model = {t.model_id: t for t in before.traders}
    after_by_model = {t.model_id: t for t in after.traders}
    targets = set(change.traders or plan.traders)
    traders = []
    for trader in plan.traders:
        original, counterfactual = _decisions(original_app, trader), _decisions(changed_app, trader)
        if recorded_arena:
            counterfactual = align(original, counterfactual, RECORDED_MATCH_S)
        traders.append(
            TraderComparison(
                trader=trader,
                changed=trader in targets,
                decisions=compare(original, counterfactual),
                original=by_model.get(trader),
                counterfactual=after_by_model.get(trader),
                original_cost=original.cost_usd,
                counterfactual_cost=counterfactual.cost_usd,
                cached=counterfactual.cached,
            )
        )
    return Comparison(
        run, out, change, traders, before.fingerprint, result.fingerprint, recorded_arena
    )
