"""FusionPBX domains: one atende serving several tenants. An API key made for a domain
(`atende apikey create --domain UUID`) sees and changes that domain's assistants, AI
providers and calls only, and nothing else of the server; a key without a domain sees
every domain's. Calls keep to their domain too: FreeSWITCH passes the call's domain
(VOICE_AI_DOMAIN_UUID), and a secretary of another domain does not answer it
(calls/engine.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from atende.channels.secretary import domain_uuid

# What a domain's key may use: these routes and those under them, and these to read.
DOMAIN_PREFIXES = ("/v1/assistants", "/v1/providers")
DOMAIN_READS = ("/v1/calls", "/v1/calls/{call_id}")


__all__ = ["CallerDomain", "caller_domain", "domain_refusal", "domain_uuid", "owner", "visible"]


def caller_domain(request: Request) -> str | None:
    """The domain the request's API key is limited to (None: every domain)."""
    domain: str | None = request.scope.get("state", {}).get("api_key_domain")
    return domain


# A route's parameter: the domain of the caller's key (None: every domain).
CallerDomain = Annotated[str | None, Depends(caller_domain)]


def domain_refusal(request: Request) -> str | None:
    """Why the request's key may not use its route (a domain's key outside its domain's
    routes), or None."""
    domain = caller_domain(request)
    route = request.scope.get("route")
    if domain is None or route is None:
        return None
    path: str = getattr(route, "path", "")
    if any(path == p or path.startswith(p + "/") for p in DOMAIN_PREFIXES) or (
            request.method == "GET" and path in DOMAIN_READS):
        return None
    return (f"this API key belongs to domain {domain}: it may use /v1/assistants, "
            "/v1/providers and read /v1/calls only; use a key without a domain")


def visible(row_domain: str | None, caller: str | None) -> bool:
    """Whether a record of ``row_domain`` (None: shared by all) is one the caller may
    see."""
    return caller is None or row_domain == caller


def owner(asked: str | None, caller: str | None) -> str | None:
    """The domain a new record belongs to: the caller's, when their key has one (asking
    for another is refused), else the one asked for."""
    if caller is not None and asked is not None and asked != caller:
        raise HTTPException(403, f"domain_uuid: this API key belongs to domain {caller}")
    return caller if caller is not None else asked
