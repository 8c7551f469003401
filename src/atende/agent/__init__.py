"""The conversation loop: VAD, turn-taking, barge-in, and the brain."""
