"""The writes that keep a call's record as it happens (its row, turns and events), made
in the background on the store thread (``Store.submit``), several to a transaction.

They are plain SQL statements on the session's connection rather than ORM objects: a
call makes several of them, and the ORM's work per write (a SELECT to load the row it
updates, a unit of work to flush) cost more than the writes themselves. Statements are
compiled once and run on the driver's cursor (``store/prepared.py``); only the values
change. ORM changes another write of the same transaction left pending are flushed
first, so writes land in the order they were submitted."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, bindparam, func, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from atende.store.db import RowWrite, utc
from atende.store.models import Base, Call, CallEvent, Turn
from atende.store.prepared import Prepared


@dataclass(frozen=True)
class Columns:
    """A model's table with, for each attribute, its column and the longest text kept."""

    table: Table
    keys: Mapping[str, str]  # attribute name → column key (``meta`` is "metadata")
    lengths: Mapping[str, int]  # column key → length, for text columns that have one

    @classmethod
    def of(cls, model: type[Base]) -> Columns:
        mapper = model.__mapper__
        keys: dict[str, str] = {}
        lengths: dict[str, int] = {}
        for attr in mapper.column_attrs:
            column = attr.columns[0]
            keys[attr.key] = column.key
            if (length := getattr(column.type, "length", None)) is not None:
                lengths[column.key] = int(length)
        assert isinstance(mapper.local_table, Table)
        return cls(mapper.local_table, keys, lengths)

    def values(self, attrs: Mapping[str, Any]) -> dict[str, Any]:
        """Column values for attribute values. Texts are clipped to their column: what
        comes off the wire (a From header, a Call-ID) may be longer than what we keep,
        and PostgreSQL refuses what SQLite would store anyway. An unknown attribute
        raises KeyError: a bug, not data."""
        out: dict[str, Any] = {}
        for name, value in attrs.items():
            key = self.keys[name]
            if isinstance(value, str) and len(value) > self.lengths.get(key, len(value)):
                value = value[:self.lengths[key]]
            out[key] = value
        return out


CALLS = Columns.of(Call)
TURNS = Columns.of(Turn)
EVENTS = Columns.of(CallEvent)
_calls = CALLS.table
_INSERT_CALL = Prepared(insert(_calls))
_UPDATE_CALL = Prepared(update(_calls).where(_calls.c.id == bindparam("call_id_")))
# A turn is numbered by the turns stored before it, in the same statement.
_INSERT_TURN = Prepared(insert(TURNS.table).values(
    seq=select(func.count()).select_from(TURNS.table)
    .where(TURNS.table.c.call_id == bindparam("call_id_")).scalar_subquery()))
_INSERT_EVENT = Prepared(insert(EVENTS.table))


def connection(s: Session) -> Connection:
    """``s``'s connection for a plain statement, once the ORM changes pending in ``s``
    are written (they were submitted earlier, so they land first)."""
    if s.new or s.dirty or s.deleted:
        s.flush()
    return s.connection()


def forget_call(s: Session, call_id: str) -> None:
    """A call row ``s`` holds is stale once a plain statement changed it: it is read
    again when next used."""
    row = s.identity_map.get(identity_key(Call, call_id))
    if row is not None:
        s.expire(row)


def call_row(call_id: str) -> tuple[str, str]:
    """The key of a call's row, for every RowWrite of it."""
    return ("calls", call_id)


class _CallValues(RowWrite):
    """Values written to a call's row. A later UpdateCall of the same call, submitted
    while this waits (within the store's commit delay), joins it: one statement."""

    def __init__(self, call_id: str, values: dict[str, Any]) -> None:
        super().__init__(call_row(call_id), self._write)
        self.call_id = call_id
        self.values = values

    def _write(self, s: Session) -> None:
        raise NotImplementedError

    def join(self, later: RowWrite) -> bool:
        if type(later) is not UpdateCall:
            return False
        self.values.update(later.values)
        return True


class InsertCall(_CallValues):
    """A new call's row (the answer, for most calls, joins it)."""

    def _write(self, s: Session) -> None:
        _INSERT_CALL.execute(connection(s), self.values)


class UpdateCall(_CallValues):
    """Values set on a stored call (nothing if it is not stored)."""

    def _write(self, s: Session) -> None:
        _UPDATE_CALL.execute(connection(s), {**self.values, "call_id_": self.call_id})
        forget_call(s, self.call_id)


def insert_call(**values: Any) -> InsertCall:
    row = CALLS.values(values)
    return InsertCall(str(row["id"]), row)


def update_call(call_id: str, **values: Any) -> UpdateCall:
    """Set ``values`` on the call (nothing if it is not stored)."""
    return UpdateCall(call_id, CALLS.values(values))


def insert_turn(call_id: str, **values: Any) -> RowWrite:
    """The call's next turn: numbered after those stored (writes are made in order). It
    writes no call row, so the call's changes may join across it."""
    row = TURNS.values({"call_id": call_id, **values})

    def fn(s: Session) -> None:
        _INSERT_TURN.execute(connection(s), {**row, "call_id_": call_id})

    return RowWrite(("turns", call_id), fn)


def insert_event(call_id: str, at: float, kind: str, data: dict[str, Any]
                 ) -> RowWrite:
    row = EVENTS.values({"call_id": call_id, "at": utc(at), "kind": kind, "data": data})

    def fn(s: Session) -> None:
        _INSERT_EVENT.execute(connection(s), row)

    return RowWrite(("call_events", call_id), fn)  # no call row: joining goes on
