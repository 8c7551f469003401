"""`atende freeswitch …`: what to paste into FreeSWITCH (or FusionPBX's Dialplan Manager)
so that its calls reach atende's secretaries."""

from __future__ import annotations

import re
from typing import Annotated, Any

import typer

from atende.cli.client import DEFAULT_API, ApiUrl, call_api

freeswitch_app = typer.Typer(help="FreeSWITCH / FusionPBX integration.", no_args_is_help=True)


def _find(assistants: list[dict[str, Any]], wanted: str) -> dict[str, Any]:
    key = wanted.strip().lower()
    plain = key.replace("-", "")
    found = [a for a in assistants
             if a["id"] == plain or a["name"].lower() == key or a["extension"].lower() == key]
    if len(found) != 1:
        names = ", ".join(f"{a['name']!r} ({a['extension']})" for a in assistants) or "none"
        problem = "no assistant is" if not found else "more than one assistant is"
        typer.echo(f"{problem} {wanted!r} (by name, extension or id); there are: {names}",
                   err=True)
        raise typer.Exit(1)
    return found[0]


@freeswitch_app.command("dialplan")
def dialplan(
    secretary: Annotated[str, typer.Option(help="the assistant: its name, extension or id")],
    number: Annotated[str | None, typer.Option(
        help="the number FreeSWITCH routes to it (default: its extension)")] = None,
    host: Annotated[str | None, typer.Option(
        help="atende's address as FreeSWITCH reaches it [ATENDE_PUBLIC_IP, else "
             "ATENDE_BIND, else 127.0.0.1]")] = None,
    rate: Annotated[int, typer.Option(help="audio rate of the stream: 8000 or 16000")] = 16000,
    mode: Annotated[str | None, typer.Option(
        help="websocket (mod_audio_stream) or rtp (bridged to atende's SIP port) "
             "[AUDIO_MODE, else websocket]")] = None,
    sip_profile: Annotated[str, typer.Option(
        help="the FreeSWITCH SIP profile that bridges to atende (rtp mode)")] = "internal",
    api: ApiUrl = DEFAULT_API,
) -> None:
    """Print the dialplan extension that hands a number's calls to a secretary."""
    from atende.channels.freeswitch.dialplan import secretary_extension
    from atende.channels.secretary import secretary_uuid
    from atende.config import from_env

    settings = from_env()
    a = _find(call_api("GET", f"{api}/v1/assistants"), secretary)
    where = host or settings.reach_host
    name = "atende_" + re.sub(r"[^0-9a-z]+", "_", a["name"].lower()).strip("_")
    try:
        text = secretary_extension(name, number or a["extension"], a["id"], where,
                                   settings.esl_server_port, settings.audio_stream_port, rate,
                                   mode or settings.audio_mode, settings.sip_port, sip_profile)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    typer.echo(text, nl=False)
    typer.echo(f"(secretary {a['name']!r}, UUID {secretary_uuid(a['id'])})", err=True)
