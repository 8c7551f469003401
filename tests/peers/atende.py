"""atende itself as a separate process, the way a user runs it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.peers.net import free_port

Call = dict[str, Any]


class AtendeProcess:
    def __init__(self, workdir: Path, rtp_range: tuple[int, int], **env: str) -> None:
        self.workdir = workdir
        self.sip_port = free_port()
        self.tls_port = free_port()
        self.api_port = free_port()
        self.esl_port = free_port()
        self.audio_stream_port = free_port()
        self.env = {
            **os.environ,
            "ATENDE_BIND": "127.0.0.1",
            "ATENDE_SIP_PORT": str(self.sip_port),
            "ATENDE_SIP_TLS_PORT": str(self.tls_port),
            "ATENDE_API_PORT": str(self.api_port),
            "ATENDE_ESL_SERVER_PORT": str(self.esl_port),
            "ATENDE_AUDIO_STREAM_PORT": str(self.audio_stream_port),
            "ATENDE_DATA_DIR": str(workdir / "data"),
            "ATENDE_RTP_PORT_MIN": str(rtp_range[0]),
            "ATENDE_RTP_PORT_MAX": str(rtp_range[1]),
            "ATENDE_LOG_LEVEL": "info",
            # The tests' webhook receivers and vendor servers listen on loopback.
            "ATENDE_ALLOW_PRIVATE_URLS": "all",
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.base = f"http://127.0.0.1:{self.api_port}"
        self.api_key = ""
        # The API as a user with a key sees it (the key is read once atende is up).
        self.api = httpx.Client(base_url=self.base, timeout=10)

    @property
    def log_path(self) -> Path:
        return self.workdir / "atende.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self, timeout: float = 120) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        out = open(self.log_path, "ab")  # a node started again keeps its earlier lines
        # In its own folder: a .env a test writes there is read, as in a user's install.
        self.proc = subprocess.Popen([sys.executable, "-m", "atende", "serve"], env=self.env,
                                     cwd=self.workdir,
                                     stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("atende exited while starting:\n" + self.log()[-3000:])
            try:
                if httpx.get(self.base + "/health", timeout=1).json()["status"] == "ok":
                    # atende's first start wrote its first API key for its operator.
                    self.api_key = (Path(self.env["ATENDE_DATA_DIR"]) / "api.key"
                                    ).read_text().strip()
                    self.env["ATENDE_API_KEY"] = self.api_key  # for `atende` commands
                    self.api.headers["Authorization"] = f"Bearer {self.api_key}"
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("atende did not become healthy:\n" + self.log()[-3000:])

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def kill(self) -> None:
        """kill -9: no shutdown of any kind, as in a power cut or an OOM kill."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # API helpers ------------------------------------------------------------------------
    def get(self, path: str) -> Any:
        r = self.api.get(path)
        r.raise_for_status()
        return r.json()

    def calls(self) -> list[Call]:
        return list(self.get("/v1/calls?limit=500")["items"])

    def call(self, call_id: str) -> Call:
        return dict(self.get(f"/v1/calls/{call_id}"))

    async def wait_for_call(self, match: Callable[[Call], bool], timeout: float = 30
                            ) -> Call:
        """Poll the API until a call (with its turns) satisfies ``match``."""
        deadline = time.monotonic() + timeout
        while True:
            for summary in await asyncio.to_thread(self.calls):
                full = await asyncio.to_thread(self.call, summary["id"])
                if match(full):
                    return full
            if time.monotonic() > deadline:
                raise TimeoutError("no call matched; log tail:\n" + self.log()[-3000:])
            await asyncio.sleep(0.2)
