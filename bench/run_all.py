"""Run every benchmark and print its figures. `make bench`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
BENCHES = ["sip_parse.py", "sip_timers.py", "sip_calls.py", "sip_load.py", "media_calls.py",
           "nodes.py",
           "agent_latency.py", "agent_overhead.py", "freeswitch_latency.py"]

if __name__ == "__main__":
    failed = 0
    for name in BENCHES:
        print(f"\n== {name}", flush=True)
        # The repository root on the path: benchmarks reuse the tests' SIP client. The
        # in-process ones run numpy as `atende serve` does, with one BLAS thread.
        env = {"OPENBLAS_NUM_THREADS": "1", **os.environ, "PYTHONPATH": str(HERE.parent)}
        failed |= subprocess.call([sys.executable, str(HERE / name)], cwd=HERE.parent, env=env)
    sys.exit(failed)
