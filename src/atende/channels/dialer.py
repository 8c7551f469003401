"""Placing a call, whatever carries it. The call engine, the call queue, transfers and the
trunk test place calls through a ``Dialer`` and get a ``CallLeg`` back when it is answered;
SIP through a trunk is one dialer (telephony/dialing.py), FreeSWITCH (originate over ESL)
and the bridge will be others.

Placing takes two steps so that the call's record can say where it goes before it rings:
``prepare`` resolves the destination (and may fail at once, with why); ``dial`` rings it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Protocol

from atende.channels.leg import CallInfo, CallLeg


class DialError(Exception):
    """A call that cannot be placed at all (its route is unknown or does not resolve);
    the message says why, in words for the call's record."""


@dataclass(frozen=True)
class DialRequest:
    """Who to call, in channel-neutral words."""

    info: CallInfo  # the call being placed
    to: str  # the user or number, as the route wants it (a trunk's dial format)
    trunk_id: str | None = None  # the way out; None: the dialer's own default
    ring_timeout: float = 30.0
    # Headers the channel adds to its request (SIP: Replaces, from a REFER's target).
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class PreparedDial:
    """A call ready to ring: where it goes, and the channel's own resolved details."""

    request: DialRequest
    address: str  # the destination in the channel's words (SIP: the Request-URI)
    plan: object = field(repr=False)  # read only by the dialer that made it


@dataclass
class DialOutcome:
    """How a call we placed went: answered (with its leg) or why not."""

    status: str  # answered, busy, no_answer, rejected, failed, cancelled
    # The far end's status code, in SIP terms (other channels map theirs: FreeSWITCH
    # reports SIP codes too); None when no answer came at all.
    sip_status: int | None
    reason: str
    leg: CallLeg | None = None
    events: list[str] = field(default_factory=list)  # ringing, early_media …


class Dialer(Protocol):
    """Places calls on one kind of channel."""

    async def prepare(self, request: DialRequest) -> PreparedDial:
        """Resolve where ``request`` goes. DialError: it cannot go anywhere."""
        ...

    async def dial(self, prepared: PreparedDial, cancel: asyncio.Event | None = None
                   ) -> DialOutcome:
        """Ring the callee until it answers, refuses, the ring timeout passes or
        ``cancel`` is set. Never raises for what the far end does."""
        ...
