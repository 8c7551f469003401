"""Bearer API keys on every /v1 route (webhook triggers carry their own token)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from fastapi import HTTPException, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from atende.store import apikeys
from atende.store.db import Store

_bearer = HTTPBearer(auto_error=False, description="an API key from `atende apikey create`")
TOUCH_EVERY_S = 60.0


def key_checker(store: Store) -> Callable[..., Awaitable[None]]:
    last_touch: dict[str, datetime] = {}

    async def require_key(
        creds: HTTPAuthorizationCredentials | None = Security(_bearer),  # noqa: B008
    ) -> None:
        if creds is None or creds.scheme.lower() != "bearer" or not creds.credentials:
            raise HTTPException(401, "missing API key: send 'Authorization: Bearer <key>' "
                                "(make one with `atende apikey create --name NAME`)",
                                headers={"WWW-Authenticate": "Bearer"})
        row = await store.run(apikeys.lookup(creds.credentials))
        if row is None:
            raise HTTPException(401, "unknown or revoked API key",
                                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        now = datetime.now(UTC)
        seen = last_touch.get(row.id)
        if seen is None or (now - seen).total_seconds() >= TOUCH_EVERY_S:
            last_touch[row.id] = now
            store.submit(apikeys.touch(row.id, now))

    return require_key
