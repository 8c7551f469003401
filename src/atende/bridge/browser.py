"""The bridge's WebRTC side without its HTTP: calls that browsers place from the bridge's
page, each followed from its offer to its end, and who may place them.

A browser's call goes through the WebRTC channel to the bridge's router like a SIP
client's (the far leg is placed to ``sipServer``); the SDP answer is given once the far
side answers, so a browser is never connected to a call that rings on. The page follows
its call by asking for the next change of state (``wait``): calling → ringing →
answered (with the SDP answer) → ended, or refused/failed with why.

Who may: a browser that knows the listener's credentials (``sipListenUser`` and
``sipListenSecret``, over HTTP Basic), or a page atende opened itself in a remote Chrome
with a token good for that one call; with no listener credentials set, the direct-call
policy's addresses only (as on the SIP side)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from atende.aio import BackgroundTasks
from atende.bridge.settings import BridgeConfig
from atende.channels.leg import CallInfo, Rejection
from atende.channels.sip.ua import Guard
from atende.channels.webrtc.channel import CallRefused, NotAnswered, WebRtcChannel
from atende.sip.grammar import is_user
from atende.telephony.guard import DirectCallPolicy

log = logging.getLogger(__name__)
TOKEN_TTL_S = 120.0  # a page atende opens must start its call within this
KEEP_ENDED_S = 60.0  # an ended call's last state stays readable this long
MAX_SDP = 20_000
FINAL = ("refused", "failed", "ended")
# What a router's rejection means to the browser, as SIP would say it.
REJECTED = {Rejection.NOT_FOUND: (404, "Not Found"), Rejection.BUSY: (486, "Busy Here"),
            Rejection.UNAVAILABLE: (480, "Temporarily Unavailable")}


@dataclass
class BrowserCall:
    """One browser's call as its page sees it."""

    id: str
    to: str
    state: str = "calling"  # (opening,) calling, ringing, answered, ended; refused, failed
    sdp: str = ""  # the answer, once answered
    status: int | None = None  # SIP-style status of a refusal
    reason: str = ""
    changed: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def shown(self) -> dict[str, Any]:
        out: dict[str, Any] = {"call_id": self.id, "to": self.to, "state": self.state}
        if self.sdp:
            out["sdp"] = self.sdp
        if self.status is not None:
            out["status"] = self.status
        if self.reason:
            out["reason"] = self.reason
        return out

    def move(self, state: str, **what: Any) -> None:
        for name, value in what.items():
            setattr(self, name, value)
        self.state = state
        self.changed.set()
        self.changed = asyncio.Event()


def check_call(to: str, sdp: str) -> str | None:
    """What is wrong with a page's call request, if anything."""
    if not to or not is_user(to) or "@" in to or ":" in to or len(to) > 64:
        return "to: give the number or extension to call (letters, digits, + * # . - _)"
    if not sdp.startswith("v=0") or len(sdp) > MAX_SDP:
        return "sdp: the browser's offer is not an SDP offer"
    return None


@dataclass(frozen=True)
class Grant:
    """What a token allows: the one call a page atende opened may place."""

    call_id: str
    to: str
    expires: float


class PageTokens:
    """Tokens for the pages atende opens in a remote Chrome (no password goes there)."""

    def __init__(self) -> None:
        self._grants: dict[str, Grant] = {}

    def issue(self, to: str, now: float, call_id: str | None = None) -> tuple[str, Grant]:
        self._grants = {t: g for t, g in self._grants.items() if g.expires > now}
        token = secrets.token_urlsafe(24)
        grant = Grant(call_id or uuid.uuid4().hex, to, now + TOKEN_TTL_S)
        self._grants[token] = grant
        return token, grant

    def check(self, token: str, now: float) -> Grant | None:
        grant = self._grants.get(token)
        if grant is None or grant.expires <= now:
            return None
        return grant


@dataclass(frozen=True)
class Caller:
    """Who a request on the page comes from: ``grant`` when it holds a token."""

    name: str
    grant: Grant | None = None


class PageAuth:
    """Who may use the bridge's page."""

    REALM = "atende bridge"

    def __init__(self, config: Callable[[], BridgeConfig], direct: DirectCallPolicy,
                 tokens: PageTokens, guard: Guard | None) -> None:
        self._config = config
        self.direct = direct
        self.tokens = tokens
        self._guard = guard

    def check(self, ip: str, authorization: str | None, token: str | None,
              now: float) -> Caller | int:
        """The caller, or the HTTP status refusing it (401 asks for credentials)."""
        if self._guard is not None and self._guard.is_blocked(ip, now):
            return 403
        if token:
            grant = self.tokens.check(token, now)
            return Caller("chrome", grant) if grant is not None else 401
        config = self._config()
        if not config.listen_user:
            return Caller("browser") if self.direct.allows(ip) else 403
        if not authorization:
            return 401
        user, password = _basic(authorization)
        if (hmac.compare_digest(user.encode(), config.listen_user.encode())
                and hmac.compare_digest(password.encode(), config.listen_secret.encode())):
            return Caller(user)
        if self._guard is not None:
            self._guard.failure(ip, now, "bad bridge page credentials", user=user or None)
        log.warning("bridge page from %s: bad credentials", ip)
        return 401


def _basic(header: str) -> tuple[str, str]:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return "", ""
    try:
        user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    return user, password


class BrowserCalls:
    """The calls placed from the bridge's page, followed until a while after they end."""

    def __init__(self, channel: WebRtcChannel, addresses: Callable[[], Sequence[str]],
                 now: Callable[[], float]) -> None:
        self.channel = channel
        self._addresses = addresses  # ICE host candidates (wasmServerIP when set)
        self._now = now
        self._calls: dict[str, BrowserCall] = {}
        self._tasks = BackgroundTasks()

    def get(self, call_id: str) -> BrowserCall | None:
        return self._calls.get(call_id)

    def expect(self, grant: Grant) -> BrowserCall:
        """A call a page atende opens is to place (``opening`` until it does; failed if
        it does not before the grant expires)."""
        call = BrowserCall(grant.call_id, grant.to, state="opening")
        self._calls[call.id] = call
        self._tasks.spawn(self._unless_placed(call, grant.expires - self._now()))
        return call

    async def _unless_placed(self, call: BrowserCall, within: float) -> None:
        await asyncio.sleep(max(0.0, within))
        if call.state == "opening":
            call.move("failed", reason="the page did not place the call")
        if call.state in FINAL:  # never placed (or hung up before): forgotten from here
            await asyncio.sleep(KEEP_ENDED_S)
            self._calls.pop(call.id, None)

    def start(self, to: str, sdp: str, caller: Caller, remote: str | None) -> BrowserCall:
        """Place the call (it goes on in the background; follow it with ``wait``)."""
        call_id = caller.grant.call_id if caller.grant is not None else uuid.uuid4().hex
        call = self._calls.get(call_id)
        if call is not None and call.state == "opening":
            call.move("calling")
        else:
            call = BrowserCall(call_id, to)
            self._calls[call_id] = call
        info = CallInfo(id=call_id, channel="webrtc", direction="inbound",
                        from_uri=f"webrtc:{caller.name}", from_user=caller.name,
                        to_uri=f"webrtc:{to}", to_user=to, remote_address=remote)
        self._tasks.spawn(self._run(call, info, sdp))
        return call

    async def _run(self, call: BrowserCall, info: CallInfo, sdp: str) -> None:
        def ringing() -> None:
            if call.state == "calling":
                call.move("ringing")

        try:
            answer = await self.channel.answer(info, sdp, self._addresses(), ringing)
        except NotAnswered as exc:
            call.move("refused", status=exc.refused.status, reason=exc.refused.reason)
        except CallRefused as exc:
            status, reason = REJECTED.get(exc.rejection, (403, "Forbidden"))
            call.move("refused", status=status, reason=reason)
        except ValueError as exc:
            call.move("failed", reason=str(exc))
        except Exception:
            log.exception("bridge browser call %s failed", call.id)
            call.move("failed", reason="the bridge could not place the call")
        else:
            call.move("answered", sdp=answer)
            await self.channel.wait_ended(call.id)
            call.move("ended")
        await asyncio.sleep(KEEP_ENDED_S)  # the page may still ask how it ended
        self._calls.pop(call.id, None)

    async def wait(self, call_id: str, seen: str, within: float) -> BrowserCall | None:
        """The call once its state is other than ``seen`` (or as it is after
        ``within`` seconds)."""
        call = self._calls.get(call_id)
        if call is None:
            return None
        if call.state == seen and call.state not in FINAL:
            try:
                async with asyncio.timeout(within):
                    await call.changed.wait()
            except TimeoutError:
                pass
        return call

    async def end(self, call_id: str) -> bool:
        """The page hung up, or gave up while it rang (or before it called)."""
        call = self._calls.get(call_id)
        if call is None or call.state in FINAL:
            return False
        if call.state == "opening":
            call.move("ended", reason="hung up before the page called")
            return True
        return await self.channel.hangup(call_id)

    async def close(self) -> None:
        for call_id in list(self._calls):
            await self.end(call_id)
        self._tasks.cancel_all()
