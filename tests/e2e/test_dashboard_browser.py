"""The dashboard in headless Chromium against a real ``nof0 run``: the page shows the arena's
own numbers, updates, survives the engine going away, and writes screenshots.

Run with ``nox -s browser`` (installs Playwright for Python and drives Debian's chromium;
no browser download). Skips with the reason when Playwright or Chromium cannot be had.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.e2e.test_nof0_run import environment, free_port, get, running, stop, wait_for_trades

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path(os.environ.get("NOF0_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = Path(os.environ.get("NOF0_ARTIFACTS", REPO / ".artifacts")) / "screenshots"
BASELINE = "buynhold_btc"
WIDTHS = {"desktop": (1440, 1000), "phone": (390, 844)}


def chromium() -> Path:
    """Debian's chromium; installed with apt-get when missing and we may (root, apt-get)."""
    if CHROMIUM.is_file():
        return CHROMIUM
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        pytest.skip(f"{CHROMIUM} is missing and apt-get cannot install it here (not root)")
    for args in (["install", "-y", "chromium"], ["update"], ["install", "-y", "chromium"]):
        done = subprocess.run(
            [apt, "-q", *args], capture_output=True, text=True, timeout=900, check=False
        )
        if args[0] == "install" and done.returncode == 0 and CHROMIUM.is_file():
            return CHROMIUM
    pytest.skip(f"apt-get could not install chromium: {done.stderr.strip()[-300:]}")


def money(value: float) -> str:
    """What the page shows for a dollar amount in the en-US locale Playwright sets."""
    return f"-${-value:,.2f}" if value < 0 else f"${value:,.2f}"


def eventually(check: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.25)
    raise AssertionError(f"{what} within {timeout_s} s (last: {last!r})")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="Playwright for Python is not installed (nox -s browser)"
    )
    executable = chromium()
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(executable), headless=True)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def arena(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Any]]:
    """``nof0 run`` on a free port with a fresh data dir, once it has traded."""
    tmp = tmp_path_factory.mktemp("dashboard")
    port = free_port()
    with running(tmp / "data", port, environment(), tmp / "nof0.log") as process:
        wait_for_trades(port, deadline_s=90)
        eventually(lambda: get(port, "/api/status")[0] == 200, 30, "/api/status answers")
        yield port, process
        if process.poll() is None:
            stop(process)


class Page:
    """A Playwright page that records console errors and uncaught exceptions."""

    def __init__(self, browser: Any, port: int, width: int, height: int) -> None:
        self.context = browser.new_context(
            viewport={"width": width, "height": height}, locale="en-US"
        )
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        self.base = f"http://127.0.0.1:{port}/"

    def open(self, fragment: str = "") -> Any:
        self.page.goto(self.base + fragment)
        self.page.wait_for_selector("#leaderboard tbody tr", timeout=20_000)
        return self.page

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def desktop(browser: Any, arena: tuple[int, Any]) -> Iterator[Page]:
    page = Page(browser, arena[0], *WIDTHS["desktop"])
    yield page
    page.close()


def board_on_page(page: Any) -> dict[str, str]:
    rows = page.locator("#leaderboard tbody tr")
    return {
        rows.nth(i).get_attribute("data-trader"): rows.nth(i)
        .locator('td[data-col="equity"]')
        .inner_text()
        for i in range(rows.count())
    }


def test_leaderboard_equity_is_the_apis(desktop: Page, arena: tuple[int, Any]) -> None:
    port = arena[0]
    page = desktop.open()

    seen: list[tuple[dict[str, str], dict[str, str]]] = []

    def same() -> bool:
        _, body = get(port, "/api/leaderboard")
        api = {entry["id"]: money(entry["equity"]) for entry in body["leaderboard"]}
        seen.append((board_on_page(page), api))
        return seen[-1][0] == seen[-1][1]

    try:
        eventually(same, 30, "the page's equities equal the API's")
    except AssertionError as exc:
        raise AssertionError(f"page vs API, last seen: {seen[-1]}") from exc
    _, body = get(port, "/api/leaderboard")
    assert len(board_on_page(page)) == len(body["leaderboard"]) >= 3
    assert desktop.errors == []


def test_equity_chart_has_a_series_per_trader_and_btc(
    desktop: Page, arena: tuple[int, Any]
) -> None:
    page = desktop.open()
    _, body = get(arena[0], "/api/leaderboard")
    expected = {entry["id"] for entry in body["leaderboard"]} | {BASELINE}
    series = page.locator("#equity-chart g.series")
    assert {series.nth(i).get_attribute("data-series") for i in range(series.count())} == (expected)
    assert series.count() == len(expected)
    for i in range(series.count()):
        points = series.nth(i).locator("polyline").get_attribute("points")
        assert points, series.nth(i).get_attribute("data-series")
    # Percent and the 24 h range redraw the same series.
    page.get_by_role("button", name="Show percent").click()
    page.get_by_role("button", name="Show the last 24 hours").click()
    assert page.get_by_role("button", name="Show percent").get_attribute("aria-pressed") == "true"
    assert page.locator("#equity-chart g.series").count() == len(expected)
    assert "%" in (page.locator("#equity-chart .grid text").first.text_content() or "")
    assert desktop.errors == []


def test_a_trade_row_appears_once_the_api_has_it(desktop: Page, arena: tuple[int, Any]) -> None:
    page = desktop.open()
    _, body = get(arena[0], "/api/trades")
    assert body["trades"], "wait_for_trades saw a trade"
    newest = max(body["trades"], key=lambda t: t["exit_time"])
    row = page.locator(f'#trades tr[data-trade="{newest["id"]}"]')
    row.wait_for(timeout=15_000)
    text = row.inner_text()
    assert newest["symbol"] in text
    assert newest["close_reason"] in text
    assert money(newest["total_commission_dollars"]) in text
    funding = (
        newest["realized_net_pnl"]
        - newest["realized_gross_pnl"]
        + newest["total_commission_dollars"]
    )
    shown = row.locator("td").nth(9).inner_text()
    assert shown.replace("+", "") == money(round(funding, 6) + 0.0), shown
    assert money(newest["realized_net_pnl"]).replace("$", "") in text.replace("$", "").replace(
        "+", ""
    )
    assert desktop.errors == []


def test_model_chat_shows_a_cycle(desktop: Page, arena: tuple[int, Any]) -> None:
    page = desktop.open()
    _, body = get(arena[0], "/api/conversations")
    cycles = {(c["model_id"], str(c["cycle_id"])) for c in body["conversations"]}
    turns = page.locator("#chat li.turn")
    assert turns.count() >= 1
    trader, cycle = (
        turns.first.get_attribute("data-trader"),
        turns.first.get_attribute("data-cycle"),
    )
    assert (trader, cycle) in cycles
    first = page.locator(f'#chat li.turn[data-trader="{trader}"][data-cycle="{cycle}"]')
    first.locator("summary").first.click()
    first.get_by_text("Prompt", exact=True).click()
    assert "minutes since you started trading" in first.locator("pre").nth(1).inner_text()
    assert desktop.errors == []


def test_model_chat_shows_what_the_risk_desk_refused(desktop: Page, arena: tuple[int, Any]) -> None:
    page = desktop.open()
    shown = {
        (turn.get_attribute("data-trader"), int(turn.get_attribute("data-cycle") or 0))
        for turn in page.locator("#chat li.turn").all()
    }
    _, body = get(arena[0], "/api/status")
    refused = [
        (trader["model_id"], refusal)
        for trader in body["traders"]
        for refusal in trader["recent_risk_rejections"]
        if (trader["model_id"], refusal["cycle"]) in shown
    ]
    if not refused:
        pytest.skip("no refusal in the cycles the chat shows this time")
    trader, refusal = refused[-1]
    turn = page.locator(f'#chat li.turn[data-trader="{trader}"][data-cycle="{refusal["cycle"]}"]')
    assert f"refused: {refusal['coin']}" in turn.locator("summary").first.inner_text()
    turn.locator("summary").first.click()
    listed = turn.get_by_label("Refused by the risk desk")
    listed.wait_for()
    assert refusal["detail"] in listed.inner_text()
    assert desktop.errors == []


def test_positions_show_the_exit_plan(desktop: Page, arena: tuple[int, Any]) -> None:
    page = desktop.open()
    _, body = get(arena[0], "/api/positions")
    held = [
        (entry["model_id"], coin, position)
        for entry in body["accountTotals"]
        if entry["model_id"] != BASELINE
        for coin, position in entry["positions"].items()
    ]
    if not held:
        assert "No open positions" in page.locator("#sec-positions").inner_text()
        return
    trader, coin, position = held[0]
    row = page.locator(f'#positions tr[data-trader="{trader}"][data-coin="{coin}"]')
    row.wait_for(timeout=15_000)
    plan = position["exit_plan"]
    if plan.get("invalidation_condition"):
        assert plan["invalidation_condition"] in row.inner_text()
    assert desktop.errors == []


def test_sorting_the_leaderboard(desktop: Page) -> None:
    page = desktop.open()
    page.get_by_role("button", name="Sort by Trader").click()
    ids = [
        page.locator("#leaderboard tbody tr").nth(i).get_attribute("data-trader")
        for i in range(page.locator("#leaderboard tbody tr").count())
    ]
    assert ids == sorted(ids)
    header = page.locator("#leaderboard th", has=page.get_by_role("button", name="Sort by Trader"))
    assert header.get_attribute("aria-sort") == "ascending"
    page.get_by_role("button", name="Sort by Trader").click()
    assert header.get_attribute("aria-sort") == "descending"
    assert desktop.errors == []


def test_the_trader_page_and_the_theme(desktop: Page, arena: tuple[int, Any]) -> None:
    page = desktop.open("#/trader/btc-hold")
    assert page.locator("#leaderboard tbody tr").count() == 1
    assert page.locator("#equity-chart g.series").count() == 2  # the trader and BTC
    assert page.locator("h1").inner_text().startswith("btc-hold")
    for turn in page.locator("#chat li.turn").all():
        assert turn.get_attribute("data-trader") == "btc-hold"
    before = page.evaluate("getComputedStyle(document.body).backgroundColor")
    page.get_by_role("button", name="Switch between dark and light theme").click()
    after = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert before != after
    page.goto(desktop.base + "#/trader/nobody")
    page.get_by_text("No trader").wait_for()
    assert desktop.errors == []


def answer(body: dict[str, Any]) -> Callable[[Any], None]:
    """A Playwright route handler that answers ``body`` as JSON."""

    def fulfil(route: Any) -> None:
        route.fulfill(json=body)

    return fulfil


def test_an_arena_without_trades_positions_or_chat(desktop: Page, arena: tuple[int, Any]) -> None:
    """The real leaderboard and status, but no trade, position, analytics or chat yet (as
    in an arena's first minutes): every view says so, nothing throws."""
    _, board = get(arena[0], "/api/leaderboard")
    empty = {
        "trades": {"trades": []},
        "positions": {"accountTotals": []},
        "analytics": {"analytics": []},
        "conversations": {"conversations": []},
        "account-totals": {"accountTotals": []},
    }
    leaders = [
        {**entry, "num_trades": 0, "num_wins": 0, "num_losses": 0} for entry in board["leaderboard"]
    ]
    empty["leaderboard"] = {"leaderboard": leaders}
    for route, body in empty.items():
        desktop.page.route(f"**/api/{route}", answer({**body, "serverTime": 1}))
    page = desktop.open()
    assert "No completed trades yet" in page.locator("#sec-trades").inner_text()
    assert "No open positions" in page.locator("#sec-positions").inner_text()
    assert "No model invocations yet" in page.locator("#sec-chat").inner_text()
    assert "No equity recorded yet" in (page.locator("#equity-chart").text_content() or "")
    for cell in page.locator('#leaderboard td[data-col="win_rate"]').all():
        assert cell.inner_text() == "–"
    page.goto(desktop.base + "#/trader/btc-hold")
    page.locator("#sec-analytics").get_by_text("No analytics yet").wait_for()
    assert desktop.errors == []


def test_operator_panel_says_control_is_off_without_a_token(desktop: Page) -> None:
    """The shipped config has no control token: no action buttons, and the panel says why."""
    page = desktop.open()
    panel = page.locator("#operator")
    panel.wait_for(state="visible")
    assert "operator control is off" in panel.inner_text()
    assert page.locator("#op-form").is_hidden()
    assert page.locator("#leaderboard button.action").count() == 0
    assert desktop.errors == []


@pytest.mark.parametrize("name", sorted(WIDTHS))
def test_screenshots_at_both_widths(browser: Any, arena: tuple[int, Any], name: str) -> None:
    width, height = WIDTHS[name]
    page = Page(browser, arena[0], width, height)
    try:
        shown = page.open()
        shown.wait_for_selector("#equity-chart g.series")
        shown.locator("#chat summary").first.click()  # an open turn must fit too
        shown.locator("#chat details[open] table").first.wait_for()
        scroll_width = shown.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= width, "the page scrolls sideways"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shown.screenshot(path=str(SCREENSHOTS / f"dashboard-{width}.png"), full_page=True)
        shown.goto(page.base + "#/trader/ema-cross")
        shown.wait_for_selector("#equity-chart g.series")
        shown.screenshot(path=str(SCREENSHOTS / f"trader-{width}.png"), full_page=True)
        assert (SCREENSHOTS / f"dashboard-{width}.png").stat().st_size > 10_000
        assert page.errors == []
    finally:
        page.close()


def test_stale_banner_while_the_engine_is_down(desktop: Page, arena: tuple[int, Any]) -> None:
    """Last: stops the arena. The page keeps its numbers and says they are stale."""
    port, process = arena
    page = desktop.open()
    banner = page.locator("#stale")
    assert banner.is_hidden()
    before = board_on_page(page)
    assert desktop.errors == []
    assert stop(process) == 0
    banner.wait_for(state="visible", timeout=15_000)
    assert "Stale" in banner.inner_text()
    assert board_on_page(page) == before  # still showing the last numbers
    assert get(port, "/api/leaderboard")[0] == 0
