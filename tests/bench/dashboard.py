"""Benchmark of the dashboard: ``python -m tests.bench.dashboard [--seconds S]``.

Against a real ``nof0 run`` (offline arena, temp data dir, free port) once it has traded:

* the API's requests/s for each route the page polls, with one keep-alive client, plain
  and conditional (``If-None-Match`` with the current tag: a ``304`` while the view has not
  moved; the arena keeps trading, so some answers are full ones);
* the page's first load in headless Chromium (Playwright for Python driving Debian's
  chromium): bytes transferred until the first chart is drawn (the navigation plus every
  resource fetched by then, from the Resource Timing entries) and the time from
  navigation start to the page's ``nof0:first-chart`` mark. Skipped with the reason when
  Playwright or Chromium is missing.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from interfaces.http.dashboard import STATIC
from tests.e2e.test_nof0_run import environment, free_port, get, running, wait_for_trades

CHROMIUM = Path("/usr/bin/chromium")


def polled_routes() -> list[str]:
    """The routes app.js polls, read from the script itself."""
    block = re.search(r"const ROUTES = \[(.*?)\];", (STATIC / "app.js").read_text(), re.S)
    if block is None:
        raise RuntimeError("app.js has no ROUTES list")
    return [f"/api/{name}" for name in re.findall(r'"([a-z-]+)"', block.group(1))]


def rate(url: str, seconds: float, conditional: bool) -> dict[str, float]:
    with requests.Session() as session:
        tag = session.get(url, timeout=10).headers.get("etag", "")
        count = not_modified = 0
        size = 0
        began = time.perf_counter()
        while time.perf_counter() - began < seconds:
            headers = {"If-None-Match": tag} if conditional else {}
            response = session.get(url, headers=headers, timeout=10)
            if response.status_code == 304:
                not_modified += 1
            elif response.status_code == 200:
                tag = response.headers.get("etag", tag)
                size = len(response.content)
            else:
                raise RuntimeError(f"{url} answered {response.status_code}")
            count += 1
        elapsed = time.perf_counter() - began
    return {
        "requests_per_s": round(count / elapsed, 1),
        "share_304": round(not_modified / count, 3) if count else 0.0,
        "body_bytes": size,
    }


def first_load(port: int) -> dict[str, Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return {"skipped": "Playwright for Python is not installed (nox -s bench installs it)"}
    if not CHROMIUM.is_file():
        return {"skipped": f"{CHROMIUM} is missing (apt-get install chromium)"}
    runs = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            for _ in range(3):  # a fresh context each time: nothing cached
                context = browser.new_context(viewport={"width": 1440, "height": 1000})
                page = context.new_page()
                page.goto(f"http://127.0.0.1:{port}/")
                page.wait_for_function(
                    "performance.getEntriesByName('nof0:first-chart').length > 0",
                    timeout=30_000,
                )
                runs.append(
                    page.evaluate(
                        """() => {
                          const chart = performance.getEntriesByName('nof0:first-chart')[0];
                          const nav = performance.getEntriesByType('navigation')[0];
                          const before = performance.getEntriesByType('resource')
                            .filter((r) => r.responseEnd <= chart.startTime);
                          return {
                            first_chart_ms: chart.startTime,
                            bytes: before.reduce((s, r) => s + r.transferSize, nav.transferSize),
                            requests: 1 + before.length,
                            resources: Object.fromEntries(before.map(
                              (r) => [new URL(r.name).pathname, r.transferSize])),
                          };
                        }"""
                    )
                )
                context.close()
        finally:
            browser.close()
    best = min(runs, key=lambda r: r["first_chart_ms"])
    return {
        "first_chart_ms": [round(r["first_chart_ms"], 1) for r in runs],
        "bytes": best["bytes"],
        "requests": best["requests"],
        "resources": best["resources"],
    }


def run(seconds: float = 1.0, *, log: Callable[[str], None] = print) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        with running(Path(tmp) / "data", port, environment(), Path(tmp) / "nof0.log"):
            wait_for_trades(port, deadline_s=90)
            deadline = time.monotonic() + 30
            while get(port, "/api/status")[0] != 200 and time.monotonic() < deadline:
                time.sleep(0.5)
            results["first_load"] = first_load(port)
            log(f"first load: {results['first_load']}")
            routes: dict[str, Any] = {}
            for route in polled_routes():
                url = f"http://127.0.0.1:{port}{route}"
                routes[route] = {
                    "plain": rate(url, seconds, conditional=False),
                    "if_none_match": rate(url, seconds, conditional=True),
                }
                log(f"{route}: {routes[route]}")
            results["routes"] = routes
    return results


def report(results: dict[str, Any]) -> None:
    load = results["first_load"]
    print("\ndashboard first load in headless Chromium (1440 px, nothing cached)")
    if "skipped" in load:
        print(f"  skipped: {load['skipped']}")
    else:
        print(
            f"  {load['bytes']:,} bytes in {load['requests']} requests until the first chart; "
            f"time to first chart {', '.join(f'{t:.0f}' for t in load['first_chart_ms'])} ms"
        )
        for path, size in sorted(load["resources"].items(), key=lambda item: -item[1]):
            print(f"    {path:<28} {size:>9,} bytes")
    print("\nAPI routes the page polls (1 keep-alive client, while the arena trades)")
    for route, row in results["routes"].items():
        plain, cond = row["plain"], row["if_none_match"]
        print(
            f"  {route:<26} {plain['requests_per_s']:>7,.0f} req/s ({plain['body_bytes']:>7,} B)"
            f"   If-None-Match {cond['requests_per_s']:>7,.0f} req/s "
            f"({cond['share_304']:.0%} answered 304)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0)
    args = parser.parse_args()
    results = run(args.seconds, log=lambda _: None)
    report(results)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
