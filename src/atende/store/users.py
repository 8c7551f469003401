"""Dashboard users and their sessions, as store operations (run with Store.run)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from atende.store.db import as_utc
from atende.store.models import User, WebSession


def create_user(username: str, password_hash: str, role: str
                ) -> Callable[[Session], User | None]:
    """The new user, or None when the name is taken (compared without case)."""
    def fn(s: Session) -> User | None:
        if s.scalars(select(User.id).where(
                func.lower(User.username) == username.lower())).first() is not None:
            return None
        row = User(id=uuid.uuid4().hex, username=username, password_hash=password_hash,
                   role=role, created_at=datetime.now(UTC))
        s.add(row)
        return row

    return fn


def by_name(username: str) -> Callable[[Session], User | None]:
    return lambda s: s.scalars(select(User).where(
        func.lower(User.username) == username.lower())).first()


def all_users(s: Session) -> list[User]:
    return list(s.scalars(select(User).order_by(User.created_at)))


def count(s: Session) -> int:
    return int(s.scalar(select(func.count()).select_from(User)) or 0)


def delete_user(user_id: str) -> Callable[[Session], User | None]:
    """The deleted user (their sessions go with them), or None."""
    def fn(s: Session) -> User | None:
        row = s.get(User, user_id)
        if row is not None:
            s.execute(delete(WebSession).where(WebSession.user_id == user_id))
            s.delete(row)
        return row

    return fn


def open_session(session_id: str, user_id: str, csrf: str, now: datetime, ttl: timedelta
                 ) -> Callable[[Session], None]:
    def fn(s: Session) -> None:
        s.add(WebSession(id=session_id, user_id=user_id, csrf=csrf, created_at=now,
                         expires_at=now + ttl))
        user = s.get(User, user_id)
        if user is not None:
            user.last_login_at = now
        # Expired sessions are cleared as new ones open.
        s.execute(delete(WebSession).where(WebSession.expires_at < now))

    return fn


def session_user(session_id: str, now: datetime
                 ) -> Callable[[Session], tuple[User, WebSession] | None]:
    """The signed-in user of a live session, or None (unknown or expired)."""
    def fn(s: Session) -> tuple[User, WebSession] | None:
        web = s.get(WebSession, session_id)
        if web is None or as_utc(web.expires_at) <= now:
            return None
        user = s.get(User, web.user_id)
        return (user, web) if user is not None else None

    return fn


def close_session(session_id: str) -> Callable[[Session], None]:
    def fn(s: Session) -> None:
        s.execute(delete(WebSession).where(WebSession.id == session_id))

    return fn
