"""/v1/calls/{id}/recording: a call's two-channel WAV (caller left, assistant right), for
assistants with ``record: true``; downloadable once the call is over, and deletable."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, Response
from fastapi.responses import FileResponse

from atende.media.recording import recording_path
from atende.store.db import Store
from atende.store.writes import update_call

WAV = {"content": {"audio/wav": {"schema": {"type": "string", "format": "binary"},
                                 "example": "RIFF…WAVEfmt … (the file's bytes)"}},
       "description": "16-bit stereo WAV at 16 kHz: the caller left, the assistant right"}


async def recording_file(store: Store, directory: Path, call_id: str) -> Path:
    """The recording of a call that is over, or a 404/409 that says why there is none."""
    call = await store.get_call(call_id)
    if call is None:
        raise HTTPException(404, f"no call with id {call_id!r}")
    path = recording_path(directory, call_id)
    if not call.recorded or not path.is_file():
        raise HTTPException(404, f"call {call_id} has no recording (its assistant did "
                            "not record calls, or the recording was deleted)")
    if call.end_at is None:
        raise HTTPException(409, f"call {call_id} is still in progress; its recording "
                            "is ready when it ends")
    return path


def recordings_router(store: Store, directory: Path) -> APIRouter:
    router = APIRouter(prefix="/v1/calls/{call_id}/recording", tags=["calls"])

    async def existing(call_id: str) -> Path:
        return await recording_file(store, directory, call_id)

    @router.get("", response_class=FileResponse, responses={
        200: WAV, 404: {"description": "no such call, or no recording of it"},
        409: {"description": "the call is still in progress"}})
    async def download(call_id: str) -> FileResponse:
        path = await existing(call_id)
        return FileResponse(path, media_type="audio/wav", filename=f"call-{call_id}.wav")

    @router.delete("", status_code=204, response_class=Response, responses={
        404: {"description": "no such call, or no recording of it"},
        409: {"description": "the call is still in progress"}})
    async def delete(call_id: str) -> Response:
        path = await existing(call_id)
        path.unlink(missing_ok=True)
        await store.run(update_call(call_id, recorded=False))
        return Response(status_code=204)

    return router
