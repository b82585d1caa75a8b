"""A trader's trigger gates as plain data, so that a restart continues them.

The gates' bars, ATR and indicators are built from the prices the ticks see; without them
a restarted engine would call the trader on its timer until ``atr_period`` bars have
passed again (70 minutes with 14 bars of 5 minutes). :func:`dump` gives the state as a
JSON-able mapping; :func:`restore` gives it back for the same rules, or None with the
reason when it cannot be used:

* the rules changed (another ``bar``, ATR period or indicator set: the numbers mean
  something else);
* it is older than ``atr_period`` bars (what it saves would have been rebuilt by then, and
  an ATR that old says little about the volatility now);
* it is not a memory of this shape (another version, a damaged file);
* it was saved after ``now`` (a replay clock resumes at the last cycle and replays the
  minutes since: the gates see them again, and a memory of them would be from the future).

What the gates counted since the last call (ticks gated, per-gate quiet and unavailable
ticks) is kept too, up to the last save. The forming bar continues: the first tick after
the restart closes it if its bucket has passed, as it would have closed on time.

Pure: no I/O; the caller stores the mapping where it likes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import fields
from datetime import datetime
from typing import Any

from domain.triggers import CoinGate, TriggerRules, TriggerState, _Ema, _IndicatorState, _Rsi

VERSION = 1


def rules_key(rules: TriggerRules) -> str:
    """What identifies the rules a memory was built under."""
    return repr(rules)


def dump(state: TriggerState, at: datetime) -> dict[str, Any]:
    return {
        "version": VERSION,
        "rules": rules_key(state.rules),
        "saved_at": at.isoformat(),
        "coins": {coin: _gate_data(gate) for coin, gate in sorted(state.coins.items())},
        "reference": dict(sorted(state.reference.items())),
        "fills_seen": None if state.fills_seen is None else state.fills_seen.isoformat(),
        "closes_seen": state.closes_seen,
        "funding_window_seen": state.funding_window_seen,
        "ticks_gated": state.ticks_gated,
        "quiet": dict(state.quiet),
        "unavailable": dict(state.unavailable),
    }


def restore(
    rules: TriggerRules, data: Mapping[str, Any], now: datetime
) -> tuple[TriggerState | None, str]:
    """The state saved in ``data`` for ``rules`` at ``now``; (None, why) when unusable."""
    try:
        if data.get("version") != VERSION:
            return None, f"a memory of version {data.get('version')!r}, not {VERSION}"
        if data.get("rules") != rules_key(rules):
            return None, "the trader's triggers changed since it was saved"
        saved_at = datetime.fromisoformat(str(data["saved_at"]))
        age = (now - saved_at).total_seconds()
        if age < 0 or age > rules.atr_period * rules.bar_s:
            return None, f"saved {age:.0f}s ago (kept up to {rules.atr_period} bars)"
        state = TriggerState(rules)
        for coin, gate_data in dict(data["coins"]).items():
            _set_gate(state._coin(str(coin)), gate_data)
        state.reference = {
            str(c): _finite(p, f"reference {c}") for c, p in dict(data["reference"]).items()
        }
        fills = data["fills_seen"]
        state.fills_seen = None if fills is None else datetime.fromisoformat(str(fills))
        state.closes_seen = _optional_int(data["closes_seen"])
        state.funding_window_seen = _optional_int(data["funding_window_seen"])
        state.ticks_gated = _optional_int(data["ticks_gated"]) or 0
        state.quiet = {str(k): int(v) for k, v in dict(data["quiet"]).items()}
        state.unavailable = {str(k): int(v) for k, v in dict(data["unavailable"]).items()}
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        return None, f"unreadable ({type(exc).__name__}: {exc})"
    return state, ""


# -- one coin --------------------------------------------------------------------------------

#: CoinGate fields that come from the rules (not saved).
_FROM_RULES = frozenset({"bar_s", "atr_period", "indicators"})
_SCALARS = tuple(f.name for f in fields(CoinGate) if f.name not in _FROM_RULES)


def _gate_data(gate: CoinGate) -> dict[str, Any]:
    data: dict[str, Any] = {name: getattr(gate, name) for name in _SCALARS}
    data["indicators"] = [_indicator_data(i) for i in gate.indicators]
    return data


def _set_gate(gate: CoinGate, data: Mapping[str, Any]) -> None:
    for name in _SCALARS:
        value = data[name]
        default = getattr(gate, name)
        setattr(gate, name, _typed(value, default, name))
    saved = list(data["indicators"])
    if len(saved) != len(gate.indicators):
        raise ValueError(f"{len(saved)} indicators saved, the rules have {len(gate.indicators)}")
    for indicator, indicator_data in zip(gate.indicators, saved, strict=True):
        _set_indicator(indicator, indicator_data)


def _indicator_data(indicator: _IndicatorState) -> dict[str, Any]:
    return {
        "fast": _kernel_data(indicator.fast),
        "slow": _kernel_data(indicator.slow),
        "rsi": _kernel_data(indicator.rsi),
        "side": indicator.side,
        "last_rsi": indicator.last_rsi,
        "fired": indicator.fired,
    }


def _set_indicator(indicator: _IndicatorState, data: Mapping[str, Any]) -> None:
    for name in ("fast", "slow", "rsi"):
        _set_kernel(getattr(indicator, name), data[name], name)
    indicator.side = _optional_int(data["side"]) or 0
    last = data["last_rsi"]
    indicator.last_rsi = None if last is None else _finite(last, "last_rsi")
    indicator.fired = bool(data["fired"])


def _kernel_data(kernel: _Ema | _Rsi | None) -> dict[str, Any] | None:
    if kernel is None:
        return None
    return {f.name: getattr(kernel, f.name) for f in fields(kernel) if f.name != "period"}


def _set_kernel(kernel: _Ema | _Rsi | None, data: Mapping[str, Any] | None, name: str) -> None:
    if (kernel is None) != (data is None):
        raise ValueError(f"indicator part {name} does not match the rules")
    if kernel is None or data is None:
        return
    for f in fields(kernel):
        if f.name != "period":
            setattr(kernel, f.name, _typed(data[f.name], getattr(kernel, f.name), f.name))


def _typed(value: object, default: object, name: str) -> object:
    """``value`` as the type the field holds (an int field stays an int, a float field
    takes a JSON integer; None where the field may be empty)."""
    if value is None:
        return None
    if isinstance(default, bool) or isinstance(value, bool):
        if isinstance(default, bool) and isinstance(value, bool):
            return value
        raise ValueError(f"{name}: {value!r} does not fit the field")
    if isinstance(value, int):
        return float(value) if isinstance(default, float) else value
    if isinstance(value, float) and not isinstance(default, int):
        if not math.isfinite(value):
            raise ValueError(f"{name}: {value!r} is not a finite number")
        return value
    raise ValueError(f"{name}: {value!r} does not fit the field")


def _finite(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name}: {value!r} is not a number")
    if not math.isfinite(value):
        raise ValueError(f"{name}: {value!r} is not a finite number")
    return float(value)


def _optional_int(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{value!r} is not an integer")
    return value
