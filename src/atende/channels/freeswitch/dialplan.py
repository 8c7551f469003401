"""The dialplan FreeSWITCH needs to hand a number's calls to a secretary: seed 003's
extension 8000 shape (the secretary's UUID in a channel variable, the audio stream started
on answer, the event socket for control, then ``park``)."""

from __future__ import annotations

import re
from xml.sax.saxutils import quoteattr

from atende.channels.freeswitch.rtp_mode import BRIDGE_VARIABLE
from atende.channels.secretary import DOMAIN_VARIABLE, SECRETARY_VARIABLE, secretary_uuid

_HOST = re.compile(r"[0-9A-Za-z.:\[\]-]{1,253}")
_NUMBER = re.compile(r"[0-9A-Za-z+*#_-]{1,64}")
RATES = {8000: "8k", 16000: "16k"}


def secretary_extension(name: str, number: str, secretary: str, host: str, esl_port: int,
                        audio_port: int, rate: int = 16000, mode: str = "websocket",
                        sip_port: int = 5060, sip_profile: str = "internal") -> str:
    """The ``<extension>`` that sends calls to ``number`` to the secretary. ``mode``:
    websocket (control over the event socket, audio over mod_audio_stream) or rtp (control
    over the event socket, which has FreeSWITCH bridge the call to atende's SIP port: see
    rtp_mode.py). ValueError when a value cannot go into it."""
    if not _HOST.fullmatch(host):
        raise ValueError(f"not a host name or address: {host!r}")
    if not _NUMBER.fullmatch(number):
        raise ValueError(f"not an extension or number: {number!r}")
    if not re.fullmatch(r"[0-9A-Za-z_.-]{1,64}", sip_profile):
        raise ValueError(f"not a SIP profile name: {sip_profile!r}")
    if rate not in RATES:
        raise ValueError(f"mod_audio_stream rate {rate}: use one of {sorted(RATES)}")
    uuid = secretary_uuid(secretary)
    actions = [
        ("set", f"{SECRETARY_VARIABLE}={uuid}"),
        ("set", f"{DOMAIN_VARIABLE}=${{domain_uuid}}"),
    ]
    if mode == "rtp":
        actions += [
            ("set", "hangup_after_bridge=true"),
            # atende has FreeSWITCH bridge the call there, over the event socket
            ("set", f"{BRIDGE_VARIABLE}=sofia/{sip_profile}/{number}@{host}:{sip_port}"),
            ("socket", f"{host}:{esl_port} async full"),
            ("park", ""),
        ]
    elif mode == "websocket":
        stream = (f"uuid_audio_stream ${{uuid}} start ws://{host}:{audio_port}/stream/"
                  f"${{VOICE_AI_SECRETARY_UUID}}/${{uuid}}/${{caller_id_number}} mono "
                  f"{RATES[rate]}")
        actions += [
            ("set", f"api_on_answer={stream}"),
            # Between replies nothing is played: without this FreeSWITCH sends no RTP
            # then, and phones that watch for RTP hang up on a quiet line.
            ("set", "send_silence_when_idle=-1"),
            ("answer", ""),
            ("socket", f"{host}:{esl_port} async full"),
            ("park", ""),
        ]
    else:
        raise ValueError(f"audio mode {mode!r}: websocket or rtp")
    lines = [f"<extension name={quoteattr(name)} continue=\"false\">",
             f"  <condition field=\"destination_number\" "
             f"expression={quoteattr('^' + re.escape(number) + '$')}>"]
    for app, data in actions:
        arg = f" data={quoteattr(data)}" if data else ""
        lines.append(f"    <action application=\"{app}\"{arg}/>")
    lines += ["  </condition>", "</extension>"]
    return "\n".join(lines) + "\n"
