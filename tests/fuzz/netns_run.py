"""Run schemathesis against a fresh atende, both inside a network namespace of their own
(`unshare -n`) that has nothing but loopback: the fuzzer makes up trunks with any host,
webhook URLs and phone numbers, and whatever atende then tries to reach can go nowhere.

Usage (as root): unshare -n python -m tests.fuzz.netns_run WORKDIR
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.peers.atende import AtendeProcess

# Checks left out, and why:
# - positive_data_acceptance: "schema-valid" requests that atende refuses for reasons a
#   JSON schema cannot say (no trunk yet, an IP allowlist entry that is not an address, a
#   window longer than 400 days). Each such refusal is a 4xx that says what to fix.
# - unsupported_method, allow_header_conformance: Starlette answers 405 (and OPTIONS)
#   per route, and lists only that route's methods in Allow when one path has several.
# - ensure_resource_availability: it takes every path under a created resource for the
#   resource itself, so a call's recording (a sub-resource that exists only when its
#   assistant records) answering its documented 404 reads as "the created call is gone".
#   Turning it off for that one operation (schemathesis.toml, [[operations]]) did not
#   take effect in the stateful phase, where it runs (schemathesis 4.32). Each
#   resource's GET after its POST is tested directly.
EXCLUDED_CHECKS = ("positive_data_acceptance,unsupported_method,allow_header_conformance,"
                   "ensure_resource_availability")
# /v1/events never ends (it is a live stream): a fuzzer would wait on it forever.
EXCLUDED_PATHS = ["/v1/events"]


def main(workdir: Path) -> int:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    atende = AtendeProcess(workdir, (20000, 20999))
    atende.start()
    try:
        cmd = [str(Path(sys.executable).parent / "schemathesis"), "run",
               f"{atende.base}/openapi.json", "-H",
               f"Authorization: Bearer {atende.api_key}", "--checks", "all",
               "--exclude-checks", EXCLUDED_CHECKS, "--max-examples", "25", "--seed", "1",
               "--no-color", "--request-timeout", "20"]
        for path in EXCLUDED_PATHS:
            cmd += ["--exclude-path", path]
        return subprocess.run(cmd, cwd=workdir, timeout=900).returncode
    finally:
        atende.stop()
        if "Traceback" in atende.log():
            print("atende logged an exception:\n" + atende.log()[-4000:])


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
