"""schemathesis against /openapi.json: no server errors, every answer as documented,
nothing accepted that the schema forbids. See tests/fuzz/netns_run.py for how and why it
runs in a network namespace."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.peers.debian import require

ROOT = Path(__file__).parents[2]


def test_schemathesis_finds_nothing(tmp_path: Path) -> None:
    require("ip")
    unshare = require("unshare")
    if os.geteuid() != 0:
        pytest.skip("a network namespace of its own needs root")
    out = subprocess.run([unshare, "-n", sys.executable, "-m", "tests.fuzz.netns_run",
                          str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                         timeout=1200)
    report = out.stdout + out.stderr
    assert out.returncode == 0, report[-8000:]
    assert "Server error" not in report and "atende logged an exception" not in report
