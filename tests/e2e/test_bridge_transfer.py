"""A transfer by calling the target and joining the calls (a destination with mode
``bridge``), end to end: atende calls alice's baresip through kamailio, the model asks to
put her through, atende calls bob on the same trunk while alice hears ringback, and once bob
answers each hears the other (tones, measured on the RTP each phone received); when alice
hangs up, bob's call is ended too."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.e2e.test_cli import atende_cli
from tests.e2e.test_llm_agent import assistant, conversation_model, events
from tests.e2e.test_outbound import (  # noqa: F401  (pbx and trunk are fixtures)
    finished,
    pbx,
    phone,
    trunk,
)
from tests.peers.atende import AtendeProcess
from tests.peers.audio import Tone, heard_so_far, read_wav, speech_wav, tone_spans
from tests.peers.kamailio import Kamailio
from tests.peers.vendor import Answer, VendorServer
from tests.peers.vendor import openai_reply as reply

ALICE_HZ, BOB_HZ, RINGBACK_HZ = 700.0, 1100.0, 425.0


async def until(check: Any, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.2)


async def test_a_bridged_transfer_joins_the_caller_to_the_target(
        atende: AtendeProcess, pbx: Kamailio, trunk: dict[str, Any],  # noqa: F811
        tmp_path: Path) -> None:
    def rules(heard: str, messages: list[dict[str, Any]]) -> Answer:
        if messages[-1]["role"] == "tool":
            return reply("")
        if "person" in heard:
            return reply("Of course, I am putting you through now.",
                         ("transfer_call", {"destination": "desk"}))
        return reply("How can I help?")

    with VendorServer(conversation_model(rules)) as llm:
        bot = assistant(atende, extension="llm-bridge", greeting="Hello, this is the clinic.",
                        llm=[{"provider": "openai", "model": "m", "base_url": llm.url}],
                        transfers=[{"name": "desk", "target": "bob", "mode": "bridge",
                                    "description": "the front desk"}])
        assert bot["transfers"][0]["mode"] == "bridge"
        alice = await phone(tmp_path, pbx, "alice", speech_wav(
            tmp_path / "alice.wav", [(3.0, "I would like to speak to a person, please."),
                                     (9.0, Tone(ALICE_HZ, 1.5))], 30))
        bob = await phone(tmp_path, pbx, "bob", speech_wav(
            tmp_path / "bob.wav", [(1.0, Tone(BOB_HZ, 1.5))], 30))
        try:
            r = atende.api.post("/v1/calls", json={
                "phone_number": "alice", "trunk_id": trunk["id"], "assistant_id": bot["id"]})
            assert r.status_code == 201, r.text
            call_id = r.json()["id"]
            await bob.wait_event("CALL_ESTABLISHED", timeout=60)
            # Bob hears alice's tone through atende; then alice hangs up.
            bob_heard = bob.workdir / "rec"
            await until(lambda: any(tone_spans(*heard_so_far(p), ALICE_HZ)
                                    for p in bob_heard.glob("dump-*-dec.wav")), 40)
            await alice.command("hangup")
            await bob.wait_event("CALL_CLOSED", timeout=10)  # atende ended bob's call too
            done = await finished(atende, call_id)
        finally:
            await alice.stop()
            await bob.stop()
    (transfer,) = events(done, "transfer")
    assert transfer["mode"] == "bridge" and transfer["outcome"] == "transferred"
    assert transfer["to"].startswith("sip:bob@") and transfer["status"] == 200
    (ended,) = events(done, "bridge_ended")
    assert ended["hung_up_first"] == "caller" and ended["seconds"] > 2
    assert done["hangup_cause"] == "remote_hangup"
    said = [t["text"] for t in done["turns"] if t["speaker"] == "assistant"]
    assert said[-1] == "Of course, I am putting you through now."
    # Alice heard the ringback while bob's phone rang, then bob's tone.
    heard, rate = read_wav(alice.recordings()[0])
    assert tone_spans(heard, rate, RINGBACK_HZ)
    assert tone_spans(heard, rate, BOB_HZ)
    assert min(tone_spans(heard, rate, BOB_HZ)) > min(tone_spans(heard, rate, RINGBACK_HZ))
    assert len(llm.requests) == 1  # the transfer ended the model's part: no round after it


async def test_a_bridged_transfer_nobody_answers_is_told_to_the_model(
        atende: AtendeProcess, pbx: Kamailio, trunk: dict[str, Any],  # noqa: F811
        tmp_path: Path) -> None:
    def rules(heard: str, messages: list[dict[str, Any]]) -> Answer:
        if messages[-1]["role"] == "tool":
            assert "did not go through" in messages[-1]["content"]
            return reply("Sorry, nobody can take your call right now. Goodbye!",
                         ("end_call", {}))
        return reply("Let me put you through.", ("transfer_call", {"destination": "desk"}))

    with VendorServer(conversation_model(rules)) as llm:
        bot = assistant(atende, extension="llm-bridge-off", greeting="Hello, clinic.",
                        llm=[{"provider": "openai", "model": "m", "base_url": llm.url}],
                        transfers=[{"name": "desk", "target": "nobody", "mode": "bridge"}])
        alice = await phone(tmp_path, pbx, "alice", speech_wav(
            tmp_path / "alice.wav", [(2.5, "Can I talk to the desk?")], 30))
        try:
            r = atende.api.post("/v1/calls", json={
                "phone_number": "alice", "trunk_id": trunk["id"], "assistant_id": bot["id"]})
            assert r.status_code == 201, r.text
            await alice.wait_event("CALL_CLOSED", timeout=60)  # the goodbye, then hung up
            done = await finished(atende, r.json()["id"])
        finally:
            await alice.stop()
    (transfer,) = events(done, "transfer")
    assert transfer["mode"] == "bridge" and transfer["outcome"] != "transferred"
    assert transfer["status"] is not None and transfer["status"] >= 400
    assert not events(done, "bridge_ended")
    said = [t["text"] for t in done["turns"] if t["speaker"] == "assistant"]
    assert said[-1].endswith("Sorry, nobody can take your call right now. Goodbye!")
    assert done["hangup_cause"] == "assistant_hangup"
    heard, rate = read_wav(alice.recordings()[0])
    assert tone_spans(heard, rate, RINGBACK_HZ)  # while kamailio looked for "nobody"


async def test_the_cli_bridges_a_call_and_the_target_hanging_up_ends_it(
        atende: AtendeProcess, pbx: Kamailio, trunk: dict[str, Any],  # noqa: F811
        tmp_path: Path) -> None:
    alice = await phone(tmp_path, pbx, "alice", speech_wav(tmp_path / "a.wav", [], 40))
    bob = await phone(tmp_path, pbx, "bob", speech_wav(
        tmp_path / "b.wav", [(1.0, Tone(BOB_HZ, 1.0))], 30))
    try:
        r = atende.api.post("/v1/calls", json={"phone_number": "alice",
                                               "trunk_id": trunk["id"]})
        assert r.status_code == 201, r.text
        call_id = r.json()["id"]
        await atende.wait_for_call(
            lambda c: c["id"] == call_id and c["status"] == "in_progress", timeout=30)
        out = await asyncio.to_thread(atende_cli, atende, "transfer", call_id, "bob",
                                      "--bridge")
        assert out.returncode == 0, out.stdout + out.stderr
        assert out.stdout.strip() == "transferred: the calls are joined"
        alice_heard = alice.workdir / "rec"
        await until(lambda: any(tone_spans(*heard_so_far(p), BOB_HZ)
                                for p in alice_heard.glob("dump-*-dec.wav")), 30)
        await bob.command("hangup")
        await alice.wait_event("CALL_CLOSED", timeout=10)  # atende ended alice's call
        done = await finished(atende, call_id)
    finally:
        await alice.stop()
        await bob.stop()
    (ended,) = events(done, "bridge_ended")
    assert ended["hung_up_first"] == "target"
    assert done["hangup_cause"] == "bridge_ended"
    (started,) = events(done, "transfer_started")
    assert started["mode"] == "bridge"
