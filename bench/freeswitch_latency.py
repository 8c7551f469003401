"""Reply latency of a secretary behind a real FreeSWITCH, in both audio modes, as the
caller hears it: a desk phone (baresip) dials FreeSWITCH, asks a question, and the time
from the end of its speech to the first audio of the reply is read off the phone's own
recordings. websocket: mod_audio_stream + event socket; rtp: bridged to atende's SIP port.
Needs the FreeSWITCH peer (../shared/peers/freeswitch/) and baresip."""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
from pathlib import Path

from atende.channels.freeswitch.dialplan import secretary_extension
from tests.peers.atende import AtendeProcess
from tests.peers.audio import read_wav, speech_wav, voiced_spans
from tests.peers.freeswitch import FreeSwitch, desk_phone

CALLS = 5
MODES = {"websocket": "8000", "rtp": "8003"}


async def one_call(pbx: FreeSwitch, atende: AtendeProcess, folder: Path, number: str
                   ) -> tuple[float, int | None]:
    """(end of the caller's speech → first reply audio at the phone, atende's own latency
    figure for the turn). ``folder`` exists."""
    wav = speech_wav(folder / "in.wav", [(5.5, "What are your opening hours?")], tail_s=9)
    phone = desk_phone(pbx, folder, wav)
    await phone.start()
    before = {c["id"] for c in atende.calls()}
    try:
        await phone.command("dial", f"sip:{number}@127.0.0.1:{pbx.sip_port}")
        await phone.wait_event("CALL_ESTABLISHED")
        call = await atende.wait_for_call(lambda c: c["id"] not in before and any(
            t["speaker"] == "assistant" and t["intent"] == "hours" for t in c["turns"]),
            timeout=40)
        await asyncio.sleep(1.5)  # the reply's first second reaches the phone's recording
        await phone.command("hangup")
        await phone.wait_event("CALL_CLOSED")
    finally:
        await phone.stop()
    heard_path, sent_path = phone.recordings()
    sent, srate = read_wav(sent_path)
    heard, rate = read_wav(heard_path)
    spoke_until = voiced_spans(sent, srate)[0][1]
    reply_at = next(s[0] for s in voiced_spans(heard, rate) if s[0] > spoke_until)
    reply = [t for t in call["turns"] if t["speaker"] == "assistant"][-1]
    return reply_at - spoke_until, reply["latency_ms"]


async def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="fs-latency-"))
    pbx = FreeSwitch(root / "pbx")
    (root / "pbx").mkdir()
    pbx.start()
    atende = AtendeProcess(root / "atende", (27000, 27999),
                           ATENDE_ESL_HOST="127.0.0.1", ATENDE_ESL_PORT=str(pbx.esl_port))
    try:
        atende.start()
        default = next(a for a in atende.get("/v1/assistants") if a["is_default"])
        pbx.load_dialplan("".join(
            secretary_extension(f"bench_{mode}", number, default["id"], "127.0.0.1",
                                atende.esl_port, atende.audio_stream_port, mode=mode,
                                sip_port=atende.sip_port)
            for mode, number in MODES.items()))
        for mode, number in MODES.items():
            heard, own = [], []
            for i in range(CALLS):
                folder = root / f"{mode}-{i}"
                folder.mkdir()
                gap, latency = await one_call(pbx, atende, folder, number)
                heard.append(gap * 1000)
                if latency is not None:
                    own.append(latency)
            print(f"{mode:9}  end of speech → reply heard at the phone: p50 "
                  f"{statistics.median(heard):.0f} ms (min {min(heard):.0f}, max "
                  f"{max(heard):.0f}); atende's turn latency p50 "
                  f"{statistics.median(own):.0f} ms; {CALLS} calls", flush=True)
    finally:
        atende.stop()
        pbx.stop()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
