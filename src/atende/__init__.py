"""atende: a self-hosted voice-AI platform for phone lines."""

__version__ = "0.1.0"
