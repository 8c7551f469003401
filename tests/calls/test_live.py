"""One node's count of a trunk's channels: its calls and the second legs of bridged
transfers, taken and given back; kept as places are taken and freed (admission reads a
count, it does not walk the live calls)."""

from __future__ import annotations

from dataclasses import replace

from atende.agent.profile import AssistantProfile
from atende.calls.live import LiveCall, LiveCalls
from atende.channels.leg import CallInfo
from tests.telephony.test_toll_fraud import PT_EXTENSION

TRUNK = replace(PT_EXTENSION, max_concurrent_calls=2)
OTHER_TRUNK = replace(PT_EXTENSION, id="t-other", name="Other", max_concurrent_calls=2)
ASSISTANT = AssistantProfile(id="a1", name="Reception", rules={})


def on(trunk_id: str, n: int) -> LiveCall:
    return LiveCall(ASSISTANT, CallInfo(id=f"c{n}", channel="sip", direction="inbound",
                                        from_uri="sip:a@h", to_uri="sip:b@h",
                                        extra={"trunk_id": trunk_id}))


async def test_a_trunks_calls_and_second_legs_share_its_channels() -> None:
    live = LiveCalls(100)
    full = ("trunk_busy", "trunk 'Other' is at its max_concurrent_calls (2)")
    assert await live.take(on(OTHER_TRUNK.id, 1), OTHER_TRUNK) is None
    assert await live.take_channel("leg1", OTHER_TRUNK) is None  # a bridged transfer's
    assert await live.take(on(OTHER_TRUNK.id, 2), OTHER_TRUNK) == full
    assert await live.take_channel("leg2", OTHER_TRUNK) == full
    assert live.capacity_problem(OTHER_TRUNK) == full
    # Another trunk's channels are its own.
    assert await live.take(on(TRUNK.id, 3), TRUNK) is None
    assert live.capacity_problem(TRUNK) is None
    # Given back, each channel is free again; a refused call or leg held none.
    live.give_channel("leg1")
    assert live.capacity_problem(OTHER_TRUNK) is None
    assert await live.take(on(OTHER_TRUNK.id, 4), OTHER_TRUNK) is None
    assert live.capacity_problem(OTHER_TRUNK) == full
    live.release("c1")
    live.release("c1")  # (twice: counted once)
    live.give_channel("leg2")  # (never taken)
    assert await live.take_channel("leg3", OTHER_TRUNK) is None
    assert live.capacity_problem(OTHER_TRUNK) == full
    live.release("c4")
    live.give_channel("leg3")
    assert await live.take(on(OTHER_TRUNK.id, 5), OTHER_TRUNK) is None
    assert await live.take(on(OTHER_TRUNK.id, 6), OTHER_TRUNK) is None
    assert len(live) == 3  # c3, c5, c6
