"""End-of-turn models: whether a pause ends the caller's turn."""
