"""kamailio (Debian) on loopback as the customer's PBX or carrier: a registrar with digest
auth over static users, and a proxy that relays to registered contacts."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
from pathlib import Path

from tests.peers.debian import require, require_package
from tests.peers.net import free_port

CONFIG = """#!KAMAILIO
debug=2
log_stderror=yes
children=2
listen=udp:127.0.0.1:{port}
listen=tcp:127.0.0.1:{port}
{tls_listen}
alias="example.test"
auto_aliases=no
mpath="{modules}"

loadmodule "kex.so"
loadmodule "corex.so"
loadmodule "tm.so"
loadmodule "tmx.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "auth.so"
loadmodule "htable.so"
loadmodule "ctl.so"
{tls_module}

modparam("ctl", "binrpc", "unix:{ctl}")
modparam("usrloc", "db_mode", 0)
modparam("registrar", "gruu_enabled", 0)
modparam("registrar", "min_expires", {min_expires})
modparam("auth", "algorithm", "{algorithm}")
modparam("auth", "nonce_expire", {nonce_expire})
modparam("htable", "htable", "users=>size=4;")

event_route[htable:mod-init] {{
{users}
}}

request_route {{
    xlog("L_NOTICE", "REQ $rm from $fu to $ru src $pr:$si:$sp cid $ci\\n");
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (is_method("OPTIONS") && uri == myself && $rU == $null) {{
        sl_send_reply("200", "OK"); exit;
    }}
    if (has_totag()) {{
        if (loose_route()) {{ t_relay(); exit; }}
        if (is_method("ACK")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
        sl_send_reply("404", "Not here"); exit;
    }}
    if (is_method("CANCEL")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
    if (is_method("REGISTER")) {{
        if (!pv_auth_check("$fd", "$sht(users=>$fU)", "0", "1")) {{
            auth_challenge("$fd", "1");
            exit;
        }}
        if (!save("location")) {{ sl_reply_error(); }}
        exit;
    }}
    # Calls placed by the PBX's own users must authenticate (407), as on a real PBX.
    if (is_method("INVITE") && from_uri == myself && $sht(users=>$fU) != $null) {{
        if (!pv_auth_check("$fd", "$sht(users=>$fU)", "0", "1")) {{
            proxy_challenge("$fd", "1");
            exit;
        }}
        consume_credentials();
    }}
    if (is_method("INVITE")) {{ record_route(); }}
    if (uri == myself) {{
        if (!lookup("location")) {{
            if ($sht(users=>$rU) != $null) {{
                sl_send_reply("480", "Temporarily Unavailable");
            }} else {{
                sl_send_reply("404", "Not Found");
            }}
            exit;
        }}
    }}
    t_relay();
}}
"""


MODULES = "/usr/lib/x86_64-linux-gnu/kamailio/modules/"
TLS_CONFIG = """[server:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
certificate = {cert}
private_key = {key}

[client:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
"""


class Kamailio:
    def __init__(self, workdir: Path, users: dict[str, str], algorithm: str = "MD5",
                 nonce_expire: int = 300, min_expires: int = 60,
                 tls_cert: tuple[Path, Path] | None = None) -> None:
        self.workdir = workdir
        self.users = users
        self.algorithm = algorithm
        self.nonce_expire = nonce_expire
        self.min_expires = min_expires
        self.port = free_port()
        self.tls_cert = tls_cert  # (certificate, key): also listen for TLS on tls_port
        self.tls_port = free_port() if tls_cert else None
        self.ctl = str(workdir / "kamailio.ctl")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / "kamailio.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def requests(self, method: str) -> int:
        return self.log().count(f"REQ {method} ")

    def calls_to(self, user: str) -> set[str]:
        """The Call-IDs of the INVITEs sent to ``user``: one per call placed (a challenged
        INVITE, sent again with credentials, keeps its Call-ID)."""
        found = re.findall(rf"REQ INVITE from \S+ to sip:{re.escape(user)}@\S+ src \S+ "
                           r"cid (\S+)", self.log())
        return set(found)

    async def start(self) -> None:
        exe = require("kamailio")
        self.workdir.mkdir(parents=True, exist_ok=True)
        users = "\n".join(f'    $sht(users=>{u}) = "{p}";' for u, p in self.users.items())
        cfg = self.workdir / "kamailio.cfg"
        tls_listen = tls_module = ""
        if self.tls_cert is not None:
            require_package("kamailio-tls-modules")
            tls_cfg = self.workdir / "tls.cfg"
            tls_cfg.write_text(TLS_CONFIG.format(cert=self.tls_cert[0], key=self.tls_cert[1]))
            tls_listen = f"enable_tls=yes\nlisten=tls:127.0.0.1:{self.tls_port}"
            tls_module = f'loadmodule "tls.so"\nmodparam("tls", "config", "{tls_cfg}")'
        cfg.write_text(CONFIG.format(port=self.port, ctl=self.ctl, users=users,
                                     algorithm=self.algorithm, nonce_expire=self.nonce_expire,
                                     min_expires=self.min_expires, tls_listen=tls_listen,
                                     tls_module=tls_module, modules=MODULES))
        check = subprocess.run([exe, "-c", "-f", str(cfg)], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError("bad kamailio config:\n" + check.stderr[-3000:])
        out = open(self.log_path, "wb")
        self.proc = subprocess.Popen([exe, "-f", str(cfg), "-DD", "-E", "-P",
                                      str(self.workdir / "kamailio.pid"), "-Y",
                                      str(self.workdir)],
                                     stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)  # its workers: one group
        await self._wait_ready()

    async def _wait_ready(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        probe = (f"OPTIONS sip:127.0.0.1:{self.port} SIP/2.0\r\n"
                 "Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKprobe;rport\r\nMax-Forwards: 70\r\n"
                 "From: <sip:probe@127.0.0.1>;tag=p\r\nTo: <sip:127.0.0.1>\r\n"
                 "Call-ID: probe\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode()
        from tests.peers.sipclient import UdpSocket

        sock = await UdpSocket.open()
        try:
            while True:
                if self.proc is not None and self.proc.poll() is not None:
                    raise RuntimeError("kamailio exited:\n" + self.log()[-3000:])
                sock.send(probe, ("127.0.0.1", self.port))
                try:
                    data, _ = await sock.recv(0.2)
                    if data.startswith(b"SIP/2.0 200"):
                        return
                except TimeoutError:
                    pass
                if loop.time() > deadline:
                    raise RuntimeError("kamailio did not answer:\n" + self.log()[-3000:])
        finally:
            sock.close()

    def contacts(self, user: str) -> list[str]:
        """Registered contact URIs of ``user`` (from kamailio's in-memory location table)."""
        out = subprocess.run([require("kamcmd"), "-s", f"unix:{self.ctl}", "ul.lookup",
                              "location", f"{user}@example.test"],
                             capture_output=True, text=True)
        return [ln.split(":", 1)[1].strip() for ln in out.stdout.splitlines()
                if ln.strip().startswith("Address:")]

    async def stop(self) -> None:
        """End kamailio and every worker it forked: a main process slow to exit (a loaded
        machine) used to be killed alone, leaving its workers running."""
        if self.proc is not None:
            group = self.proc.pid  # start_new_session: the group has the main's id
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.to_thread(self.proc.wait), 5)
            except TimeoutError:
                pass
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)  # whatever of it is left
            await asyncio.to_thread(self.proc.wait)

# The test PBX's users have names (alice, bob …): an extension trunk to it dials them as
# extensions only if its extension_pattern says so (the default takes 2-6 digits).
NAMED_EXTENSIONS = "[a-z]+|[0-9]{2,6}"
