"""Drive baresip headless: a config folder, a WAV as microphone, recordings of each call,
and its ctrl_tcp socket for commands and events (netstring-framed JSON)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.peers.debian import require
from tests.peers.net import free_port


@dataclass
class Baresip:
    workdir: Path
    source_wav: Path
    account: str = "<sip:tester@127.0.0.1>;regint=0"
    codecs: str = "PCMU,PCMA"
    modules: tuple[str, ...] = ()  # codec modules besides g711 (opus, g722 …)
    sip_port: int = 0
    ctrl_port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    _reader: asyncio.StreamReader | None = None
    _writer: asyncio.StreamWriter | None = None
    _token: int = 0
    _responses: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    _event_cond: asyncio.Condition | None = None
    _task: asyncio.Task[None] | None = None

    def write_config(self) -> None:
        self.sip_port = self.sip_port or free_port(pair=True)
        # baresip listens for TLS on the port after sip_port: a control port there would
        # land our commands on its TLS listener (and no event would ever come).
        while not self.ctrl_port or self.ctrl_port in (self.sip_port, self.sip_port + 1):
            self.ctrl_port = free_port()
        rec = self.workdir / "rec"
        rec.mkdir(parents=True, exist_ok=True)
        (self.workdir / "config").write_text(f"""
poll_method epoll
sip_listen 127.0.0.1:{self.sip_port}
net_interface 127.0.0.1
audio_player alsa,null
audio_alert alsa,null
audio_source aufile,{self.source_wav}
rtp_ports 40000-40999
dns_server 127.0.0.1:53
module_path /usr/lib/baresip/modules
module g711.so
{"".join(f"module {m}.so" + chr(10) for m in self.modules)}module aufile.so
module alsa.so
module sndfile.so
snd_path {rec}
module_app account.so
module_app menu.so
module_app ctrl_tcp.so
ctrl_tcp_listen 127.0.0.1:{self.ctrl_port}
""")
        (self.workdir / "accounts").write_text(
            f"{self.account};audio_codecs={self.codecs};answermode=auto\n")
        (self.workdir / "contacts").write_text("")

    async def start(self) -> None:
        exe = require("baresip")
        self.write_config()
        log = open(self.workdir / "baresip.log", "wb")
        self.proc = subprocess.Popen([exe, "-f", str(self.workdir)], stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=subprocess.STDOUT)
        deadline = asyncio.get_running_loop().time() + 10
        while True:
            try:
                self._reader, self._writer = await asyncio.open_connection("127.0.0.1",
                                                                           self.ctrl_port)
                break
            except OSError:
                if asyncio.get_running_loop().time() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("baresip did not start: " + self.log()) from None
                await asyncio.sleep(0.05)
        self._event_cond = asyncio.Condition()
        self._task = asyncio.get_running_loop().create_task(self._read_loop())

    def log(self) -> str:
        p = self.workdir / "baresip.log"
        return p.read_text(errors="replace") if p.exists() else ""

    async def _read_loop(self) -> None:
        assert self._reader is not None and self._event_cond is not None
        while True:
            try:
                length = await self._reader.readuntil(b":")
                body = await self._reader.readexactly(int(length[:-1]) + 1)
            except (asyncio.IncompleteReadError, ValueError, ConnectionError):
                return
            msg = json.loads(body[:-1])
            if msg.get("response"):
                fut = self._responses.pop(str(msg.get("token")), None)
                if fut is not None and not fut.done():
                    fut.set_result(msg)
            else:
                async with self._event_cond:
                    self.events.append(msg)
                    self._event_cond.notify_all()

    async def command(self, command: str, params: str = "") -> dict[str, Any]:
        assert self._writer is not None
        self._token += 1
        token = str(self._token)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._responses[token] = fut
        data = json.dumps({"command": command, "params": params, "token": token}).encode()
        self._writer.write(str(len(data)).encode() + b":" + data + b",")
        await self._writer.drain()
        return await asyncio.wait_for(fut, 10)

    async def wait_event(self, kind: str, timeout: float = 15) -> dict[str, Any]:
        assert self._event_cond is not None

        def find() -> dict[str, Any] | None:
            return next((e for e in self.events if e.get("type") == kind), None)

        async with self._event_cond:
            await asyncio.wait_for(self._event_cond.wait_for(find), timeout)
        ev = find()
        assert ev is not None
        return ev

    def recordings(self) -> tuple[Path, Path]:
        """(what baresip heard, what it sent) for the most recent call."""
        rec = self.workdir / "rec"
        dec = sorted(rec.glob("dump-*-dec.wav"))
        enc = sorted(rec.glob("dump-*-enc.wav"))
        if not dec or not enc:
            raise FileNotFoundError("baresip made no recording")
        return dec[-1], enc[-1]

    async def stop(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(Exception):
                await self.command("quit")
            self._writer.close()
        if self.proc is not None:
            try:
                await asyncio.wait_for(asyncio.to_thread(self.proc.wait), 5)
            except TimeoutError:
                self.proc.kill()
                self.proc.wait()
        if self._task is not None:
            self._task.cancel()
