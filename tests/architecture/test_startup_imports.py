"""What starting a command costs: the composition root, the CLI and the API workers do not
import the LLM vendors' SDKs (seconds of generated types) or matplotlib (only `nof0 report`
draws); they are imported when a model of theirs is built."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

HEAVY = ("openai", "anthropic", "matplotlib")


def test_the_entry_points_start_without_the_vendor_sdks_or_matplotlib() -> None:
    probe = (
        "import sys\n"
        "import infrastructure.bootstrap, interfaces.cli, interfaces.serve\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == ""


def test_building_a_model_imports_its_sdk() -> None:
    probe = (
        "import sys\n"
        "from infrastructure.llm.clients import ModelEndpoint, build_model\n"
        "build_model(ModelEndpoint(name='m', protocol='anthropic', base_url='http://127.0.0.1:9',"
        " api_key='k', model_name='x', temperature=0.0, max_completion_tokens=10))\n"
        "print('anthropic' in sys.modules, 'openai' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["True", "False"]
