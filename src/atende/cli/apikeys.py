"""`atende apikey …`: run on the server, against its database (keys are not managed over
the API they protect)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

T = TypeVar("T")
apikey_app = typer.Typer(help="Keys for the REST API.", no_args_is_help=True)


def with_store(fn: Callable[[Session], T]) -> T:
    """Run ``fn`` on atende's database (made, with its folder, if this is the first use:
    keys and users may be set up before the server first starts)."""
    import asyncio
    import os

    from sqlalchemy.exc import SQLAlchemyError

    from atende.config import from_env
    from atende.store.db import Store

    settings = from_env()
    if settings.db_url.startswith("sqlite"):
        os.umask(0o077)  # as the server keeps them: its user's alone
        settings.data_dir.mkdir(parents=True, exist_ok=True)

    async def run() -> T:
        store = Store(settings.db_url)
        try:
            await store.init()
            return await store.run(fn)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except (SQLAlchemyError, OSError) as exc:
        cause = getattr(exc, "orig", None) or exc
        typer.echo(f"cannot use atende's database ({settings.db_url.split('://')[0]}): "
                   f"{str(cause).splitlines()[0]}", err=True)
        raise typer.Exit(1) from None


@apikey_app.command("create")
def create(name: Annotated[str, typer.Option(help="who or what uses it, e.g. crm")],
           domain: Annotated[str | None, typer.Option(
               help="a FusionPBX domain_uuid: the key sees and changes that domain's "
               "assistants, AI providers and calls only")] = None) -> None:
    """Make a key and print it. It is shown this once: keep it safe."""
    from atende.channels.secretary import domain_uuid
    from atende.store import apikeys

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
    from atende.store import apikeys

    for row in with_store(apikeys.all_keys):
        state = f"revoked {row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "active"
        used = f"{row.last_used_at:%Y-%m-%d %H:%M}" if row.last_used_at else "never"
        scope = f"  domain {row.domain_uuid}" if row.domain_uuid else ""
        typer.echo(f"{row.id}  {apikeys.masked(row):<12} {row.name!r:<20} {state}  "
                   f"last used: {used}{scope}")


@apikey_app.command("revoke")
def revoke(key_id: str) -> None:
    """Revoke a key at once (by the id `atende apikey list` shows)."""
    from atende.store import apikeys

    row = with_store(apikeys.revoke(key_id))
    if row is None:
        typer.echo(f"no key with id {key_id!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {row.id} ({row.name!r})")
