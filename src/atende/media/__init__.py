"""Media: RTP/RTCP, codecs, jitter buffer, DTMF, resampling."""
