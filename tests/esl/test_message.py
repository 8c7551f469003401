"""The ESL reader and command writer on the shapes mod_event_socket sends and takes
(../shared/PROTOCOLS.md, section A): replies, API results, the outbound connect reply with
URL-encoded channel data, events in plain and JSON with bodies of their own, and what a
broken stream looks like."""

from __future__ import annotations

import json

import pytest

from atende.esl import commands
from atende.esl.message import EslError, EslReader

CONNECT_REPLY = (b"Event-Name: CHANNEL_DATA\nCore-UUID: 6f0c\n"
                 b"Unique-ID: 9a1b-22\nCaller-Caller-ID-Number: 1000\n"
                 b"Caller-Destination-Number: 8000\n"
                 b"variable_VOICE_AI_SECRETARY_UUID: 3f2e%2D11\n"
                 b"variable_sip_from_display: Ana%20Silva%20%3Cana%3E\n"
                 b"Content-Type: command/reply\nReply-Text: %2BOK%0A\n"
                 b"Socket-Mode: async\nControl: full\n\n")
BG_JOB = (b"Event-Name: BACKGROUND_JOB\nJob-UUID: job-7\nJob-Command: eval\n"
          b"Content-Length: 6\n\n+OK hi")
PLAY = json.dumps({"audioDataType": "raw", "sampleRate": 8000, "file": "/tmp/x_1.tmp.r8"})
CUSTOM = (f"Event-Name: CUSTOM\nEvent-Subclass: mod_audio_stream%3A%3Aplay\n"
          f"Unique-ID: 9a1b-22\nContent-Length: {len(PLAY)}\n\n{PLAY}").encode()


def frame(content_type: str, body: bytes) -> bytes:
    return (f"Content-Length: {len(body)}\nContent-Type: {content_type}\n\n").encode() + body


def test_the_connect_reply_is_channel_data_decoded() -> None:
    (msg,) = EslReader().feed(CONNECT_REPLY)
    assert msg.content_type == "command/reply" and msg.ok and msg.body == b""
    assert msg.headers["Unique-ID"] == "9a1b-22"
    assert msg.headers["variable_VOICE_AI_SECRETARY_UUID"] == "3f2e-11"
    assert msg.headers["variable_sip_from_display"] == "Ana Silva <ana>"
    assert msg.reply_text == "+OK\n"


def test_messages_cut_from_a_stream_fed_a_byte_at_a_time() -> None:
    stream = (b"Content-Type: auth/request\n\n"
              + b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n"
              + frame("api/response", b"UP 0 years, 0 days\nFreeSWITCH is ready\n")
              + frame("text/event-plain", BG_JOB)
              + frame("text/event-plain", CUSTOM)
              + frame("text/event-json", json.dumps({"Event-Name": "DTMF", "DTMF-Digit": "5",
                                                      "_body": ""}).encode())
              + b"Content-Type: text/disconnect-notice\nContent-Disposition: linger\n"
                b"Content-Length: 5\n\nbye\n\n")
    reader = EslReader()
    got = [m for i in range(len(stream)) for m in reader.feed(stream[i:i + 1])]
    assert [m.content_type for m in got] == [
        "auth/request", "command/reply", "api/response", "text/event-plain",
        "text/event-plain", "text/event-json", "text/disconnect-notice"]
    assert got[1].ok and got[2].ok and b"is ready" in got[2].body
    job = got[3].event()
    assert job is not None and (job.name, job.headers["Job-UUID"], job.body) == (
        "BACKGROUND_JOB", "job-7", "+OK hi")
    play = got[4].event()
    assert play is not None and play.subclass == "mod_audio_stream::play"
    assert play.json_body() == json.loads(PLAY) and play.uuid == "9a1b-22"
    dtmf = got[5].event()
    assert dtmf is not None and (dtmf.name, dtmf.headers["DTMF-Digit"]) == ("DTMF", "5")
    assert got[6].body == b"bye\n\n" and got[6].event() is None


def test_api_errors_and_crlf_line_ends() -> None:
    (msg,) = EslReader().feed(b"Content-Type: api/response\r\nContent-Length: 18\r\n\r\n"
                              b"-ERR no such call\n")
    assert msg.content_type == "api/response" and not msg.ok


@pytest.mark.parametrize("broken", [
    b"Content-Type: api/response\nContent-Length: ten\n\n",
    b"Content-Type: api/response\nContent-Length: \xc2\xb2\n\n",
    b"Content-Type: api/response\nContent-Length: 999999999\n\n",
    b"this is not a header\n\n",
    b"X: " + b"y" * (300 * 1024),
])
def test_a_broken_stream_says_so(broken: bytes) -> None:
    with pytest.raises(EslError):
        EslReader().feed(broken)


def test_an_event_body_that_is_not_json_is_an_error() -> None:
    (msg,) = EslReader().feed(frame("text/event-plain", b"Event-Name: CUSTOM\n"
                                    b"Content-Length: 3\n\n{x}"))
    event = msg.event()
    assert event is not None
    with pytest.raises(EslError):
        event.json_body()


def test_commands_are_written_as_mod_event_socket_reads_them() -> None:
    assert commands.connect() == b"connect\n\n"
    assert commands.auth("ClueCon") == b"auth ClueCon\n\n"
    assert commands.events(["CHANNEL_HANGUP", "DTMF"], ["mod_audio_stream::play"]) == (
        b"event plain CHANNEL_HANGUP DTMF CUSTOM mod_audio_stream::play\n\n")
    assert commands.bgapi("originate loopback/7777 &park", "job-1") == (
        b"bgapi originate loopback/7777 &park\nJob-UUID: job-1\n\n")
    assert commands.execute("playback", "/tmp/a.r8", event_uuid="e1") == (
        b"sendmsg\ncall-command: execute\nexecute-app-name: playback\nevent-lock: true\n"
        b"event-uuid: e1\nexecute-app-arg: /tmp/a.r8\n\n")
    assert commands.hangup("USER_BUSY", "u-1") == (
        b"sendmsg u-1\ncall-command: hangup\nhangup-cause: USER_BUSY\n\n")
    long = commands.execute("set", "a=1\nb=2", lock=False)
    assert long.endswith(b"content-type: text/plain\ncontent-length: 7\n\na=1\nb=2")


def test_a_line_break_cannot_smuggle_a_command() -> None:
    for make in (lambda: commands.api("status\n\napi shutdown"),
                 lambda: commands.bgapi("status", "j\nx: y"),
                 lambda: commands.hangup("NORMAL\n\nexit")):
        with pytest.raises(ValueError):
            make()
