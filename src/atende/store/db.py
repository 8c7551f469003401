"""The store: migrations at start-up and the queries the engine and the API need.

SQLAlchemy runs synchronously on one dedicated thread: writes stay ordered (a call's turns
land in the order they happened), SQLite sees one writer, and the event loop never blocks.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, overload

from alembic import command
from alembic.config import Config
from sqlalchemy import ColumnElement, Engine, create_engine, event, func, select
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, selectinload, sessionmaker

from atende.store.changes import Changes
from atende.store.directory import Directory, DirectoryCache, choose
from atende.store.models import Assistant, Call, Hook, Trunk, Turn

T = TypeVar("T")
log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass(frozen=True)
class CallRow:
    """The columns of a call that the statistics (calls/stats.py) need."""

    direction: str
    source: str | None
    assistant_id: str | None
    hook_id: str | None
    status: str
    outcome: str | None
    task: bool
    attempts: int
    invite_at: datetime
    answer_at: datetime | None
    end_at: datetime | None
    latencies: tuple[int, ...] = ()  # of its replies, ms (end of speech → first audio)


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


@overload
def as_utc(dt: datetime) -> datetime: ...
@overload
def as_utc(dt: None) -> None: ...
def as_utc(dt: datetime | None) -> datetime | None:
    """A stored time with its zone: SQLite gives them back naive, and they are UTC."""
    if dt is None:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def migrate(engine: Engine, revision: str = "head") -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        if sqlite:
            # SQLite changes a table's constraints by copying it and dropping the old one;
            # with foreign keys on, that drop would null every call's assistant_id (ON
            # DELETE SET NULL). The pragma only takes effect outside a transaction.
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            conn.commit()
        try:
            with conn.begin():
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, revision)
                if sqlite and (broken := conn.exec_driver_sql("PRAGMA foreign_key_check")
                               .fetchall()):
                    raise RuntimeError(f"migration left foreign keys broken: {broken[:5]}")
        finally:
            if sqlite:
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                conn.commit()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached now (down, restarting, locked),
    as opposed to a write that could never succeed."""
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeout):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


class RowWrite:
    """A background write to one row (``key``: its table and id; or to rows only it
    writes, such as a call's turns, which nothing joins). While it waits to be
    taken by the store thread, a later write to the same row may join it (``join``, made
    by subclasses that can merge): one statement where there were two. Nothing joins past
    another write of its row: only the last RowWrite waiting for a row is offered one,
    and any other write submitted (it could touch any row) ends all joining until the
    store thread has taken what waits."""

    def __init__(self, key: tuple[str, str], fn: Callable[[Session], object]) -> None:
        self.key = key
        self._fn = fn

    def __call__(self, s: Session) -> object:
        return self._fn(s)

    def join(self, later: RowWrite) -> bool:
        """Take ``later`` (same row, submitted after this) into this write; whether it did."""
        return False


WRITE_BATCH = 200  # background writes committed together, at most
COMMIT_DELAY_S = 0.02  # the longest a background write waits for others to commit with


class Store:
    """The database: runs queries and writes on one thread so the event loop never blocks, with
    the schema migrated at start. Background writes (``submit``: call states, turns,
    events) are durable: while the database is unreachable they wait, in order, and are
    written when it is back. Those made within ``commit_delay_s`` of each other, or that
    queue up while the store thread is busy, are committed together, in one transaction
    (one disk flush instead of one each); a query (``run``) sees every write submitted
    before it."""

    def __init__(self, url: str, node_id: str | None = None,
                 commit_delay_s: float = COMMIT_DELAY_S) -> None:
        # This atende node's name: the live calls it starts carry it (cluster/nodes.py)
        self.node_id = node_id or socket.gethostname()
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.changes = Changes(self.sessions)
        self._directory = DirectoryCache(self.changes)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        # Writes submitted, not yet taken by the store thread (appended on the loop's);
        # of those that write a row, the last one for each row (a later one may join it).
        # Both change under the lock: a write is joined only while it is not yet taken.
        self._incoming: deque[Callable[[Session], object]] = deque()
        self._last_for_row: dict[tuple[str, str], RowWrite] = {}
        self._lock = threading.Lock()
        self._taking = False  # a job to take them is queued (or timed) on the store thread
        # How long a background write waits for others to share its transaction.
        self.commit_delay_s = commit_delay_s
        self._timer: asyncio.TimerHandle | None = None
        # Writes taken, not yet made, oldest first; touched on the store thread only.
        self._backlog: deque[Callable[[Session], object]] = deque()
        self._retry_s = 0.0  # while the database is unreachable: the next wait
        self.outage: str | None = None  # why the database is unreachable, while it is
        self._loop: asyncio.AbstractEventLoop | None = None
        self._caught_up: list[Callable[[], None]] = []
        self._closed = False

    @property
    def pending_writes(self) -> int:
        return len(self._incoming) + len(self._backlog)

    def on_caught_up(self, callback: Callable[[], None]) -> None:
        """``callback`` (on the event loop) when writes held by an outage are all made."""
        self._caught_up.append(callback)

    async def run(self, fn: Callable[[Session], T]) -> T:
        def job() -> T:
            if self._incoming:  # a query sees the writes submitted before it
                self._take()
            with self.sessions.begin() as session:
                return fn(session)

        return await asyncio.get_running_loop().run_in_executor(self._executor, job)

    def submit(self, fn: Callable[[Session], object]) -> None:
        """A write nobody waits for, kept in order with every other store operation and
        made even if the database is down now: it waits (in order) until it is back."""
        with self._lock:
            if isinstance(fn, RowWrite):
                last = self._last_for_row.get(fn.key)
                if last is not None and last.join(fn):
                    return  # made with the write it joined, which is waiting
                self._last_for_row[fn.key] = fn
            else:
                self._last_for_row.clear()
            self._incoming.append(fn)
            if self._taking:
                return
            self._taking = True
        if self.commit_delay_s > 0 and self._on_loop():
            # Writes come in bursts (a call makes several within milliseconds, and
            # calls overlap): a short wait lets them share one commit, which costs
            # the database more than the writes themselves.
            assert self._loop is not None
            self._timer = self._loop.call_later(self.commit_delay_s, self._take_later)
        else:
            self._executor.submit(self._take)

    def _on_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    def _take_later(self) -> None:
        self._timer = None
        if not self._closed:
            self._executor.submit(self._take)

    def _take(self, last_try: bool = False) -> None:
        """On the store thread: move the submitted writes to the backlog and make them. (The
        flag is cleared first: a write submitted from here on either is taken now or
        queues another job; and a query queued after a write finds it made.)"""
        with self._lock:
            self._taking = False
            self._backlog.extend(self._incoming)
            self._incoming.clear()
            self._last_for_row.clear()
        if self.outage is None or last_try:  # in an outage, the retry makes them in order
            self._drain()

    def _drain(self) -> None:
        """On the store thread: make the waiting writes, oldest first and many to a
        transaction, until the database is found unreachable (then try again later,
        backing off). When writes made together fail, they are made again one per
        transaction: the one that can never be written (a bug, or data the schema
        refuses) is logged and dropped, and the rest go through."""
        alone = 0  # writes still to make one per transaction
        while self._backlog:
            size = 1 if alone else min(WRITE_BATCH, len(self._backlog))
            try:
                with self.sessions.begin() as session:
                    for i in range(size):
                        self._backlog[i](session)
            except Exception as exc:
                if unavailable(exc):
                    self._wait_for_database(exc)
                    return
                if size > 1:
                    alone = size
                    continue
                log.exception("a database write failed and is dropped")
            for _ in range(size):
                self._backlog.popleft()
            alone = max(0, alone - size)
        if self.outage is not None:
            log.warning("the database is back: the writes that waited are made")
            self.outage, self._retry_s = None, 0.0
            if self._loop is not None:
                for callback in self._caught_up:
                    self._loop.call_soon_threadsafe(callback)

    def _wait_for_database(self, exc: BaseException) -> None:
        first = self.outage is None
        self.outage = str(exc.__cause__ or exc).splitlines()[0][:200]
        self._retry_s = min(10.0, max(0.5, self._retry_s * 2))
        if first:
            log.error("the database is unreachable (%s): %d write(s) wait for it",
                      self.outage, len(self._backlog))
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._retry_later, self._retry_s)

    def _retry_later(self, delay: float) -> None:
        """On the event loop: the store thread drains again after ``delay``."""
        assert self._loop is not None
        self._loop.call_later(delay, self._resume)

    def _resume(self) -> None:
        if not self._closed:
            self._executor.submit(self._drain)

    async def health(self) -> str | None:
        """None when the database answers and no write waits; else what is wrong."""
        try:
            async with asyncio.timeout(5):
                await self.run(lambda s: s.execute(select(1)).all())
        except Exception as exc:  # whatever stops the query is what /health reports
            return f"database unreachable: {str(exc).splitlines()[0][:200]}"
        if self.outage is not None and self.pending_writes:
            return f"{self.pending_writes} write(s) wait for the database"
        return None

    async def init(self, default_rules: dict[str, Any] | None = None) -> None:
        """Bring the schema up to date; with ``default_rules`` (the agent's), a store with
        no assistant yet gets a default one that speaks them."""
        self._loop = asyncio.get_running_loop()
        await self._loop.run_in_executor(self._executor, migrate, self.engine)
        if default_rules is not None:
            rules = default_rules
            await self.run(lambda s: _ensure_default_assistant(s, rules))

    async def close(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        if self.pending_writes:  # a last try: the database may be back by now
            self._executor.submit(self._take, True)
        await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown, True)
        if self._backlog:
            log.error("stopping with %d write(s) the database never took (it is "
                      "unreachable: %s)", len(self._backlog), self.outage)
        self.engine.dispose()

    # assistants -------------------------------------------------------------------------
    async def assistants(self) -> list[Assistant]:
        return await self.run(lambda s: list(s.scalars(select(Assistant)
                                                       .order_by(Assistant.created_at))))

    async def assistant_by_id(self, assistant_id: str | None) -> Assistant | None:
        """The assistant with this id, or the default one when ``assistant_id`` is None."""
        if assistant_id is None:
            return await self.assistant_for(None)
        return await self.run(lambda s: s.get(Assistant, assistant_id))

    async def assistant_for(self, extension: str | None, domain: str | None = None
                            ) -> Assistant | None:
        """The assistant a call to ``extension`` from ``domain`` reaches (see
        ``directory.choose``), read now."""
        def q(s: Session) -> Assistant | None:
            where = Assistant.is_default if not extension else \
                func.lower(Assistant.extension) == extension.lower()
            return choose(s.scalars(select(Assistant).where(where)), extension, domain)

        return await self.run(q)

    def forget_directory(self) -> None:
        """Assistants changed elsewhere (another node): the next call reads them again."""
        self._directory.forget()

    async def directory(self) -> Directory:
        """Every assistant, from memory while no write has touched them (the calls'
        admission asks this on every INVITE)."""
        fresh = self._directory.fresh()
        return fresh if fresh is not None else await self.run(self._directory.read)

    async def hook_names(self) -> dict[str, str]:
        return dict(await self.run(lambda s: [(h.id, h.name) for h in s.scalars(select(Hook))]))

    async def trunks(self) -> list[Trunk]:
        return await self.run(lambda s: list(s.scalars(select(Trunk))))

    # calls ------------------------------------------------------------------------------
    async def list_calls(self, filters: CallFilter, limit: int, offset: int
                         ) -> tuple[list[Call], int]:
        def q(s: Session) -> tuple[list[Call], int]:
            conditions = filters.conditions()
            stmt = select(Call).where(*conditions)
            count = select(func.count()).select_from(Call).where(*conditions)
            rows = list(s.scalars(stmt.order_by(Call.invite_at.desc(), Call.id)
                                  .limit(limit).offset(offset)))
            return rows, int(s.scalar(count) or 0)

        return await self.run(q)

    async def stat_rows(self, since: datetime, until: datetime) -> list[CallRow]:
        """What calls/stats.py sums, for calls placed or received in [since, until)."""
        columns = (Call.direction, Call.source, Call.assistant_id, Call.hook_id, Call.status,
                   Call.outcome, Call.task.is_not(None), Call.attempts, Call.invite_at,
                   Call.answer_at, Call.end_at, Call.id)
        window = (Call.invite_at >= since, Call.invite_at < until)

        def q(s: Session) -> list[CallRow]:
            latencies: dict[str, list[int]] = {}
            for call_id, ms in s.execute(
                    select(Turn.call_id, Turn.latency_ms).join(Call, Turn.call_id == Call.id)
                    .where(*window, Turn.latency_ms.is_not(None))):
                if ms is not None:
                    latencies.setdefault(call_id, []).append(ms)
            rows = s.execute(select(*columns).where(*window))
            return [CallRow(r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6]), r[7] or 0,
                            as_utc(r[8]), as_utc(r[9]), as_utc(r[10]),
                            tuple(latencies.get(r[11], ()))) for r in rows]

        return await self.run(q)

    async def get_call(self, call_id: str, domain: str | None = None) -> Call | None:
        """``domain``: only a call taken by an assistant of that domain."""
        return await self.run(lambda s: s.scalars(
            select(Call).where(Call.id == call_id, *CallFilter(domain=domain).conditions())
            .options(selectinload(Call.turns), selectinload(Call.events),
                     selectinload(Call.attempt_log))).first())


@dataclass(frozen=True)
class CallFilter:
    """What `GET /v1/calls` narrows by; every given field must match."""

    status: str | None = None
    outcome: str | None = None
    source: str | None = None
    direction: str | None = None
    trunk_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    metadata: tuple[tuple[str, str], ...] = ()  # (key, value as text)
    domain: str | None = None  # calls of this FusionPBX domain's assistants only
    assistant_id: str | None = None
    ids: tuple[str, ...] | None = None  # these calls only
    statuses: tuple[str, ...] | None = None  # in one of these (the live ones, on any node)

    def conditions(self) -> list[ColumnElement[bool]]:
        out: list[ColumnElement[bool]] = []
        for column, value in ((Call.status, self.status), (Call.outcome, self.outcome),
                              (Call.source, self.source), (Call.direction, self.direction),
                              (Call.trunk_id, self.trunk_id),
                              (Call.assistant_id, self.assistant_id)):
            if value is not None:
                out.append(column == value)
        if self.ids is not None:
            out.append(Call.id.in_(self.ids))
        if self.statuses is not None:
            out.append(Call.status.in_(self.statuses))
        if self.since is not None:
            out.append(Call.invite_at >= self.since)
        if self.until is not None:
            out.append(Call.invite_at < self.until)
        for key, value in self.metadata:
            out.append(Call.meta[key].as_string() == value)
        if self.domain is not None:
            out.append(Call.assistant_id.in_(select(Assistant.id).where(
                Assistant.domain_uuid == self.domain)))
        return out


def _ensure_default_assistant(s: Session, rules: dict[str, Any]) -> None:
    if s.scalars(select(Assistant).limit(1)).first() is not None:
        return
    s.add(Assistant(
        id=uuid.uuid4().hex, name="Default assistant", extension="assistant", language="en",
        voice="piper", rules=rules, is_default=True,
        created_at=datetime.now(UTC),
    ))
