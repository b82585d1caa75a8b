"""The history downloader against a fake venue: paging, resuming, idempotence, the present."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from infrastructure.hyperliquid.transport import WeightBudget
from infrastructure.market.download import DownloadError, HistoryDownloader, record
from infrastructure.market.history import FUNDING, HistoryStore, UnknownInterval
from tests.support.fake_hl_history import HOUR_MS, FakeHistoryVenue, price

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
MINUTE = 60_000
DAY = 86_400_000


def downloader(venue: FakeHistoryVenue, path: Path, **kwargs: object) -> HistoryDownloader:
    store = HistoryStore(path / "market.sqlite")
    return HistoryDownloader(venue.transport(), store, now_ms=lambda: venue.now_ms, **kwargs)  # type: ignore[arg-type]


def windows(venue: FakeHistoryVenue) -> list[tuple[int, int]]:
    return [(r["req"]["startTime"], r["req"]["endTime"]) for r in venue.kinds("candleSnapshot")]


def assert_no_overlap(spans: list[tuple[int, int]]) -> None:
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start > end, spans


def test_a_range_longer_than_one_answer_takes_several_requests_none_overlapping(
    tmp_path: Path,
) -> None:
    venue = FakeHistoryVenue(now_ms=T0 + 30 * DAY)
    dl = downloader(venue, tmp_path)
    done = dl.candles("BTC", "1m", T0, T0 + 12_000 * MINUTE)
    assert done.requests == 3  # 5000 + 5000 + 2000
    assert windows(venue) == [
        (T0, T0 + 5000 * MINUTE - 1),
        (T0 + 5000 * MINUTE, T0 + 10_000 * MINUTE - 1),
        (T0 + 10_000 * MINUTE, T0 + 12_000 * MINUTE - 1),
    ]
    assert done.stored == 12_000
    rows = dl.store.raw_candles("BTC", "1m")
    assert [r.open_time_ms for r in rows] == [T0 + n * MINUTE for n in range(12_000)]
    first = rows[0]
    assert (first.open, first.high, first.low, first.close, first.volume) == price(
        "BTC", T0, MINUTE
    )
    assert dl.store.fetched("BTC", "1m") == [(T0, T0 + 12_000 * MINUTE)]


def test_answers_capped_at_500_rows_are_paged_by_their_last_candle(tmp_path: Path) -> None:
    venue = FakeHistoryVenue(now_ms=T0 + 30 * DAY, max_rows=500)
    dl = downloader(venue, tmp_path)
    done = dl.candles("ETH", "1m", T0, T0 + 6000 * MINUTE)
    spans = windows(venue)
    assert [start for start, _ in spans] == [T0 + n * 500 * MINUTE for n in range(12)]
    assert_no_overlap([(s, s + 500 * MINUTE - 1) for s, _ in spans])
    assert (done.stored, len(dl.store.raw_candles("ETH", "1m"))) == (6000, 6000)
    assert dl.store.coverage("ETH", "1m").gaps == ()


def test_a_second_download_sends_no_history_request(tmp_path: Path) -> None:
    venue = FakeHistoryVenue(now_ms=T0 + 40 * DAY)
    dl = downloader(venue, tmp_path)
    first = dl.download(["BTC", "ETH"], ["1m", "3m", "1h", "4h"], T0, T0 + 31 * DAY)
    assert first.stored > 0
    sent = venue.history_requests
    again = downloader(venue, tmp_path).download(
        ["BTC", "ETH"], ["1m", "3m", "1h", "4h"], T0, T0 + 31 * DAY
    )
    assert (again.requests, again.stored) == (0, 0)
    assert venue.history_requests == sent
    # A wider range asks only for what is new, starting where the first run ended.
    wider = downloader(venue, tmp_path).candles("BTC", "1h", T0, T0 + 32 * DAY)
    assert (wider.requests, wider.stored) == (1, 24)
    assert windows(venue)[-1][0] == T0 + 31 * DAY


def test_an_interrupted_download_resumes_to_the_same_store(tmp_path: Path) -> None:
    def run(path: Path, fail_at: set[int]) -> HistoryStore:
        venue = FakeHistoryVenue(now_ms=T0 + 40 * DAY, max_rows=500, fail_at=fail_at)
        dl = downloader(venue, path)
        if not fail_at:
            dl.download(["BTC"], ["1m", "1h"], T0, T0 + 3 * DAY)
            return dl.store
        with pytest.raises(DownloadError, match=r"BTC 1m candles from \d+: .*HTTP 500"):
            dl.download(["BTC"], ["1m", "1h"], T0, T0 + 3 * DAY)
        venue.fail_at = set()
        resumed = HistoryDownloader(venue.transport(), dl.store, now_ms=lambda: venue.now_ms)
        before = venue.history_requests
        resumed.download(["BTC"], ["1m", "1h"], T0, T0 + 3 * DAY)
        starts = [
            r["req"]["startTime"]
            for r in venue.kinds("candleSnapshot")
            if r["req"]["interval"] == "1m"
        ]
        # The resumed run starts where the failed request did: nothing else twice.
        assert starts[before - 1] == starts[before] == T0 + 2 * 500 * MINUTE
        assert len(set(starts)) == len(starts) - 1
        return dl.store

    whole = run(tmp_path / "whole", set())
    broken = run(tmp_path / "broken", {3})
    for series in ("1m", "1h"):
        assert broken.raw_candles("BTC", series) == whole.raw_candles("BTC", series)
        assert broken.fetched("BTC", series) == whole.fetched("BTC", series)
    assert broken.funding("BTC") == whole.funding("BTC")
    assert len(whole.raw_candles("BTC", "1m")) == 3 * 1440


def test_gaps_are_reported_and_not_asked_for_again(tmp_path: Path) -> None:
    holes = {T0 + 10 * MINUTE, T0 + 11 * MINUTE, T0 + 500 * MINUTE}
    venue = FakeHistoryVenue(now_ms=T0 + 10 * DAY, missing=holes)
    dl = downloader(venue, tmp_path)
    dl.candles("BTC", "1m", T0, T0 + 1000 * MINUTE)
    coverage = dl.store.coverage("BTC", "1m")
    assert coverage.count == 997
    assert coverage.gaps == (
        (T0 + 10 * MINUTE, T0 + 12 * MINUTE),
        (T0 + 500 * MINUTE, T0 + 501 * MINUTE),
    )
    assert coverage.missing_candles() == 3
    assert coverage.ranges == (
        (T0, T0 + 10 * MINUTE),
        (T0 + 12 * MINUTE, T0 + 500 * MINUTE),
        (T0 + 501 * MINUTE, T0 + 1000 * MINUTE),
    )
    assert coverage.fetched == ((T0, T0 + 1000 * MINUTE),)
    sent = venue.history_requests
    assert dl.candles("BTC", "1m", T0, T0 + 1000 * MINUTE).requests == 0
    assert venue.history_requests == sent


def test_the_tail_of_a_window_the_venue_lacks_costs_one_more_request(tmp_path: Path) -> None:
    venue = FakeHistoryVenue(now_ms=T0 + 10 * DAY, missing={T0 + 9 * HOUR_MS})
    dl = downloader(venue, tmp_path)
    done = dl.candles("ETH", "1h", T0, T0 + 10 * HOUR_MS)
    assert (done.stored, done.requests) == (9, 2)  # then an empty answer closes the window
    assert dl.store.fetched("ETH", "1h") == [(T0, T0 + 10 * HOUR_MS)]


def test_history_older_than_the_venue_keeps_is_fetched_once(tmp_path: Path) -> None:
    venue = FakeHistoryVenue(now_ms=T0 + 30 * DAY, keep=5000)
    dl = downloader(venue, tmp_path)
    dl.candles("BTC", "1m", T0, T0 + 30 * DAY)
    coverage = dl.store.coverage("BTC", "1m")
    assert coverage.count == 4999  # the latest 5000 exist; the forming one is not stored
    assert coverage.first_ms == T0 + 30 * DAY - 4999 * MINUTE
    assert dl.candles("ETH", "1m", T0, T0 + 2 * DAY).empty == 1  # all older than kept
    sent = venue.history_requests
    assert dl.candles("BTC", "1m", T0, T0 + 30 * DAY).requests == 0
    assert venue.history_requests == sent


def test_the_candle_still_forming_is_never_stored(tmp_path: Path) -> None:
    now = T0 + 5 * HOUR_MS + 17 * MINUTE
    venue = FakeHistoryVenue(now_ms=now)
    dl = downloader(venue, tmp_path)
    dl.candles("BTC", "1h", T0, T0 + DAY)
    request = venue.kinds("candleSnapshot")[-1]["req"]
    assert request["endTime"] == now  # asks up to now, so the forming candle proves the rest
    stored = [r.open_time_ms for r in dl.store.raw_candles("BTC", "1h")]
    assert stored == [T0 + n * HOUR_MS for n in range(5)]
    assert dl.store.fetched("BTC", "1h") == [(T0, T0 + 5 * HOUR_MS)]
    venue.now_ms = now + HOUR_MS  # the 05:00 candle has closed
    later = dl.candles("BTC", "1h", T0, T0 + DAY)
    assert (later.requests, later.stored) == (1, 1)
    assert venue.kinds("candleSnapshot")[-1]["req"]["startTime"] == T0 + 5 * HOUR_MS


def test_a_range_ending_inside_the_forming_candle_asks_nothing_for_it(tmp_path: Path) -> None:
    # 15:22: the 4h candle opening at 12:00 closes at 16:00; a range to 14:00 holds nothing
    # final past 12:00, so neither the first nor a second run asks for it.
    now = T0 + 15 * HOUR_MS + 22 * MINUTE
    venue = FakeHistoryVenue(now_ms=now)
    dl = downloader(venue, tmp_path)
    first = dl.candles("BTC", "4h", T0, T0 + 14 * HOUR_MS)
    assert (first.requests, first.stored) == (1, 3)  # 00:00, 04:00, 08:00
    again = dl.candles("BTC", "4h", T0, T0 + 14 * HOUR_MS)
    assert (again.requests, again.stored) == (0, 0)
    venue.now_ms = T0 + 16 * HOUR_MS + MINUTE  # the 12:00 candle has closed
    later = dl.candles("BTC", "4h", T0, T0 + 14 * HOUR_MS)
    assert later.requests == 1
    assert venue.kinds("candleSnapshot")[-1]["req"]["startTime"] == T0 + 12 * HOUR_MS


def test_funding_is_paged_by_500_rows(tmp_path: Path) -> None:
    venue = FakeHistoryVenue(now_ms=T0 + 60 * DAY)
    dl = downloader(venue, tmp_path)
    done = dl.funding("BTC", T0, T0 + 50 * DAY)
    assert (done.requests, done.stored) == (3, 1200)
    starts = [r["startTime"] for r in venue.kinds("fundingHistory")]
    assert starts == [T0, T0 + 499 * HOUR_MS + 8, T0 + 999 * HOUR_MS + 8]
    rows = dl.store.funding("BTC")
    assert [r.time_ms for r in rows] == [T0 + n * HOUR_MS + 7 for n in range(1200)]
    assert (rows[0].rate, rows[0].premium) == ("0.00001", "-0.0001")
    assert dl.store.fetched("BTC", FUNDING) == [(T0, T0 + 50 * DAY)]
    assert dl.funding("BTC", T0, T0 + 50 * DAY).requests == 0


def test_bad_input_is_named(tmp_path: Path) -> None:
    venue = FakeHistoryVenue(now_ms=T0 + DAY)
    dl = downloader(venue, tmp_path)
    with pytest.raises(DownloadError, match="unknown coin NOPE: fake-history does not list"):
        HistoryDownloader(venue.transport(), dl.store, venue="fake-history").download(
            ["BTC", "NOPE"], ["1h"], T0, T0 + DAY
        )
    with pytest.raises(UnknownInterval, match="unknown candle interval '7m'"):
        dl.download(["BTC"], ["7m"], T0, T0 + DAY)
    assert venue.history_requests == 0
    # A coin the venue refuses mid-way (delisted since): the error names it.
    venue.coins = ("ETH",)
    with pytest.raises(DownloadError, match=r"BTC 1h candles from \d+: .*HTTP 500"):
        dl.candles("BTC", "1h", T0, T0 + DAY)


def test_long_answers_spend_their_extra_weight(tmp_path: Path) -> None:
    clock = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    budget = WeightBudget(per_minute=200, clock=lambda: clock[0], sleep=sleep)
    venue = FakeHistoryVenue(now_ms=T0 + 30 * DAY)
    dl = downloader(venue, tmp_path, budget=budget)
    dl.candles("BTC", "1m", T0, T0 + 15_000 * MINUTE)  # three answers of 5000: 83 extra each
    assert len(slept) == 1  # 3 x 83 is more than 200 a minute: the third answer's waited


def test_record_appends_closed_candles_until_stopped(tmp_path: Path) -> None:
    venue = FakeHistoryVenue(now_ms=T0 + 10 * DAY + 30_000)
    dl = downloader(venue, tmp_path)
    stop = threading.Event()
    passes: list[int] = []

    def on_pass(report: object) -> None:
        passes.append(len(dl.store.raw_candles("BTC", "1m")))
        venue.now_ms += MINUTE  # time goes on between passes
        if len(passes) == 3:
            stop.set()

    report = record(dl, ["BTC"], ["1m", "3m"], stop=stop, backfill=10, on_pass=on_pass)
    assert (report.passes, report.failures) == (3, 0)
    assert passes == [10, 11, 12]
    times = [r.open_time_ms for r in dl.store.raw_candles("BTC", "1m")]
    assert times == sorted(set(times))
    assert times[-1] + MINUTE <= venue.now_ms - MINUTE
    # 3-minute candles are asked for only when one has closed since the last pass.
    asked = [r["req"]["interval"] for r in venue.kinds("candleSnapshot")]
    assert asked.count("1m") == 3
    assert asked.count("3m") == 1  # none closed in the three minutes after 00:00


def test_record_survives_a_failing_venue(tmp_path: Path) -> None:
    venue = FakeHistoryVenue(now_ms=T0 + DAY + 30_000, fail_at={1})
    dl = downloader(venue, tmp_path)

    def on_pass(report: object) -> None:
        venue.now_ms += MINUTE

    report = record(
        dl, ["ETH"], ["1m"], stop=threading.Event(), max_passes=2, backfill=5, on_pass=on_pass
    )
    assert (report.failures, report.passes) == (1, 2)
    assert len(dl.store.raw_candles("ETH", "1m")) == 5


def test_a_lagging_venues_newest_candle_waits_for_a_later_one(tmp_path: Path) -> None:
    now = T0 + 5 * HOUR_MS + 17 * MINUTE
    venue = FakeHistoryVenue(now_ms=now, missing={T0 + 5 * HOUR_MS})  # 05:00 not started there
    dl = downloader(venue, tmp_path)
    dl.candles("BTC", "1h", T0, T0 + DAY)
    assert dl.store.last_open_ms("BTC", "1h") == T0 + 3 * HOUR_MS  # 04:00 is not proven final
    venue.missing = set()
    assert dl.candles("BTC", "1h", T0, T0 + DAY).stored == 1


def test_answers_cut_near_the_present_are_paged_without_overlap(tmp_path: Path) -> None:
    now = T0 + 1200 * MINUTE + 30_000
    venue = FakeHistoryVenue(now_ms=now, max_rows=500)
    dl = downloader(venue, tmp_path)
    done = dl.candles("ETH", "1m", T0, now)
    assert [start for start, _ in windows(venue)] == [T0 + n * 500 * MINUTE for n in range(3)]
    assert done.stored == 1200  # 00:00 .. 19:59; 20:00 is forming


def test_funding_answers_cut_below_500_rows_lose_nothing(tmp_path: Path) -> None:
    venue = FakeHistoryVenue(now_ms=T0 + 60 * DAY, funding_rows=100)
    dl = downloader(venue, tmp_path)
    done = dl.funding("ETH", T0, T0 + 10 * DAY)
    assert (done.requests, done.stored) == (3, 240)  # 100 + 100 + 40
    assert [r.time_ms for r in dl.store.funding("ETH")] == [
        T0 + n * HOUR_MS + 7 for n in range(240)
    ]


def test_ctrl_c_mid_download_keeps_a_consistent_store(tmp_path: Path) -> None:
    venue = FakeHistoryVenue(now_ms=T0 + 40 * DAY, max_rows=500)
    inner = venue.transport()

    class Interrupting:
        calls = 0

        def post(self, path: str, payload: Mapping[str, Any]) -> Any:
            self.calls += 1
            if self.calls == 4:  # meta, then the third candle request
                raise KeyboardInterrupt
            return inner.post(path, payload)

    store = HistoryStore(tmp_path / "market.sqlite")
    dl = HistoryDownloader(Interrupting(), store, now_ms=lambda: venue.now_ms)
    with pytest.raises(KeyboardInterrupt):
        dl.download(["ETH"], ["1m"], T0, T0 + DAY)
    assert store.fetched("ETH", "1m") == [(T0, T0 + 1000 * MINUTE)]
    assert len(store.raw_candles("ETH", "1m")) == 1000
    HistoryDownloader(inner, store, now_ms=lambda: venue.now_ms).download(
        ["ETH"], ["1m"], T0, T0 + DAY
    )
    assert [r.open_time_ms for r in store.raw_candles("ETH", "1m")] == [
        T0 + n * MINUTE for n in range(1440)
    ]
