"""Market data from Hyperliquid's ``/info`` API: point-in-time, bounded staleness, low weight.

What a snapshot is made of
--------------------------
* **Indicators** come from closed 3-minute and 4-hour candles (``candleSnapshot``), through
  :mod:`infrastructure.market.snapshot`, so they mean what the replay provider's mean. They
  are computed over the last ``candle_history`` closed candles of each interval: a value
  depends on that window only, not on how long the process has been running. A candle is
  closed at as-of ``t`` when its close stamp ``T`` (its last millisecond) is at or before
  ``t``; the venue's last row is usually still forming and is never used, nor is any row
  stamped after ``t``.
* **Live quotes** come from ``metaAndAssetCtxs``: ``price`` is the mid (``midPx``), with the
  venue's ``markPx`` and ``oraclePx``, the open interest and the current hourly funding. A coin
  whose book is empty (``midPx`` null) takes its mid from ``allMids``, where the venue then
  reports the last trade. ``data_time`` is the clock time at which the quotes were received
  (the older of the two answers when both were used). A live venue cannot serve the past:
  ``as_of`` selects the candles and judges staleness, the quotes are the latest ones.
* **Open-interest average**: Hyperliquid reports only the current open interest, so this
  provider keeps its own in-memory history: one observation per coin and minute (the last one
  seen in that minute) from every asset-context answer it uses for that coin, over the last
  24 hours. The average is the plain mean of those observations, like the replay's mean of
  per-minute values. It is not persisted: after a restart it covers only what has been seen
  since (at first, just the current value).

Cache policy (request weight: ``allMids`` 2, ``metaAndAssetCtxs`` and ``candleSnapshot`` 20,
budget 1200 per minute)
----------------------------------------------------------------------------------------------
* **Candles** are cached per coin and interval, final rows only: every row of an answer but
  the last. The last row is usually still forming; even when its close stamp has passed it may
  be incomplete (a lagging feed, no trade yet in the next interval), so it is taken only once
  a later row exists (for a liquid perp, as soon as the next interval trades). A request is
  made only when the newest candle that should be closed at ``as_of`` is not cached, and then
  asks only for the rows after the newest cached one; the first request (or one after a gap,
  or for an earlier ``as_of``) asks for the whole window. 4-hour candles are therefore
  fetched once per coin every four hours, 3-minute candles once per coin and interval,
  however many traders ask.
* **Asset contexts and mids** are reused while younger than ``live_cache_s`` at ``as_of`` (a
  third of the staleness bound by default), so traders asking at the same time, and ``mids()``
  called every second, share one request.
* Concurrent callers wait for a request in flight instead of sending their own.

Staleness and failures (never a guess, never a crash)
-----------------------------------------------------
* A refresh that fails (any :class:`TransportError`: HTTP 5xx, 429, timeout, unreadable body)
  falls back on the cache while the cached quotes are at most ``max_staleness_s`` old at
  ``as_of``; older → :class:`StaleData` naming the coins and the age; nothing cached →
  :class:`MissingData` with the transport's message.
* Candles: the newest closed 3-minute (and 4-hour) candle may close at most one interval plus
  ``max_staleness_s`` before ``as_of``; a feed lagging more → :class:`StaleData`, whether the
  rows came from the venue just now or from the cache after a failed request.
* A coin the venue does not list (or lists as delisted) → :class:`MissingData`; an answer of the
  wrong shape, a number that is not a decimal string, OHLC that makes no sense (high below
  low, a close outside the range, a price ≤ 0) → :class:`MissingData` naming the coin and field.
  Malformed answers are never cached and never fallen back from: a venue answering garbage is
  not trusted for the cycle.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final, Generic, Protocol, TypeVar

import numpy as np

from application.ports import MarketSnapshot, MissingData, StaleData
from infrastructure.hyperliquid.transport import Transport, TransportError
from infrastructure.market.snapshot import LONG_TERM_MIN_CANDLES, Quote, build_coin_snapshot

log = logging.getLogger("nof0.market")

INTRADAY: Final = "3m"
LONG_TERM: Final = "4h"
#: Candle intervals the parser knows (fixed lengths only), in milliseconds.
INTERVAL_MS: Final[Mapping[str, int]] = {
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
}
DEFAULT_CANDLE_HISTORY: Final = 200
#: One answer holds at most 500 rows: the window plus the forming candle must fit.
MAX_CANDLE_HISTORY: Final = 499
OI_WINDOW: Final = timedelta(hours=24)
#: Live quotes are reused for a third of the staleness bound by default.
LIVE_CACHE_DIVISOR: Final = 3

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
# The venue's decimal strings: no exponent, no sign but a leading minus, no spaces.
_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?\Z")

_T = TypeVar("_T")


class NowClock(Protocol):
    def now(self) -> datetime: ...


@dataclass(frozen=True)
class Candle:
    open_ms: int  # ``t``
    close_ms: int  # ``T``: the candle's last millisecond
    open: float
    high: float
    low: float
    close: float
    volume: float


# -- parsing ------------------------------------------------------------------------------


def _decimal_string(value: object, where: str, name: str) -> str:
    if not isinstance(value, str) or not _DECIMAL.match(value):
        raise MissingData(f"{where}: field {name!r} is not a decimal string ({value!r})")
    return value


def _integer(value: object, where: str, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise MissingData(f"{where}: field {name!r} is not an integer ({value!r})")
    return value


def _positive(value: object, where: str, name: str) -> Decimal:
    number = Decimal(_decimal_string(value, where, name))
    if number <= 0:
        raise MissingData(f"{where}: field {name!r} is not positive ({value!r})")
    return number


def parse_candles(coin: str, interval: str, body: Any) -> list[Candle]:
    """The rows of a ``candleSnapshot`` answer, oldest first; :class:`MissingData` naming the
    coin and field when any row is malformed. ``null`` (an unknown coin) is no rows."""
    interval_ms = INTERVAL_MS[interval]
    if body is None:
        return []
    if not isinstance(body, list):
        raise MissingData(f"{coin} {interval} candles: expected a list, got {type(body).__name__}")
    rows: dict[int, Candle] = {}
    for index, row in enumerate(body):
        where = f"{coin} {interval} candle #{index}"
        if not isinstance(row, dict):
            raise MissingData(f"{where}: expected an object, got {type(row).__name__}")
        t = _integer(row.get("t"), where, "t")
        where = f"{coin} {interval} candle t={t}"
        close_ms = _integer(row.get("T"), where, "T")
        if close_ms != t + interval_ms - 1:
            raise MissingData(f"{where}: field 'T' ({close_ms}) is not t + {interval} − 1 ms")
        if "s" in row and row["s"] != coin:
            raise MissingData(f"{where}: field 's' is {row['s']!r}")
        if "i" in row and row["i"] != interval:
            raise MissingData(f"{where}: field 'i' is {row['i']!r}")
        o, h, lo, c = (float(_positive(row.get(k), where, k)) for k in ("o", "h", "l", "c"))
        volume = float(Decimal(_decimal_string(row.get("v"), where, "v")))
        if volume < 0:
            raise MissingData(f"{where}: field 'v' is negative ({row['v']!r})")
        if h < lo:
            raise MissingData(f"{where}: field 'h' ({h:g}) is below 'l' ({lo:g})")
        if not lo <= o <= h:
            raise MissingData(f"{where}: field 'o' ({o:g}) is outside [l, h] = [{lo:g}, {h:g}]")
        if not lo <= c <= h:
            raise MissingData(f"{where}: field 'c' ({c:g}) is outside [l, h] = [{lo:g}, {h:g}]")
        rows[t] = Candle(t, close_ms, o, h, lo, c, volume)
    return [rows[t] for t in sorted(rows)]


@dataclass(frozen=True)
class _AssetContext:
    funding: Decimal
    open_interest: Decimal
    mark: Decimal
    oracle: Decimal
    mid: Decimal | None


@dataclass(frozen=True)
class _Contexts:
    """One ``metaAndAssetCtxs`` answer, checked for shape; each coin is read on demand, so a
    bad entry for a coin nobody trades does not block the others."""

    raw: Mapping[str, tuple[Mapping[str, Any], bool]]  # coin → (context, delisted)
    source: str

    def get(self, coin: str) -> _AssetContext:
        entry = self.raw.get(coin)
        if entry is None:
            raise MissingData(f"{coin}: {self.source} does not list this coin")
        ctx, delisted = entry
        if delisted:
            raise MissingData(f"{coin}: delisted on {self.source}")
        where = f"{coin} asset context"
        mid = ctx.get("midPx")
        open_interest = Decimal(_decimal_string(ctx.get("openInterest"), where, "openInterest"))
        if open_interest < 0:
            raise MissingData(f"{where}: field 'openInterest' is negative")
        return _AssetContext(
            funding=Decimal(_decimal_string(ctx.get("funding"), where, "funding")),
            open_interest=open_interest,
            mark=_positive(ctx.get("markPx"), where, "markPx"),
            oracle=_positive(ctx.get("oraclePx"), where, "oraclePx"),
            mid=None if mid is None else _positive(mid, where, "midPx"),
        )


def _parse_contexts(body: Any, source: str) -> _Contexts:
    where = f"{source} metaAndAssetCtxs"
    if not isinstance(body, list) or len(body) != 2:
        raise MissingData(f"{where}: expected [meta, contexts]")
    meta, ctxs = body
    universe = meta.get("universe") if isinstance(meta, dict) else None
    if not isinstance(universe, list) or not isinstance(ctxs, list):
        raise MissingData(f"{where}: expected a 'universe' list and a list of contexts")
    if len(universe) != len(ctxs):
        raise MissingData(f"{where}: {len(universe)} assets but {len(ctxs)} contexts")
    raw: dict[str, tuple[Mapping[str, Any], bool]] = {}
    for asset, ctx in zip(universe, ctxs, strict=True):
        if not isinstance(asset, dict) or not isinstance(asset.get("name"), str):
            raise MissingData(f"{where}: a universe entry has no name ({asset!r})")
        if not isinstance(ctx, dict):
            raise MissingData(f"{where}: the context of {asset['name']} is not an object")
        raw[asset["name"]] = (ctx, asset.get("isDelisted") is True)
    return _Contexts(raw, source)


def _parse_mids(body: Any, source: str) -> Mapping[str, Any]:
    if not isinstance(body, dict):
        raise MissingData(f"{source} allMids: expected an object, got {type(body).__name__}")
    return body


def _mid(mids: Mapping[str, Any], coin: str, source: str) -> Decimal:
    if coin not in mids:
        raise MissingData(f"{coin}: no mid in {source}'s allMids")
    return _positive(mids[coin], f"{coin} mid", coin)


# -- caches -------------------------------------------------------------------------------


@dataclass
class _LiveCache(Generic[_T]):
    """The last good answer to one live request, with the time it was received."""

    what: str
    payload: Mapping[str, Any]
    parse: Callable[[Any], _T]
    entry: tuple[_T, datetime] | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass
class _CandleCache:
    """Closed candles of one coin and interval, by open time. ``covered_from``: from this open
    time on the cache holds every row the venue had closed when it was last asked."""

    interval_ms: int
    rows: dict[int, Candle] = field(default_factory=dict)
    covered_from: int | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def fetch_from(self, expected: int, window_start: int) -> int | None:
        """Where a request must start to hold the window, or None when the cache has it."""
        covered = self.covered_from is not None and self.covered_from <= window_start
        if covered and expected in self.rows:
            return None
        newest = max(self.rows, default=None)
        if covered and newest is not None and window_start - self.interval_ms <= newest < expected:
            return newest + self.interval_ms  # only what is new
        return window_start  # first request, a gap, or an earlier as-of: the whole window

    def merge(self, rows: Sequence[Candle], start: int, window_start: int, keep: int) -> None:
        if start == window_start:
            # A whole window was asked for: it replaces the cache, so no hole can hide in it.
            self.rows = {}
            self.covered_from = window_start
        for row in rows:
            self.rows[row.open_ms] = row
        if len(self.rows) > keep:
            kept = sorted(self.rows)[-keep:]
            self.rows = {t: self.rows[t] for t in kept}
            if self.covered_from is None or self.covered_from < kept[0]:
                self.covered_from = kept[0]

    def window(self, window_start: int, as_of_us: int) -> list[Candle]:
        return [
            self.rows[t]
            for t in sorted(self.rows)
            if t >= window_start and self.rows[t].close_ms * 1000 <= as_of_us
        ]


def _us(at: datetime) -> int:
    if at.tzinfo is None:
        raise ValueError(f"times must be timezone-aware, got {at.isoformat()}")
    return (at - _EPOCH) // timedelta(microseconds=1)


def _age_s(received_at: datetime, as_of: datetime) -> float:
    return (as_of - received_at).total_seconds()


# -- the provider -------------------------------------------------------------------------


class HyperliquidMarket:
    """``MarketData`` and ``FundingFeed`` over a Hyperliquid :class:`Transport`."""

    def __init__(
        self,
        transport: Transport,
        *,
        clock: NowClock,
        max_staleness_s: float = 3.0,
        candle_history: int = DEFAULT_CANDLE_HISTORY,
        live_cache_s: float | None = None,
        name: str = "hyperliquid",
    ) -> None:
        if max_staleness_s <= 0:
            raise ValueError(f"max_staleness_s must be positive, got {max_staleness_s}")
        if not LONG_TERM_MIN_CANDLES <= candle_history <= MAX_CANDLE_HISTORY:
            raise ValueError(
                f"candle_history must be within [{LONG_TERM_MIN_CANDLES}, {MAX_CANDLE_HISTORY}]"
                f" (the indicators' warm-up; one answer's rows), got {candle_history}"
            )
        cache_s = max_staleness_s / LIVE_CACHE_DIVISOR if live_cache_s is None else live_cache_s
        if not 0 <= cache_s <= max_staleness_s:
            raise ValueError(f"live_cache_s must be within [0, max_staleness_s], got {cache_s}")
        self.transport = transport
        self.clock = clock
        self.max_staleness_s = max_staleness_s
        self.candle_history = candle_history
        self.live_cache_s = cache_s
        self.name = name
        self._contexts = _LiveCache(
            "asset contexts", {"type": "metaAndAssetCtxs"}, lambda b: _parse_contexts(b, name)
        )
        self._mids = _LiveCache(
            "mids", {"type": "allMids", "dex": ""}, lambda b: _parse_mids(b, name)
        )
        self._candles: dict[tuple[str, str], _CandleCache] = {}
        self._oi: dict[str, deque[tuple[datetime, float]]] = {}

    # -- the ports ------------------------------------------------------------------------

    async def snapshot(self, coins: Sequence[str], as_of: datetime) -> MarketSnapshot:
        _us(as_of)
        contexts, received = await self._live(self._contexts, coins, as_of)
        ctx = {coin: contexts.get(coin) for coin in coins}  # unknown coins fail before candles
        no_mid = [coin for coin in coins if ctx[coin].mid is None]
        mids: Mapping[str, Any] = {}
        data_time = received
        if no_mid:
            mids, mids_at = await self._live(self._mids, no_mid, as_of)
            data_time = min(received, mids_at)
        results = await asyncio.gather(
            *(
                self._closed(coin, interval, as_of)
                for coin in coins
                for interval in (INTRADAY, LONG_TERM)
            ),
            return_exceptions=True,
        )
        windows: list[list[Candle]] = []
        for result in results:
            if isinstance(result, BaseException):
                raise result  # the first coin's failure, in request order
            windows.append(result)
        out = {}
        for n, coin in enumerate(coins):
            intraday, long_term = windows[2 * n], windows[2 * n + 1]
            c = ctx[coin]
            oi_average = self._observe_oi(coin, received, float(c.open_interest))
            quote = Quote(
                price=c.mid if c.mid is not None else _mid(mids, coin, self.name),
                data_time=data_time,
                open_interest_latest=float(c.open_interest),
                open_interest_average=oi_average,
                funding_rate=float(c.funding),
                mark_price=c.mark,
                oracle_price=c.oracle,
            )
            out[coin] = build_coin_snapshot(
                coin,
                intraday_close=np.array([r.close for r in intraday]),
                long_term_high=np.array([r.high for r in long_term]),
                long_term_low=np.array([r.low for r in long_term]),
                long_term_close=np.array([r.close for r in long_term]),
                long_term_volume=np.array([r.volume for r in long_term]),
                quote=quote,
            )
        return MarketSnapshot(as_of=as_of, coins=out)

    async def mids(self, coins: Sequence[str], as_of: datetime) -> dict[str, Decimal]:
        _us(as_of)
        mids, _ = await self._live(self._mids, coins, as_of)
        return {coin: _mid(mids, coin, self.name) for coin in coins}

    async def funding_rates(self, coins: Sequence[str], as_of: datetime) -> dict[str, Decimal]:
        """The hourly funding rate in force, from the asset contexts."""
        _us(as_of)
        contexts, received = await self._live(self._contexts, coins, as_of)
        out = {}
        for coin in coins:
            ctx = contexts.get(coin)
            self._observe_oi(coin, received, float(ctx.open_interest))
            out[coin] = ctx.funding
        return out

    # -- live quotes ----------------------------------------------------------------------

    async def _live(
        self, cache: _LiveCache[_T], coins: Sequence[str], as_of: datetime
    ) -> tuple[_T, datetime]:
        async with cache.lock:  # callers arriving meanwhile reuse this answer
            entry = cache.entry
            if entry is not None and _age_s(entry[1], as_of) <= self.live_cache_s:
                return entry
            try:
                body = await asyncio.to_thread(self.transport.post, "/info", cache.payload)
            except TransportError as exc:
                return self._fallback(cache.what, entry, coins, as_of, exc)
            value = cache.parse(body)
            cache.entry = (value, self.clock.now())
            return cache.entry

    def _fallback(
        self,
        what: str,
        entry: tuple[_T, datetime] | None,
        coins: Sequence[str],
        as_of: datetime,
        error: TransportError,
    ) -> tuple[_T, datetime]:
        names = ", ".join(coins) or "(no coins)"
        if entry is None:
            raise MissingData(f"{names}: no {what} from {self.name}: {error}") from error
        age = _age_s(entry[1], as_of)
        if age > self.max_staleness_s:
            raise StaleData(
                f"{names}: the newest {what} from {self.name} are {age:.3f}s old at as-of"
                f" (bound {self.max_staleness_s:g}s); the refresh failed: {error}"
            ) from error
        log.warning("%s: serving %s %.3fs old (refresh failed: %s)", self.name, what, age, error)
        return entry

    def _observe_oi(self, coin: str, at: datetime, value: float) -> float:
        """Record one observation (the last per minute) and return the 24-hour mean."""
        history = self._oi.setdefault(coin, deque())
        minute = at.replace(second=0, microsecond=0)
        if history and history[-1][0].replace(second=0, microsecond=0) == minute:
            history.pop()
        if not history or history[-1][0] <= at:
            history.append((at, value))
        newest = history[-1][0]
        while history and history[0][0] <= newest - OI_WINDOW:
            history.popleft()
        return sum(v for _, v in history) / len(history)

    # -- candles --------------------------------------------------------------------------

    async def _closed(self, coin: str, interval: str, as_of: datetime) -> list[Candle]:
        """The last ``candle_history`` closed candles at ``as_of``, fetching only what is new."""
        cache = self._candles.setdefault((coin, interval), _CandleCache(INTERVAL_MS[interval]))
        step = cache.interval_ms
        as_of_us = _us(as_of)
        as_of_ms = as_of_us // 1000
        expected = (as_of_ms + 1) // step * step - step  # the newest open time with T ≤ as_of
        window_start = expected - (self.candle_history - 1) * step
        error: TransportError | None = None
        async with cache.lock:
            start = cache.fetch_from(expected, window_start)
            if start is not None:
                payload = {
                    "type": "candleSnapshot",
                    "req": {
                        "coin": coin,
                        "interval": interval,
                        "startTime": start,
                        "endTime": as_of_ms,
                    },
                }
                try:
                    body = await asyncio.to_thread(self.transport.post, "/info", payload)
                except TransportError as exc:
                    error = exc
                else:
                    rows = parse_candles(coin, interval, body)
                    # The answer's last row may still be forming even when its T has passed
                    # (a lagging feed, no trade yet in the next interval): it is never final.
                    # Any earlier row is: the venue has started a later candle.
                    cache.merge(rows[:-1], start, window_start, keep=2 * self.candle_history)
            window = cache.window(window_start, as_of_us)
        failed = f"; the request failed: {error}" if error is not None else ""
        if not window:
            raise MissingData(f"{coin}: no closed {interval} candles from {self.name}{failed}")
        lag_s = (as_of_us - (window[-1].close_ms + 1) * 1000) / 1e6
        bound_s = step / 1000 + self.max_staleness_s
        if lag_s > bound_s:
            raise StaleData(
                f"{coin}: the newest closed {interval} candle from {self.name} closed {lag_s:.3f}s"
                f" before as-of (the feed lags more than {bound_s:g}s){failed}"
            )
        if error is not None:
            log.warning("%s: serving cached %s %s candles (%s)", self.name, coin, interval, error)
        return window
