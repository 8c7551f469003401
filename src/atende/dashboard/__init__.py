"""The web dashboard atende serves at :8100/ beside its API."""
