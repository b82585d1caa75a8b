"""The Hyperliquid adapter on its own: pre-flight, nonces, the wire format, error mapping,
paging and the transports' failure kinds."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from application.ports import (
    ExchangeError,
    ExchangeSetupError,
    OrderState,
    OrderTicket,
    TimeInForce,
    VenueRejection,
)
from domain.values import OrderSide
from infrastructure.hyperliquid.errors import classify, status_reason
from infrastructure.hyperliquid.exchange import HyperliquidExchange, RetryPolicy
from infrastructure.hyperliquid.nonces import NonceManager, NonceRegistry
from infrastructure.hyperliquid.transport import (
    ClientRejected,
    ConnectionLost,
    HttpTransport,
    InProcessTransport,
    MalformedResponse,
    RateLimited,
    ServerFailed,
    TimedOut,
    WeightBudget,
    request_weight,
)
from infrastructure.simulator.config import SimConfig
from infrastructure.simulator.engine import SimVenue
from infrastructure.simulator.gateway import SimGateway
from infrastructure.simulator.server import Fault, SimServer
from tests.support.hl_faults import FaultPlan

D = Decimal
NOW_MS = 1_790_000_000_000
TEN_THOUSAND = D(10_000)
NOTHING = D(0)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def venue(
    fund: Decimal = TEN_THOUSAND, master: LocalAccount | None = None
) -> tuple[SimGateway, str]:
    gateway = SimGateway(SimVenue.open(SimConfig(), None))
    gateway.advance(NOW_MS, {"BTC": D(100_000), "ETH": D(4000)})
    address = (master or Account.create()).address
    if fund:
        gateway.fund(address, fund)
    return gateway, address


def adapter(
    gateway: SimGateway,
    wallet: LocalAccount,
    account: str,
    *,
    is_mainnet: bool = False,
    min_equity: Decimal = NOTHING,
) -> HyperliquidExchange:
    return HyperliquidExchange(
        "hl",
        InProcessTransport(lambda path, body: gateway.handle(path, body, client="in-process")),
        wallet=wallet,
        account_address=account,
        nonces=NonceManager(lambda: NOW_MS),
        is_mainnet=is_mainnet,
        min_equity=min_equity,
        retry=RetryPolicy(attempts=1, backoff_s=0.0),
    )


# -- pre-flight ---------------------------------------------------------------------------


def test_an_approved_agent_passes_the_preflight() -> None:
    master = Account.create()
    gateway, address = venue(master=master)
    agent = Account.create()
    gateway.approve_agent_trusted(address, agent.address, "engine")
    notes = run(adapter(gateway, agent, address).start())
    assert f"signer {agent.address.lower()} is an approved agent of {address.lower()}" in notes
    assert any("signed no-op was accepted" in n for n in notes)
    assert "no builder fee is attached to orders" in notes


def test_a_key_that_may_not_trade_the_account_is_refused_with_what_to_do() -> None:
    gateway, address = venue()
    stranger = Account.create()
    with pytest.raises(ExchangeSetupError) as caught:
        run(adapter(gateway, stranger, address).start())
    message = str(caught.value)
    assert "may not trade for" in message
    assert "Approve it as an API wallet" in message
    assert stranger.key.hex()[2:] not in message


def test_a_key_signing_for_the_other_network_is_caught_before_any_order() -> None:
    master = Account.create()
    gateway, address = venue(master=master)
    with pytest.raises(ExchangeSetupError, match=r"refused a signed no-op.*other network"):
        run(adapter(gateway, master, address, is_mainnet=True).start())


def test_an_unfunded_account_and_one_below_the_allocations_are_refused() -> None:
    master = Account.create()
    gateway, address = venue(fund=D(0), master=master)
    with pytest.raises(ExchangeSetupError, match="holds no funds"):
        run(adapter(gateway, master, address).start())
    gateway.fund(address, D(500))
    with pytest.raises(ExchangeSetupError, match=r"500\.00 USDC is below .* \(900\.00\)"):
        run(adapter(gateway, master, address, min_equity=D(900)).start())


def test_an_unreachable_venue_is_a_setup_error_naming_the_url() -> None:
    transport = HttpTransport("http://127.0.0.1:9", timeout_s=0.5)
    try:
        exchange = HyperliquidExchange(
            "hl",
            transport,
            wallet=Account.create(),
            account_address="0x" + "11" * 20,
            nonces=NonceManager(lambda: NOW_MS),
            retry=RetryPolicy(attempts=1, backoff_s=0.0),
        )
        with pytest.raises(ExchangeSetupError, match=r"http://127\.0\.0\.1:9"):
            run(exchange.start())
    finally:
        transport.close()


# -- nonces ------------------------------------------------------------------------------------


def test_nonces_are_unique_and_increasing_across_threads_on_a_frozen_clock() -> None:
    manager = NonceManager(lambda: NOW_MS)
    taken: list[int] = []
    lock = threading.Lock()

    def burst() -> None:
        for _ in range(500):
            nonce = manager.next()
            with lock:
                taken.append(nonce)

    threads = [threading.Thread(target=burst) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(taken)) == len(taken) == 4000
    assert sorted(taken) == list(range(NOW_MS, NOW_MS + 4000))


def test_a_moving_clock_is_followed_and_one_manager_serves_each_key() -> None:
    now = [NOW_MS]
    registry = NonceRegistry(lambda: now[0])
    first = registry.for_signer("0xABC")
    assert registry.for_signer("0xabc") is first
    assert registry.for_signer("0xdef") is not first
    assert first.next() == NOW_MS
    assert first.next() == NOW_MS + 1
    now[0] = NOW_MS + 1000
    assert first.next() == NOW_MS + 1000


# -- orders on the wire ------------------------------------------------------------------------


def ticket(price: str, size: str = "0.01") -> OrderTicket:
    return OrderTicket(
        cloid="0x" + "ab" * 16,
        coin="BTC",
        side=OrderSide.BUY,
        size=D(size),
        limit_price=D(price),
        tif=TimeInForce.IOC,
    )


def test_a_price_the_wire_cannot_carry_is_refused_before_anything_is_sent() -> None:
    master = Account.create()
    gateway, address = venue(master=master)
    exchange = adapter(gateway, master, address)
    run(exchange.start())
    report = run(exchange.place(ticket("100000.123456789")))
    assert report.state is OrderState.REJECTED
    assert report.detail.startswith("not sent:")
    assert run(exchange.order_status(ticket("1").cloid)).state is OrderState.UNKNOWN


def test_a_filled_order_reads_back_by_cloid() -> None:
    master = Account.create()
    gateway, address = venue(master=master)
    exchange = adapter(gateway, master, address)
    run(exchange.start())
    report = run(exchange.place(ticket("101000")))
    assert report.state is OrderState.FILLED
    assert report.filled_size == D("0.01")
    again = run(exchange.order_status(report.cloid))
    assert (again.state, again.oid, again.filled_size) == (
        OrderState.FILLED,
        report.oid,
        D("0.01"),
    )
    (fill,) = run(exchange.fills_since(datetime.fromtimestamp(0, UTC)))
    assert (fill.cloid, fill.oid, fill.size) == (report.cloid, report.oid, D("0.01"))
    assert fill.fee == (fill.price * D("0.01") * D("0.00045")).quantize(D("0.000001"))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Order must have minimum value of $10. asset=4", VenueRejection.MIN_VALUE),
        ("Insufficient margin to place order. asset=0", VenueRejection.INSUFFICIENT_MARGIN),
        ("Reduce only order would increase position. asset=3", VenueRejection.REDUCE_ONLY),
        (
            "Order could not immediately match against any resting orders. asset=4",
            VenueRejection.NO_LIQUIDITY,
        ),
        (
            "Post only order would have immediately matched, bbo was 1@2. asset=4",
            VenueRejection.POST_ONLY,
        ),
        ("Price must be divisible by tick size. asset=4", VenueRejection.INVALID_PRICE),
        ("Invalid TP/SL price. asset=4", VenueRejection.INVALID_TRIGGER),
        ("User or API Wallet 0xabc does not exist.", VenueRejection.SIGNER),
        ("Invalid nonce: duplicate nonce 17", VenueRejection.NONCE),
        (
            "Too many cumulative requests sent (10001 > 10000) for cumulative volume traded $0.",
            VenueRejection.RATE_LIMITED,
        ),
        ("Must deposit before performing actions. User: 0xabc", VenueRejection.NO_DEPOSIT),
        ("Something new. asset=2", VenueRejection.OTHER),
    ],
)
def test_the_venue_s_words_map_to_typed_reasons(text: str, reason: VenueRejection) -> None:
    assert classify(text) is reason


def test_order_statuses_map_to_typed_reasons() -> None:
    assert status_reason("minTradeNtlRejected") == "min_order_value"
    assert status_reason("perpMarginRejected") == "insufficient_margin"
    assert status_reason("someNewRejected") == "venue_error"
    assert status_reason("reduceOnlyCanceled") == "reduceOnlyCanceled"


# -- paging ------------------------------------------------------------------------------------


def test_fills_are_paged_by_time_and_deduplicated_across_pages() -> None:
    rows = [
        {
            "coin": "BTC",
            "px": "100000.0",
            "sz": "0.001",
            "side": "B",
            "time": NOW_MS + i // 2,  # two fills per millisecond: pages overlap
            "startPosition": "0.0",
            "dir": "Open Long",
            "closedPnl": "0.0",
            "hash": "0x" + "00" * 32,
            "oid": i,
            "crossed": True,
            "fee": "0.045",
            "feeToken": "USDC",
            "tid": i,
        }
        for i in range(4500)
    ]
    asked: list[int] = []

    def handler(path: str, body: Any) -> tuple[int, Any]:
        assert body["type"] == "userFillsByTime"
        asked.append(body["startTime"])
        page = [r for r in rows if r["time"] >= body["startTime"]][:2000]
        return 200, page

    exchange = HyperliquidExchange(
        "hl",
        InProcessTransport(handler),
        wallet=Account.create(),
        account_address="0x" + "11" * 20,
        nonces=NonceManager(lambda: NOW_MS),
    )
    fills = run(exchange.fills_since(datetime.fromtimestamp(NOW_MS / 1000, UTC)))
    assert [f.fill_id for f in fills] == [str(i) for i in range(4500)]
    assert len(asked) == 3
    assert asked[0] == NOW_MS


def test_deposits_and_withdrawals_read_back_signed_and_once() -> None:
    gateway, address = venue()
    gateway.advance(NOW_MS + 1000)
    gateway.fund(address, D(250))
    gateway.advance(NOW_MS + 2000)
    with gateway.locked() as sim:
        sim.withdraw(address, D(100))
    exchange = adapter(gateway, Account.create(), address)
    since = datetime.fromtimestamp((NOW_MS + 1) / 1000, UTC)
    transfers = run(exchange.transfers_since(since))
    assert [(t.kind, t.amount) for t in transfers] == [("deposit", D(250)), ("withdraw", D(-100))]
    assert [t.time for t in transfers] == [
        datetime.fromtimestamp((NOW_MS + 1000) / 1000, UTC),
        datetime.fromtimestamp((NOW_MS + 2000) / 1000, UTC),
    ]
    assert len({t.transfer_id for t in transfers}) == 2
    everything = run(exchange.transfers_since(datetime.fromtimestamp(0, UTC)))
    assert [t.amount for t in everything] == [TEN_THOUSAND, D(250), D(-100)]


def ledger_adapter(rows: list[Any]) -> HyperliquidExchange:
    def handler(path: str, body: Any) -> tuple[int, Any]:
        assert body["type"] == "userNonFundingLedgerUpdates"
        return 200, rows

    return HyperliquidExchange(
        "hl",
        InProcessTransport(handler),
        wallet=Account.create(),
        account_address="0x" + "11" * 20,
        nonces=NonceManager(lambda: NOW_MS),
    )


def test_ledger_kinds_without_perp_money_or_unknown_are_left_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rows = [
        {"time": NOW_MS, "hash": "0x01", "delta": {"type": "spotTransfer", "token": "PURR"}},
        {"time": NOW_MS, "hash": "0x02", "delta": {"type": "brandNew", "usdc": "5"}},
        {"time": NOW_MS + 1, "hash": "0x03", "delta": {"type": "deposit", "usdc": "7"}},
    ]
    transfers = run(ledger_adapter(rows).transfers_since(datetime.fromtimestamp(0, UTC)))
    assert [(t.transfer_id, t.amount) for t in transfers] == [("0x03:deposit", D(7))]
    assert "unknown kind 'brandNew'" in caplog.text


@pytest.mark.parametrize(
    "row",
    [
        {"time": NOW_MS, "hash": "0x01", "delta": {"type": "deposit", "usdc": "lots"}},
        {"time": NOW_MS, "hash": "0x01"},
        {"time": "yesterday", "hash": "0x01", "delta": {"type": "deposit", "usdc": "1"}},
        "not a row",
    ],
)
def test_an_unreadable_ledger_row_is_a_malformed_answer(row: Any) -> None:
    with pytest.raises(ExchangeError, match=r"unreadable ledger row|time is not an integer"):
        run(ledger_adapter([row]).transfers_since(datetime.fromtimestamp(0, UTC)))


# -- transports --------------------------------------------------------------------------------


@pytest.fixture
def served() -> Iterator[tuple[str, FaultPlan]]:
    gateway, _ = venue()
    plan = FaultPlan()
    with SimServer(gateway, interceptor=plan) as server:
        yield server.url, plan


@pytest.mark.parametrize(
    ("fault", "error", "ambiguous"),
    [
        (Fault.fail_before(502), ServerFailed, True),
        (Fault.fail_after(500), ServerFailed, True),
        (Fault.delay_after(2.0), TimedOut, True),
        (Fault.drop_after(), ConnectionLost, True),
        (Fault.malformed("<html>oops</html>"), MalformedResponse, True),
        (Fault.rate_limit(), RateLimited, False),
    ],
)
def test_http_failures_say_whether_the_request_may_have_been_processed(
    served: tuple[str, FaultPlan], fault: Fault, error: type[Exception], ambiguous: bool
) -> None:
    url, plan = served
    plan.on_info(fault)
    transport = HttpTransport(url, timeout_s=0.5)
    try:
        with pytest.raises(error) as caught:
            transport.post("/info", {"type": "allMids"})
        assert caught.value.ambiguous is ambiguous
        assert transport.post("/info", {"type": "allMids"})["BTC"] == "100000.0"
    finally:
        transport.close()


def test_a_body_the_api_cannot_read_is_a_client_rejection(served: tuple[str, FaultPlan]) -> None:
    url, _ = served
    transport = HttpTransport(url, timeout_s=2)
    try:
        with pytest.raises(ClientRejected) as caught:
            transport.post("/info", {"type": "noSuchThing"})
        assert caught.value.status == 422
        assert not caught.value.ambiguous
    finally:
        transport.close()


def test_the_adapter_turns_transport_failures_into_exchange_errors() -> None:
    def broken(path: str, body: Any) -> tuple[int, Any]:
        return 502, None

    exchange = HyperliquidExchange(
        "hl",
        InProcessTransport(broken),
        wallet=Account.create(),
        account_address="0x" + "11" * 20,
        nonces=NonceManager(lambda: NOW_MS),
        retry=RetryPolicy(attempts=2, backoff_s=0.0),
    )
    with pytest.raises(ExchangeError) as caught:
        run(exchange.account_state())
    assert caught.value.ambiguous


def test_request_weights_and_the_client_side_budget() -> None:
    assert request_weight("/info", {"type": "allMids"}) == 2
    assert request_weight("/info", {"type": "userRole"}) == 60
    assert request_weight("/info", {"type": "candleSnapshot"}) == 20
    assert request_weight("/exchange", {"action": {"type": "order", "orders": [{}] * 85}}) == 3
    clock = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    budget = WeightBudget(100, clock=lambda: clock[0], sleep=sleep)
    assert budget.spend(60) == 0
    clock[0] = 10.0
    assert budget.spend(40) == 0
    clock[0] = 20.0
    assert budget.spend(20) == pytest.approx(40.0)  # waits for the first spend to age out
    assert slept == [pytest.approx(40.0)]


def test_an_agent_trades_a_vault_its_master_leads() -> None:
    master, vault = Account.create(), Account.create()
    gateway, address = venue(master=master)
    gateway.fund(vault.address, D(5000))
    gateway.set_vault_leader(vault.address, address)
    agent = Account.create()
    gateway.approve_agent_trusted(address, agent.address, "engine")
    exchange = HyperliquidExchange(
        "hl",
        InProcessTransport(lambda path, body: gateway.handle(path, body, client="in-process")),
        wallet=agent,
        account_address=address,
        vault_address=vault.address,
        nonces=NonceManager(lambda: NOW_MS),
        retry=RetryPolicy(attempts=1, backoff_s=0.0),
    )
    assert exchange.account_id == vault.address.lower()
    run(exchange.start())
    report = run(exchange.place(ticket("101000")))
    assert report.state is OrderState.FILLED
    vault_state = run(exchange.account_state())
    assert vault_state.positions["BTC"].qty == D("0.01")
    assert gateway.account_value(address) == D(10_000)  # the master's own account untouched


def test_a_vault_the_key_does_not_lead_is_refused() -> None:
    master, vault = Account.create(), Account.create()
    gateway, address = venue(master=master)
    gateway.fund(vault.address, D(5000))  # a plain user, not a vault
    exchange = HyperliquidExchange(
        "hl",
        InProcessTransport(lambda path, body: gateway.handle(path, body, client="in-process")),
        wallet=master,
        account_address=address,
        vault_address=vault.address,
        nonces=NonceManager(lambda: NOW_MS),
    )
    with pytest.raises(ExchangeSetupError, match="is not a vault or sub-account"):
        run(exchange.start())


def test_engines_on_one_host_split_its_request_budget() -> None:
    clock = [0.0]
    slept: list[float] = []
    sharers = [1]

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    budget = WeightBudget(1200, clock=lambda: clock[0], sleep=sleep, sharers=lambda: sharers[0])
    assert budget.limit() == 1200
    sharers[0] = 3  # two more engines started on this host
    assert budget.limit() == 400
    assert budget.spend(380) == 0
    assert budget.spend(20) == 0
    assert budget.spend(20) == pytest.approx(60.0)  # over this engine's part: it waits
    sharers[0] = 0  # never below one engine's worth (an unknown count is not zero)
    assert budget.limit() == 1200
