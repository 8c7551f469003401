"""The `atende` commands that work through the REST API: where it is, its key, and
errors turned into messages and exit codes."""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer

ApiUrl = Annotated[str, typer.Option("--api", envvar="ATENDE_API_URL",
                                     help="atende's API address")]
DEFAULT_API = "http://127.0.0.1:8100"


def _headers() -> dict[str, str]:
    """The API key: ATENDE_API_KEY, or the server's own key file when run on the server."""
    if given := os.environ.get("ATENDE_API_KEY", "").strip():
        return {"Authorization": f"Bearer {given}"}
    from atende.config import from_env
    from atende.store.apikeys import local_key

    key = local_key(from_env().data_dir)
    return {"Authorization": f"Bearer {key}"} if key else {}


def call_api(method: str, url: str, **kw: Any) -> Any:
    import httpx

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
