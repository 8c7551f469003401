"""Control of calls in progress: cancel, transfer (blind, or bridged by atende). A call
live on another atende node is acted on by that node, asked through Redis."""

from __future__ import annotations

from typing import Any, Literal, Protocol

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from atende.api import examples as ex
from atende.api.schemas import CallSummary
from atende.calls.live import LiveCalls
from atende.calls.queue import CallQueue
from atende.calls.transfers import Transfers
from atende.store import models
from atende.store.db import Store
from atende.telephony.trunks import DestinationError


class TransferIn(BaseModel):
    """Where to transfer a call in progress, and how."""

    model_config = ConfigDict(json_schema_extra=ex.examples(ex.TRANSFER_IN))

    to: str = Field(..., min_length=1, max_length=256,
                    description="a SIP URI, or a number or extension; on a trunk call it is "
                    "formatted for the trunk and checked against its allowed_countries",
                    examples=["reception", "+351212345678", "sip:sales@pbx.example.com"])
    timeout_s: float = Field(60, ge=5, le=300, description="give up waiting for the outcome "
                             "after this long (refer; a bridged call rings for 30 s)")
    mode: Literal["refer", "bridge"] = Field(
        "refer", description="refer: the other party is asked to call the target (SIP "
        "REFER); bridge: atende calls the target on the call's trunk, the caller hearing "
        "ringback, and joins the two calls once it answers")


class TransferOut(BaseModel):
    """How a transfer ended."""

    model_config = ConfigDict(json_schema_extra=ex.examples(ex.TRANSFER_OUT))

    outcome: str = Field(description="transferred (refer: the call left atende; bridge: "
                         "the calls are joined), failed (the target did not take it: the "
                         "assistant stays on the call), refused (the other party will not "
                         "transfer) or timeout",
                         examples=["transferred"])
    sip_status: int | None = Field(description="the REFER's status when refused, else the "
                                   "target's final status as NOTIFYed", examples=[200])
    reason: str = Field(examples=["200 OK"])
    progress: list[int] = Field(description="statuses NOTIFYed while the target was called",
                                examples=[[100, 180, 200]])


class Peers(Protocol):
    """The other atende nodes, asked to act on the calls they have (cluster/shared.py)."""

    async def ask(self, node_id: str, kind: str, args: dict[str, Any], timeout_s: float
                  ) -> dict[str, Any]: ...


async def cancel_here(queue: CallQueue, args: dict[str, Any]) -> dict[str, Any]:
    """Another node's API asks this one to cancel one of its calls."""
    return {"doing": await queue.cancel(str(args["call_id"]))}


async def transfer_here(live: LiveCalls, transfers: Transfers, args: dict[str, Any]
                        ) -> dict[str, Any]:
    """Another node's API asks this one to transfer one of its calls: the outcome, or
    the HTTP status and words it would have answered."""
    try:
        out = await _transfer(live, transfers, str(args["call_id"]),
                              TransferIn.model_validate(args["body"]))
    except HTTPException as exc:
        return {"status": exc.status_code, "detail": exc.detail}
    return {"result": out.model_dump()}


async def _transfer(live: LiveCalls, transfers: Transfers, call_id: str, body: TransferIn
                    ) -> TransferOut:
    leg = live.leg(call_id)
    if leg is None:
        raise HTTPException(404, f"no call in progress with id {call_id!r}")
    try:
        if body.mode == "bridge":
            result = await transfers.dial_and_join(leg, body.to)
        else:
            result = await transfers.blind(leg, transfers.target(call_id, body.to),
                                           body.timeout_s)
    except DestinationError as exc:
        raise HTTPException(422, f"to: {exc}") from None
    return TransferOut(outcome=result.outcome, sip_status=result.status,
                       reason=result.reason, progress=list(result.progress))


class CallControl:
    """Acting on a call wherever it is live: here, or on the node that has it (asked
    through Redis). Shared by the API and the dashboard."""

    def __init__(self, live: LiveCalls, transfers: Transfers, queue: CallQueue, store: Store,
                 peers: Peers | None = None) -> None:
        self.live = live
        self.transfers = transfers
        self.queue = queue
        self.store = store
        self.peers = peers

    def _elsewhere(self, row: models.Call | None) -> str | None:
        """The node a call is live on, if it is another."""
        if (row is None or row.status not in models.LIVE_STATUSES
                or row.node_id in (None, self.store.node_id)):
            return None
        return row.node_id

    async def _ask(self, node_id: str, kind: str, args: dict[str, Any], timeout_s: float
                   ) -> dict[str, Any]:
        if self.peers is None:
            raise HTTPException(409, f"the call is live on atende node {node_id}: send "
                                "this request to that node (with ATENDE_REDIS_URL set, "
                                "any node passes it on)")
        try:
            return await self.peers.ask(node_id, kind, args, timeout_s)
        except Exception as exc:  # Unreachable, or Redis failing as it is asked
            raise HTTPException(503, f"the call is live on atende node {node_id}, which "
                                f"could not be asked: {exc}",
                                headers={"Retry-After": "5"}) from None

    async def cancel(self, call_id: str) -> str | None:
        """Stop the call: what it was doing (queued, dialing, in_progress), or None when
        it is over or unknown. HTTPException when its node cannot be asked."""
        doing = await self.queue.cancel(call_id)
        if doing is None:
            node = self._elsewhere(await self.store.get_call(call_id))
            if node is not None:
                doing = (await self._ask(node, "cancel", {"call_id": call_id}, 10))["doing"]
        return doing

    async def transfer(self, call_id: str, body: TransferIn) -> TransferOut:
        node = None if self.live.leg(call_id) is not None else self._elsewhere(
            await self.store.get_call(call_id))
        if node is None:
            return await _transfer(self.live, self.transfers, call_id, body)
        answer = await self._ask(node, "transfer", {"call_id": call_id,
                                                    "body": body.model_dump()},
                                 body.timeout_s + 35)  # a bridged call rings for 30 s
        if "result" not in answer:
            raise HTTPException(int(answer.get("status", 500)), str(
                answer.get("detail") or answer.get("error") or "the transfer failed"))
        return TransferOut.model_validate(answer["result"])


def live_router(control: CallControl) -> APIRouter:
    router = APIRouter(tags=["calls"])
    store = control.store

    @router.post("/v1/calls/{call_id}/cancel", response_model=CallSummary, status_code=202,
                 responses={404: {"description": "no such call"},
                            409: {"description": "the call is already over (or live on "
                                  "another atende node, and there is no Redis to ask it "
                                  "through)"},
                            503: {"description": "the call is live on another atende "
                                  "node, which could not be asked"}})
    async def cancel(call_id: str) -> CallSummary:
        """Stop a call: one waiting in the queue is never placed, one still ringing is
        cancelled, one in progress is hung up. It ends with outcome `cancelled` (unless the
        conversation had already settled one), and its result webhook is sent as for any
        call."""
        doing = await control.cancel(call_id)
        row = await store.get_call(call_id)
        if row is None:
            raise HTTPException(404, f"no call with id {call_id!r}")
        if doing is None:
            raise HTTPException(409, f"the call is already over ({row.status})")
        return CallSummary.of(row)

    @router.post("/v1/calls/{call_id}/transfer", response_model=TransferOut,
                 responses={404: {"description": "no call in progress with that id"},
                            409: {"description": "the call is live on another atende "
                                  "node, and there is no Redis to ask it through"},
                            422: {"description": "the target cannot be called"},
                            503: {"description": "the call is live on another atende "
                                  "node, which could not be asked"}})
    async def transfer(call_id: str, body: TransferIn) -> TransferOut:
        """Transfer a call in progress and wait for the outcome. `refer`: a blind transfer
        (SIP REFER), where on success atende leaves the call (hang-up cause `transferred`).
        `bridge`: atende calls the target itself and joins the calls until either party
        hangs up (event `bridge_ended`)."""
        return await control.transfer(call_id, body)

    return router
