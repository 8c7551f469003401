"""SRTP and SRTCP (RFC 3711) for one call, keyed by SDES (RFC 4568): packets we send are
protected with our key, packets that arrive are checked and decrypted with the other
side's. libsrtp (through pylibsrtp) does the cryptography; this is the call's pair of
sessions."""

from __future__ import annotations

import pylibsrtp

from atende.sip.sdp import Crypto

_PROFILES = {
    "AES_CM_128_HMAC_SHA1_80": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    "AES_CM_128_HMAC_SHA1_32": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
}


class SrtpPair:
    """Protects what we send and unprotects what arrives, for one negotiated crypto."""

    def __init__(self, crypto: Crypto) -> None:
        self.crypto = crypto
        profile = _PROFILES[crypto.suite]
        self._out = pylibsrtp.Session(pylibsrtp.Policy(
            key=crypto.ours, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
            srtp_profile=profile))
        self._in = pylibsrtp.Session(pylibsrtp.Policy(
            key=crypto.theirs, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND,
            srtp_profile=profile))

    def protect(self, rtp: bytes) -> bytes:
        return bytes(self._out.protect(rtp))

    def protect_rtcp(self, rtcp: bytes) -> bytes:
        return bytes(self._out.protect_rtcp(rtcp))

    def unprotect(self, srtp: bytes) -> bytes | None:
        """The packet decrypted, or None when it fails authentication or is a replay."""
        try:
            return bytes(self._in.unprotect(srtp))
        except pylibsrtp.Error:
            return None

    def unprotect_rtcp(self, srtcp: bytes) -> bytes | None:
        try:
            return bytes(self._in.unprotect_rtcp(srtcp))
        except pylibsrtp.Error:
            return None
