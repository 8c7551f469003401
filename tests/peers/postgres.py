"""A real PostgreSQL server for the storage tests: Debian's binaries, a cluster of its own
in a temporary directory, listening on loopback only, one fresh database per test."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

from tests.peers.debian import require_package
from tests.peers.net import free_port


def _bin_dir() -> Path:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                      key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    if not versions:
        raise RuntimeError("PostgreSQL's initdb not found under /usr/lib/postgresql")
    return versions[-1].parent


class Postgres:
    def __init__(self) -> None:
        self.port = free_port()
        # Not under pytest's tmp_path: the server runs as the postgres user, which must be
        # able to reach its directory (pytest's are private to root).
        self.dir = Path(tempfile.mkdtemp(prefix="atende-pg-"))
        self.data = self.dir / "data"
        self._as: list[str] = []

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self._as, *args], capture_output=True, text=True, check=True,
                              timeout=120)

    def start(self) -> None:
        require_package("postgresql")
        bin_dir = _bin_dir()
        if os.geteuid() == 0:
            # PostgreSQL refuses to run as root: as root, run it as Debian's postgres user.
            user = pwd.getpwnam("postgres")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        self._run(str(bin_dir / "initdb"), "-D", str(self.data), "-U", "postgres",
                  "-A", "trust", "--no-sync", "-E", "UTF8")
        self._bin = bin_dir
        self.resume()

    def pause(self) -> None:
        """Stop the server, keeping its data (a database outage)."""
        self._run(str(self._bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def resume(self) -> None:
        """Start it (again), on the same port."""
        self._run(str(self._bin / "pg_ctl"), "-D", str(self.data), "-l",
                  str(self.dir / "server.log"), "-w", "-t", "60", "-o",
                  f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                  "-c fsync=off -c synchronous_commit=off -c full_page_writes=off", "start")

    def new_database(self) -> str:
        """A fresh, empty database: its SQLAlchemy URL."""
        name = "t_" + uuid.uuid4().hex[:12]
        self._run(str(self._bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                  "-U", "postgres", name)
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def log(self) -> str:
        path = self.dir / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        try:
            self._run(str(_bin_dir() / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w",
                      "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
