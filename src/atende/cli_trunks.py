"""`atende trunk …` and `atende call …`: the REST API from the terminal (same validation,
same code path as any other client)."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import httpx
import typer

trunk_app = typer.Typer(help="Connect PBX extensions and DID trunks.", no_args_is_help=True)

ApiUrl = Annotated[str, typer.Option("--api", envvar="ATENDE_API_URL",
                                     help="atende's API address")]
DEFAULT_API = "http://127.0.0.1:8100"


def _headers() -> dict[str, str]:
    """The API key: ATENDE_API_KEY, or the server's own key file when run on the server."""
    from atende.config import from_env
    from atende.store.apikeys import local_key

    key = local_key(from_env().data_dir)
    return {"Authorization": f"Bearer {key}"} if key else {}


def _call(method: str, url: str, **kw: Any) -> Any:
    try:
        r = httpx.request(method, url, timeout=kw.pop("timeout", 15), headers=_headers(),
                          **kw)
    except httpx.HTTPError as exc:
        typer.echo(f"cannot reach atende at {url}: {exc}", err=True)
        raise typer.Exit(2) from None
    if r.status_code >= 400:
        detail = r.json().get("detail") if r.headers.get("content-type", "").startswith(
            "application/json") else r.text
        if isinstance(detail, list):  # pydantic's list of field errors
            detail = "; ".join(f"{'.'.join(map(str, e['loc'][1:]))}: {e['msg']}"
                               for e in detail)
        typer.echo(f"error {r.status_code}: {detail}", err=True)
        raise typer.Exit(1)
    return r.json() if r.content else None


def _show(t: dict[str, Any]) -> None:
    reg = t.get("registration")
    status = f"{reg['state']} ({reg['reason']})" if reg else "-"
    typer.echo(f"{t['id']}  {t['kind']:<9} {t['name']!r}  {t['number']} @ {t['host']}  "
               f"registration: {status}")
    typer.echo(f"    our SIP address: {t['sip_address']}")
    for w in t.get("warnings", []):
        typer.echo(f"    warning: {w}")


@trunk_app.command("add")
def add(
    kind: Annotated[str, typer.Option(help="extension or did")],
    name: Annotated[str, typer.Option()],
    number: Annotated[str, typer.Option(help="extension number or DID phone number")],
    username: Annotated[str, typer.Option()],
    host: Annotated[str, typer.Option(help="PBX/provider address, without port")],
    country: Annotated[str, typer.Option(help="ISO 3166 alpha-2, e.g. BR")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True,
                                          envvar="ATENDE_TRUNK_PASSWORD")],
    port: Annotated[int | None, typer.Option()] = None,
    transport: Annotated[str, typer.Option()] = "udp",
    number_format: Annotated[str, typer.Option(help="intl_plus, intl_no_plus, national")]
    = "intl_plus",
    outbound_proxy: Annotated[str | None, typer.Option()] = None,
    inbound_auth: Annotated[str, typer.Option(help="DID: ip or digest")] = "ip",
    allow_ip: Annotated[list[str] | None, typer.Option(help="DID allowlist entry")] = None,
    accept_transfers: Annotated[bool, typer.Option(
        help="let the other side transfer the assistant (REFER)")] = False,
    api: ApiUrl = DEFAULT_API,
) -> None:
    """Create a trunk."""
    body = {"kind": kind, "name": name, "number": number, "username": username,
            "password": password, "host": host, "country": country, "port": port,
            "transport": transport, "number_format": number_format,
            "outbound_proxy": outbound_proxy, "inbound_auth": inbound_auth,
            "allowed_ips": allow_ip or [], "accept_transfers": accept_transfers}
    _show(_call("POST", f"{api}/v1/trunks", json=body))


@trunk_app.command("list")
def list_(api: ApiUrl = DEFAULT_API) -> None:
    """List trunks with their registration state."""
    for t in _call("GET", f"{api}/v1/trunks"):
        _show(t)


@trunk_app.command("show")
def show(trunk_id: str, api: ApiUrl = DEFAULT_API) -> None:
    """Everything about one trunk, as JSON."""
    typer.echo(json.dumps(_call("GET", f"{api}/v1/trunks/{trunk_id}"), indent=2))


@trunk_app.command("set")
def set_(trunk_id: str,
         field: Annotated[list[str], typer.Argument(help="field=value …; use "
                                                    "password=- to be asked")],
         api: ApiUrl = DEFAULT_API) -> None:
    """Change fields of a trunk (takes effect at once; extensions re-register)."""
    changes: dict[str, Any] = {}
    for item in field:
        key, sep, value = item.partition("=")
        if not sep:
            typer.echo(f"expected field=value, got {item!r}", err=True)
            raise typer.Exit(2)
        if key == "password" and value == "-":
            value = typer.prompt("password", hide_input=True)
        changes[key] = json.loads(value) if key in ("port", "max_concurrent_calls",
                                                    "enabled", "allowed_ips",
                                                    "accept_transfers",
                                                    "allowed_countries") else value
    _show(_call("PATCH", f"{api}/v1/trunks/{trunk_id}", json=changes))


@trunk_app.command("delete")
def delete(trunk_id: str, api: ApiUrl = DEFAULT_API) -> None:
    """Delete a trunk (an extension unregisters)."""
    _call("DELETE", f"{api}/v1/trunks/{trunk_id}")
    typer.echo(f"deleted {trunk_id}")


@trunk_app.command("test")
def test(trunk_id: str, to: Annotated[str | None, typer.Option(help="number to call")]
         = None, api: ApiUrl = DEFAULT_API) -> None:
    """Check the registration and optionally place a short test call."""
    report = _call("POST", f"{api}/v1/trunks/{trunk_id}/test", json={"to": to}, timeout=90)
    for step in report["steps"]:
        mark = "ok  " if step["ok"] else "FAIL"
        typer.echo(f"{mark} {step['check']}: {step.get('detail', '')}")
    raise typer.Exit(0 if report["ok"] else 1)


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
    c = _call("POST", f"{api}/v1/calls", json={k: v for k, v in body.items()
                                               if v is not None})
    typer.echo(f"call {c['id']} to {c['to_uri']}: {_state(c)}")
    if not follow:
        return
    last = _state(c)
    shown = 0
    try:
        while c["status"] in ("queued", "dialing", "in_progress"):
            time.sleep(0.5)
            c = _call("GET", f"{api}/v1/calls/{c['id']}")
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
    c = _call("POST", f"{api}/v1/calls/{call_id}/cancel")
    typer.echo(f"call {c['id']}: cancelling ({c['status']})")


def transfer(call_id: str, to: Annotated[str, typer.Argument(
                 help="extension, number or sip: URI")],
             api: ApiUrl = DEFAULT_API,
             bridge: Annotated[bool, typer.Option(
                 "--bridge", help="call the target and join the calls (for trunks that "
                 "take no REFER)")] = False) -> None:
    """Transfer a call in progress (blind, or --bridge) and wait for the outcome."""
    r = _call("POST", f"{api}/v1/calls/{call_id}/transfer",
              json={"to": to, "mode": "bridge" if bridge else "refer"}, timeout=90)
    progress = " → ".join(str(s) for s in r["progress"])
    typer.echo(f"{r['outcome']}: {r['reason']}" + (f" (progress {progress})" if progress
                                                    else ""))
    raise typer.Exit(0 if r["outcome"] == "transferred" else 1)
