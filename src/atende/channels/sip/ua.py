"""The asyncio user agent: feeds the transport's bytes through the sans-IO parser and
transaction layer, runs the timers, and hands requests to a transaction user (TU)."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import socket
import ssl
from collections.abc import Callable
from typing import Literal, Protocol

from atende.channels.sip.overload import LoadMonitor
from atende.channels.sip.transport import SipTransport
from atende.sip.auth import ChallengeResponder, DigestClient
from atende.sip.dialog import Dialog, new_tag
from atende.sip.headers import Via
from atende.sip.message import (
    Message,
    Request,
    Response,
    SipParseError,
    local_response,
    make_response,
    mark_received,
    parse_message,
)
from atende.sip.refusals import Refusals, invite_key, read_new_invite, refusal
from atende.sip.screening import warning
from atende.sip.transaction import (
    Action,
    Address,
    ClientTransaction,
    Deliver,
    Send,
    ServerTransaction,
    TimedOut,
    TransactionLayer,
    new_branch,
)

log = logging.getLogger(__name__)

USER_AGENT = "atende/0.1"
# What a look at a datagram's first lines decided under load: answered there (refused,
# or a refused INVITE's ACK), a new call admitted, or nothing (the full parser's turn).
Verdict = Literal["answered", "admitted", "unjudged"]


class Guard(Protocol):
    """Flood and abuse protection (telephony/abuse.py implements it)."""

    def is_blocked(self, ip: str, now: float) -> bool: ...

    def allow(self, ip: str, now: float, peer: bool = False) -> bool: ...

    def failure(self, ip: str, now: float, reason: str, user: str | None = None,
                protected: bool = False) -> None: ...

    def user_locked(self, user: str, now: float) -> bool: ...


class TransactionUser(Protocol):
    """What the user agent hands its requests and dialog timers to (the SIP channel)."""

    def on_request(self, req: Request, txn: ServerTransaction | None, source: Address) -> None:
        ...

    def on_ack_timeout(self, dialog: Dialog) -> None:
        ...

    def on_2xx_retransmission(self, resp: Response) -> None:
        """A 2xx to our INVITE came again: our ACK was lost, so it must go again."""

    def trunk_address(self, ip: str) -> bool:
        """Whether ``ip`` is a trunk's PBX or carrier (its own, higher request rate)."""
        ...


def local_ip_towards(host: str) -> str:
    """The address our kernel would use to reach ``host``: a routing lookup, no packet sent."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        try:
            s.connect((host, 9))
            return str(s.getsockname()[0])
        except OSError:
            return "127.0.0.1"


def retry_later(req: Request, seconds: int, reason: str) -> Response:
    """503 with Retry-After (RFC 3261 §21.5.4): busy for now, try again then."""
    resp = make_response(req, 503, reason)
    resp.headers.add("Retry-After", str(seconds))
    return resp


def address_for_uri(host: str, port: int | None, transport: str) -> Address:
    if transport == "tls":
        return ("tls", host, port or 5061)
    return (transport if transport == "tcp" else "udp", host, port or 5060)


class UserAgent:
    """SIP over the network for atende: the transports, the transaction layer and its
    timers, the 2xx retransmissions of the dialogs it is given, and the requests that go
    to the one transaction user it serves (the SIP channel)."""

    def __init__(self, clock: Callable[[], float] | None = None,
                 public_ip: str | None = None, guard: Guard | None = None,
                 load: LoadMonitor | None = None) -> None:
        self.tu: TransactionUser | None = None
        self.load = load or LoadMonitor()  # the process's, shared by its user agents
        self.transport = SipTransport(self._on_data, self._on_transport_error,
                                      on_wait=self.load.waited)
        self.layer = TransactionLayer()
        self._dialogs: dict[tuple[str, str, str], Dialog] = {}
        # (deadline, order, dialog) of dialogs with a 2xx to repeat until its ACK, the
        # soonest first; an entry whose dialog moved on is dropped when it surfaces.
        # (Scanning every live call's dialog after every message was O(calls) each.)
        self._repeats: list[tuple[float, int, Dialog]] = []
        self._order = itertools.count()
        self.public_ip = public_ip
        self._clock = clock
        # One timer, armed for the earliest deadline of the transactions and dialogs.
        self._running = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None  # its deadline, on our clock
        self._pending: dict[ClientTransaction, asyncio.Future[Response]] = {}
        self._provisional: dict[ClientTransaction, Callable[[Response], None]] = {}
        self.guard = guard
        self._refusals = Refusals()  # new INVITEs refused without a transaction
        self.bind_host = "0.0.0.0"
        self.stats = {"received": 0, "malformed": 0, "dropped": 0, "errors": 0, "shed": 0}

    def serve(self, tu: TransactionUser) -> None:
        """Hand incoming requests and dialog timers to ``tu`` from now on."""
        self.tu = tu

    def track(self, dialog: Dialog) -> None:
        """Run ``dialog``'s 2xx retransmission timers until ``forget``: those of each 2xx
        to an INVITE sent through ``respond`` in it."""
        self._dialogs[dialog.id] = dialog
        self._watch(dialog)

    def forget(self, dialog: Dialog) -> None:
        self._dialogs.pop(dialog.id, None)

    def _watch(self, dialog: Dialog) -> None:
        if (at := dialog.next_deadline()) is not None:
            heapq.heappush(self._repeats, (at, next(self._order), dialog))
            self._schedule()

    def invite_for_cancel(self, cancel: Request) -> ServerTransaction | None:
        """The INVITE server transaction a CANCEL is for (RFC 3261 §9.2), while it is
        live; ``invite_answered`` tells an answered one from none."""
        return self.layer.find_invite_for_cancel(cancel)

    def invite_answered(self, cancel: Request) -> bool:
        return self.layer.answered_invite(cancel)

    def now(self) -> float:
        return self._clock() if self._clock else asyncio.get_running_loop().time()

    async def start(self, host: str, port: int, tls_port: int | None = None,
                    tls_server: ssl.SSLContext | None = None) -> None:
        self.bind_host = host
        await self.transport.start(host, port, tls_port, tls_server)
        self._running = True
        self._schedule()

    async def close(self) -> None:
        self._running = False
        if self._timer is not None:
            self._timer.cancel()
        await self.transport.close()

    @property
    def port(self) -> int:
        return self.transport.port

    def port_for(self, transport: str) -> int:
        """Our listening port for ``transport`` (TLS has a port of its own)."""
        if transport == "tls" and self.transport.tls_port is not None:
            return self.transport.tls_port
        return self.transport.port

    def contact_uri(self, user: str, peer: Address) -> str:
        """A Contact URI at which ``peer`` reaches us, over the transport it uses."""
        host = self.advertised_host(peer[1])
        host = f"[{host}]" if ":" in host else host
        transport = "" if peer[0] == "udp" else f";transport={peer[0]}"
        return f"sip:{user}@{host}:{self.port_for(peer[0])}{transport}"

    def advertised_host(self, peer_host: str) -> str:
        if self.public_ip:
            return self.public_ip
        if self.bind_host not in ("0.0.0.0", "::"):
            return self.bind_host
        return local_ip_towards(peer_host)

    # input ------------------------------------------------------------------------------
    def _on_data(self, data: bytes, source: Address) -> None:
        self.stats["received"] += 1
        if not data.strip(b"\r\n\x00 "):
            return  # UDP keep-alives (CRLF, zero bytes)
        if (self.guard is not None and not data.startswith((b"ACK ", b"SIP/2.0 "))
                and self.guard.is_blocked(source[1], self.now())):
            # Dropped unanswered. ACKs still pass: they stop our own retransmissions of
            # the final responses that got the address blocked. So do responses: they
            # answer our own requests (REGISTER, calls we place), to a PBX that may have
            # been blocked for somebody else's failures.
            return
        judged: Verdict = "unjudged"
        if source[0] == "udp" and (self.load.refusing or len(self._refusals)):
            judged = self._judge_quickly(data, source)
            if judged == "answered":
                return
        try:
            msg = parse_message(data, stream=source[0] != "udp")
        except SipParseError as exc:
            self.stats["malformed"] += 1
            self._reject_malformed(exc, source)
            return
        except Exception:  # a parser bug must not close a connection or stop the loop
            self.stats["errors"] += 1
            log.exception("error parsing a SIP message from %s:%s", source[1], source[2])
            return
        # New calls and registrations are shed past capacity or over the rate; a request
        # sent again goes to its transaction as always (answering it 503 would end a
        # call that is being set up, and its caller would be answered twice).
        if (isinstance(msg, Request) and msg.method in ("INVITE", "REGISTER")
                and "tag=" not in (msg.headers.get("To") or "")
                and not self.layer.retransmission(msg)):
            if (msg.method == "INVITE" and judged == "unjudged"
                    and not self.load.admit(self.now())):
                self.stats["shed"] += 1
                self._refuse(msg, source, retry_later(
                    msg, self.load.retry_after(),
                    "Draining" if self.load.draining else "Overloaded"))
                return
            if self.guard is not None:
                peer = self.tu is not None and self.tu.trunk_address(source[1])
                if not self.guard.allow(source[1], self.now(), peer):
                    if peer:  # a trunk's PBX or carrier: told when to retry, not ignored
                        self._refuse(msg, source, retry_later(msg, 1, "Too Many Requests"))
                    return  # a flood from anyone else: dropped without an answer
        try:
            if isinstance(msg, Request):
                mark_received(msg, source[1], source[2])
            self._run(self.layer.receive(msg, source, self.now()))
        except Exception:
            # Whatever a peer sends must never take the server down.
            self.stats["errors"] += 1
            log.exception("error handling SIP message from %s:%s", source[1], source[2])
            if isinstance(msg, Request) and msg.method not in ("ACK",):
                self.send_stateless(make_response(msg, 500), source)

    def _judge_quickly(self, data: bytes, source: Address) -> Verdict:
        """Past capacity, a well-formed new INVITE the load does not admit is answered
        503 from the little of it read (`sip/refusals.py`), without a transaction: a
        flood costs less to refuse than calls cost to serve. Copies of it get the same
        answer, load or not; its ACK is ignored. "admitted": a new call the load took;
        "unjudged": the message is the full parser's to judge."""
        now = self.now()
        self._refusals.expire(now)
        if data.startswith(b"ACK "):
            key = invite_key(data)
            done = key is not None and self._refusals.acked(key, now)
            return "answered" if done else "unjudged"
        if not self.load.refusing:  # only a copy of one refused while it was is refused
            key = invite_key(data)
            answer = None if key is None else self._refusals.answer(key)
            if answer is None:
                return "unjudged"
            self.transport.send(answer, source)
            return "answered"
        invite = read_new_invite(data)
        if invite is None or self.layer.knows(invite.key):
            return "unjudged"  # not one, or a copy of a call being set up (never refused)
        answer = self._refusals.answer(invite.key)
        if answer is None:
            if self.load.admit(now):
                return "admitted"
            self.stats["shed"] += 1
            answer = refusal(invite, (source[1], source[2]), new_tag(), 503,
                             "Draining" if self.load.draining else "Overloaded",
                             [("Retry-After", str(self.load.retry_after())),
                              ("Server", USER_AGENT)])
            self._refusals.add(invite.key, answer, now)
        self.transport.send(answer, source)
        return "answered"

    def _refuse(self, req: Request, source: Address, resp: Response) -> None:
        """Answer a new request ``resp`` through a transaction of its own, never handing
        it to the transaction user: a copy of it sent again meanwhile then gets the same
        answer. (Answered statelessly, a copy still queued when load fell started the
        call its caller had been told to retry, and nobody ACKed it for 32 s.)"""
        mark_received(req, source[1], source[2])
        for action in self.layer.receive(req, source, self.now()):
            if isinstance(action, Deliver) and isinstance(action.transaction,
                                                          ServerTransaction):
                self.respond(action.transaction, resp)

    def _on_transport_error(self, address: Address, reason: str) -> None:
        """A connection could not be opened: its requests fail now with a 503 that says
        why, rather than after 32 s of Timer B/F."""
        for txn in self.layer.transport_error(address):
            fut = self._pending.pop(txn, None)
            self._provisional.pop(txn, None)
            if fut is not None and not fut.done():
                fut.set_result(local_response(txn.request, 503, reason))

    def _reject_malformed(self, exc: SipParseError, source: Address) -> None:
        msg = exc.message
        if isinstance(msg, Request) and msg.method != "ACK":
            try:
                mark_received(msg, source[1], source[2])
                resp = make_response(msg, exc.status)
                resp.headers.add("Warning", warning(exc.reason))
                self.send_stateless(resp, source)
                log.info("rejected malformed %s from %s:%s with %d: %s", msg.method, source[1],
                         source[2], exc.status, exc.reason)
                return
            except Exception:
                pass
        self.stats["dropped"] += 1
        log.info("dropped unparseable message from %s:%s: %s", source[1], source[2], exc.reason)

    def _run(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Send):
                m = action.message
                self.transport.send(m if isinstance(m, bytes) else m.encode(), action.address)
            elif isinstance(action, Deliver):
                self._deliver(action)
            elif isinstance(action, TimedOut):
                txn = action.transaction
                if isinstance(txn, ClientTransaction):
                    fut = self._pending.pop(txn, None)
                    self._provisional.pop(txn, None)
                    if fut is not None and not fut.done():
                        fut.set_result(local_response(txn.request, 408))
        self._schedule()

    def _deliver(self, d: Deliver) -> None:
        msg = d.message
        if isinstance(msg, Request):
            if self.tu is not None:
                stxn = d.transaction if isinstance(d.transaction, ServerTransaction) else None
                self.tu.on_request(msg, stxn, d.source)
            return
        txn = d.transaction
        if isinstance(txn, ClientTransaction) and msg.status < 200:
            on_provisional = self._provisional.get(txn)
            if on_provisional is not None:
                on_provisional(msg)
            return
        fut = self._pending.pop(txn, None) if isinstance(txn, ClientTransaction) else None
        if isinstance(txn, ClientTransaction):
            self._provisional.pop(txn, None)
        if fut is not None and not fut.done():
            fut.set_result(msg)
        elif msg.cseq.method == "INVITE" and 200 <= msg.status < 300:
            # A retransmitted 2xx: our ACK was lost, the dialog's owner must send it again.
            if self.tu is not None:
                self.tu.on_2xx_retransmission(msg)

    # output -----------------------------------------------------------------------------
    def respond(self, txn: ServerTransaction, resp: Response) -> None:
        if "Server" not in resp.headers:
            resp.headers.add("Server", USER_AGENT)
        self._run(self.layer.send_response(txn, resp, self.now()))
        if 200 <= resp.status < 300 and resp.cseq.method == "INVITE":
            # Answered in a dialog we track (a call's INVITE or re-INVITE): repeated
            # until ACKed. The request came from the peer: its To is us.
            dialog = self._dialogs.get((resp.call_id, resp.to.tag or "", resp.from_.tag or ""))
            if dialog is not None:
                self._watch(dialog)

    def send_stateless(self, msg: Message, address: Address) -> None:
        self.transport.send(msg.encode(), address)

    def send_2xx_retransmission(self, resp: Response, address: Address) -> None:
        self.transport.send(resp.encode(), address)

    def add_via(self, req: Request, address: Address) -> Request:
        """Our Via on a request about to go to ``address`` (a new branch: a transaction of
        its own). One that already carries its Via (a CANCEL, which must repeat its
        INVITE's) keeps it."""
        if "Via" not in req.headers:
            host = self.advertised_host(address[1])
            via = Via(address[0].upper(), host, self.port_for(address[0]),
                      {"branch": new_branch(), "rport": None})
            req.headers.insert_first("Via", str(via))
        return req

    async def request(self, req: Request, address: Address,
                      on_provisional: Callable[[Response], None] | None = None) -> Response:
        """Send a request in a client transaction; resolves with the final response
        (a synthetic 408 when Timer B/F fires)."""
        self.add_via(req, address)
        if "User-Agent" not in req.headers:
            req.headers.add("User-Agent", USER_AGENT)
        txn, actions = self.layer.send_request(req, address, self.now())
        fut: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._pending[txn] = fut
        if on_provisional is not None:
            self._provisional[txn] = on_provisional
        self._run(actions)
        return await fut

    async def request_with_credentials(self, req: Request,
                                       again: Callable[[], Request | None], address: Address,
                                       credentials: DigestClient | None) -> Response:
        """Send ``req``; when the far end challenges it (401/407) and we have
        ``credentials``, send the request ``again`` builds (a new CSeq) with the answer,
        by the rule every request of ours follows (ChallengeResponder)."""
        responder = None if credentials is None else ChallengeResponder(
            DigestClient(credentials.username, credentials.password))
        while True:
            resp = await self.request(req, address)
            if responder is None or resp.status not in (401, 407):
                return resp
            if not responder.retry(resp):
                return resp
            retry = again()
            if retry is None:
                return resp
            req = retry
            answer = responder.credentials(req.method, str(req.uri))
            if answer is not None:
                req.headers.add(*answer)

    # timers -----------------------------------------------------------------------------
    def _next_deadline(self) -> float | None:
        ours, theirs = self._next_repeat(), self.layer.next_deadline()
        if ours is None or theirs is None:
            return ours if theirs is None else theirs
        return min(ours, theirs)

    def _next_repeat(self) -> float | None:
        """When the next 2xx is due again (or given up on), once entries of dialogs
        since ACKed, ended or rescheduled are dropped."""
        heap = self._repeats
        while heap:
            at, _, dialog = heap[0]
            if at == dialog.next_deadline() and self._dialogs.get(dialog.id) is dialog:
                return at
            heapq.heappop(heap)
        return None

    def _schedule(self) -> None:
        """Arm the timer for the earliest deadline, unless it is armed for one as early.
        (Called after every message: a deadline that went away fires the timer for
        nothing, which costs less than re-arming it at every message.)"""
        if not self._running:
            return
        deadline = self._next_deadline()
        if deadline is None or (self._timer_at is not None and self._timer_at <= deadline):
            return
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        self._timer_at = deadline
        self._timer = loop.call_at(loop.time() + max(0.0, deadline - self.now()), self._fire)

    def _fire(self) -> None:
        self._timer = self._timer_at = None
        self.tick()
        self._schedule()

    def tick(self) -> None:
        now = self.now()
        try:
            self._run(self.layer.tick(now))
            while (at := self._next_repeat()) is not None and at <= now:
                _, _, dialog = heapq.heappop(self._repeats)
                resend, timed_out = dialog.tick(now)
                if resend is not None and dialog.pending_2xx_address is not None:
                    self.send_2xx_retransmission(resend, dialog.pending_2xx_address)
                if (again := dialog.next_deadline()) is not None:
                    heapq.heappush(self._repeats, (again, next(self._order), dialog))
                if timed_out and self.tu is not None:
                    self.tu.on_ack_timeout(dialog)
        except Exception:
            log.exception("SIP timer processing failed")
