"""Refusing new INVITEs for little, sans-IO: past capacity a flood of new calls must be
answered 503 (RFC 3261 §21.5.4) for less than it costs to serve one, or refusing them
takes the time the calls being served need. A well-formed new INVITE over UDP is read
only as far as its answer needs (the request line, Via, From, To, Call-ID, CSeq), and
refused as a stateless UAS may (§8.2.7: no transaction, no retransmission of the answer,
its ACK ignored). The refusals are remembered, so that a copy of the request (sent again
because the answer was lost, or still on its way when load fell) gets the same answer,
To tag included, and never starts the call its caller was told to retry.

Anything unusual (folded or repeated headers, compact forms, an RFC 2543 branch, a To
tag) is not read here: the caller gets the full parser and its transactions."""

from __future__ import annotations

import collections
from dataclasses import dataclass

from atende.sip.grammar import is_digits, is_token
from atende.sip.headers import CSeq, Via
from atende.sip.message import SINGLE_HEADERS
from atende.sip.transaction import branch_key
from atende.sip.uri import NameAddr, SipUri, UriError

# Until a refused INVITE's copies stop coming: Timer H (64·T1) with no ACK, as an INVITE
# server transaction lingers; Timer I (T4) once the ACK came.
KEEP_S = 32.0
KEEP_AFTER_ACK_S = 5.0

_NEEDED = ("from", "to", "call-id", "cseq", "max-forwards")
_SINGLE = {name.lower() for name in SINGLE_HEADERS}  # each at most once, as parse_message

Key = tuple[str, str, str]  # as the transaction layer's server key: branch, sent-by, method


@dataclass(frozen=True, slots=True)
class NewInvite:
    """What a new INVITE's refusal needs of it."""

    key: Key
    top_via: Via
    vias: tuple[str, ...]  # every Via value, top first, as received
    from_: str
    to: str
    call_id: str
    cseq: str


def _top_via_key(value: str) -> tuple[Via, Key] | None:
    try:
        via = Via.parse(value)
    except ValueError:
        return None
    key = branch_key(via, "INVITE")
    if via.transport != "UDP" or key is None:
        return None
    return via, key


def _head_lines(data: bytes, method: bytes) -> list[str] | None:
    end = data.find(b"\r\n\r\n")
    if not data.startswith(method) or end < 0:
        return None
    try:
        text = data[:end].decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text.split("\r\n")


def read_new_invite(data: bytes) -> NewInvite | None:
    """The parts of a well-formed new INVITE (no To tag) that its 503 needs, or None when
    it is anything else, anything unusual, or anything the full parser would refuse: what
    is read is checked as it would check it (the Request-URI, From and To are parsed),
    so a malformed request still gets its 4xx from there."""
    lines = _head_lines(data, b"INVITE ")
    if lines is None:
        return None
    parts = lines[0].split(" ")
    if len(parts) != 3 or parts[2] != "SIP/2.0":
        return None
    found: dict[str, str] = {}
    vias: list[str] = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        name = name.strip()
        low = name.lower()
        if not sep or not is_token(name) or len(low) == 1:
            return None  # malformed, folded, or a compact form: the full parser's
        value = value.strip()
        if low == "via":
            if "," in value:
                return None
            vias.append(value)
        elif low in _SINGLE:
            if low in found:
                return None
            found[low] = value
    if not vias or not all(found.get(low) for low in _NEEDED):
        return None
    body = len(data) - data.find(b"\r\n\r\n") - 4
    length = found.get("content-length")
    if length is not None and not (length.isdigit() and int(length) <= body):
        return None
    if not is_digits(found["max-forwards"]) or int(found["max-forwards"]) == 0:
        return None
    top = _top_via_key(vias[0])
    if top is None:
        return None
    try:
        SipUri.parse(parts[1])
        NameAddr.parse(found["from"])
        if (CSeq.parse(found["cseq"]).method != "INVITE"
                or NameAddr.parse(found["to"]).tag is not None):
            return None
    except (UriError, ValueError):
        return None
    return NewInvite(top[1], top[0], tuple(vias), found["from"], found["to"],
                     found["call-id"], found["cseq"])


def invite_key(data: bytes) -> Key | None:
    """The INVITE transaction key of an INVITE or of its ACK, read from the top Via
    alone, or None: enough to tell a copy of a refused INVITE, or its ACK."""
    lines = _head_lines(data, b"ACK ") or _head_lines(data, b"INVITE ")
    if lines is None:
        return None
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "via":
            top = _top_via_key(value.strip())
            return None if top is None else top[1]
    return None


def refusal(invite: NewInvite, source: tuple[str, int], to_tag: str, status: int,
            reason: str, extra: list[tuple[str, str]]) -> bytes:
    """The encoded answer to ``invite``, which came from ``source`` (host, port): its Vias
    with received/rport on the top one (§18.2.1, RFC 3581), From, To with our tag,
    Call-ID, CSeq, then ``extra``."""
    top = invite.top_via.received_from(*source)
    lines = [f"SIP/2.0 {status} {reason}",
             f"Via: {invite.vias[0] if top is invite.top_via else top}"]
    lines += [f"Via: {v}" for v in invite.vias[1:]]
    lines += [f"From: {invite.from_}", f"To: {invite.to};tag={to_tag}",
              f"Call-ID: {invite.call_id}", f"CSeq: {invite.cseq}"]
    lines += [f"{name}: {value}" for name, value in extra]
    lines.append("Content-Length: 0")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class Refusals:
    """The answers given to refused INVITEs, by transaction key, until their copies stop
    coming. Clock-free: the time is given."""

    def __init__(self) -> None:
        self._answers: dict[Key, tuple[bytes, float]] = {}
        # The deadlines, one queue per wait: each fills in the order it runs out.
        self._unacked: collections.deque[tuple[float, Key]] = collections.deque()
        self._acked: collections.deque[tuple[float, Key]] = collections.deque()

    def __len__(self) -> int:
        return len(self._answers)

    def answer(self, key: Key) -> bytes | None:
        """What a refused INVITE with this key was answered, if it was."""
        found = self._answers.get(key)
        return None if found is None else found[0]

    def add(self, key: Key, answer: bytes, now: float) -> None:
        self._answers[key] = (answer, now + KEEP_S)
        self._unacked.append((now + KEEP_S, key))

    def acked(self, key: Key, now: float) -> bool:
        """An ACK with this key came: whether it was for a refusal (and is ignored)."""
        found = self._answers.get(key)
        if found is None:
            return False
        until = now + KEEP_AFTER_ACK_S
        if found[1] > until:
            self._answers[key] = (found[0], until)
            self._acked.append((until, key))
        return True

    def expire(self, now: float) -> None:
        for queue in (self._unacked, self._acked):
            while queue and queue[0][0] <= now:
                _, key = queue.popleft()
                found = self._answers.get(key)
                if found is not None and found[1] <= now:
                    del self._answers[key]
