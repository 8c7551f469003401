"""`atende hook …`: webhook triggers for automation platforms, over the REST API."""

from __future__ import annotations

from typing import Annotated

import typer

from atende.cli.client import DEFAULT_API, ApiUrl, call_api

hook_app = typer.Typer(help="Trigger URLs for Zapier, n8n, Make …", no_args_is_help=True)


@hook_app.command("create")
def create(name: Annotated[str, typer.Option(help="e.g. calendar")],
           trunk: Annotated[str | None, typer.Option(help="trunk id for its calls")] = None,
           assistant: Annotated[str | None, typer.Option(help="assistant id")] = None,
           api: ApiUrl = DEFAULT_API) -> None:
    """Make a trigger URL and print it (shown this once: it is the credential)."""
    h = call_api("POST", f"{api}/v1/hooks", json={"name": name, "trunk_id": trunk,
                                               "assistant_id": assistant})
    typer.echo(f"{api}{h['url_path']}")
    typer.echo(f"(id {h['id']}; POST the call payload there as JSON or a form)", err=True)


@hook_app.command("list")
def list_(api: ApiUrl = DEFAULT_API) -> None:
    """The triggers, their tokens masked."""
    for h in call_api("GET", f"{api}/v1/hooks"):
        state = "revoked" if h["revoked_at"] else "active"
        typer.echo(f"{h['id']}  {h['name']!r:<20} {h['url_path']}  {state}  "
                   f"last used: {h['last_used_at'] or 'never'}")


@hook_app.command("revoke")
def revoke(hook_id: str, api: ApiUrl = DEFAULT_API) -> None:
    """Revoke a trigger: its URL stops working at once."""
    call_api("DELETE", f"{api}/v1/hooks/{hook_id}")
    typer.echo(f"revoked {hook_id}")
