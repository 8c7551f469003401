"""Transfers of live calls:
- blind ones, asked by the API or the assistant: the channel's own transfer (SIP REFER),
  where the PBX or carrier calls the target;
- bridged ones (a destination with mode ``bridge``): atende calls the target on the
  call's trunk while the caller hears ringback, then joins the two calls and stays in
  the media path until either party hangs up. For trunks that take no REFER;
- those the other party asks for (an incoming REFER), carried out through the same trunk.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Protocol

from atende.agent.profile import AssistantProfile
from atende.calls.live import LiveCalls
from atende.calls.records import CallRecords
from atende.channels.bridge import bridge
from atende.channels.dialer import Dialer, DialError, DialOutcome, DialRequest
from atende.channels.leg import CallInfo, CallLeg, TransferResult
from atende.media.music import ringback_tone
from atende.store import models
from atende.telephony.trunks import DestinationError, LiveTrunk, TrunkConfig, TrunkManager

log = logging.getLogger(__name__)

RING_TIMEOUT_S = 30.0


def outbound_info(call_id: str, trunk: TrunkConfig, user: str) -> CallInfo:
    from_uri, from_user = trunk.identity()
    return CallInfo(id=call_id, channel=trunk.channel, direction="outbound",
                    from_uri=from_uri, to_uri="", from_user=from_user, to_user=user,
                    extra={"trunk_id": trunk.id})


class DialThrough(Protocol):
    """Places a call now with an assistant talking (CallEngine.dial_through): for a
    transfer the other party asks for, the call to its target."""

    def __call__(self, trunk: TrunkConfig, user: str, assistant: AssistantProfile,
                 ring_timeout: float, headers: tuple[tuple[str, str], ...] = (),
                 on_outcome: Callable[[DialOutcome], None] | None = None
                 ) -> Awaitable[models.Call]: ...


class Transfers:
    """Transfers of live calls: blind ones through the channel, bridged ones where atende
    calls the target and joins the calls, and those the other party asks for."""

    def __init__(self, live: LiveCalls, records: CallRecords, trunks: TrunkManager,
                 dialer: Dialer, dial_through: DialThrough) -> None:
        self.live = live
        self.records = records
        self.trunks = trunks
        self.dialer = dialer
        self.dial_through = dial_through

    def trunk_of(self, info: CallInfo) -> LiveTrunk | None:
        return self.trunks.trunks.get(info.extra.get("trunk_id", ""))

    def _event(self, call_id: str, kind: str, data: dict[str, object]) -> None:
        self.records.event(call_id, kind, dict(data))

    # asked by the other party ----------------------------------------------------------
    def refusal(self, info: CallInfo, target: str) -> str | None:
        """Why the other party may not transfer this call to ``target``, or None."""
        trunk = self.trunk_of(info)
        if trunk is None:
            return "transfers are taken on trunk calls only"
        if not trunk.config.accept_transfers:
            return f"trunk {trunk.config.name!r} does not accept transfers (accept_transfers)"
        try:
            trunk.config.dial_user(target)
        except DestinationError as exc:
            return str(exc)
        problem = self.live.capacity_problem(trunk.config)
        return problem[1] if problem else None

    async def take(self, leg: CallLeg, target: str, headers: tuple[tuple[str, str], ...]
                   ) -> tuple[int | None, str]:
        active = self.live.get(leg.info.id)
        trunk = self.trunk_of(leg.info)
        if active is None or trunk is None:
            return None, "the call has ended"
        done: asyncio.Future[DialOutcome] = asyncio.get_running_loop().create_future()
        try:
            row = await self.dial_through(trunk.config, trunk.config.dial_user(target),
                                            active.assistant, RING_TIMEOUT_S,
                                            headers=headers, on_outcome=done.set_result)
        except (DestinationError, DialError) as exc:
            return None, str(exc)
        self._event(leg.info.id, "transferred_by_peer", {"to": target, "call_id": row.id})
        outcome = await done
        return outcome.sip_status, outcome.reason

    # asked by the API or the assistant -------------------------------------------------
    def target(self, call_id: str, to: str) -> str:
        """Where a transfer of ``call_id`` to ``to`` goes. On a trunk call, a number or
        extension is formatted for the trunk and passes its toll-fraud guard
        (DestinationError); otherwise the channel qualifies ``to`` itself."""
        active = self.live.get(call_id)
        trunk = self.trunk_of(active.info) if active is not None else None
        if trunk is None or to.strip().lower().startswith(("sip:", "sips:")):
            return to.strip()
        return trunk.config.transfer_target(trunk.config.dial_user(to))

    async def blind(self, leg: CallLeg, target: str, wait_s: float) -> TransferResult:
        """Blind-transfer a live call; the outcome is kept with the call's events."""
        self._event(leg.info.id, "transfer_started", {"to": target})
        leg.clear()  # the assistant stops mid-sentence: the caller is being handed over
        result = await leg.transfer(target, wait_s)
        log.info("call %s: transfer to %s: %s (%s)", leg.info.id, target, result.outcome,
                 result.reason)
        self._event(leg.info.id, "transfer", {
            "to": target, "outcome": result.outcome, "status": result.status,
            "reason": result.reason, "progress": list(result.progress)})
        return result

    async def by_assistant(self, leg: CallLeg, to: str, bridge_it: bool) -> TransferResult:
        """A transfer the assistant decided (a tool call, its fallback, closed hours)."""
        try:
            if bridge_it:
                return await self.dial_and_join(leg, to)
            target = self.target(leg.info.id, to)
        except DestinationError as exc:
            self._event(leg.info.id, "transfer_refused", {"to": to, "reason": str(exc)})
            return TransferResult("refused", None, str(exc))
        return await self.blind(leg, target, RING_TIMEOUT_S)

    async def dial_and_join(self, leg: CallLeg, to: str) -> TransferResult:
        """Call ``to`` on the call's trunk with ringback for the caller; once it answers,
        hand ``leg`` over (the session lets go of it) for ``joined`` to bridge.
        DestinationError: ``to`` cannot be called from this call."""
        trunk = self.trunk_of(leg.info)
        if trunk is None:
            raise DestinationError("a bridged transfer dials out on the call's trunk, and "
                                   "this call came without one")
        user = trunk.config.dial_user(to)
        info = outbound_info(uuid.uuid4().hex, trunk.config, user)
        problem = await self.live.take_channel(info.id, trunk.config)
        if problem is not None:
            raise DestinationError(problem[1])
        try:
            prepared = await self.dialer.prepare(DialRequest(info, user, trunk.config.id,
                                                               RING_TIMEOUT_S))
        except DialError as exc:
            self.live.give_channel(info.id)
            raise DestinationError(str(exc)) from None
        self._event(leg.info.id, "transfer_started", {"to": prepared.address, "mode": "bridge"})
        leg.clear()
        leg.play(ringback_tone())
        joined = False
        try:
            # The caller hanging up while it rings cancels the call to the target.
            outcome = await self.dialer.dial(prepared, cancel=leg.done)
            leg.clear()
            other = outcome.leg
            if outcome.status != "answered" or other is None or leg.ended:
                if other is not None:
                    await other.hangup("caller_gone")
                status = "failed" if outcome.status == "answered" else outcome.status
                reason = "the caller hung up" if leg.ended else outcome.reason
                self._event(leg.info.id, "transfer", {
                    "to": prepared.address, "mode": "bridge", "outcome": status,
                    "status": outcome.sip_status, "reason": reason})
                return TransferResult("failed", outcome.sip_status, reason)
            self.live.join(leg.info.id, other, info.id)
            joined = True
        finally:
            if not joined:
                self.live.give_channel(info.id)
        self._event(leg.info.id, "transfer", {
            "to": prepared.address, "mode": "bridge", "outcome": "transferred",
            "status": outcome.sip_status, "reason": "answered; the calls are joined"})
        leg.hand_over()
        return TransferResult("transferred", outcome.sip_status, "the calls are joined")

    async def joined(self, leg: CallLeg) -> bool:
        """Run the bridge of ``leg``, if its session handed it over to one (True)."""
        other = self.live.joined_to(leg.info.id)
        if other is None:
            return False
        loop = asyncio.get_running_loop()
        start = loop.time()
        try:
            if leg.ended:
                await other.hangup("bridge_ended")
            else:
                first = await bridge(leg, other)
                self._event(leg.info.id, "bridge_ended", {
                    "hung_up_first": "caller" if first is leg else "target",
                    "seconds": round(loop.time() - start, 1)})
        finally:
            self.live.unjoin(leg.info.id)  # its channel on the trunk is free again
        return True
