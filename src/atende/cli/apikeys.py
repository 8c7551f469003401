"""`atende apikey …`: run on the server, against its database (keys are not managed over
the API they protect)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, TypeVar

import typer
from sqlalchemy.orm import Session

from atende.channels.secretary import domain_uuid
from atende.config import from_env
from atende.store import apikeys
from atende.store.db import Store

T = TypeVar("T")
apikey_app = typer.Typer(help="Keys for the REST API.", no_args_is_help=True)


def with_store(fn: Callable[[Session], T]) -> T:
    async def run() -> T:
        store = Store(from_env().db_url)
        try:
            await store.init()
            return await store.run(fn)
        finally:
            await store.close()

    return asyncio.run(run())


@apikey_app.command("create")
def create(name: Annotated[str, typer.Option(help="who or what uses it, e.g. crm")],
           domain: Annotated[str | None, typer.Option(
               help="a FusionPBX domain_uuid: the key sees and changes that domain's "
               "assistants, AI providers and calls only")] = None) -> None:
    """Make a key and print it. It is shown this once: keep it safe."""
    if domain is not None:
        try:
            domain = domain_uuid(domain)
        except ValueError as exc:
            typer.echo(f"--domain: {exc}", err=True)
            raise typer.Exit(2) from None
    key = apikeys.new_key()
    row = with_store(apikeys.create(name, key, domain))
    typer.echo(key)
    scope = f", limited to domain {domain}" if domain else ""
    typer.echo(f"(id {row.id}, named {name!r}{scope}; send it as 'Authorization: Bearer "
               "<key>')", err=True)


@apikey_app.command("list")
def list_() -> None:
    """The keys, masked, with when they were last used."""
    for row in with_store(apikeys.all_keys):
        state = f"revoked {row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "active"
        used = f"{row.last_used_at:%Y-%m-%d %H:%M}" if row.last_used_at else "never"
        scope = f"  domain {row.domain_uuid}" if row.domain_uuid else ""
        typer.echo(f"{row.id}  {apikeys.masked(row):<12} {row.name!r:<20} {state}  "
                   f"last used: {used}{scope}")


@apikey_app.command("revoke")
def revoke(key_id: str) -> None:
    """Revoke a key at once (by the id `atende apikey list` shows)."""
    row = with_store(apikeys.revoke(key_id))
    if row is None:
        typer.echo(f"no key with id {key_id!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {row.id} ({row.name!r})")
