"""Sessions: tests (default, no servers), integration (PostgreSQL + Redis), ccxt (ccxt's
hyperliquid class against the simulator), browser (the dashboard in headless Chromium), property
(Hypothesis CI profile), lint (ruff + import-linter), typecheck (mypy --strict), bench."""

from __future__ import annotations

import os
import shutil

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["lint", "typecheck", "tests"]

CONSTRAINTS = ("-c", "etc/constraints.txt")
#: Debian packages the API bench needs, and the command each provides.
STATIC_SERVER_TOOLS = {"nginx-light": "nginx", "wrk": "wrk"}


def install(session: nox.Session, extras: str) -> None:
    session.install(*CONSTRAINTS, "-e", f".[{extras}]")


@nox.session
def tests(session: nox.Session) -> None:
    """The default suite: passes without any server (PostgreSQL/Redis tests are excluded)."""
    install(session, "test")
    session.run("pytest", *session.posargs)


@nox.session
def integration(session: nox.Session) -> None:
    """Tests against the real PostgreSQL (127.0.0.1:5432/test) and Redis (127.0.0.1:6379)."""
    install(session, "test")
    session.run("pytest", "-m", "postgres or redis", *session.posargs)


#: ccxt's release the compatibility test was written against; bump it deliberately.
CCXT = "ccxt==4.5.90"


@nox.session
def ccxt(session: nox.Session) -> None:
    """ccxt's hyperliquid class against `nof0 sim serve`: a trading day in miniature."""
    install(session, "test")
    try:
        session.install(CCXT)
    except nox.command.CommandFailed:
        session.skip(f"{CCXT} cannot be installed here (no package index?)")
    session.run("pytest", "-m", "ccxt", "tests/clients", *session.posargs)


#: Playwright for Python, pinned; it drives Debian's chromium (no browser download).
PLAYWRIGHT = "playwright==1.65.3"


@nox.session
def browser(session: nox.Session) -> None:
    """The dashboard in headless Chromium against `nof0 run`; screenshots in .artifacts/."""
    install(session, "test")
    try:
        session.install(PLAYWRIGHT)
    except nox.command.CommandFailed:
        session.skip(f"{PLAYWRIGHT} cannot be installed here (no package index?)")
    session.run("pytest", "-m", "browser", "tests/e2e", *session.posargs)


@nox.session
def property(session: nox.Session) -> None:
    """Hypothesis properties with the CI profile (more examples, no deadline)."""
    install(session, "test")
    session.run("pytest", "tests/property", *session.posargs, env={"HYPOTHESIS_PROFILE": "ci"})


@nox.session
def lint(session: nox.Session) -> None:
    install(session, "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("lint-imports")


@nox.session
def typecheck(session: nox.Session) -> None:
    install(session, "typecheck")
    session.run("mypy")


@nox.session
def bench(session: nox.Session) -> None:
    """Speed figures: projection rebuild (SQLite, PostgreSQL), engine overhead per cycle,
    simulator orders/s in process, `nof0 sim serve` requests/s, the dashboard's first
    load in headless Chromium (skipped with the reason without Playwright or Chromium), and
    backtest candles/s beside freqtrade's on the same candles (freqtrade is pip-installed
    by the bench into a venv of its own under its temp dir, never into this session's or
    the project's; skipped with the reason when it cannot be)."""
    install(session, "test")
    try:
        session.install(PLAYWRIGHT)
    except nox.command.CommandFailed:
        session.warn(f"{PLAYWRIGHT} cannot be installed: the dashboard's first load is skipped")
    missing = [tool for tool, binary in STATIC_SERVER_TOOLS.items() if not shutil.which(binary)]
    if missing and os.geteuid() == 0 and shutil.which("apt-get"):
        # The API bench compares with nginx and drives both with wrk (Debian's packages).
        try:
            session.run(
                "apt-get",
                "install",
                "-y",
                "-q",
                *missing,
                external=True,
                env={"DEBIAN_FRONTEND": "noninteractive"},
            )
        except nox.command.CommandFailed:
            session.warn(f"apt-get could not install {missing}: the API comparison is skipped")
    session.run("python", "-m", "tests.bench", *session.posargs)
