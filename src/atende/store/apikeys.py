"""API keys: made, listed (masked), revoked and checked. The key itself is never stored or
logged; a server's first start writes one key to a 0600 file for its own operator."""

from __future__ import annotations

import hashlib
import os
import secrets
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from atende.store.models import ApiKey

PREFIX = "atk_"
KEY_FILE = "api.key"


def new_key() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    """How a secret token is kept (API keys, hook tokens): 256 random bits need no slow
    hash."""
    return hashlib.sha256(key.encode()).hexdigest()


def masked(row: ApiKey) -> str:
    return f"{row.prefix}…"


def create(name: str, key: str, domain: str | None = None) -> Callable[[Session], ApiKey]:
    """``domain``: the FusionPBX domain the key is limited to (api/domains.py)."""
    def fn(s: Session) -> ApiKey:
        row = ApiKey(id=uuid.uuid4().hex[:12], name=name, prefix=key[:len(PREFIX) + 4],
                     key_hash=key_hash(key), created_at=datetime.now(UTC),
                     domain_uuid=domain)
        s.add(row)
        return row

    return fn


def all_keys(s: Session) -> list[ApiKey]:
    return list(s.scalars(select(ApiKey).order_by(ApiKey.created_at)))


def revoke(key_id: str) -> Callable[[Session], ApiKey | None]:
    def fn(s: Session) -> ApiKey | None:
        row = s.get(ApiKey, key_id)
        if row is not None and row.revoked_at is None:
            row.revoked_at = datetime.now(UTC)
        return row

    return fn


def is_live(key_id: str) -> Callable[[Session], bool]:
    """Whether the key still stands (not revoked, not deleted)."""
    def fn(s: Session) -> bool:
        row = s.get(ApiKey, key_id)
        return row is not None and row.revoked_at is None

    return fn


def lookup(key: str) -> Callable[[Session], ApiKey | None]:
    """The live key row for ``key``, or None (unknown or revoked)."""
    digest = key_hash(key)

    def fn(s: Session) -> ApiKey | None:
        row = s.scalars(select(ApiKey).where(ApiKey.key_hash == digest)).first()
        return row if row is not None and row.revoked_at is None else None

    return fn


def touch(key_id: str, now: datetime) -> Callable[[Session], None]:
    def fn(s: Session) -> None:
        row = s.get(ApiKey, key_id)
        if row is not None:
            row.last_used_at = now

    return fn


def bootstrap(data_dir: Path) -> Callable[[Session], bool]:
    """On a server without any key, make one named "admin" and write it to
    ``data_dir/api.key`` (owner-only), so the operator — and `atende` commands run on the
    server — can use the API. True if it made one."""

    def fn(s: Session) -> bool:
        if s.scalars(select(ApiKey).limit(1)).first() is not None:
            return False
        key = new_key()
        create("admin", key)(s)
        s.flush()
        path = data_dir / KEY_FILE
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key + "\n")
        return True

    return fn


def local_key(data_dir: Path) -> str | None:
    """The key a command on the server host uses: ATENDE_API_KEY, else data_dir/api.key."""
    if key := os.environ.get("ATENDE_API_KEY"):
        return key.strip()
    try:
        return (data_dir / KEY_FILE).read_text().strip() or None
    except OSError:
        return None
