"""Which words said over the assistant are only listening noises."""

from __future__ import annotations

import pytest

from atende.agent.turn_policy import TurnPolicy


@pytest.mark.parametrize("text", ["Uh-huh.", "Mmm.", "MMM.", "mm hmm", "Yeah, okay.",
                                  "Right, right.", "I see.", "Okay", "Pois é.", "Está bem.",
                                  "Oh... okay."])
def test_listening_noises_are_backchannels(text: str) -> None:
    assert TurnPolicy().is_backchannel(text)


@pytest.mark.parametrize("text", ["", "...", "Yes.", "Yes, I confirm.", "Okay, but when?",
                                  "No.", "I see a problem.", "Stop", "wait", "Sim."])
def test_answers_and_requests_are_not(text: str) -> None:
    assert not TurnPolicy().is_backchannel(text)


def test_an_assistant_has_its_own_list() -> None:
    policy = TurnPolicy(backchannels=("d'accord", "oui oui"))
    assert policy.is_backchannel("D'accord. Oui, oui.")
    assert not policy.is_backchannel("Okay.")
