"""Bearer API keys on every /v1 route (webhook triggers carry their own token). The key is
checked by the intake (api/intake.py) before the body is read; the dependency here declares
the scheme in the OpenAPI document and notes when each key was last used."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from fastapi import HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from atende.api.domains import domain_refusal
from atende.api.intake import Caller, KeyCheck
from atende.store import apikeys
from atende.store.db import Store

_bearer = HTTPBearer(auto_error=False, description="an API key from `atende apikey create`")
TOUCH_EVERY_S = 60.0


def key_check(store: Store) -> KeyCheck:
    async def lookup(token: str) -> Caller | None:
        row = await store.run(apikeys.lookup(token))
        return Caller(row.id, row.domain_uuid) if row is not None else None

    return KeyCheck(lookup)


def key_checker(store: Store) -> Callable[..., Awaitable[None]]:
    last_touch: dict[str, datetime] = {}

    async def require_key(
        request: Request,
        creds: HTTPAuthorizationCredentials | None = Security(_bearer),  # noqa: B008
    ) -> None:
        key_id = request.scope.get("state", {}).get("api_key_id")
        if key_id is None:  # the intake lets no such request through: never trust that
            raise HTTPException(401, "missing API key",
                                headers={"WWW-Authenticate": "Bearer"})
        if (refusal := domain_refusal(request)) is not None:
            raise HTTPException(403, refusal)
        now = datetime.now(UTC)
        seen = last_touch.get(key_id)
        if seen is None or (now - seen).total_seconds() >= TOUCH_EVERY_S:
            last_touch[key_id] = now
            store.submit(apikeys.touch(key_id, now))

    return require_key
