"""Calls from browsers over WebRTC (aiortc): DTLS-SRTP, Opus or G.711, ICE on the
addresses atende is told to use."""

from pathlib import Path

# The script both calling pages load (the dashboard's and the bridge's): what they share.
PAGE_SCRIPT = Path(__file__).parent / "static" / "webrtc.js"
