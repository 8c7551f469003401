"""The assistant holding the caller (tools hold and resume): music after its words, the
caller not listened to meanwhile, and off hold when it speaks again, resumes, or the
longest hold it asked for is over. Pipeline (a local chat-completions server) and realtime
(a local OpenAI Realtime server), on a paced in-memory leg; the slow tool is a real HTTP
server that takes its time."""

from __future__ import annotations

import asyncio
import io
import json
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from atende.agent.llm_brain import LlmBrain
from atende.agent.tools import HttpTool, ToolBox
from atende.media.music import default_hold_music, load_music, music_for
from atende.providers.llm.base import LlmSettings, ToolCall
from atende.providers.llm.factory import language_model
from tests.agent.conftest import Call, StartCall, StartRealtime, played_s, wait_for
from tests.peers.audio import Tone
from tests.peers.realtime import FakeRealtime, Reply
from tests.peers.vendor import Answer, Request, Status, VendorServer
from tests.peers.vendor import openai_reply as reply

SLOT_TOOL = {"name": "find_slot", "description": "Free slots on a day.",
             "parameters": {"type": "object", "properties": {"day": {"type": "string"}}}}
MUSIC_SECOND = default_hold_music()[:32000]


def slow_crm(seconds: float) -> Callable[[Request], Answer]:
    def answer(req: Request) -> Answer:
        time.sleep(seconds)  # the business's system, thinking
        return Status(200, json.dumps({"slots": ["10:00"]}))
    return answer


def sent(call: Call) -> bytes:
    return b"".join(f for _, f in call.leg.sent)


def events(call: Call, kind: str) -> list[dict[str, Any]]:
    return [d for k, d in call.record.events if k == kind]


def test_music_loops_and_files_are_checked(tmp_path: Path) -> None:
    music = default_hold_music()
    assert len(music) == 8 * 32000 and max(abs(int(b)) for b in music[1::2]) > 0
    stereo = tmp_path / "music.wav"
    tone = Tone(440, 1.0).pcm(8000)
    with wave.open(str(stereo), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"".join(tone[i:i + 2] * 2 for i in range(0, len(tone), 2)))
    assert abs(len(load_music(stereo)) - 32000) <= 4  # 1 s, mono, 16 kHz
    assert music_for(str(stereo)) == load_music(stereo)
    bad = tmp_path / "notes.txt"
    bad.write_text("la la la")
    with pytest.raises(ValueError, match="not a readable WAV"):
        load_music(bad)
    assert music_for(str(tmp_path / "gone.wav")) == music  # a call never fails over it
    with pytest.raises(ValueError, match="no such file"):
        load_music(tmp_path)  # a folder, or a FIFO or device, is never opened
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(8000)
        w.writeframes(bytes(8000))
    (tmp_path / "u8.wav").write_bytes(buf.getvalue())
    with pytest.raises(ValueError, match="16-bit"):
        load_music(tmp_path / "u8.wav")


async def test_hold_tool_arguments_are_checked() -> None:
    box = ToolBox(["hold"])
    assert [t.name for t in box.specs] == ["hold", "resume"]  # a hold brings its way back
    assert "hold" not in [t.name for t in ToolBox(["end_call"]).specs]
    noted: list[tuple[str, dict[str, Any]]] = []

    class Refused:  # the mistake is answered before anything acts on the call
        def event(self, kind: str, data: dict[str, Any]) -> None:
            noted.append((kind, data))

    for bad in (3600, 1, "long", True):
        result = await box.run(ToolCall("c1", "hold", {"max_seconds": bad}),
                               Refused())  # type: ignore[arg-type]
        assert result.content == {"error": "max_seconds must be from 5 to 300"}
    assert [k for k, _ in noted] == ["tool_call", "tool_result"] * 4


async def test_the_caller_hears_music_while_a_slow_tool_runs(
        start_call: StartCall, speech: Callable[[str], bytes]) -> None:
    answers = [
        reply("One moment while I look that up.",
              ("hold", {"reason": "checking the diary", "max_seconds": 30}),
              ("find_slot", {"day": "monday"})),
        reply("Monday at ten is free.")]
    with VendorServer(lambda req: answers.pop(0)) as llm, VendorServer(slow_crm(3)) as crm:
        tools = ToolBox(["hold"], http_tools=[HttpTool(**SLOT_TOOL, url=crm.url)])
        brain = LlmBrain([language_model(LlmSettings("openai", "m", base_url=llm.url))],
                         "You book appointments.", "Hello, clinic.", tools)
        call = start_call(brain)
        await call.greeting_heard()
        await call.say(speech("Is there a free slot on Monday?"))
        await wait_for(lambda: bool(events(call, "assistant_hold")))
        await asyncio.sleep(0.5)
        await call.say(speech("Hello? Are you still there?"))  # while the music plays
        await wait_for(lambda: call.record.said("assistant")[-1].endswith("ten is free.")
                       and not call.leg.outbound.busy)
    # One reply, music in the middle of it (its played_ms counts the words only).
    said = call.record.said("assistant")
    assert said[1:] == ["One moment while I look that up. Monday at ten is free."]
    assert call.record.said("caller") == ["Is there a free slot on Monday?"]  # not "Hello?"
    assert len(llm.requests) == 2  # the model was not asked about the caller's "Hello?"
    assert MUSIC_SECOND in sent(call)  # the music itself, sample for sample
    assert events(call, "assistant_hold") == [{"reason": "checking the diary",
                                               "max_seconds": 30.0}]
    [resumed] = events(call, "assistant_resume")
    assert resumed["by"] == "speech" and 2500 <= resumed["held_ms"] <= 3600
    turn = [t for t in call.record.turns if t.speaker == "assistant"][1]
    assert not turn.interrupted  # the caller's "Hello?" did not barge in on the music
    assert turn.ended_at - turn.started_at > turn.played_ms / 1000 + 2.5


async def test_a_hold_that_is_never_resumed_ends_with_thanks(
        start_call: StartCall, speech: Callable[[str], bytes]) -> None:
    answers = [reply("Please hold.", ("hold", {"max_seconds": 5})), reply("")]
    with VendorServer(lambda req: answers.pop(0) if answers else reply("")) as llm:
        brain = LlmBrain([language_model(LlmSettings("openai", "m", base_url=llm.url))],
                         "You help.", "Hello, clinic.", ToolBox(["hold"]))
        call = start_call(brain)
        await call.greeting_heard()
        await call.say(speech("Can I speak to the manager?"))
        await wait_for(lambda: bool(events(call, "assistant_resume")), timeout=15)
        await wait_for(lambda: len(call.record.said("assistant")) == 3)
    assert call.record.said("assistant")[2] == "Thank you for holding."
    [resumed] = events(call, "assistant_resume")
    assert resumed["by"] == "timeout" and 4900 <= resumed["held_ms"] <= 5300


async def test_a_realtime_model_holds_the_caller_while_its_tool_runs(
        start_realtime: StartRealtime) -> None:
    with VendorServer(slow_crm(2)) as crm:
        tools = ToolBox(["hold"], http_tools=[HttpTool(**SLOT_TOOL, url=crm.url)])
        with FakeRealtime([
                Reply("Hello, dental clinic.", Tone(400, 0.4).pcm(16000)),
                Reply("One moment.", Tone(500, 0.4).pcm(16000), calls=[
                    ("hold", {"reason": "diary"}), ("find_slot", {"day": "monday"})]),
                Reply("Monday at ten.", Tone(600, 0.4).pcm(16000))],
                heard=["Is Monday free?"]) as server:
            call = start_realtime(server, tools=tools)
            await wait_for(lambda: played_s(call) >= 0.4)
            await call.say(Tone(300, 0.8, -18).pcm(16000))
            await wait_for(lambda: bool(events(call, "assistant_hold")))
            await call.say(Tone(300, 0.8, -18).pcm(16000))  # the caller, over the music
            await wait_for(lambda: len(call.record.said("assistant")) == 3
                           and not call.leg.outbound.busy, timeout=15)
            conn = server.last
    assert MUSIC_SECOND in sent(call)
    [resumed] = events(call, "assistant_resume")
    assert resumed["by"] == "speech" and 1500 <= resumed["held_ms"] <= 2600
    # While on hold the model heard nothing of the line: its VAD heard one turn only.
    assert len(conn.speech_started) == 1
    assert len(conn.of_type("conversation.item.create")) == 2  # both tool results
    assert not [t for t in call.record.turns if t.interrupted]
