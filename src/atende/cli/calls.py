"""`atende call …`, `atende transfer …`, `atende cancel …`: calls over the REST API."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer

from atende.cli.client import DEFAULT_API, ApiUrl, call_api


def call(to: str,
         task: Annotated[str | None, typer.Option(help="what the assistant must get done")]
         = None,
         name: Annotated[str | None, typer.Option(help="the name of the person called")]
         = None,
         trunk: Annotated[str | None, typer.Option(help="trunk id (default: the only one)")]
         = None,
         assistant: Annotated[str | None, typer.Option(help="assistant id")] = None,
         webhook_url: Annotated[str | None, typer.Option(help="where to POST the result")]
         = None,
         metadata: Annotated[str | None, typer.Option(help="JSON object kept with the call")]
         = None,
         at: Annotated[str | None, typer.Option(help="call at this ISO 8601 time (with "
                                                 "its zone) instead of now")] = None,
         delay: Annotated[int | None, typer.Option(help="call this many seconds from now")]
         = None,
         attempts: Annotated[int, typer.Option(help="tries when nobody answers or the line "
                                               "is busy")] = 1,
         retry_after: Annotated[int, typer.Option(help="seconds between tries")] = 300,
         hours: Annotated[str | None, typer.Option(help="calling hours in the callee's time "
                                                   "zone, e.g. 09:00-20:00")] = None,
         api: ApiUrl = DEFAULT_API,
         follow: Annotated[bool, typer.Option(help="show progress until it ends")] = True,
         ) -> None:
    """Place a call (by hand: counted as "manual"); the assistant talks and, with --task,
    works towards it. Progress is shown until the outcome."""
    try:
        meta = json.loads(metadata) if metadata else {}
    except json.JSONDecodeError as exc:
        typer.echo(f"--metadata: not valid JSON ({exc.msg})", err=True)
        raise typer.Exit(2) from None
    window = None
    if hours is not None:
        start, _, end = hours.partition("-")
        window = {"start": start.strip(), "end": end.strip()}
    body = {"phone_number": to, "task": task, "caller_name": name, "trunk_id": trunk,
            "assistant_id": assistant, "webhook_url": webhook_url, "metadata": meta,
            "source": "manual", "scheduled_at": at, "delay_seconds": delay,
            "max_attempts": attempts, "retry_after_seconds": retry_after,
            "calling_hours": window}
    c = call_api("POST", f"{api}/v1/calls", json={k: v for k, v in body.items()
                                               if v is not None})
    typer.echo(f"call {c['id']} to {c['to_uri']}: {_state(c)}")
    if not follow:
        return
    last = _state(c)
    shown = 0
    try:
        while c["status"] in ("queued", "dialing", "in_progress"):
            time.sleep(0.5)
            c = call_api("GET", f"{api}/v1/calls/{c['id']}")
            if _state(c) != last:
                typer.echo(f"  {_state(c)}")
                last = _state(c)
            for t in c["turns"][shown:]:
                typer.echo(f"  {t['speaker']}: {t['text']}")
            shown = len(c["turns"])
    except KeyboardInterrupt:
        typer.echo(f"stopped following; the call goes on (`atende cancel {c['id']}` stops "
                   "it)", err=True)
        raise typer.Exit(130) from None
    typer.echo(f"ended: {c['status']} ({c['hangup_cause']}, SIP {c['sip_status']})")
    if c.get("outcome"):
        typer.echo(f"outcome: {c['outcome']}: {c['summary']}")
    raise typer.Exit(0 if c["status"] == "completed" else 1)



def _state(c: dict[str, Any]) -> str:
    """The status, and for a queued call when and why it waits."""
    if c["status"] != "queued":
        return f"{c['status']} (attempt {c['attempts']})" if c["attempts"] > 1 else c["status"]
    after = f" after attempt {c['attempts']} ({c['hangup_cause']})" if c["attempts"] else ""
    return f"queued{after}; next attempt at {c['next_attempt_at']}"


def cancel(call_id: str, api: ApiUrl = DEFAULT_API) -> None:
    """Cancel a call: a queued one is never placed, a live one is hung up."""
    c = call_api("POST", f"{api}/v1/calls/{call_id}/cancel")
    typer.echo(f"call {c['id']}: cancelling ({c['status']})")


def transfer(call_id: str, to: Annotated[str, typer.Argument(
                 help="extension, number or sip: URI")],
             api: ApiUrl = DEFAULT_API,
             bridge: Annotated[bool, typer.Option(
                 "--bridge", help="call the target and join the calls (for trunks that "
                 "take no REFER)")] = False) -> None:
    """Transfer a call in progress (blind, or --bridge) and wait for the outcome."""
    r = call_api("POST", f"{api}/v1/calls/{call_id}/transfer",
              json={"to": to, "mode": "bridge" if bridge else "refer"}, timeout=90)
    progress = " → ".join(str(s) for s in r["progress"])
    typer.echo(f"{r['outcome']}: {r['reason']}" + (f" (progress {progress})" if progress
                                                    else ""))
    raise typer.Exit(0 if r["outcome"] == "transferred" else 1)
