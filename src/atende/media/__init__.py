"""Media: RTP/RTCP, codecs, jitter buffer, DTMF, resampling."""

from atende.native import use_build

COMPILED = use_build(__name__)
