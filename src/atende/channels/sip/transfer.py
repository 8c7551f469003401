"""Blind transfers over SIP, both ways (RFC 3515, RFC 5589): our REFER followed through
its NOTIFYs to the referred call's outcome, and the NOTIFYs that tell a party who
transferred us how the call it asked for went. The SIP channel decides; this exchanges."""

from __future__ import annotations

import asyncio
import logging
import re

from atende.channels.leg import CallRouter, TransferResult
from atende.channels.sip.dialog_call import DialogCall
from atende.channels.sip.ua import UserAgent
from atende.sip.dialog import Dialog
from atende.sip.message import Response
from atende.sip.refer import Progress
from atende.sip.uri import NameAddr, SipUri, UriError

log = logging.getLogger(__name__)

_TARGET_USER = re.compile(r"^[A-Za-z0-9+*#_.\-]{1,64}$")
IN_DIALOG_WAIT_S = 40.0  # past Timer F (32 s): a request of ours that got no answer


async def carry_out_refer(ua: UserAgent, router: CallRouter, call: DialogCall, user: str,
                          headers: tuple[tuple[str, str], ...], event_id: int) -> None:
    """A REFER we accepted: the router calls ``user``, and the party who transferred us
    hears how it went (NOTIFYs); we leave the call once the transfer succeeded."""
    await notify_transferor(ua, call, event_id, 100, "Trying", final=False)
    try:
        status, reason = await router.take_transfer(call.leg, user, headers)
    except Exception:
        log.exception("call %s: carrying out a transfer failed", call.info.id)
        status, reason = None, "internal error"
    # A sipfrag needs a status line: no final answer at all reads as 503.
    code = status if status is not None and status >= 200 else 503
    await notify_transferor(ua, call, event_id, code, reason, final=True)
    if 200 <= code < 300:
        await call.leg.hangup("transferred")


async def refer(ua: UserAgent, call: DialogCall, target: str, wait_s: float
                ) -> TransferResult:
    """REFER the peer of ``call`` to ``target`` and follow the referred call through
    the NOTIFYs until its final status."""
    session = call.session
    if session.transferring:
        return TransferResult("refused", None, "a transfer is already in progress")
    try:
        uri = str(_target_uri(session.dialog, target))
    except (UriError, ValueError) as exc:
        return TransferResult("refused", None, f"bad transfer target: {exc}")
    # Waiting before sending: the first NOTIFY may overtake the 202.
    done: asyncio.Future[Progress] = asyncio.get_running_loop().create_future()
    call.transfer = done
    log.info("call %s: transferring to %s", call.info.id, uri)
    resp: Response | None = None
    try:
        async with asyncio.timeout(wait_s):
            resp = await ua.request_with_credentials(
                session.refer(uri), lambda: session.refer(uri), call.peer,
                call.credentials)
            if resp.status < 300:
                await done
    except TimeoutError:
        pass
    finally:
        call.transfer = None
        statuses = session.transfer_over()
    if resp is not None and resp.status >= 300:
        return TransferResult("refused", resp.status,
                              f"{resp.status} {resp.reason}".strip())
    if not done.done():
        return TransferResult("timeout", None, f"no outcome within {wait_s:g} s",
                              statuses)
    final = done.result()
    words = f"{final.status} {final.reason}".strip()
    if 200 <= final.status < 300:
        return TransferResult("transferred", final.status, words, statuses)
    if final.status == 0:
        return TransferResult("failed", None, f"ended without an outcome ({final.reason})",
                              statuses)
    return TransferResult("failed", final.status, words, statuses)


def transfer_progress(call: DialogCall, progress: Progress) -> None:
    """A NOTIFY about our REFER: its final status settles the transfer."""
    log.info("call %s: transfer progress %d %s", call.info.id, progress.status,
             progress.reason)
    done = call.transfer
    if progress.final and done is not None and not done.done():
        done.set_result(progress)


async def notify_transferor(ua: UserAgent, call: DialogCall, event_id: int, status: int,
                            reason: str, final: bool) -> None:
    """Tell the party that transferred us how the referred call goes (a NOTIFY with a
    sipfrag); nothing once it has hung up."""
    session = call.session
    req = session.notify(event_id, status, reason, final)
    if req is None:
        return  # the transferor hung up already: nobody to tell
    try:
        async with asyncio.timeout(IN_DIALOG_WAIT_S):
            resp = await ua.request_with_credentials(
                req, lambda: session.notify(event_id, status, reason, final), call.peer,
                call.credentials)
        if resp.status >= 300:
            log.info("call %s: transfer NOTIFY answered %d", call.info.id, resp.status)
    except TimeoutError:
        log.warning("call %s: transfer NOTIFY got no answer", call.info.id)


def _target_uri(dialog: Dialog, target: str) -> SipUri:
    """A SIP URI as given, or a bare user/number at the host of the party's own address."""
    target = target.strip()
    if target.lower().startswith(("sip:", "sips:")):
        return SipUri.parse(target)
    if not _TARGET_USER.match(target):
        raise ValueError(f"{target!r} is neither a SIP URI nor a user or number")
    peer = NameAddr.parse(dialog.remote_uri).uri
    return SipUri(peer.host, user=target, port=peer.port)
