"""The `atende trunk` and `atende call` commands, run as a user would."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import Any

import httpx

from tests.e2e.test_outbound import pbx, trunk  # noqa: F401  (fixtures)
from tests.peers.atende import AtendeProcess
from tests.peers.kamailio import Kamailio


def atende_cli(a: AtendeProcess, *args: str, password: str | None = None
               ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ATENDE_API_URL": a.base, "ATENDE_API_KEY": a.api_key}
    if password is not None:
        env["ATENDE_TRUNK_PASSWORD"] = password
    return subprocess.run([sys.executable, "-m", "atende", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def test_trunk_commands(atende: AtendeProcess) -> None:
    r = atende_cli(atende, "trunk", "add", "--kind", "did", "--name", "CLI carrier",
                   "--number", "+1 202 555 0177", "--username", "cli", "--host",
                   "127.0.0.1", "--country", "US", "--allow-ip", "127.0.0.1/32",
                   password="Cli-Trunk-Pass-42")
    assert r.returncode == 0, r.stderr
    trunk_id = r.stdout.split()[0]
    assert "our SIP address: sip:t" in r.stdout
    listed = atende_cli(atende, "trunk", "list")
    assert trunk_id in listed.stdout and "CLI carrier" in listed.stdout
    weak = atende_cli(atende, "trunk", "set", trunk_id, "password=weak")
    assert weak.returncode == 1 and "at least 12 characters" in weak.stderr
    renamed = atende_cli(atende, "trunk", "set", trunk_id, "name=Renamed", "port=5070",
                         "accept_transfers=true")
    assert renamed.returncode == 0 and "'Renamed'" in renamed.stdout
    shown = atende_cli(atende, "trunk", "show", trunk_id)
    assert '"port": 5070' in shown.stdout and "Cli-Trunk-Pass-42" not in shown.stdout
    assert '"accept_transfers": true' in shown.stdout
    assert atende_cli(atende, "trunk", "delete", trunk_id).returncode == 0
    missing = atende_cli(atende, "trunk", "show", trunk_id)
    assert missing.returncode == 1 and "error 404" in missing.stderr


async def test_call_command_reports_the_outcome(atende: AtendeProcess, pbx: Kamailio,  # noqa: F811
                                                trunk: dict[str, Any]) -> None:  # noqa: F811
    r = await asyncio.to_thread(atende_cli, atende, "call", "bob", "--trunk", trunk["id"])
    assert r.returncode == 1
    assert "dialing" in r.stdout and "ended: no_answer" in r.stdout and "SIP 480" in r.stdout


def test_transfer_command_needs_a_live_call(atende: AtendeProcess) -> None:
    r = atende_cli(atende, "transfer", "no-such-call", "reception")
    assert r.returncode == 1 and "error 404: no call in progress" in r.stderr


def test_apikey_commands_on_the_server(atende: AtendeProcess) -> None:
    """Keys are made and revoked beside the server, against its database, and take effect
    on the running server at once."""
    env = {**atende.env}
    env.pop("ATENDE_API_KEY", None)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "atende", "apikey", *args], env=env,
                              capture_output=True, text=True, timeout=120)

    made = run("create", "--name", "crm")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("atk_") and "crm" in made.stderr
    key_id = made.stderr.split("(id ", 1)[1].split(",", 1)[0]

    def calls(with_key: str | None) -> int:
        headers = {"Authorization": f"Bearer {with_key}"} if with_key else {}
        return httpx.get(atende.base + "/v1/calls", headers=headers, timeout=10).status_code

    assert calls(key) == 200 and calls(None) == 401
    listed = run("list")
    assert key_id in listed.stdout and "'crm'" in listed.stdout and "active" in listed.stdout
    assert key not in listed.stdout and key[:8] + "…" in listed.stdout  # masked
    assert "'admin'" in listed.stdout  # the key atende made on its first start
    assert run("revoke", key_id).returncode == 0
    assert calls(key) == 401
    assert "revoked" in run("list").stdout
    assert run("revoke", "nope").returncode == 1
    assert key not in atende.log()
