"""`atende user …`: dashboard users, made on the server against its database (the first
admin can also be made in the browser with the server's API key)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from atende.cli.apikeys import with_store
from atende.dashboard import accounts

user_app = typer.Typer(help="Who may sign in to the dashboard.", no_args_is_help=True)
PASSWORD_VARIABLE = "ATENDE_USER_PASSWORD"


@user_app.command("create")
def create(username: Annotated[str, typer.Option(help="the name to sign in with")],
           role: Annotated[str, typer.Option(help="admin (changes things) or viewer "
                                             "(reads everything, changes nothing)")]
           = "admin") -> None:
    """Make a user. The password is asked for (or read from ATENDE_USER_PASSWORD)."""
    from atende.store import users

    if role not in accounts.ROLES:
        typer.echo(f"--role: {' or '.join(accounts.ROLES)}", err=True)
        raise typer.Exit(2)
    password = os.environ.get(PASSWORD_VARIABLE) or typer.prompt(
        "Password", hide_input=True, confirmation_prompt=True)
    if (problem := accounts.password_problem(password, username)) is not None:
        typer.echo(problem, err=True)
        raise typer.Exit(1)
    row = with_store(users.create_user(username.strip(), accounts.hash_password(password),
                                        role))
    if row is None:
        typer.echo(f"user name {username!r} is taken", err=True)
        raise typer.Exit(1)
    typer.echo(f"{row.id}  {row.username} ({role}) can sign in at http://<host>:8100/")


@user_app.command("list")
def list_() -> None:
    """The users, with when each last signed in."""
    from atende.store import users

    for row in with_store(users.all_users):
        seen = f"{row.last_login_at:%Y-%m-%d %H:%M}" if row.last_login_at else "never"
        typer.echo(f"{row.id}  {row.username!r:<24} {row.role:<7} last signed in: {seen}")


@user_app.command("delete")
def delete(user_id: str) -> None:
    """Delete a user (by the id `atende user list` shows); they are signed out at once."""
    from atende.store import users

    row = with_store(users.delete_user(user_id))
    if row is None:
        typer.echo(f"no user with id {user_id!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"deleted {row.username!r}")
