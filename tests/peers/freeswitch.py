"""A real FreeSWITCH (1.10 with mod_audio_stream, from ../shared/peers/freeswitch/) for the
FreeSWITCH channel's tests: the shipped configuration copied to a folder of the test's own,
with ports of its own, started in the background and stopped after."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.peers.baresip import Baresip
from tests.peers.net import free_port

HOME = Path("/usr/local/freeswitch")
INSTALL = Path(__file__).resolve().parents[3] / "shared" / "peers" / "freeswitch" / "install.sh"
PASSWORD = "ClueCon"
USER_PASSWORD = "peer1234"  # of the directory's users 1000-1019


def require_freeswitch() -> None:
    """Install the peer when it is not yet (root only); skip (fail under CI=true) when it
    cannot be."""
    if (HOME / "bin" / "freeswitch").exists():
        return
    if INSTALL.exists() and os.geteuid() == 0:
        subprocess.run(["sh", str(INSTALL)], check=True, timeout=600)
        return
    message = f"FreeSWITCH peer not installed (no {HOME}; install with {INSTALL} as root)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


class FreeSwitch:
    """One FreeSWITCH process with its own configuration, ports and folders."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        self.esl_port = free_port()
        self.sip_port = free_port()
        self.rtp_start = 40000 + (self.esl_port % 200) * 100
        self.pid: int | None = None

    def _configure(self) -> None:
        conf = self.dir / "conf"
        if conf.exists():  # started before: same configuration, same ports
            return
        shutil.copytree(HOME / "conf", conf)
        for sub in ("log", "db", "run"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        edits = {
            conf / "vars.xml": [(r"internal_sip_port=\d+", f"internal_sip_port={self.sip_port}"),
                                (r"internal_tls_port=\d+", f"internal_tls_port={free_port()}"),
                                (r"external_sip_port=\d+", f"external_sip_port={free_port()}")],
            conf / "autoload_configs" / "event_socket.conf.xml": [
                (r'name="listen-port" value="\d+"', f'name="listen-port" value="{self.esl_port}"')],
            conf / "autoload_configs" / "switch.conf.xml": [
                (r'name="rtp-start-port" value="\d+"',
                 f'name="rtp-start-port" value="{self.rtp_start}"'),
                (r'name="rtp-end-port" value="\d+"',
                 f'name="rtp-end-port" value="{self.rtp_start + 99}"')],
        }
        for path, pairs in edits.items():
            text = path.read_text()
            for pattern, value in pairs:
                text, n = re.subn(pattern, value, text)
                assert n, f"{path.name}: {pattern} not found"
            path.write_text(text)

    def start(self, timeout: float = 60) -> None:
        require_freeswitch()
        self._configure()
        d = self.dir
        subprocess.run([str(HOME / "bin" / "freeswitch"), "-nc", "-nonat", "-conf",
                        str(d / "conf"), "-log", str(d / "log"), "-db", str(d / "db"),
                        "-run", str(d / "run")], check=True, timeout=60,
                       capture_output=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid_file = d / "run" / "freeswitch.pid"
            if self.pid is None and pid_file.exists() and pid_file.read_text().strip():
                self.pid = int(pid_file.read_text().strip())
            out = subprocess.run([str(HOME / "bin" / "fs_cli"), "-p", PASSWORD, "-P",
                                  str(self.esl_port), "-x", "status"], capture_output=True,
                                 text=True, timeout=10)
            if "is ready" in out.stdout:
                return
            time.sleep(0.2)
        raise RuntimeError("FreeSWITCH did not become ready:\n" + self.log()[-3000:])

    def load_dialplan(self, extensions: str) -> None:
        """Put ``extensions`` first in context default and reload, as a user pastes a
        dialplan and runs reloadxml."""
        path = self.dir / "conf" / "dialplan" / "peer" / "peer_tests.xml"
        path.write_text(path.read_text().replace("<include>", "<include>\n" + extensions, 1))
        assert "+OK" in self.api("reloadxml")

    def api(self, command: str) -> str:
        """An API command's output, through fs_cli."""
        return subprocess.run([str(HOME / "bin" / "fs_cli"), "-p", PASSWORD, "-P",
                               str(self.esl_port), "-x", command], capture_output=True,
                              text=True, timeout=10).stdout

    def log(self) -> str:
        path = self.dir / "log" / "freeswitch.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def kill(self) -> None:
        """Stop at once, the way a crash does (no hangups sent, sockets just close)."""
        if self.pid is not None:
            os.kill(self.pid, signal.SIGKILL)
            self.pid = None
            (self.dir / "run" / "freeswitch.pid").unlink(missing_ok=True)

    def stop(self) -> None:
        if self.pid is None:
            return
        try:
            os.kill(self.pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                os.kill(self.pid, 0)
                time.sleep(0.1)
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.pid = None


@contextmanager
def running(workdir: Path) -> Iterator[FreeSwitch]:
    """A FreeSWITCH started in ``workdir``, stopped on the way out."""
    fs = FreeSwitch(workdir)
    try:
        fs.start()
        yield fs
    finally:
        fs.stop()


def desk_phone(pbx: FreeSwitch, folder: Path, wav: Path, user: str = "1000",
               register: bool = False) -> Baresip:
    """A desk phone on the PBX as ``user``, playing ``wav`` (registered when asked: to be
    called; a phone that only dials answers the PBX's challenge)."""
    folder.mkdir(exist_ok=True)
    return Baresip(folder, wav, account=(
        f"<sip:{user}@127.0.0.1:{pbx.sip_port}>;auth_pass={USER_PASSWORD};"
        f"regint={60 if register else 0}"))
