"""A market that serves an arena's recorded snapshots: what each cycle of a live (or paper)
arena saw, as its ``DecisionRequested`` events stored it.

A counterfactual of a recorded arena (``nof0 replay run DATA_DIR``) re-decides those cycles:
the same snapshots, each served at or after the time it was taken, never before (the
point-in-time guard: a cycle at ``t`` gets the newest frame taken at or before ``t``).
Frames carry each coin forward from the last cycle that saw it, so a trader asking for a
coin another trader's cycle saw a minute ago gets that coin's snapshot, and the cycle's
staleness check refuses it when it is too old. Mids and funding come from the same frames:
between two recorded cycles the price stands still (the recorded path has no finer grain).
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import msgspec

from application.ports import CoinSnapshot, MarketSnapshot, MissingData

_DECODER = msgspec.json.Decoder(MarketSnapshot)
_ENCODER = msgspec.json.Encoder(decimal_format="string")


class RecordedError(Exception):
    """Recorded snapshots that cannot be read; the message names the file and line."""


def frames_from_snapshots(snapshots: Iterable[tuple[datetime, str]]) -> list[MarketSnapshot]:
    """Frames from (as-of, stored snapshot text) pairs, oldest first, coins carried forward;
    snapshots taken at the same instant (several traders' cycles of one tick) merge."""
    decoded = []
    for n, (as_of, text) in enumerate(snapshots):
        try:
            decoded.append((as_of, _DECODER.decode(text)))
        except msgspec.DecodeError as exc:
            raise RecordedError(f"recorded snapshot #{n + 1} ({as_of}): {exc}") from exc
    decoded.sort(key=lambda pair: pair[0])
    frames: list[MarketSnapshot] = []
    known: dict[str, CoinSnapshot] = {}
    for as_of, snapshot in decoded:
        known = {**known, **snapshot.coins}
        frame = MarketSnapshot(as_of=as_of, coins=known)
        if frames and frames[-1].as_of == as_of:
            frames[-1] = frame
        else:
            frames.append(frame)
    return frames


def write_frames(frames: Sequence[MarketSnapshot], path: Path) -> None:
    """One frame per line (msgspec JSON): the counterfactual's market input, kept with it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        for frame in frames:
            out.write(_ENCODER.encode(frame) + b"\n")


def read_frames(path: Path) -> list[MarketSnapshot]:
    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        raise RecordedError(f"recorded snapshots {path}: {exc}") from exc
    frames = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            frames.append(_DECODER.decode(line))
        except msgspec.DecodeError as exc:
            raise RecordedError(f"recorded snapshots {path}:{n}: {exc}") from exc
    if not frames:
        raise RecordedError(f"recorded snapshots {path}: no snapshot in it")
    if any(b.as_of <= a.as_of for a, b in itertools.pairwise(frames)):
        raise RecordedError(f"recorded snapshots {path}: frames are not in time order")
    return frames


class RecordedMarket:
    """``MarketData`` and ``FundingFeed`` over recorded frames."""

    def __init__(self, frames: Sequence[MarketSnapshot], *, max_staleness_s: float = 90.0):
        if not frames:
            raise RecordedError("no recorded snapshot to replay")
        self.frames = list(frames)
        self._times = [f.as_of for f in self.frames]
        self.max_staleness_s = max_staleness_s

    @property
    def start(self) -> datetime:
        return self._times[0]

    @property
    def end(self) -> datetime:
        return self._times[-1]

    def coins(self) -> list[str]:
        return sorted(self.frames[-1].coins)

    def _frame(self, coins: Sequence[str], as_of: datetime) -> MarketSnapshot:
        at = bisect.bisect_right(self._times, as_of) - 1
        if at < 0:
            raise MissingData(
                f"no recorded snapshot at or before {as_of.isoformat()} (the recording "
                f"starts {self.start.isoformat()})"
            )
        frame = self.frames[at]
        missing = [c for c in coins if c not in frame.coins]
        if missing:
            raise MissingData(
                f"{', '.join(missing)}: not in any recorded snapshot up to {as_of.isoformat()}"
            )
        return frame

    async def snapshot(self, coins: Sequence[str], as_of: datetime) -> MarketSnapshot:
        frame = self._frame(coins, as_of)
        return MarketSnapshot(as_of=as_of, coins={c: frame.coins[c] for c in coins})

    async def mids(self, coins: Sequence[str], as_of: datetime) -> dict[str, Decimal]:
        frame = self._frame(coins, as_of)
        return {c: frame.coins[c].price for c in coins}

    async def funding_rates(self, coins: Sequence[str], as_of: datetime) -> dict[str, Decimal]:
        frame = self._frame(coins, as_of)
        return {c: Decimal(str(frame.coins[c].funding_rate)) for c in coins}
