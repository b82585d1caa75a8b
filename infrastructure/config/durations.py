"""Durations written as ``500ms``, ``60s``, ``3m``, ``1h``, ``1d`` or a number of seconds."""

from __future__ import annotations

import re
from typing import Any

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """Seconds; raises ``ValueError`` with the accepted forms."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 500ms, 60s, 3m or 1h")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _UNITS[match.group(2)]
    raise ValueError("expected a duration such as 500ms, 60s, 3m or 1h")
