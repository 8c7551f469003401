"""What atende writes for FreeSWITCH: the dialplan extension a secretary needs, and how
originate's answers are read."""

from __future__ import annotations

import pytest

from atende.channels.freeswitch.dialer import outcome_of
from atende.channels.freeswitch.dialplan import secretary_extension
from atende.channels.freeswitch.esl import ChannelData
from atende.channels.freeswitch.rtp_mode import bridge_string, failure_cause
from atende.channels.secretary import assistant_id, secretary_uuid
from atende.esl.message import EslEvent

ID = "220c1ed1d9f441bcb09d1729f8859df9"


def test_the_secretary_uuid_and_back() -> None:
    assert secretary_uuid(ID) == "220c1ed1-d9f4-41bc-b09d-1729f8859df9"
    assert assistant_id("220C1ED1-D9F4-41BC-B09D-1729F8859DF9") == ID
    assert assistant_id("not-a-uuid") is None and assistant_id(None) is None
    with pytest.raises(ValueError):
        secretary_uuid("x")


def test_both_modes_and_what_cannot_go_into_a_dialplan() -> None:
    ws = secretary_extension("atende_front", "8000", ID, "10.0.0.7", 8022, 8085)
    assert 'expression="^8000$"' in ws and 'data="10.0.0.7:8022 async full"' in ws
    assert "ws://10.0.0.7:8085/stream/${VOICE_AI_SECRETARY_UUID}/${uuid}/" in ws
    rtp = secretary_extension("atende_front", "+8000", ID, "10.0.0.7", 8022, 8085,
                              mode="rtp", sip_port=5070)
    assert 'expression="^\\+8000$"' in rtp and "uuid_audio_stream" not in rtp
    # Control over the event socket in rtp mode too: atende has the call bridged.
    assert 'data="10.0.0.7:8022 async full"' in rtp
    assert 'data="VOICE_AI_BRIDGE=sofia/internal/+8000@10.0.0.7:5070"' in rtp
    for bad in ({"host": "a b"}, {"number": "80\"00"}, {"rate": 24000}, {"mode": "tcp"}):
        args = {"host": "10.0.0.7", "number": "8000", "rate": 16000, "mode": "websocket",
                **bad}
        with pytest.raises(ValueError):
            secretary_extension("x", str(args["number"]), ID, str(args["host"]), 1, 2,
                                int(args["rate"]), str(args["mode"]))


@pytest.mark.parametrize(("answer", "expected"), [
    ("-ERR USER_BUSY\n", ("busy", 486, "USER_BUSY")),
    ("-ERR NO_ANSWER\n", ("no_answer", 480, "NO_ANSWER")),
    ("-ERR USER_NOT_REGISTERED\n", ("failed", 404, "USER_NOT_REGISTERED")),
    ("-ERR ORIGINATOR_CANCEL\n", ("cancelled", 487, "ORIGINATOR_CANCEL")),
    ("-ERR SOMETHING_NEW\n", ("failed", None, "SOMETHING_NEW")),
    ("-ERR\n", ("failed", None, "-ERR")),
    ("", ("failed", None, "no answer from FreeSWITCH")),
])
def test_originate_answers_in_the_dialers_words(answer: str,
                                                expected: tuple[str, int | None, str]) -> None:
    assert outcome_of(answer) == expected


def test_rtp_mode_bridges_with_headers_that_name_the_call() -> None:
    call = "6353b4a5-c9a8-4a80-a069-46aa73dd0891"
    variables = {"VOICE_AI_BRIDGE": "sofia/internal/8003@10.0.0.7:5060",
                 "VOICE_AI_SECRETARY_UUID": secretary_uuid(ID),
                 "VOICE_AI_DOMAIN_UUID": ""}  # FreeSWITCH without FusionPBX: empty
    data = ChannelData(call, "1000", "", "8003", variables)
    assert bridge_string(data) == (
        "{sip_h_X-Atende-Secretary=220c1ed1-d9f4-41bc-b09d-1729f8859df9,"
        f"sip_h_X-Atende-Call={call}}}sofia/internal/8003@10.0.0.7:5060")
    # A value that would break out of the dial string is left out, a bad target refused.
    hostile = {**variables, "VOICE_AI_SECRETARY_UUID": "x},{origination_caller_id=1"}
    assert "origination" not in (bridge_string(ChannelData(call, "", "", "", hostile)) or "")
    for target in ("loopback/8003", "sofia/internal/8003@h,sofia/gw/x", "user/1000"):
        assert bridge_string(ChannelData(call, "", "", "", {"VOICE_AI_BRIDGE": target})) \
            is None


def test_a_bridge_that_returns_says_why() -> None:
    def done(**headers: str) -> EslEvent:
        return EslEvent({"Event-Name": "CHANNEL_EXECUTE_COMPLETE", "Application": "bridge",
                         **headers})

    assert failure_cause(done(variable_originate_disposition="UNALLOCATED_NUMBER")) == \
        "UNALLOCATED_NUMBER"
    # It carried the call (then hung up after it, or transferred): nothing to do.
    assert failure_cause(done(variable_originate_disposition="SUCCESS",
                              variable_bridge_hangup_cause="NORMAL_CLEARING")) is None
    assert failure_cause(done(variable_originate_disposition="bad cause; x")) == \
        "NORMAL_TEMPORARY_FAILURE"
