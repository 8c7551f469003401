"""`atende trunk …`: trunks over the REST API (same validation, same code path as any
other client)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from atende.cli.client import DEFAULT_API, ApiUrl, call_api

trunk_app = typer.Typer(help="Connect PBX extensions and DID trunks.", no_args_is_help=True)

def _show(t: dict[str, Any]) -> None:
    if t["kind"] == "freeswitch":
        typer.echo(f"{t['id']}  {t['kind']:<9} {t['name']!r}  {t['number']} via "
                   f"{t['dial_string']}")
        return
    reg = t.get("registration")
    status = f"{reg['state']} ({reg['reason']})" if reg else "-"
    typer.echo(f"{t['id']}  {t['kind']:<9} {t['name']!r}  {t['number']} @ {t['host']}  "
               f"registration: {status}")
    typer.echo(f"    our SIP address: {t['sip_address']}")
    for w in t.get("warnings", []):
        typer.echo(f"    warning: {w}")


@trunk_app.command("add")
def add(
    kind: Annotated[str, typer.Option(help="extension, did or freeswitch")],
    name: Annotated[str, typer.Option()],
    number: Annotated[str, typer.Option(help="extension number, DID phone number, or "
                                        "(freeswitch) the caller id")],
    country: Annotated[str, typer.Option(help="ISO 3166 alpha-2, e.g. BR")],
    username: Annotated[str | None, typer.Option(help="SIP trunks")] = None,
    host: Annotated[str | None, typer.Option(help="SIP trunks: PBX/provider address, "
                                             "without port")] = None,
    password: Annotated[str | None, typer.Option(
        envvar="ATENDE_TRUNK_PASSWORD", help="SIP trunks (asked for when not given)")] = None,
    dial_string: Annotated[str | None, typer.Option(
        help="freeswitch trunks: what FreeSWITCH dials, e.g. "
             "sofia/gateway/carrier/{number}")] = None,
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
    body: dict[str, Any] = {"kind": kind, "name": name, "number": number, "country": country,
                            "number_format": number_format}
    if kind == "freeswitch":
        body["dial_string"] = dial_string
    else:
        if password is None:
            password = typer.prompt("Password", hide_input=True)
        body |= {"username": username, "password": password, "host": host, "port": port,
                 "transport": transport, "outbound_proxy": outbound_proxy,
                 "inbound_auth": inbound_auth, "allowed_ips": allow_ip or [],
                 "accept_transfers": accept_transfers}
    _show(call_api("POST", f"{api}/v1/trunks", json=body))


@trunk_app.command("list")
def list_(api: ApiUrl = DEFAULT_API) -> None:
    """List trunks with their registration state."""
    for t in call_api("GET", f"{api}/v1/trunks"):
        _show(t)


@trunk_app.command("show")
def show(trunk_id: str, api: ApiUrl = DEFAULT_API) -> None:
    """Everything about one trunk, as JSON."""
    typer.echo(json.dumps(call_api("GET", f"{api}/v1/trunks/{trunk_id}"), indent=2))


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
    _show(call_api("PATCH", f"{api}/v1/trunks/{trunk_id}", json=changes))


@trunk_app.command("delete")
def delete(trunk_id: str, api: ApiUrl = DEFAULT_API) -> None:
    """Delete a trunk (an extension unregisters)."""
    call_api("DELETE", f"{api}/v1/trunks/{trunk_id}")
    typer.echo(f"deleted {trunk_id}")


@trunk_app.command("test")
def test(trunk_id: str, to: Annotated[str | None, typer.Option(help="number to call")]
         = None, api: ApiUrl = DEFAULT_API) -> None:
    """Check the registration and optionally place a short test call."""
    report = call_api("POST", f"{api}/v1/trunks/{trunk_id}/test", json={"to": to}, timeout=90)
    for step in report["steps"]:
        mark = "ok  " if step["ok"] else "FAIL"
        typer.echo(f"{mark} {step['check']}: {step.get('detail', '')}")
    raise typer.Exit(0 if report["ok"] else 1)
