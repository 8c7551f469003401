"""schemathesis against /openapi.json: no server errors, every answer as documented,
nothing accepted that the schema forbids. See tests/fuzz/netns_run.py for how and why it
runs in a network namespace."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.peers.atende import AtendeProcess
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


def _has_example(schema: dict[str, Any] | None, components: dict[str, Any]) -> bool:
    if not schema:
        return False
    if "example" in schema or "examples" in schema:
        return True
    if "$ref" in schema:
        return _has_example(components[schema["$ref"].rsplit("/", 1)[1]], components)
    if schema.get("type") == "array":
        return _has_example(schema.get("items"), components)
    return any(_has_example(s, components) for s in schema.get("anyOf", []))


def test_every_route_has_examples(atende: AtendeProcess) -> None:
    doc = httpx.get(atende.base + "/openapi.json", timeout=10).json()
    components = doc["components"]["schemas"]
    missing = []
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            where = f"{method.upper()} {path}"
            bodies = [op["requestBody"]["content"]] if "requestBody" in op else []
            bodies += [r["content"] for status, r in op["responses"].items()
                       if status.startswith("2") and r.get("content")]
            for content in bodies:
                if not any("example" in media or "examples" in media
                           or _has_example(media.get("schema"), components)
                           for media in content.values()):
                    missing.append(f"{where}: {sorted(content)}")
            for param in op.get("parameters", []):
                if param["in"] == "query" and not (
                        "example" in param or "examples" in param
                        or _has_example(param.get("schema"), components)):
                    missing.append(f"{where}: ?{param['name']}")
    assert not missing, "\n".join(missing)
