"""SIP transactions (RFC 3261 §17, with the Accepted states of RFC 6026), sans-IO.

Nothing here reads a clock or touches a socket: every entry point takes ``now`` (seconds,
any monotonic origin) and returns actions for the caller to perform. The asyncio adapter
calls ``TransactionLayer.tick(now)`` at ``next_deadline()``.

The layer keeps every armed timer in one heap, so finding the next deadline and firing
the due timers costs O(log n) per timer, however many transactions are live; a timer
stopped or restarted leaves a stale entry that is dropped when it surfaces.

A finished transaction lingers up to 32 s so that copies of its request are still
answered (a non-INVITE's final response, Timer J; an INVITE's 2xx, Timer L of RFC 6026).
At a high call rate that is tens of thousands of them, two a call, and every full pass of
the garbage collector, which stops the event loop and all audio, walked each one. So once
it is only waiting out that time it is kept as plain values (what to send again, where,
until when), which the collector does not track (``Lingering``).
"""

from __future__ import annotations

import collections
import heapq
import itertools
import secrets
from dataclasses import dataclass, field
from enum import Enum

from atende.sip.headers import Via
from atende.sip.message import Message, Request, Response
from atende.sip.requests import ack_for_failure

T1 = 0.5
T2 = 4.0
T4 = 5.0
BRANCH_COOKIE = "z9hG4bK"

# Where a message goes or came from: (transport, host, port); transport is "udp" or "tcp".
Address = tuple[str, str, int]


def new_branch() -> str:
    return BRANCH_COOKIE + secrets.token_hex(8)


class State(Enum):
    """Transaction states of RFC 3261 §17 and RFC 6026."""

    CALLING = "calling"
    TRYING = "trying"
    PROCEEDING = "proceeding"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    ACCEPTED = "accepted"
    TERMINATED = "terminated"


# Actions -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Send:
    """Send a message to an address: a request, or a response as its bytes (what a server
    transaction keeps of it, to send it again)."""

    message: Message | bytes
    address: Address


@dataclass(frozen=True)
class Deliver:
    """A message for the transaction user (a new request, or a response to our request)."""

    message: Message
    source: Address
    transaction: Transaction | None


@dataclass(frozen=True)
class TimedOut:
    """Timer B, F or H fired: the request (or our final response) got no answer."""

    transaction: Transaction


Action = Send | Deliver | TimedOut


@dataclass(eq=False)
class Transaction:
    """What client and server transactions share: the request's method, where it goes, the
    state and the timers."""

    method: str
    address: Address
    reliable: bool
    state: State
    timers: dict[str, float] = field(default_factory=dict)
    intervals: dict[str, float] = field(default_factory=dict)
    # Our last response, as sent: a finished transaction lingers for up to 32 s, and at a
    # high call rate thousands of them kept as objects made every full collection of
    # the garbage collector walk them (it stops the event loop, and all audio, as long).
    last_sent: bytes | None = None
    key: tuple[str, ...] = ()  # the layer's key for it
    # Timers (re)armed since the layer last looked. A tuple, emptied by the layer at once:
    # a lingering transaction holds nothing here for the collector to walk.
    started: tuple[str, ...] = ()

    @property
    def is_invite(self) -> bool:
        return self.method == "INVITE"

    def next_deadline(self) -> float | None:
        return min(self.timers.values()) if self.timers else None

    def _start(self, name: str, now: float, interval: float) -> None:
        self.timers[name] = now + interval
        self.intervals[name] = interval
        self.started += (name,)

    def _stop(self, *names: str) -> None:
        for n in names:
            self.timers.pop(n, None)

    def _terminate(self) -> None:
        self.state = State.TERMINATED
        self.timers.clear()

    def on_timer(self, name: str, now: float) -> list[Action]:
        raise NotImplementedError


# Server transactions (§17.2) -----------------------------------------------------------
@dataclass(eq=False)
class ServerTransaction(Transaction):
    """A request of the other side and our responses to it, resent when the request comes again
    (RFC 3261 §17.2).

    ``request`` is let go once the final response is sent (None from then): the
    transaction then only resends what it sent, and lingers up to 32 s, when thousands at
    a high call rate would keep their requests for the garbage collector to walk."""

    request: Request | None = field(default=None, kw_only=True)

    def on_request(self, req: Request, now: float) -> list[Action]:
        """A retransmission of the request (or the ACK of a non-2xx final response)."""
        if req.method == "ACK":
            if self.is_invite and self.state == State.COMPLETED:
                self.state = State.CONFIRMED
                self._stop("G", "H")
                self._start("I", now, 0.0 if self.reliable else T4)
            return []
        if self.state in (State.PROCEEDING, State.COMPLETED) and self.last_sent:
            return [Send(self.last_sent, self.address)]
        return []  # TRYING / ACCEPTED / CONFIRMED: absorb

    def send_response(self, resp: Response, now: float) -> list[Action]:
        if self.state in (State.TERMINATED, State.CONFIRMED):
            return []
        if self.state in (State.COMPLETED, State.ACCEPTED) and not (
            self.state == State.ACCEPTED and resp.status >= 200 and resp.status < 300
        ):
            return []
        wire = resp.encode()
        # A 2xx to an INVITE is never sent again from here (its dialog repeats it).
        self.last_sent = None if self.is_invite and 200 <= resp.status < 300 else wire
        if resp.status >= 200:
            self.request = None
        out: list[Action] = [Send(wire, self.address)]
        if resp.status < 200:
            self.state = State.PROCEEDING
        elif self.is_invite and resp.status < 300:
            self.state = State.ACCEPTED
            self._start("L", now, 64 * T1)
        elif self.is_invite:
            self.state = State.COMPLETED
            if not self.reliable:
                self._start("G", now, T1)
            self._start("H", now, 64 * T1)
        else:
            self.state = State.COMPLETED
            self._start("J", now, 0.0 if self.reliable else 64 * T1)
        return out

    def on_timer(self, name: str, now: float) -> list[Action]:
        if name == "G" and self.last_sent is not None:
            self._start("G", now, min(2 * self.intervals["G"], T2))
            return [Send(self.last_sent, self.address)]
        if name == "H":
            self._terminate()
            return [TimedOut(self)]
        self._terminate()  # I, J, L
        return []


# Client transactions (§17.1) -----------------------------------------------------------
@dataclass(eq=False)
class ClientTransaction(Transaction):
    """A request of ours and its retransmissions until its final response (RFC 3261 §17.1)."""

    request: Request = field(kw_only=True)

    def start(self, now: float) -> list[Action]:
        self._start("B" if self.is_invite else "F", now, 64 * T1)
        if not self.reliable:
            self._start("A" if self.is_invite else "E", now, T1)
        return [Send(self.request, self.address)]

    def on_response(self, resp: Response, source: Address, now: float) -> list[Action]:
        deliver: list[Action] = [Deliver(resp, source, self)]
        if self.state == State.TERMINATED:
            return []
        if self.is_invite:
            if self.state == State.COMPLETED:
                return [Send(self._ack_for(resp), self.address)] if resp.status >= 300 else []
            if self.state == State.ACCEPTED:
                return deliver if 200 <= resp.status < 300 else []
            if resp.status < 200:
                self.state = State.PROCEEDING
                self._stop("A")
                return deliver
            self._stop("A", "B")
            if resp.status < 300:
                self.state = State.ACCEPTED
                self._start("M", now, 64 * T1)
                return deliver
            self.state = State.COMPLETED
            self._start("D", now, 0.0 if self.reliable else 32.0)
            return [Send(self._ack_for(resp), self.address), *deliver]
        # non-INVITE
        if self.state == State.COMPLETED:
            return []
        if resp.status < 200:
            self.state = State.PROCEEDING
            return deliver
        self.state = State.COMPLETED
        self._stop("E", "F")
        self._start("K", now, 0.0 if self.reliable else T4)
        return deliver

    def on_timer(self, name: str, now: float) -> list[Action]:
        if name == "A":
            self._start("A", now, 2 * self.intervals["A"])
            return [Send(self.request, self.address)]
        if name == "E":
            nxt = T2 if self.state == State.PROCEEDING else min(2 * self.intervals["E"], T2)
            self._start("E", now, nxt)
            return [Send(self.request, self.address)]
        if name in ("B", "F"):
            self._terminate()
            return [TimedOut(self)]
        self._terminate()  # D, K, M
        return []

    def _ack_for(self, resp: Response) -> Request:
        return ack_for_failure(self.request, resp)


# The layer -----------------------------------------------------------------------------
def branch_key(via: Via, method: str) -> tuple[str, str, str] | None:
    """The server transaction key of a request whose top Via is ``via`` (an ACK's is
    its INVITE's: give "INVITE"), or None for an RFC 2543 peer's branch (§17.2.3)."""
    branch = via.branch or ""
    if not branch.startswith(BRANCH_COOKIE):
        return None
    return (branch, f"{via.host}:{via.port}", method)


def _server_key(req: Request) -> tuple[str, ...]:
    via = req.top_via
    method = "INVITE" if req.method == "ACK" else req.method
    if (key := branch_key(via, method)) is not None:
        return key
    # RFC 2543 peers: match on the dialog-ish identifiers instead (§17.2.3).
    cseq = req.cseq
    return (req.call_id, str(cseq.number), req.from_.tag or "", f"{via.host}:{via.port}", method)


def _client_key(msg: Message) -> tuple[str, str]:
    via = Via.parse(msg.headers.get_all("Via")[0])
    return (via.branch or "", msg.cseq.method if msg.cseq.method != "ACK" else "INVITE")


class Lingering:
    """Finished server transactions waiting out Timer J or L, by key: (our last response
    to send again, or None to absorb the copy; where it went; until when). Their times
    all run the same 64*T1, so they end in the order they began: a queue, not a heap."""

    def __init__(self) -> None:
        self.held: dict[tuple[str, ...], tuple[bytes | None, Address, float]] = {}
        self._ends: collections.deque[tuple[float, tuple[str, ...]]] = collections.deque()

    def __len__(self) -> int:
        return len(self.held)

    def add(self, key: tuple[str, ...], resend: bytes | None, address: Address,
            until: float) -> None:
        self.held[key] = (resend, address, until)
        self._ends.append((until, key))

    def copy_of(self, key: tuple[str, ...], req: Request) -> list[Action]:
        """What a copy of the request answers (as the transaction would: its final
        response again, an INVITE's absorbed after its 2xx, an ACK absorbed)."""
        resend, address, _ = self.held[key]
        return [] if resend is None or req.method == "ACK" else [Send(resend, address)]

    def next_end(self) -> float | None:
        return self._ends[0][0] if self._ends else None

    def expire(self, now: float) -> None:
        ends, held = self._ends, self.held
        while ends and ends[0][0] <= now:
            _, key = ends.popleft()
            found = held.get(key)
            if found is not None and found[2] <= now:
                del held[key]


def _lingers(txn: Transaction) -> str | None:
    """The timer a server transaction now only waits out, if that is all it does: a
    non-INVITE's final response (J; on a reliable transport it is zero: nothing to wait
    out), an INVITE's 2xx (L)."""
    if txn.state == State.COMPLETED and not txn.is_invite and not txn.reliable:
        return "J"
    if txn.state == State.ACCEPTED:
        return "L"
    return None


class TransactionLayer:
    """All SIP transactions of the user agent (RFC 3261 §17), sans-IO: matches messages to
    transactions, runs their timers from the time given, and says what to send or
    deliver."""

    def __init__(self) -> None:
        self.server: dict[tuple[str, ...], ServerTransaction] = {}
        self.client: dict[tuple[str, ...], ClientTransaction] = {}
        self.lingering = Lingering()  # server transactions that ended but for copies
        # (deadline, order, server?, the transaction's key, timer): the armed timers,
        # soonest first. Keys, not the transactions: at a high call rate tens of
        # thousands of finished transactions linger (up to 32 s), and entries of plain
        # values are not walked by the garbage collector, which stops the loop to walk.
        self._timers: list[tuple[float, int, bool, tuple[str, ...], str]] = []
        self._order = itertools.count()  # ties fire in the order they were armed

    # incoming ---------------------------------------------------------------------------
    def receive(self, msg: Message, source: Address, now: float) -> list[Action]:
        reliable = source[0] != "udp"
        if isinstance(msg, Request):
            key = _server_key(msg)
            txn = self.server.get(key)
            if txn is not None:
                actions = txn.on_request(msg, now)
                self._settle(txn)
                return actions
            if key in self.lingering.held:
                return self.lingering.copy_of(key, msg)
            if msg.method == "ACK":
                return [Deliver(msg, source, None)]  # ACK for a 2xx: the TU's (dialog's) business
            txn = ServerTransaction(msg.method, source, reliable, State.TRYING, key=key,
                                    request=msg)
            if msg.method == "INVITE":
                txn.state = State.PROCEEDING
            self.server[key] = txn
            return [Deliver(msg, source, txn)]
        ctxn = self.client.get(_client_key(msg))
        if ctxn is None:
            # A 2xx retransmitted after the INVITE transaction ended still needs an ACK.
            if msg.cseq.method == "INVITE" and 200 <= msg.status < 300:
                return [Deliver(msg, source, None)]
            return []
        actions = ctxn.on_response(msg, source, now)
        self._settle(ctxn)
        return actions

    def retransmission(self, req: Request) -> bool:
        """Whether ``req`` belongs to a server transaction we already have (a request
        sent again because our answer has not reached its sender yet)."""
        return self.knows(_server_key(req))

    def knows(self, key: tuple[str, ...]) -> bool:
        """Whether a server transaction with this key is live or lingering."""
        return key in self.server or key in self.lingering.held

    def find_invite_for_cancel(self, cancel: Request) -> ServerTransaction | None:
        """The live INVITE transaction ``cancel`` is for (None also when that one is
        answered already: ``answered_invite``)."""
        key = _server_key(cancel)
        return self.server.get((*key[:-1], "INVITE"))

    def answered_invite(self, cancel: Request) -> bool:
        """Whether ``cancel`` is for an INVITE that has had its 2xx (the CANCEL then
        has no effect, and is answered 200: RFC 3261 §9.2)."""
        return (*_server_key(cancel)[:-1], "INVITE") in self.lingering.held

    # outgoing ---------------------------------------------------------------------------
    def send_response(self, txn: ServerTransaction, resp: Response, now: float) -> list[Action]:
        actions = txn.send_response(resp, now)
        self._settle(txn)
        return actions

    def send_request(
        self, req: Request, address: Address, now: float
    ) -> tuple[ClientTransaction, list[Action]]:
        key = _client_key(req)
        txn = ClientTransaction(req.method, address, address[0] != "udp", State.TRYING,
                                key=key, request=req)
        if req.method == "INVITE":
            txn.state = State.CALLING
        self.client[key] = txn
        actions = txn.start(now)
        self._settle(txn)
        return txn, actions

    def transport_error(self, address: Address) -> list[ClientTransaction]:
        """Client transactions to ``address`` end at once when it cannot be reached
        (§17.1.4); the TU hears of it as a failure of each."""
        failed = [t for t in self.client.values()
                  if t.address == address and t.state != State.TERMINATED]
        for t in failed:
            t._terminate()
            self._settle(t)
        return failed

    # time -------------------------------------------------------------------------------
    def next_deadline(self) -> float | None:
        self._drop_stale()
        timer = self._timers[0][0] if self._timers else None
        end = self.lingering.next_end()
        return end if timer is None else timer if end is None else min(timer, end)

    def tick(self, now: float) -> list[Action]:
        self.lingering.expire(now)
        actions: list[Action] = []
        while True:
            self._drop_stale()
            if not self._timers or self._timers[0][0] > now:
                return actions
            _, _, server, key, name = heapq.heappop(self._timers)
            txn = self._find(server, key)
            assert txn is not None  # _drop_stale left only live entries on top
            del txn.timers[name]
            actions.extend(txn.on_timer(name, now))
            self._settle(txn)

    def _drop_stale(self) -> None:
        """Pop the entries of timers since stopped, restarted or ended with their
        transaction."""
        heap = self._timers
        while heap:
            deadline, _, server, key, name = heap[0]
            txn = self._find(server, key)
            if txn is not None and txn.timers.get(name) == deadline:
                return
            heapq.heappop(heap)

    def _find(self, server: bool, key: tuple[str, ...]) -> Transaction | None:
        return self.server.get(key) if server else self.client.get(key)

    def _settle(self, txn: Transaction) -> None:
        """After ``txn`` acted: the timers it armed go in the heap, and a transaction that
        ended is forgotten."""
        server = isinstance(txn, ServerTransaction)
        if server and (timer := _lingers(txn)) is not None \
                and self.server.get(txn.key) is txn and timer in txn.timers:
            # Only copies of its request are left to answer: kept as plain values.
            del self.server[txn.key]
            self.lingering.add(txn.key, txn.last_sent, txn.address, txn.timers[timer])
            txn.started = ()
            return
        for name in txn.started:
            if (deadline := txn.timers.get(name)) is not None:
                heapq.heappush(self._timers, (deadline, next(self._order), server, txn.key, name))
        txn.started = ()
        if txn.state == State.TERMINATED:
            table: dict[tuple[str, ...], ServerTransaction] | dict[
                tuple[str, ...], ClientTransaction] = self.server if server else self.client
            if table.get(txn.key) is txn:
                del table[txn.key]
