"""The dashboard's operator buttons in headless Chromium against a real ``nof0 run`` with a
control token configured: pause, resume, flatten and the kill switch reach the engine through
``POST /api/control/...`` with the token typed into the page, refusals are shown, and the audit
trail (which credential, why) appears on the status view.

Run with ``nox -s browser``; skips like ``test_dashboard_browser`` without Playwright/Chromium.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import REPO
from tests.e2e.test_dashboard_browser import SCREENSHOTS, WIDTHS, Page, browser, eventually
from tests.e2e.test_nof0_run import environment, free_port, get, stop, wait_for_trades
from tests.support.workspace import Workspace

pytestmark = [pytest.mark.browser, pytest.mark.slow]
__all__ = ["browser"]  # the module-scoped Chromium fixture, shared with the dashboard tests

TOKEN = "dashboard-ops-0123456789abcdef"
TARGET = "btc-hold"


@pytest.fixture(scope="module")
def arena(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """``nof0 run`` with one control token (id ``ops``), once it has traded."""
    tmp = tmp_path_factory.mktemp("controls")
    ws = Workspace(tmp / "arena")
    ws.set("nof0.yaml", ("Control",), {"Tokens": [{"Id": "ops", "Env": "TEST_DASH_TOKEN"}]})
    port = free_port()
    command = [
        sys.executable, "-m", "interfaces.cli", "run", "--config", str(ws.main),
        "--port", str(port), "--data-dir", str(tmp / "data"),
    ]  # fmt: skip
    with (tmp / "nof0.log").open("a") as log:
        process = subprocess.Popen(
            command,
            cwd=REPO,
            env=environment(TEST_DASH_TOKEN=TOKEN),
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            wait_for_trades(port, deadline_s=90)
            yield port
        finally:
            if process.poll() is None:
                stop(process)
    assert TOKEN not in (tmp / "nof0.log").read_text(), "the token leaked into the log"


@pytest.fixture
def desktop(browser: Any, arena: int) -> Iterator[Page]:
    page = Page(browser, arena, *WIDTHS["desktop"])
    yield page
    page.close()


def button(page: Any, trader: str, name: str) -> Any:
    """A trader's action button in its leaderboard row (looked up afresh: rows are redrawn)."""
    row = page.locator(f'#leaderboard tr[data-trader="{trader}"]')
    return row.get_by_role("button", name=f"{name} {trader}")


def trader_status(port: int, trader: str) -> dict[str, Any]:
    _, body = get(port, "/api/status")
    return next(t for t in body["traders"] if t["model_id"] == trader)


def result_text(page: Any, contains: str) -> str:
    out = page.locator("#op-result")
    eventually(lambda: contains in out.inner_text(), 10, f"the operator panel says {contains!r}")
    return str(out.inner_text())


def refused_loads(errors: list[str]) -> list[str]:
    """Console errors other than the browser's own note on a refused (401/403) request."""
    return [e for e in errors if "status of 401" not in e and "status of 403" not in e]


def test_buttons_pause_and_resume_with_the_token_and_refuse_without(
    desktop: Page, arena: int
) -> None:
    page = desktop.open()
    panel = page.locator("#operator")
    panel.wait_for(state="visible")
    pause = button(page, TARGET, "Pause new entries of")
    pause.wait_for()
    assert button(page, TARGET, "Flatten").count() == 1
    assert trader_status(arena, TARGET)["paused"] is False

    pause.click()  # no token typed yet
    assert "enter the control token first" in result_text(page, "token")
    page.get_by_label("Control token").fill("not-the-token-at-all-0000")
    pause.click()
    assert "refused (403)" in result_text(page, "refused")
    assert trader_status(arena, TARGET)["paused"] is False  # nothing changed

    page.get_by_label("Control token").fill(TOKEN)
    page.get_by_label("Reason").fill("checking the buttons")
    button(page, TARGET, "Pause new entries of").click()
    assert "accepted for token:ops" in result_text(page, "accepted")
    status = eventually(
        lambda: (s := trader_status(arena, TARGET))["paused"] and s, 15, "the trader is paused"
    )
    assert status["last_control"]["credential"] == "token:ops"
    assert status["last_control"]["reason"] == "checking the buttons"
    cell = page.locator(f'#status tr[data-trader="{TARGET}"]')
    eventually(lambda: "token:ops" in cell.inner_text(), 15, "the status view shows who paused")
    assert "checking the buttons" in cell.inner_text()

    button(page, TARGET, "Resume").click()
    eventually(lambda: not trader_status(arena, TARGET)["paused"], 15, "the trader resumed")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.locator("#operator").screenshot(path=str(SCREENSHOTS / "operator-panel-1440.png"))
    stored = page.evaluate("JSON.stringify([sessionStorage, localStorage, document.cookie])")
    assert TOKEN not in stored, "the token must stay in the page, not in storage"
    assert refused_loads(desktop.errors) == []


def test_flatten_asks_first_and_the_kill_switch_pauses_everyone(desktop: Page, arena: int) -> None:
    page = desktop.open()
    page.locator("#operator").wait_for(state="visible")
    page.get_by_label("Control token").fill(TOKEN)
    page.get_by_label("Reason").fill("end of the test")
    target = "ema-cross"
    flatten = button(page, target, "Flatten")

    asked: list[str] = []
    page.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
    flatten.click()
    eventually(lambda: asked, 5, "flatten asks for confirmation")
    assert "close its positions" in asked[0]
    assert trader_status(arena, target)["paused"] is False  # dismissed: nothing sent

    page.once("dialog", lambda d: d.accept())
    button(page, target, "Flatten").click()
    assert "accepted for token:ops" in result_text(page, "accepted")
    status = eventually(
        lambda: (s := trader_status(arena, target))["paused"] and s, 20, "flattened and paused"
    )
    assert status["last_control"]["action"] == "flatten"

    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Kill switch: pause every trader").click()
    assert "Kill switch: accepted" in result_text(page, "Kill switch")
    _, body = get(arena, "/api/status")
    eventually(
        lambda: all(t["paused"] for t in get(arena, "/api/status")[1]["traders"]),
        20,
        "every trader is paused",
    )
    assert body["control_actions"], "the audit trail lists the actions"
    assert refused_loads(desktop.errors) == []
