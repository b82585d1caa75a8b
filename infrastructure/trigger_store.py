"""The trigger gates' memory between runs: one small JSON file per trader under the data
directory (``triggers/<trader>.json``, atomically replaced).

A memory is a cache of what the ticks saw, not a record: a missing or damaged file costs
only the ATR's warm-up on the trader's timer, so a failure to read or write one is logged
and the gates go on in memory."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from infrastructure.files import atomic_write

log = logging.getLogger("nof0.triggers")

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


class FileGateMemory:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._failing: set[str] = set()  # traders whose last write failed (logged once)

    def path(self, trader_id: str) -> Path:
        # Config ids are plain names; a twin's id carries a marker that is not.
        return self.directory / f"{_UNSAFE.sub('_', trader_id)}.json"

    def load(self, trader_id: str) -> Mapping[str, Any] | None:
        path = self.path(trader_id)
        try:
            data = json.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("trigger memory %s unreadable, the gates start fresh: %s", path, exc)
            return None
        if not isinstance(data, dict):
            log.warning("trigger memory %s is not an object, the gates start fresh", path)
            return None
        return data

    def save(self, trader_id: str, data: Mapping[str, Any]) -> None:
        path = self.path(trader_id)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Replaced whole, not fsynced: a cache, written on the event loop at bar closes
            # for every trader (a crash loses at most the last bars: the gates warm up).
            atomic_write(path, json.dumps(data, sort_keys=True).encode(), durable=False)
        except OSError as exc:
            if trader_id not in self._failing:
                log.warning("trigger memory %s not written (kept in memory): %s", path, exc)
            self._failing.add(trader_id)
            return
        self._failing.discard(trader_id)
