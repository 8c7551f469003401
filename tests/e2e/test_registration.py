"""atende registers as a PBX extension with kamailio (digest auth, Debian's kamailio)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from atende.channels.sip.registration import RegistrationAgent
from atende.channels.sip.ua import UserAgent
from atende.sip.register import Registration, RegState
from tests.peers.kamailio import Kamailio

PASSWORD = "Corr3ct-Horse-Battery"


async def registered_agent(pbx: Kamailio, password: str, expires: int = 60
                           ) -> tuple[UserAgent, RegistrationAgent]:
    ua = UserAgent()
    await ua.start("127.0.0.1", 0)
    reg = Registration("ai", "example.test", "ai", password,
                       f"sip:ai@127.0.0.1:{ua.port}", expires=expires)
    agent = RegistrationAgent(ua, reg, ("udp", "127.0.0.1", pbx.port))
    agent.start()
    return ua, agent


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
async def test_registers_refreshes_and_unregisters(tmp_path: Path, algorithm: str) -> None:
    pbx = Kamailio(tmp_path, {"ai": PASSWORD}, algorithm=algorithm)
    await pbx.start()
    ua, agent = await registered_agent(pbx, PASSWORD)
    try:
        async with asyncio.timeout(10):
            await agent.wait_for(RegState.REGISTERED)
        assert pbx.contacts("ai") == [f"sip:ai@127.0.0.1:{ua.port}"]
        assert agent.reg.last_status == 200
        assert agent.reg.expires_at is not None
        # The challenge we answered (and kamailio accepted) used the configured algorithm.
        assert agent.reg.auth.client.last is not None
        assert agent.reg.auth.client.last.algorithm == algorithm
        await agent.stop()
        assert agent.reg.state == RegState.UNREGISTERED
        assert pbx.contacts("ai") == []
    finally:
        await ua.close()
        await pbx.stop()


async def test_wrong_password_is_reported_without_a_retry_storm(tmp_path: Path) -> None:
    pbx = Kamailio(tmp_path, {"ai": PASSWORD})
    await pbx.start()
    ua, agent = await registered_agent(pbx, "not-the-password")
    try:
        async with asyncio.timeout(10):
            await agent.wait_for(RegState.FAILED)
        assert agent.reg.reason == "401 after credentials: wrong username or password?"
        assert pbx.contacts("ai") == []
        deadline = agent.reg.next_deadline()
        assert deadline is not None and deadline - ua.now() > 25  # next try in ~30 s
        assert pbx.requests("REGISTER") == 2  # one challenge answered, then quiet
    finally:
        await agent.stop()
        await ua.close()
        await pbx.stop()


async def test_stale_nonce_refresh(tmp_path: Path) -> None:
    """kamailio expires its nonces after 2 s; our refresh (every ~1 s for a 2 s
    registration) reuses the cached nonce until kamailio rejects it, then re-answers."""
    pbx = Kamailio(tmp_path, {"ai": PASSWORD}, nonce_expire=2, min_expires=1)
    await pbx.start()
    ua, agent = await registered_agent(pbx, PASSWORD, expires=2)
    try:
        async with asyncio.timeout(10):
            await agent.wait_for(RegState.REGISTERED)
        # Let several refreshes happen, across at least two nonce expiries.
        await asyncio.sleep(6)
        assert pbx.requests("REGISTER") >= 8
        assert agent.reg.state == RegState.REGISTERED and agent.reg.failures == 0
        # kamailio answers an expired nonce with a fresh challenge (without stale=true):
        # some refreshes took a second request, and none of that counted as a failure.
        assert pbx.requests("REGISTER") > agent.reg.successes + 1
        assert pbx.contacts("ai")
    finally:
        await agent.stop()
        await ua.close()
        await pbx.stop()
