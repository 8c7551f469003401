"""Calls from browsers over WebRTC (aiortc): DTLS-SRTP, Opus or G.711, ICE on the
addresses atende is told to use."""
