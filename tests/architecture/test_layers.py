"""The layering of ARCHITECTURE.md §2 fails the build when broken."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import domain
import interfaces
from tests.conftest import REPO


def test_import_linter_contracts_are_kept() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from importlinter.cli import lint_imports_command; lint_imports_command()",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_forbidden_import_is_caught(tmp_path: Path) -> None:
    """The contracts can fail: a domain module importing a driver is reported as broken."""
    copy = tmp_path / "repo"
    for name in ("domain", "application", "projections", "infrastructure", "interfaces"):
        shutil.copytree(REPO / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", copy / "pyproject.toml")
    (copy / "domain" / "leak.py").write_text("import redis\n")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from importlinter.cli import lint_imports_command; lint_imports_command()",
        ],
        cwd=copy,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PYTHONPATH": str(copy), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode != 0
    assert "domain.leak -> redis" in result.stdout


def test_the_code_packages_are_this_repository() -> None:
    """The top-level names are generic (PyPI has a 'domain'); ours must be imported."""
    assert Path(domain.__file__).resolve().parent == REPO / "domain"
    assert Path(interfaces.__file__).resolve().parent == REPO / "interfaces"


def test_the_domain_reads_no_clock_and_draws_no_randomness() -> None:
    forbidden = ("datetime.now", "time.time", "time.monotonic", "random.", "uuid.uuid4", "uuid4(")
    for path in (REPO / "domain").glob("*.py"):
        text = path.read_text()
        for word in forbidden:
            assert word not in text, f"{path.name} uses {word}"
