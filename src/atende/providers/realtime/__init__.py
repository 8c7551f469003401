"""Speech-to-speech vendors behind one interface (``base.RealtimeProtocol``)."""
