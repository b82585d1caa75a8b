"""The simulator's HTTP server (keep-alive, error bodies, clean stop), its fault hooks as a
plain ``requests`` client and the official SDK see them, the wall-clock feed, and ``serve()``."""

from __future__ import annotations

import http.client
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from eth_account import Account
from eth_account.signers.local import LocalAccount
from hyperliquid.utils.error import ClientError, ServerError

from infrastructure.market.synthetic import PROFILES
from infrastructure.simulator.config import SimConfig
from infrastructure.simulator.engine import SimVenue
from infrastructure.simulator.errors import DESERIALIZE
from infrastructure.simulator.feed import MINUTE_MS, SEGMENT_MINUTES, FeedThread, SyntheticFeed
from infrastructure.simulator.gateway import SimGateway
from infrastructure.simulator.serve import FEED_FILE, ServeOptions, serve
from infrastructure.simulator.server import Fault, SimServer
from tests.support.hl_faults import FaultPlan
from tests.support.sim_server import MIDS, Sim, l1_body, order_action, running_sim, wall_ms

COINS = ("BTC", "ETH", "SOL", "BNB", "DOGE", "XRP")
ANCHOR = 1_760_000_000_000


@pytest.fixture
def sim() -> Iterator[Sim]:
    with running_sim() as running:
        yield running


@pytest.fixture
def master(sim: Sim) -> LocalAccount:
    wallet: LocalAccount = Account.create()
    sim.gateway.fund(wallet.address, Decimal(1_000_000))
    return wallet


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def post(session: requests.Session, url: str, body: Any, timeout: float = 5.0) -> requests.Response:
    return session.post(url, json=body, timeout=timeout)


def resting_orders(sim: Sim, user: str) -> list[dict[str, Any]]:
    status, orders = sim.gateway.handle("/info", {"type": "openOrders", "user": user}, "in-process")
    assert status == 200
    result: list[dict[str, Any]] = orders
    return result


class Nonces:
    def __init__(self) -> None:
        self.last = wall_ms()

    def __call__(self) -> int:
        self.last = max(self.last + 1, wall_ms())
        return self.last


# -- HTTP basics -------------------------------------------------------------------------------


def test_info_roundtrip_is_json(sim: Sim, session: requests.Session) -> None:
    response = post(session, sim.url + "/info", {"type": "allMids"})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["BTC"] == "100000.0"


def test_keep_alive_serves_many_requests_on_one_connection(sim: Sim) -> None:
    host, port = sim.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        bodies = [{"type": "allMids"}, {"type": "nope"}, {"type": "meta"}]
        statuses = []
        for body in bodies:
            conn.request("POST", "/info", json.dumps(body), {"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            statuses.append(response.status)
        for method, path in (("GET", "/info"), ("POST", "/elsewhere")):  # 404s keep it too
            conn.request(method, path, "{}" if method == "POST" else None)
            missing = conn.getresponse()
            missing.read()
            statuses.append(missing.status)
        conn.request("POST", "/info", json.dumps({"type": "allMids"}))
        last = conn.getresponse()
        last.read()
        statuses.append(last.status)
    finally:
        conn.close()
    assert statuses == [200, 422, 200, 404, 404, 200]
    assert sim.server.connections_accepted == 1


@pytest.mark.parametrize(
    ("path", "raw", "status"),
    [
        ("/info", b"{not json", 422),
        ("/info", b'{"type": NaN}', 422),
        ("/info", b"\xff\xfe", 422),
        ("/info", b"", 422),
        ("/exchange", b"[]", 422),
        ("/nothing", b"{}", 404),
    ],
)
def test_unreadable_requests(
    sim: Sim, session: requests.Session, path: str, raw: bytes, status: int
) -> None:
    response = session.post(sim.url + path, data=raw, timeout=5)
    assert response.status_code == status
    if status == 422:
        assert response.text == DESERIALIZE
        assert response.headers["Content-Type"].startswith("text/plain")


def test_rate_limit_is_429_null_over_http() -> None:
    with running_sim(weight_per_minute=4) as sim, requests.Session() as session:
        codes = [post(session, sim.url + "/info", {"type": "allMids"}) for _ in range(3)]
    assert [r.status_code for r in codes] == [200, 200, 429]
    assert codes[2].text == "null"
    assert 1 <= int(codes[2].headers["Retry-After"]) <= 60
    assert "Retry-After" not in codes[0].headers


def test_sim_serve_takes_a_rate_limit_or_off() -> None:
    import argparse

    from interfaces.sim_cli import rate_limit

    assert rate_limit("600") == 600
    assert rate_limit("off") is None
    assert rate_limit("OFF") is None
    for bad in ("0", "-5", "fast"):
        with pytest.raises(argparse.ArgumentTypeError, match="rate limit"):
            rate_limit(bad)


def test_unserialisable_answer_is_500_null(
    sim: Sim, session: requests.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sim.gateway, "handle", lambda *a: (200, {"x": object()}))
    with pytest.raises(requests.HTTPError):
        post(session, sim.url + "/info", {"type": "allMids"}).raise_for_status()
    assert post(session, sim.url + "/info", {"type": "allMids"}).text == "null"


def test_stop_closes_idle_keep_alive_connections_and_threads() -> None:
    baseline = set(threading.enumerate())
    gateway = SimGateway(SimVenue.open(SimConfig(), None))
    server = SimServer(gateway)
    with pytest.raises(RuntimeError):
        _ = server.url
    url = server.start()
    with pytest.raises(RuntimeError):
        server.start()
    session = requests.Session()
    try:
        assert post(session, url + "/info", {"type": "meta"}).status_code == 200  # stays open
        assert set(threading.enumerate()) - baseline  # the server and the connection
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 2.0
        assert not set(threading.enumerate()) - baseline
        with pytest.raises(requests.ConnectionError):
            post(session, url + "/info", {"type": "meta"})
    finally:
        session.close()
    server.stop()  # idempotent


def test_stop_cuts_a_delayed_answer_short(sim: Sim) -> None:
    sim.plan.on_info(Fault.delay_after(30))
    outcome: list[Any] = []

    def ask() -> None:
        with requests.Session() as s:
            try:
                outcome.append(post(s, sim.url + "/info", {"type": "allMids"}, timeout=20))
            except requests.RequestException as exc:
                outcome.append(exc)

    worker = threading.Thread(target=ask)
    worker.start()
    deadline = time.monotonic() + 5
    while not sim.plan.fired and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    sim.server.stop()
    worker.join(10)
    assert time.monotonic() - started < 3.0
    assert outcome


# -- fault hooks, as a plain client sees them --------------------------------------------------


def _order(sim: Sim, master: LocalAccount, nonces: Nonces, px: str) -> dict[str, Any]:
    return l1_body(master, order_action(px=px), nonces())


def test_fault_fail_before(sim: Sim, master: LocalAccount, session: requests.Session) -> None:
    sim.plan.on_exchange(Fault.fail_before(502), action="order")
    response = post(session, sim.url + "/exchange", _order(sim, master, Nonces(), "90000"))
    assert (response.status_code, response.text) == (502, "null")
    assert resting_orders(sim, master.address) == []


def test_fault_fail_after(sim: Sim, master: LocalAccount, session: requests.Session) -> None:
    sim.plan.on_exchange(Fault.fail_after(), action="order")
    response = post(session, sim.url + "/exchange", _order(sim, master, Nonces(), "90000"))
    assert (response.status_code, response.text) == (500, "null")
    assert len(resting_orders(sim, master.address)) == 1


def test_fault_delay_before(sim: Sim, master: LocalAccount, session: requests.Session) -> None:
    sim.plan.on_exchange(Fault.delay_before(0.3))
    started = time.monotonic()
    response = post(session, sim.url + "/exchange", _order(sim, master, Nonces(), "90000"))
    assert time.monotonic() - started >= 0.3
    assert response.json()["status"] == "ok"


def test_fault_delay_after_times_out_but_was_processed(
    sim: Sim, master: LocalAccount, session: requests.Session
) -> None:
    sim.plan.on_exchange(Fault.delay_after(5))
    with pytest.raises(requests.Timeout):
        post(session, sim.url + "/exchange", _order(sim, master, Nonces(), "90000"), timeout=0.5)
    assert len(resting_orders(sim, master.address)) == 1


@pytest.mark.parametrize(("fault", "kept"), [(Fault.drop_before(), 0), (Fault.drop_after(), 1)])
def test_fault_drop(
    sim: Sim, master: LocalAccount, session: requests.Session, fault: Fault, kept: int
) -> None:
    sim.plan.on_exchange(fault, action="order")
    with pytest.raises(requests.ConnectionError):
        post(session, sim.url + "/exchange", _order(sim, master, Nonces(), "90000"))
    assert len(resting_orders(sim, master.address)) == kept
    # The next request on the same session gets a fresh connection and works.
    assert post(session, sim.url + "/info", {"type": "allMids"}).status_code == 200


def test_fault_rate_limit(sim: Sim, master: LocalAccount, session: requests.Session) -> None:
    sim.plan.on_exchange(Fault.rate_limit())
    response = post(session, sim.url + "/exchange", _order(sim, master, Nonces(), "90000"))
    assert (response.status_code, response.text) == (429, "null")
    assert resting_orders(sim, master.address) == []


@pytest.mark.parametrize("processed", [True, False])
def test_fault_malformed(
    sim: Sim, master: LocalAccount, session: requests.Session, processed: bool
) -> None:
    sim.plan.on_exchange(Fault.malformed("<html>oops</html>", process=processed))
    response = post(session, sim.url + "/exchange", _order(sim, master, Nonces(), "90000"))
    assert response.status_code == 200
    with pytest.raises(ValueError, match="Expecting value"):
        response.json()
    assert len(resting_orders(sim, master.address)) == int(processed)


def test_fault_canned(sim: Sim, master: LocalAccount, session: requests.Session) -> None:
    canned = {"status": "err", "response": "Too many cumulative requests sent (1 > 0)."}
    sim.plan.on_exchange(Fault.canned(canned), action="order")
    response = post(session, sim.url + "/exchange", _order(sim, master, Nonces(), "90000"))
    assert response.json() == canned
    assert resting_orders(sim, master.address) == []


def test_fault_plan_counts_and_filters() -> None:
    plan = FaultPlan()
    plan.on_exchange(Fault.fail_before(), action="cancel", times=2)
    plan.on_info(Fault.rate_limit(), info="l2Book")
    order = {"action": {"type": "order"}}
    cancel = {"action": {"type": "cancel"}}
    assert plan("/exchange", order) is None
    assert plan("/info", {"type": "allMids"}) is None
    assert plan("/exchange", cancel) == Fault.fail_before()
    assert plan("/info", {"type": "l2Book"}) == Fault.rate_limit()
    assert plan("/info", {"type": "l2Book"}) is None
    assert plan("/exchange", cancel) == Fault.fail_before()
    assert plan("/exchange", cancel) is None
    assert plan.pending == 0
    plan.always(Fault.drop_after(), path="/exchange")
    assert all(plan("/exchange", order) == Fault.drop_after() for _ in range(3))
    plan.clear()
    assert plan("/exchange", order) is None


# -- fault hooks, as the SDK sees them -----------------------------------------------------------


def _sdk_order(sim: Sim, master: LocalAccount, timeout: float = 5.0) -> Any:
    exchange = sim.exchange(master, timeout=timeout)
    return exchange.order("BTC", True, 0.001, 90000, {"limit": {"tif": "Gtc"}})


def test_sdk_sees_5xx_as_server_error(sim: Sim, master: LocalAccount) -> None:
    sim.plan.on_exchange(Fault.fail_after(503))
    with pytest.raises(ServerError) as raised:
        _sdk_order(sim, master)
    assert raised.value.status_code == 503
    assert len(resting_orders(sim, master.address)) == 1


def test_sdk_sees_delay_as_timeout(sim: Sim, master: LocalAccount) -> None:
    exchange = sim.exchange(master, timeout=0.5)
    sim.plan.on_exchange(Fault.delay_after(5))
    with pytest.raises(requests.Timeout):
        exchange.order("BTC", True, 0.001, 90000, {"limit": {"tif": "Gtc"}})
    assert len(resting_orders(sim, master.address)) == 1


def test_sdk_sees_drop_as_connection_error(sim: Sim, master: LocalAccount) -> None:
    exchange = sim.exchange(master)
    sim.plan.on_exchange(Fault.drop_after())
    with pytest.raises(requests.ConnectionError):
        exchange.order("BTC", True, 0.001, 90000, {"limit": {"tif": "Gtc"}})
    orders = resting_orders(sim, master.address)
    assert [(o["coin"], o["limitPx"]) for o in orders] == [("BTC", "90000.0")]


def test_sdk_sees_malformed_as_parse_error(sim: Sim, master: LocalAccount) -> None:
    sim.plan.on_exchange(Fault.malformed("<html>bad gateway</html>"))
    answer = _sdk_order(sim, master)
    assert answer == {"error": "Could not parse JSON: <html>bad gateway</html>"}


def test_sdk_sees_429_as_client_error(sim: Sim, master: LocalAccount) -> None:
    sim.plan.on_exchange(Fault.rate_limit())
    with pytest.raises(ClientError) as raised:
        _sdk_order(sim, master)
    assert raised.value.status_code == 429
    assert resting_orders(sim, master.address) == []


def test_sdk_returns_a_canned_error(sim: Sim, master: LocalAccount) -> None:
    canned = {"status": "err", "response": "Too many cumulative requests sent (1 > 0)."}
    sim.plan.on_exchange(Fault.canned(canned))
    assert _sdk_order(sim, master) == canned
    assert resting_orders(sim, master.address) == []


def test_sdk_5xx_before_processing(sim: Sim, master: LocalAccount) -> None:
    info = sim.info()
    sim.plan.on_info(Fault.fail_before(500), info="allMids")
    with pytest.raises(ServerError):
        info.all_mids()
    assert info.all_mids()["BTC"] == "100000.0"


# -- the wall-clock feed -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def feed() -> SyntheticFeed:
    return SyntheticFeed(COINS, 7, history_days=3, start_ms=ANCHOR + 12_345)


def test_feed_is_anchored_and_deterministic(feed: SyntheticFeed) -> None:
    assert feed.anchor_ms == ANCHOR - ANCHOR % MINUTE_MS
    assert feed.first_ms % 86_400_000 == 0
    # The anchor minute closes at each coin's profile price.
    closing = feed.mids(feed.anchor_ms + MINUTE_MS)
    assert closing["BTC"] == Decimal(PROFILES["BTC"].start_price)
    again = SyntheticFeed(COINS, 7, history_days=3, start_ms=ANCHOR)
    later = ANCHOR + 3_600_000 + 1_234
    assert again.mids(later) == feed.mids(later)
    assert again.funding_rates(later) == feed.funding_rates(later)
    other = SyntheticFeed(COINS, 8, history_days=3, start_ms=ANCHOR)
    assert other.mids(later) != feed.mids(later)


def test_feed_price_moves_within_the_minute(feed: SyntheticFeed) -> None:
    t = feed.anchor_ms + 10 * MINUTE_MS
    opened, half, closed = (feed.mids(t + dt)["BTC"] for dt in (0, 30_000, MINUTE_MS - 1))
    assert min(opened, closed) <= half <= max(opened, closed)
    assert feed.mids(t + MINUTE_MS)["BTC"] == pytest.approx(closed, rel=Decimal("1e-5"))


def test_feed_extends_past_its_first_week_continuously(feed: SyntheticFeed) -> None:
    boundary = feed.first_ms + feed.minutes * MINUTE_MS
    before, after = feed.mids(boundary - 1), feed.mids(boundary + 1)
    assert feed.minutes % SEGMENT_MINUTES != 0 or feed.minutes > SEGMENT_MINUTES
    for coin in COINS:
        assert after[coin] == pytest.approx(before[coin], rel=Decimal("0.001"))
    far = feed.mids(boundary + 30 * 86_400_000)
    assert all(px > 0 for px in far.values())


def test_feed_candles(feed: SyntheticFeed) -> None:
    now = feed.anchor_ms + 5 * 3_600_000 + 17 * MINUTE_MS + 30_000
    hourly = feed.candles("BTC", "1h", now - 10 * 3_600_000, now + 3_600_000, now)
    assert len(hourly) == 11  # ten closed, one forming, none in the future
    assert [row["t"] for row in hourly] == sorted(row["t"] for row in hourly)
    assert all(row["T"] == row["t"] + 3_600_000 - 1 for row in hourly)
    assert hourly[-1]["t"] <= now <= hourly[-1]["T"]
    assert hourly[-1]["c"] == f"{feed.mids(now)['BTC']}.0"
    assert set(hourly[0]) == {"t", "T", "s", "i", "o", "c", "h", "l", "v", "n"}
    # A closed hour is its sixty minutes.
    hour = hourly[-2]
    minutes = feed.candles("BTC", "1m", hour["t"], hour["T"], now)
    assert len(minutes) == 60
    assert Decimal(hour["h"]) == max(Decimal(m["h"]) for m in minutes)
    assert Decimal(hour["l"]) == min(Decimal(m["l"]) for m in minutes)
    assert (hour["o"], hour["c"]) == (minutes[0]["o"], minutes[-1]["c"])
    assert hour["n"] == sum(m["n"] for m in minutes)
    # At most 500 rows per answer, oldest first; history starts with the tape.
    many = feed.candles("BTC", "1m", 0, now, now)
    assert len(many) == 500
    newest = now - now % MINUTE_MS
    assert many[0]["t"] == max(feed.first_ms, newest - 4999 * MINUTE_MS)  # the latest 5000
    early = feed.candles("BTC", "1h", 0, now, now)
    assert early[0]["t"] == feed.first_ms
    for interval in ("3m", "5m", "15m", "30m", "2h", "4h", "8h", "12h", "1d"):
        rows = feed.candles("ETH", interval, now - 86_400_000, now, now)
        assert rows, interval
        assert rows[-1]["t"] <= now <= rows[-1]["T"], interval
    assert feed.candles("NOPE", "1h", 0, now, now) == []
    assert feed.candles("BTC", "1h", 0, now, feed.first_ms - 1) == []


def test_feed_thread_pushes_prices() -> None:
    gateway = SimGateway(SimVenue.open(SimConfig(), None))
    one_feed = SyntheticFeed(COINS, 3, history_days=1)
    ticker = FeedThread(gateway, one_feed, period_s=0.05)
    ticker.start()
    try:
        status, mids = gateway.handle("/info", {"type": "allMids"})
        assert status == 200
        assert set(mids) == set(COINS)
        deadline = time.monotonic() + 5
        while ticker.ticks < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ticker.ticks >= 3
    finally:
        ticker.stop()
    assert abs(gateway.now_ms - wall_ms()) < 5_000


# -- serve() -----------------------------------------------------------------------------------


def _serve_in_thread(options: ServeOptions) -> tuple[threading.Thread, threading.Event, str]:
    stop = threading.Event()
    urls: list[str] = []
    ready = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            serve(options, stop=stop, ready=lambda url: (urls.append(url), ready.set()))
        except BaseException as exc:
            errors.append(exc)
            ready.set()

    thread = threading.Thread(target=run)
    thread.start()
    assert ready.wait(30)
    assert not errors, errors
    return thread, stop, urls[0]


def test_serve_funds_once_and_continues_the_price_path(tmp_path: Path) -> None:
    user = "0x" + "12" * 20
    options = ServeOptions(
        port=0, funds=[(user, Decimal(1_000))], state_dir=tmp_path, history_days=1
    )
    thread, stop, url = _serve_in_thread(options)
    try:
        with requests.Session() as session:
            mids = post(session, url + "/info", {"type": "allMids"}).json()
            state = post(session, url + "/info", {"type": "clearinghouseState", "user": user})
            now = wall_ms()
            candles = post(
                session,
                url + "/info",
                {
                    "type": "candleSnapshot",
                    "req": {"coin": "BTC", "interval": "1h", "startTime": now - 6 * 3_600_000},
                },
            ).json()
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()
    assert set(mids) == set(COINS)
    assert state.json()["marginSummary"]["accountValue"] == "1000.0"
    assert len(candles) in (6, 7)  # six hours of history and the forming hour
    anchor = json.loads((tmp_path / FEED_FILE).read_text())["anchor_ms"]

    thread, stop, url = _serve_in_thread(options)  # same state: not funded again
    try:
        with requests.Session() as session:
            again = post(session, url + "/info", {"type": "clearinghouseState", "user": user})
    finally:
        stop.set()
        thread.join(30)
    assert again.json()["marginSummary"]["accountValue"] == "1000.0"
    assert json.loads((tmp_path / FEED_FILE).read_text())["anchor_ms"] == anchor


def test_serve_rejects_unknown_coins() -> None:
    with pytest.raises(ValueError, match="does not list"):
        serve(ServeOptions(port=0, coins=("BTC", "PEPE")), stop=threading.Event())


def test_serve_stops_on_sigterm_in_the_main_thread(caplog: pytest.LogCaptureFixture) -> None:
    before = signal.getsignal(signal.SIGTERM)

    def ready(url: str) -> None:
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM)).start()

    with caplog.at_level(logging.INFO, logger="nof0.sim"):
        serve(ServeOptions(port=0, history_days=1), ready=ready)
    assert signal.getsignal(signal.SIGTERM) == before
    assert any("stopping" in r.getMessage() for r in caplog.records)


def test_running_sim_prices(sim: Sim) -> None:
    assert sim.gateway.handle("/info", {"type": "allMids"})[1]["ETH"] == f"{MIDS['ETH']}.0"
