"""The FreeSWITCH channel: calls FreeSWITCH hands atende over its Event Socket (outbound
mode, one connection per call) and, next, their audio over mod_audio_stream."""
