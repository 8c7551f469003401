"""What atende writes for FreeSWITCH: the dialplan extension a secretary needs, and how
originate's answers are read."""

from __future__ import annotations

import pytest

from atende.channels.freeswitch.dialer import outcome_of
from atende.channels.freeswitch.dialplan import secretary_extension
from atende.channels.secretary import assistant_id, secretary_uuid

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
    assert 'expression="^\\+8000$"' in rtp and "socket" not in rtp
    assert "sofia/internal/+8000@10.0.0.7:5070" in rtp
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
