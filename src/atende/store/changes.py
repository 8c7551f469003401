"""Which settings a commit changed (assistants, trunks), told once it is committed: what
the other atende nodes are told to re-read at once (cluster/shared.py), instead of
within their few seconds of polling. Seen on the store thread, for writes made through
this store: an ORM flush, or an UPDATE or DELETE statement on them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

from atende.store.models import Assistant, Trunk

KINDS: dict[type, str] = {Assistant: "assistants", Trunk: "trunks"}
_KEY = "atende.changed"


class Changes:
    """Listens to this store's sessions; tells its listeners what each commit changed."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._listeners: list[Callable[[frozenset[str]], None]] = []
        event.listen(sessions, "after_flush", self._after_flush)
        event.listen(sessions, "do_orm_execute", self._on_execute)
        event.listen(sessions, "after_commit", self._after_commit)
        event.listen(sessions, "after_rollback", self._after_rollback)

    def on_commit(self, listener: Callable[[frozenset[str]], None]) -> None:
        """``listener`` with the kinds a commit changed (called on the store thread)."""
        self._listeners.append(listener)

    def _after_flush(self, session: Session, _context: Any) -> None:
        for obj in (*session.new, *session.dirty, *session.deleted):
            if (kind := KINDS.get(type(obj))) is not None:
                session.info.setdefault(_KEY, set()).add(kind)

    def _on_execute(self, state: ORMExecuteState) -> None:
        if state.is_update or state.is_delete:
            for m in state.all_mappers:
                if (kind := KINDS.get(m.class_)) is not None:
                    state.session.info.setdefault(_KEY, set()).add(kind)

    def _after_commit(self, session: Session) -> None:
        kinds = session.info.pop(_KEY, None)
        if kinds:
            for listener in self._listeners:
                listener(frozenset(kinds))

    def _after_rollback(self, session: Session) -> None:
        session.info.pop(_KEY, None)
