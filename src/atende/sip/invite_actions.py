"""What the INVITE usage (sip/invite.py) asks its driver to do: responses to send on
their transactions, requests to send in the dialog, media to (re)configure, and what to
tell the call leg. Plain values; the driver carries them out."""

from __future__ import annotations

from dataclasses import dataclass

from atende.sip.message import Request, Response
from atende.sip.refer import Progress, ReferTarget
from atende.sip.sdp import NegotiatedAudio
from atende.sip.transaction import ServerTransaction


@dataclass(frozen=True)
class Reply:
    """Send ``response`` on the request's server transaction."""

    txn: ServerTransaction
    response: Response


@dataclass(frozen=True)
class Send:
    """Send ``request`` in the dialog (its own client transaction) and feed its final
    response back to ``on_response``."""

    request: Request


@dataclass(frozen=True)
class SendAck:
    """Send the ACK of a 2xx to our re-INVITE (no transaction of its own)."""

    request: Request


@dataclass(frozen=True)
class Media:
    """(Re)configure the call's audio; ``on_hold``: the other party holds us (we must not
    send), ``hold_changed``: that is new."""

    audio: NegotiatedAudio
    on_hold: bool
    hold_changed: bool


@dataclass(frozen=True)
class Digit:
    """A key the other party pressed (INFO DTMF)."""

    digit: str
    duration_ms: int


@dataclass(frozen=True)
class Ended:
    """The call is over from the far end's side, or never began: stop its media."""

    cause: str


@dataclass(frozen=True)
class HangUp:
    """End the call from our side (the driver's hang-up sends ``bye``)."""

    cause: str


@dataclass(frozen=True)
class TransferAsked:
    """The other party REFERs us to ``target``: answer with ``accept_refer`` or
    ``refuse_refer``, then report with ``notify``."""

    target: ReferTarget
    txn: ServerTransaction
    request: Request


@dataclass(frozen=True)
class TransferProgress:
    """A NOTIFY about our REFER's referred call."""

    progress: Progress


@dataclass(frozen=True)
class ReinviteRefused:
    """Our re-INVITE got a final failure (other than glare, which is retried)."""

    status: int


Action = (Reply | Send | SendAck | Media | Digit | Ended | HangUp | TransferAsked
          | TransferProgress | ReinviteRefused)
