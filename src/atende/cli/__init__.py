"""The `atende` command. Each command imports what it needs when it runs: printing help
or calling the API must not load the server (FastAPI, SQLAlchemy, the models)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from atende import __version__
from atende.cli.apikeys import apikey_app
from atende.cli.calls import call as place_call
from atende.cli.calls import cancel, transfer
from atende.cli.freeswitch import freeswitch_app
from atende.cli.hooks import hook_app
from atende.cli.trunks import trunk_app
from atende.cli.users import user_app

app = typer.Typer(help="atende: AI assistants that answer and place phone calls.",
                  no_args_is_help=True)


@app.command()
def serve(
    bind: Annotated[str | None, typer.Option(help="listen address [ATENDE_BIND]")] = None,
    sip_port: Annotated[int | None, typer.Option(help="SIP port [ATENDE_SIP_PORT]")] = None,
    api_port: Annotated[int | None, typer.Option(help="API port [ATENDE_API_PORT]")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="data folder [ATENDE_DATA_DIR]")] = None,
    public_ip: Annotated[str | None, typer.Option(help="address for SDP/Contact behind NAT "
                                                       "[ATENDE_PUBLIC_IP]")] = None,
    allow_direct: Annotated[str | None, typer.Option(
        help="CIDRs that may call without a trunk [ATENDE_ALLOW_DIRECT]")] = None,
    log_level: Annotated[str | None, typer.Option(help="debug, info, warning")] = None,
) -> None:
    """Start atende: SIP, media, the assistants and the REST API."""
    import asyncio
    import logging
    import os

    # The server has threads of its own (the event loop, the store's, the models'). Left
    # to itself, numpy's OpenBLAS spins a thread per core for every matrix product,
    # however small: the media plane's per-tick products then kept a second core busy
    # (25 calls took 1.2 cores instead of 0.15). It reads this when numpy loads, which
    # is after this line: nothing above imports it.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

    from atende.config import Settings

    overrides: dict[str, Any] = {
        k: v for k, v in {
            "bind": bind, "sip_port": sip_port, "api_port": api_port, "data_dir": data_dir,
            "public_ip": public_ip, "allow_direct": allow_direct, "log_level": log_level,
        }.items() if v is not None
    }
    try:
        settings = Settings(**overrides)
    except ValueError as exc:
        typer.echo(f"invalid settings: {exc}", err=True)
        raise typer.Exit(2) from None
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("alembic", "faster_whisper"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    from atende.server import serve as run_server

    loop_factory = None
    if settings.event_loop == "uvloop":
        import uvloop

        loop_factory = uvloop.new_event_loop
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(run_server(settings))
    except OSError as exc:
        typer.echo(f"cannot start: {exc}", err=True)
        raise typer.Exit(1) from None


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


app.add_typer(trunk_app, name="trunk")
app.add_typer(apikey_app, name="apikey")
app.add_typer(hook_app, name="hook")
app.add_typer(freeswitch_app, name="freeswitch")
app.add_typer(user_app, name="user")
app.command("call")(place_call)
app.command("transfer")(transfer)
app.command("cancel")(cancel)


@app.command("webhook-secret")
def show_webhook_secret(
    data_dir: Annotated[Path | None, typer.Option(help="data folder [ATENDE_DATA_DIR]")] = None,
) -> None:
    """Print the key that signs result webhooks (give it to your receiver)."""
    from atende.config import Settings
    from atende.server import webhook_secret
    from atende.store.secrets import SecretBox

    overrides: dict[str, Any] = {"data_dir": data_dir} if data_dir else {}
    settings = Settings(**overrides)
    box = SecretBox.from_settings(settings.secret_key, settings.data_dir)
    typer.echo(webhook_secret(settings, box))


@app.command("secret-key")
def secret_key() -> None:
    """Print a new key for ATENDE_SECRET_KEY."""
    from atende.store.secrets import new_key

    typer.echo(new_key())


def main() -> None:
    app()
