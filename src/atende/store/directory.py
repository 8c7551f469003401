"""Which assistant takes a call, answered from memory.

Every call admitted asked the store which assistant it reaches: a transaction on the
store thread, queued behind the call writes, on the path of every INVITE. The assistants
change rarely; the directory is a snapshot of all of them, read in one query, dropped
by any commit through the store that touches an assistant (store/changes.py), when
another node says it changed one, and in any case after ``MAX_AGE_S``, so that an edit
made around atende (another process, by hand in the database) is seen within seconds too.

The rows in a snapshot are shared by every call that reads them: read them, never
change them. (The API edits assistants it reads from the store itself, not from here.)"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from atende.store.changes import Changes
from atende.store.models import Assistant

MAX_AGE_S = 5.0


def choose(rows: Iterable[Assistant], extension: str | None, domain: str | None
           ) -> Assistant | None:
    """The assistant a call to ``extension`` from ``domain`` reaches: the domain's own,
    else one that belongs to no domain; a call from no domain reaches one of no domain,
    or the only one with that extension. No extension: the default assistant."""
    if not extension:
        return next((a for a in rows if a.is_default), None)
    same = [a for a in rows if (a.extension or "").lower() == extension.lower()]
    for owner in (domain, None):
        if mine := [a for a in same if a.domain_uuid == owner]:
            return mine[0]
    return same[0] if domain is None and len(same) == 1 else None


@dataclass(frozen=True)
class Directory:
    """All assistants as they were at ``read_at`` (monotonic seconds), oldest first."""

    rows: tuple[Assistant, ...]
    read_at: float
    _by_id: dict[str, Assistant] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {a.id: a for a in self.rows})

    def by_id(self, assistant_id: str | None) -> Assistant | None:
        """The assistant with this id, or the default one when ``assistant_id`` is None."""
        if assistant_id is None:
            return choose(self.rows, None, None)
        return self._by_id.get(assistant_id)

    def for_call(self, extension: str | None, domain: str | None = None) -> Assistant | None:
        return choose(self.rows, extension, domain)


class DirectoryCache:
    """The latest snapshot, or None once a write may have made it wrong. Read on the store
    thread only (reads are queued behind the writes), looked at from anywhere."""

    def __init__(self, changes: Changes, clock: Callable[[], float] = time.monotonic) -> None:
        self.current: Directory | None = None
        self._clock = clock
        self._generation = 0  # one more each time it is dropped
        changes.on_commit(lambda kinds: self.forget() if "assistants" in kinds else None)

    def fresh(self) -> Directory | None:
        """The snapshot, if there is one young enough to answer from."""
        d = self.current
        return d if d is not None and self._clock() - d.read_at < MAX_AGE_S else None

    def read(self, s: Session) -> Directory:
        """On the store thread: a new snapshot, kept until a write touches assistants."""
        generation = self._generation
        d = Directory(tuple(s.scalars(select(Assistant).order_by(Assistant.created_at))),
                      self._clock())
        if generation == self._generation:  # else it may be older than the change told
            self.current = d
        return d

    def forget(self) -> None:
        """From any thread: assistants changed (a commit here, or another node told so)."""
        self._generation += 1
        self.current = None

