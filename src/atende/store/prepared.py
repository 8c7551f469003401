"""Statements compiled once and run on the database driver's own cursor: for the writes
every call makes (its row, its turns, its end) on the store thread.

SQLAlchemy's execution of a cached Core statement still costs 40–60 µs of Python per
statement (building the execution context, the parameters, the result), several times
what SQLite itself takes to make the write. A prepared statement is compiled for the
engine's dialect the first time it is run with a given set of values, with the bind
processors of its columns (datetimes and JSON for SQLite, whatever the PostgreSQL
driver needs) and the Python-side defaults of an INSERT; after that a write only
converts its values and calls the cursor. The SQL is SQLAlchemy's own, so it is the
same statement either way. Driver errors are wrapped as SQLAlchemy wraps them, a lost
connection invalidated, so the store tells an outage from a bad write as before."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, exc
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.selectable import Select

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: Sequence[str]  # the values' names, in the statement's order
    processors: Sequence[Processor]  # each value's conversion for the driver, if any
    defaults: Mapping[str, Any]  # values not given: the column's or the statement's
    positional: bool  # the driver takes a sequence (else a mapping by name)

    def parameters(self, values: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        given = [values[n] if n in values else self.defaults[n] for n in self.names]
        converted = [v if p is None or v is None else p(v)
                     for v, p in zip(given, self.processors, strict=True)]
        if self.positional:
            return converted
        return dict(zip(self.names, converted, strict=True))


def _compile(statement: UpdateBase | Select[Any], dialect: Dialect,
             keys: tuple[str, ...]) -> _Compiled:
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))
    assert isinstance(compiled, SQLCompiler)
    if compiled.escaped_bind_names or any(b.expanding for b in compiled.binds.values()):
        raise ValueError(f"a prepared statement has plain parameters: {compiled.string}")
    defaults: dict[str, Any] = {}
    for column in compiled.insert_prefetch:
        default = column.default
        if default is None or not default.is_scalar:
            raise ValueError(f"{column} has a default a prepared statement cannot make")
        defaults[column.key] = default.arg  # type: ignore[attr-defined]
    if compiled.update_prefetch:
        raise ValueError("a prepared statement cannot make an UPDATE's column defaults")
    names = list(compiled.positiontup or compiled.bind_names.values())
    processors = [compiled.binds[n].type.dialect_impl(dialect).bind_processor(dialect)
                  for n in names]
    # The statement's own values (the states in a WHERE) are bound like the others.
    for n in names:
        if n not in keys and n not in defaults:
            if compiled.binds[n].required:
                raise ValueError(f"a prepared statement needs a value for {n!r}")
            defaults[n] = compiled.binds[n].value
    return _Compiled(compiled.string, names, processors, defaults, compiled.positional)


class Prepared:
    """``statement`` run with plain values (by attribute key, and its own bind
    parameters' names), compiled once per dialect and set of keys."""

    def __init__(self, statement: UpdateBase | Select[Any]) -> None:
        self.statement = statement
        self._compiled: dict[tuple[str, tuple[str, ...]], _Compiled] = {}
        self._lock = threading.Lock()  # compiled on whichever thread first needs it

    def _for(self, dialect: Dialect, keys: tuple[str, ...]) -> _Compiled:
        key = (dialect.name, keys)
        found = self._compiled.get(key)
        if found is None:
            with self._lock:
                found = self._compiled.setdefault(key, _compile(self.statement, dialect, keys))
        return found

    def execute(self, conn: Connection, values: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Run with ``values`` in ``conn``'s transaction; the rows it returns (RETURNING,
        or a query's)."""
        compiled = self._for(conn.dialect, tuple(values))
        parameters = compiled.parameters(values)
        dbapi = conn.connection
        cursor = dbapi.cursor()
        sql = compiled.sql
        events = conn.dispatch
        try:
            # Listeners of the engine's cursor events (instrumentation, tests) see these
            # statements as they see SQLAlchemy's, with no execution context (which the
            # events allow), and may change them as there.
            for before in events.before_cursor_execute:
                sql, parameters = before(conn, cursor, sql, parameters, None, False)
            cursor.execute(sql, parameters)
            for after in events.after_cursor_execute:
                after(conn, cursor, sql, parameters, None, False)
            return list(cursor.fetchall()) if cursor.description else []
        except conn.dialect.loaded_dbapi.Error as error:
            lost = conn.dialect.is_disconnect(error, dbapi, cursor)
            if lost:
                conn.invalidate(error)
            raise exc.DBAPIError.instance(
                sql, parameters, error, conn.dialect.loaded_dbapi.Error,
                connection_invalidated=lost, dialect=conn.dialect) from error
        finally:
            cursor.close()
