"""A fake Hyperliquid ``/info`` for history downloads: a deterministic candle and funding tape.

It answers like the venue: ``candleSnapshot`` returns the candles overlapping
``[startTime, endTime]`` (the one holding ``startTime`` included), oldest first, none opened
after ``now``, the last one still forming when it holds ``now``; at most ``max_rows`` rows per
answer; only the latest ``keep`` candles exist (when set). ``fundingHistory`` returns hourly
rows stamped 7 ms after the hour, at most 500 per answer. ``meta`` lists ``coins``; a
candle or funding request for another coin is answered HTTP 500 ``null``. Every request is
recorded, and ``fail_at`` makes the n-th history request (1-based) answer HTTP 500.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from infrastructure.hyperliquid.transport import InProcessTransport

HOUR_MS = 3_600_000
INTERVALS = {"1m": 60_000, "3m": 180_000, "1h": HOUR_MS, "4h": 4 * HOUR_MS, "1d": 86_400_000}


def price(coin: str, t: int, step: int) -> tuple[str, str, str, str, str]:
    """A candle's o, h, l, c, v as venue strings, a function of its open time only."""
    base = 1000 + (t // step) % 977 + (50_000 if coin == "BTC" else 0)
    o, c = base, base + (t // step) % 7 - 3
    return f"{o}.5", f"{max(o, c) + 2}.0", f"{min(o, c) - 1}.25", f"{c}.0", f"{(t // step) % 13}.1"


@dataclass
class FakeHistoryVenue:
    now_ms: int
    coins: tuple[str, ...] = ("BTC", "ETH")
    max_rows: int = 5000
    funding_rows: int = 500
    keep: int | None = None
    missing: set[int] = field(default_factory=set)  # open times the venue has no candle for
    fail_at: set[int] = field(default_factory=set)
    requests: list[dict[str, Any]] = field(default_factory=list)
    history_requests: int = 0

    def transport(self) -> InProcessTransport:
        return InProcessTransport(self.handle, name="fake-history")

    def kinds(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r.get("type") == kind]

    def handle(self, path: str, body: Any) -> tuple[int, Any]:
        assert path == "/info", path
        self.requests.append(body)
        kind = body.get("type")
        if kind == "meta":
            return 200, {"universe": [{"name": c, "szDecimals": 3} for c in self.coins]}
        if kind not in ("candleSnapshot", "fundingHistory"):
            return 422, "Failed to deserialize the JSON body"
        self.history_requests += 1
        if self.history_requests in self.fail_at:
            return 500, None
        if kind == "candleSnapshot":
            req = body["req"]
            if req["coin"] not in self.coins:
                return 500, None
            return 200, self.candles(req["coin"], req["interval"], req["startTime"], req["endTime"])
        if body["coin"] not in self.coins:
            return 500, None
        return 200, self.funding(body["coin"], body["startTime"], body.get("endTime"))

    def candles(self, coin: str, interval: str, start: int, end: int) -> list[dict[str, Any]]:
        step = INTERVALS[interval]
        newest = self.now_ms - self.now_ms % step
        oldest = 0 if self.keep is None else newest - (self.keep - 1) * step
        t = max(start - start % step, oldest)
        rows = []
        while t <= min(end, newest) and len(rows) < self.max_rows:
            if t not in self.missing:
                o, h, lo, c, v = price(coin, t, step)
                rows.append(
                    {"t": t, "T": t + step - 1, "s": coin, "i": interval, "o": o, "c": c}
                    | {"h": h, "l": lo, "v": v, "n": 3}
                )
            t += step
        return rows

    def funding(self, coin: str, start: int, end: int | None) -> list[dict[str, Any]]:
        last = self.now_ms if end is None else min(end, self.now_ms)
        hour = start - start % HOUR_MS
        rows = []
        while hour + 7 <= last and len(rows) < self.funding_rows:
            if hour + 7 >= start:
                n = hour // HOUR_MS
                rows.append(
                    {
                        "coin": coin,
                        "fundingRate": f"0.0000{n % 9 + 1}",
                        "premium": f"-0.000{n % 7 + 1}",
                        "time": hour + 7,
                    }
                )
            hour += HOUR_MS
        return rows
