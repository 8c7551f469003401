"""Talk to an assistant from the browser: a WebRTC call (microphone in, speaker out)
through atende's own WebRTC channel, which appears as a call like any other, with its
record. The page's offer comes over the signed-in session (the signalling)."""

from __future__ import annotations

import logging
import uuid

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse

from atende.api.assistants import AssistantService
from atende.channels.leg import CallInfo
from atende.channels.webrtc.channel import CallRefused, NotAnswered, WebRtcChannel
from atende.dashboard.web import HEADERS, PageError, Web, first, refusal

log = logging.getLogger(__name__)
MAX_SDP = 20_000


def talk_pages(web: Web, assistants: AssistantService, channel: WebRtcChannel
               ) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/assistants/{assistant_id}/talk")
    async def page(request: Request, assistant_id: str) -> Response:
        who = await web.need(request, admin=True)
        try:
            a = await assistants.get(assistant_id, None)
        except HTTPException as exc:
            raise PageError(exc.status_code, refusal(exc)) from None
        return web.page("talk.html", who=who, assistant=a)

    @router.post("/assistants/{assistant_id}/talk")
    async def offer(request: Request, assistant_id: str) -> Response:
        """The browser's SDP offer → atende's answer and the call's id (JSON)."""
        who, form = await web.posted(request, admin=True)
        sdp = first(form, "sdp")
        if not sdp.startswith("v=0") or len(sdp) > MAX_SDP:
            return said(400, "the browser's offer is not an SDP offer")
        try:
            a = await assistants.get(assistant_id, None)
        except HTTPException as exc:
            return said(exc.status_code, refusal(exc))
        extra = {"assistant_id": a.id}
        if a.domain_uuid:
            extra["domain_uuid"] = a.domain_uuid
        info = CallInfo(id=uuid.uuid4().hex, channel="webrtc", direction="inbound",
                        from_uri=f"webrtc:{who.user.username}", from_user=who.user.username,
                        to_uri=f"webrtc:{a.extension}", to_user=a.extension,
                        remote_address=request.client.host if request.client else None,
                        extra=extra)
        try:
            answer = await channel.answer(info, sdp.replace("\r\n", "\n").replace(
                "\n", "\r\n"))
        except CallRefused as exc:
            return said(503 if exc.rejection.value in ("busy", "unavailable") else 403,
                        f"the assistant cannot take the call: {exc}")
        except NotAnswered as exc:
            return said(503, f"the assistant did not answer: {exc}")
        except ValueError as exc:
            return said(400, str(exc))
        return JSONResponse({"call_id": info.id, "sdp": answer}, headers=HEADERS)

    @router.post("/talk/{call_id}/hangup")
    async def hangup(request: Request, call_id: str) -> Response:
        await web.posted(request, admin=True)
        if not await channel.hangup(call_id):
            return said(409, "that call is already over")
        return JSONResponse({"ended": call_id}, headers=HEADERS)

    return router


def said(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=HEADERS)
