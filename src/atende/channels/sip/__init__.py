"""The native SIP/RTP channel."""
