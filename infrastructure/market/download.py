"""Download candles and funding history from a Hyperliquid ``/info`` API into the history store.

Paging (``candleSnapshot``): the range is walked in windows of at most
:data:`MAX_CANDLES_PER_REQUEST` intervals, each request starting where the last stored or
answered candle ends, so no two requests overlap. The venue may answer fewer rows than a
window holds (its docs cap time-range answers at 500 rows; it keeps only the latest 5,000
candles): when an answer stops before the window's end, the next request starts right after
its last row (pagination by the last timestamp), and an empty answer means the venue has
nothing more in that window. ``fundingHistory`` answers at most 500 rows: a full answer (or one
that stops more than an hour before the range ends) is followed by a request from its last
stamp + 1 ms.

Resumable and idempotent: each answer's rows and the range it covers are written in one
transaction (:meth:`HistoryStore.add_candles`), and a run asks only for the ranges not yet
fetched. An interrupted run (a transport failure, Ctrl-C) keeps everything answered before it;
the next run continues from there, and a run over a range already fetched sends no request.

Closed candles only: the window that reaches the present asks up to now, and the answer's
last row is never stored (it is the forming candle, or the newest closed one, which a lagging
venue may still change); that range stays unfetched, so the next run (or ``record``) asks for
it again. Funding rows are taken up to :data:`FUNDING_SETTLE_MS` before now (the venue stamps
them a few ms after the hour).

Request weight: every request goes through the transport (and its :class:`WeightBudget`);
the extra weight of long answers (1 per 60 candles, 1 per 20 funding rows) is spent on the
same budget after each answer, so a long download slows down instead of being answered 429.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from infrastructure.hyperliquid.transport import Transport, TransportError, WeightBudget
from infrastructure.market.history import (
    FUNDING,
    CandleRow,
    FundingRow,
    HistoryStore,
    Range,
    interval_ms,
)

log = logging.getLogger("nof0.history")

MAX_CANDLES_PER_REQUEST: Final = 5000
FUNDING_ROWS_PER_ANSWER: Final = 500
FUNDING_SETTLE_MS: Final = 60_000
FUNDING_PERIOD_MS: Final = 3_600_000  # Hyperliquid funds hourly
CANDLES_PER_EXTRA_WEIGHT: Final = 60
FUNDING_PER_EXTRA_WEIGHT: Final = 20
#: A fresh series recorded live starts this many intervals back.
RECORD_BACKFILL: Final = 500

_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?\Z")


class DownloadError(Exception):
    """The download cannot go on; the message names the coin, interval and cause.
    ``resumable``: the venue did not answer (running again later continues)."""

    def __init__(self, message: str, *, resumable: bool = False) -> None:
        super().__init__(message)
        self.resumable = resumable


def _text(row: Mapping[str, Any], key: str, where: str) -> str:
    value = row.get(key)
    if not isinstance(value, str) or not _DECIMAL.match(value):
        raise DownloadError(f"{where}: field {key!r} is not a decimal string ({value!r})")
    return value


def _int(row: Mapping[str, Any], key: str, where: str) -> int:
    value = row.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise DownloadError(f"{where}: field {key!r} is not an integer ({value!r})")
    return value


def parse_candle_rows(coin: str, interval: str, body: Any) -> list[CandleRow]:
    """The rows of a ``candleSnapshot`` answer, strings kept exactly, oldest first."""
    step = interval_ms(interval)
    if body is None:
        raise DownloadError(f"{coin} {interval}: the venue answered null (an unknown coin?)")
    if not isinstance(body, list):
        raise DownloadError(f"{coin} {interval}: expected a list of candles, got {body!r:.200}")
    rows: dict[int, CandleRow] = {}
    for index, row in enumerate(body):
        where = f"{coin} {interval} candle #{index}"
        if not isinstance(row, dict):
            raise DownloadError(f"{where}: expected an object, got {type(row).__name__}")
        t = _int(row, "t", where)
        where = f"{coin} {interval} candle t={t}"
        if _int(row, "T", where) != t + step - 1:
            raise DownloadError(f"{where}: field 'T' is not t + {interval} - 1 ms")
        if row.get("s", coin) != coin or row.get("i", interval) != interval:
            raise DownloadError(f"{where}: answered for {row.get('s')} {row.get('i')}")
        if t % step:
            raise DownloadError(f"{where}: does not open on a multiple of {interval}")
        o, h, lo, c, v = (_text(row, k, where) for k in ("o", "h", "l", "c", "v"))
        rows[t] = CandleRow(t, o, h, lo, c, v)
    return [rows[t] for t in sorted(rows)]


def parse_funding_rows(coin: str, body: Any) -> list[FundingRow]:
    if not isinstance(body, list):
        raise DownloadError(f"{coin} funding: expected a list, got {body!r:.200}")
    rows: dict[int, FundingRow] = {}
    for index, row in enumerate(body):
        where = f"{coin} funding row #{index}"
        if not isinstance(row, dict):
            raise DownloadError(f"{where}: expected an object, got {type(row).__name__}")
        if row.get("coin", coin) != coin:
            raise DownloadError(f"{where}: answered for {row.get('coin')}")
        t = _int(row, "time", where)
        rows[t] = FundingRow(t, _text(row, "fundingRate", where), _text(row, "premium", where))
    return [rows[t] for t in sorted(rows)]


@dataclass
class SeriesResult:
    coin: str
    series: str  # an interval or "funding"
    requests: int = 0
    stored: int = 0
    empty: int = 0  # answers with no row in their window (older than the venue keeps, ...)


@dataclass
class DownloadReport:
    results: list[SeriesResult] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(r.requests for r in self.results)

    @property
    def stored(self) -> int:
        return sum(r.stored for r in self.results)


class HistoryDownloader:
    def __init__(
        self,
        transport: Transport,
        store: HistoryStore,
        *,
        now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        budget: WeightBudget | None = None,
        max_candles: int = MAX_CANDLES_PER_REQUEST,
        venue: str = "the venue",
    ) -> None:
        if not 1 <= max_candles <= MAX_CANDLES_PER_REQUEST:
            raise ValueError(f"max_candles must be within [1, {MAX_CANDLES_PER_REQUEST}]")
        self.transport = transport
        self.store = store
        self.now_ms = now_ms
        self.budget = budget
        self.max_candles = max_candles
        self.venue = venue
        self._listed: frozenset[str] | None = None

    def _post(self, payload: Mapping[str, Any], what: str) -> Any:
        try:
            return self.transport.post("/info", payload)
        except TransportError as exc:
            raise DownloadError(f"{what}: {exc}", resumable=True) from exc

    def _extra_weight(self, rows: int, per: int) -> None:
        if self.budget is not None and rows >= per:
            self.budget.spend(rows // per)

    def check_coins(self, coins: Sequence[str]) -> None:
        """:class:`DownloadError` naming every coin the venue's ``meta`` does not list."""
        if self._listed is None:
            body = self._post({"type": "meta"}, "listing the venue's coins (meta)")
            universe = body.get("universe") if isinstance(body, dict) else None
            if not isinstance(universe, list):
                raise DownloadError(f"{self.venue} meta: expected a 'universe' list")
            self._listed = frozenset(
                a["name"]
                for a in universe
                if isinstance(a, dict) and isinstance(a.get("name"), str)
            )
        unknown = [coin for coin in coins if coin not in self._listed]
        if unknown:
            listed = ", ".join(sorted(self._listed)[:20])
            raise DownloadError(
                f"unknown coin {', '.join(unknown)}: {self.venue} does not list it"
                f" (listed: {listed}{', ...' if len(self._listed) > 20 else ''})"
            )

    # -- candles ------------------------------------------------------------------------------

    def candles(self, coin: str, interval: str, start_ms: int, end_ms: int) -> SeriesResult:
        """Store every closed candle opening in ``[start_ms, end_ms)`` that is not fetched."""
        step = interval_ms(interval)
        result = SeriesResult(coin, interval)
        now = self.now_ms()
        start = start_ms - start_ms % step
        end = min(-(-end_ms // step) * step, now - now % step + step)  # up to the forming one
        for gap in self.store.missing(coin, interval, start, end):
            self._candle_gap(coin, interval, step, gap, now, result)
        return result

    def _candle_gap(
        self, coin: str, interval: str, step: int, gap: Range, now: int, result: SeriesResult
    ) -> None:
        cursor, gap_end = gap
        # A candle that cannot have closed yet (it opens less than one interval before now) is
        # not asked for: the answer could hold nothing final, whatever time of day it is.
        while cursor < gap_end and cursor + step <= now:
            window_end = min(gap_end, cursor + self.max_candles * step)
            live = window_end + step > now  # the window reaches the candle still forming
            payload = {
                "type": "candleSnapshot",
                "req": {
                    "coin": coin,
                    "interval": interval,
                    "startTime": cursor,
                    "endTime": now if live else window_end - 1,
                },
            }
            body = self._post(payload, f"{coin} {interval} candles from {cursor}")
            result.requests += 1
            answer = parse_candle_rows(coin, interval, body)
            self._extra_weight(len(answer), CANDLES_PER_EXTRA_WEIGHT)
            # The answer reached the present when its last row is the newest candle that
            # should be closed (by the window or our clock) or later: that row is forming, or
            # closed but not proven final (a lagging venue may not have started the next one),
            # so it is left for the next run. A shorter answer was cut (an answer cap): all of
            # it is final, and the next request starts after it.
            present = min(window_end, now - now % step) - step
            reached = live and bool(answer) and answer[-1].open_time_ms >= present
            if reached:
                answer = answer[:-1]
            rows = [
                r
                for r in answer
                if cursor <= r.open_time_ms < window_end and r.open_time_ms + step <= now
            ]
            # Up to the last row: when an answer stops short of the window (an answer cap, or
            # a tail the venue does not have) the next request starts there, and an empty
            # answer then closes the window (older than the venue keeps, no trades). At the
            # present an empty answer means nothing is final yet.
            empty_to = cursor if live else window_end
            answered_to = rows[-1].open_time_ms + step if rows else empty_to
            result.empty += not rows
            result.stored += self.store.add_candles(coin, interval, rows, (cursor, answered_to))
            if reached or answered_to <= cursor:
                return  # at the present: nothing more is final
            cursor = answered_to

    # -- funding ------------------------------------------------------------------------------

    def funding(self, coin: str, start_ms: int, end_ms: int) -> SeriesResult:
        result = SeriesResult(coin, FUNDING)
        settled = self.now_ms() - FUNDING_SETTLE_MS
        end = min(end_ms, settled)
        for cursor, gap_end in self.store.missing(coin, FUNDING, start_ms, end):
            while cursor < gap_end:
                payload = {
                    "type": "fundingHistory",
                    "coin": coin,
                    "startTime": cursor,
                    "endTime": gap_end - 1,
                }
                body = self._post(payload, f"{coin} funding from {cursor}")
                result.requests += 1
                answer = parse_funding_rows(coin, body)
                self._extra_weight(len(answer), FUNDING_PER_EXTRA_WEIGHT)
                rows = [r for r in answer if cursor <= r.time_ms < gap_end]
                # A full answer, or one ending more than an hour (one funding period) before
                # the range does, may have been cut: go on after its last row (an empty answer
                # then closes the range). A venue capping below 500 loses nothing.
                cut = bool(rows) and (
                    len(answer) >= FUNDING_ROWS_PER_ANSWER
                    or rows[-1].time_ms + FUNDING_PERIOD_MS < gap_end
                )
                answered_to = rows[-1].time_ms + 1 if cut else gap_end
                result.stored += self.store.add_funding(coin, rows, (cursor, answered_to))
                cursor = answered_to
        return result

    # -- whole runs ---------------------------------------------------------------------------

    def download(
        self,
        coins: Sequence[str],
        intervals: Sequence[str],
        start_ms: int,
        end_ms: int,
        *,
        funding: bool = True,
        progress: Callable[[SeriesResult], None] | None = None,
    ) -> DownloadReport:
        for interval in intervals:
            interval_ms(interval)
        self.check_coins(coins)
        report = DownloadReport()
        for coin in coins:
            for interval in intervals:
                done = self.candles(coin, interval, start_ms, end_ms)
                report.results.append(done)
                if progress is not None:
                    progress(done)
            if funding:
                done = self.funding(coin, start_ms, end_ms)
                report.results.append(done)
                if progress is not None:
                    progress(done)
        return report


@dataclass
class RecordReport:
    passes: int = 0
    stored: int = 0
    requests: int = 0
    failures: int = 0


def record(
    downloader: HistoryDownloader,
    coins: Sequence[str],
    intervals: Sequence[str],
    *,
    stop: threading.Event,
    max_passes: int | None = None,
    backfill: int = RECORD_BACKFILL,
    on_pass: Callable[[RecordReport], None] | None = None,
) -> RecordReport:
    """Append closed candles as they close, until ``stop`` is set (or ``max_passes`` passes).

    Each pass asks, per coin and interval whose next candle has closed, for what follows the
    newest stored candle (a fresh series starts ``backfill`` intervals back), then waits until
    the shortest interval's next candle has closed. A failed request is logged and retried at
    the next pass: a venue that hiccups does not end the recording.
    """
    steps = [interval_ms(i) for i in intervals]
    downloader.check_coins(coins)
    report = RecordReport()
    shortest = min(steps)
    while not stop.is_set():
        now = downloader.now_ms()
        for coin in coins:
            for interval, step in zip(intervals, steps, strict=True):
                last = downloader.store.last_open_ms(coin, interval)
                if last is not None and last + 2 * step > now:
                    continue  # the candle after the newest stored one has not closed yet
                start = now - backfill * step if last is None else last + step
                try:
                    done = downloader.candles(coin, interval, start, now + step)
                except DownloadError as exc:
                    report.failures += 1
                    log.warning("record %s %s: %s (retried next pass)", coin, interval, exc)
                    continue
                report.requests += done.requests
                report.stored += done.stored
        report.passes += 1
        if on_pass is not None:
            on_pass(report)
        if max_passes is not None and report.passes >= max_passes:
            break
        # A little after the next boundary, so the venue has started the next candle.
        wake = now - now % shortest + shortest + 2_000
        stop.wait(max(0.0, (wake - downloader.now_ms()) / 1000))
    return report
