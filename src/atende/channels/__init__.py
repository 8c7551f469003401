"""Channels: the ways a call reaches atende. Each ends in a CallLeg."""
