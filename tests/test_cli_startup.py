"""The `atende` command loads only what a command needs: printing help, or calling the API
with a key, imports neither the server's libraries (FastAPI, SQLAlchemy, numpy, the speech
models) nor the settings; they come when a command that needs them runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HEAVY = ("fastapi", "sqlalchemy", "alembic", "numpy", "pydantic_settings", "httpx",
         "atende.config", "atende.server", "atende.store.db")


def loaded_after(code: str, **env: str) -> list[str]:
    probe = (f"import sys\n{code}\n"
             f"print('LOADED:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                       timeout=60, env={**os.environ, **env})
    assert r.returncode == 0, r.stderr
    [line] = [x for x in r.stdout.splitlines() if x.startswith("LOADED:")]
    return [m for m in line.removeprefix("LOADED:").split(",") if m]


def test_help_loads_nothing_heavy() -> None:
    code = ("from atende.cli import app\n"
            "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
            "try:\n    app(['apikey', '--help'])\nexcept SystemExit:\n    pass")
    assert loaded_after(code) == []


def test_an_api_call_loads_only_the_http_client() -> None:
    # The key is given: nothing of the server is read to find it. (Nothing listens on
    # port 9: the command fails to connect, which is all this needs.)
    code = ("from atende.cli import app\n"
            "try:\n    app(['call', '+12025550100', '--api', 'http://127.0.0.1:9'])\n"
            "except SystemExit:\n    pass")
    assert loaded_after(code, ATENDE_API_KEY="k") == ["httpx"]


def test_keys_can_be_made_before_the_server_first_ran(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {**os.environ, "ATENDE_DATA_DIR": str(data)}
    env.pop("ATENDE_DATABASE_URL", None)
    run = [sys.executable, "-m", "atende", "apikey"]
    made = subprocess.run([*run, "create", "--name", "crm"], capture_output=True, text=True,
                          timeout=60, env=env)
    assert made.returncode == 0, made.stderr
    listed = subprocess.run([*run, "list"], capture_output=True, text=True, timeout=60,
                            env=env)
    assert "'crm'" in listed.stdout
    assert data.stat().st_mode & 0o777 == 0o700  # the server's own rule for its data
    # A database that cannot be reached: one line saying so, no traceback.
    env["ATENDE_DATABASE_URL"] = "postgresql://nobody@127.0.0.1:9/atende"
    failed = subprocess.run([*run, "list"], capture_output=True, text=True, timeout=60,
                            env=env)
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    assert failed.stderr.startswith("cannot use atende's database (postgresql)")


def test_the_server_runs_numpy_with_one_blas_thread() -> None:
    # `serve` sets it before anything loads numpy (which reads it only then); invalid
    # settings make it stop right after.
    code = ("from atende.cli import app\n"
            "try:\n    app(['serve'])\nexcept SystemExit:\n    pass\n"
            "import os\nprint('BLAS:' + os.environ.get('OPENBLAS_NUM_THREADS', ''))")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    r = subprocess.run([sys.executable, "-c", f"import sys\n{code}\n"
                        "print('NUMPY:' + str('numpy' in sys.modules))"],
                       capture_output=True, text=True, timeout=60,
                       env={**env, "ATENDE_SIP_PORT": "not-a-port"})
    assert "invalid settings" in r.stderr
    assert "BLAS:1" in r.stdout.splitlines()
    assert "NUMPY:False" in r.stdout.splitlines()
