"""Nodes: atende processes sharing one database (PostgreSQL), each with its own name
(ATENDE_NODE_ID). Every node says it is alive a few times per lease; one not heard from
for a whole lease is taken for dead, and exactly one other node takes it over: the calls
it had live are closed or requeued as after a restart (``calls.queue.recover``), so none
stays ``in_progress`` forever and each result webhook goes out once. A node that restarts
does the same for its own calls before it takes new ones.

The clocks of the nodes are compared (a node's ``seen_at`` is its own wall time): keep
them in step (NTP), well within a lease.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from atende.aio import WakeableLoop
from atende.calls.queue import recover
from atende.store.db import Store, as_utc
from atende.store.models import LIVE_STATUSES, Call, Node, Trunk

log = logging.getLogger(__name__)


# Store writers (run on the store thread) --------------------------------------------------
def join(node_id: str, incarnation: str, now: datetime) -> Callable[[Session], dict[str, int]]:
    """At start: this node is alive, and the calls it had live before are closed or
    requeued (with those of no node, left by an atende from before nodes existed). One
    transaction: a node taking this one over at the same moment waits for it, then finds
    it alive."""

    def fn(s: Session) -> dict[str, int]:
        row = s.get(Node, node_id, with_for_update=True)
        if row is None:
            s.add(Node(id=node_id, started_at=now, seen_at=now, incarnation=incarnation))
        else:
            row.started_at, row.seen_at, row.incarnation = now, now, incarnation
        s.flush()
        return recover(now, node_id, orphans=True)(s)

    return fn


def beat(node_id: str, incarnation: str, now: datetime) -> Callable[[Session], str | None]:
    """This node is still alive. Returns the incarnation found instead of ours when
    another process has started under our name since (a mistake to report)."""

    def fn(s: Session) -> str | None:
        row = s.get(Node, node_id, with_for_update=True)
        if row is None:  # deleted by hand: come back
            s.add(Node(id=node_id, started_at=now, seen_at=now, incarnation=incarnation))
            return None
        other = row.incarnation if row.incarnation != incarnation else None
        row.seen_at, row.incarnation = now, incarnation
        return other

    return fn


def alive_nodes(s: Session, now: datetime, lease_s: float) -> set[str]:
    """The nodes heard from within a lease and not gone since."""
    return set(s.scalars(select(Node.id).where(
        Node.seen_at >= now - timedelta(seconds=lease_s),
        or_(Node.taken_over_at.is_(None), Node.taken_over_at < Node.seen_at))))


class NodeView(NamedTuple):
    """A node as the API shows it."""

    id: str
    state: str  # alive, dead (not heard from for a lease), taken_over, gone (stopped)
    started_at: datetime
    seen_at: datetime
    taken_over_by: str | None
    live_calls: int
    registers: list[str]  # the extension trunks it registers


def nodes_view(now: datetime, lease_s: float) -> Callable[[Session], list[NodeView]]:
    """Every node that has shared this database, by name: whether it is alive, its live
    calls and the extension trunks it registers."""

    def fn(s: Session) -> list[NodeView]:
        calls = dict(s.execute(select(Call.node_id, func.count()).where(
            Call.status.in_(LIVE_STATUSES), Call.node_id.is_not(None))
            .group_by(Call.node_id)).all())
        registers: dict[str, list[str]] = {}
        for tid, node in s.execute(select(Trunk.id, Trunk.registrar_node).where(
                Trunk.registrar_node.is_not(None)).order_by(Trunk.id)):
            registers.setdefault(str(node), []).append(tid)
        alive = alive_nodes(s, now, lease_s)
        out = []
        for n in s.scalars(select(Node).order_by(Node.id)):
            over = n.taken_over_at is not None and n.taken_over_at >= n.seen_at
            state = ("alive" if n.id in alive else
                     ("gone" if n.taken_over_by == n.id else "taken_over") if over else
                     "dead")
            out.append(NodeView(n.id, state, as_utc(n.started_at), as_utc(n.seen_at),
                                n.taken_over_by if state == "taken_over" else None,
                                int(calls.get(n.id, 0)), registers.get(n.id, [])))
        return out

    return fn


def give_back(node_id: str) -> Callable[[Session], None]:
    """This node stops: the extension trunks it registers are for the others to take
    at once (cluster/trunks.py)."""

    def fn(s: Session) -> None:
        s.execute(update(Trunk).where(Trunk.registrar_node == node_id)
                  .values(registrar_node=None).execution_options(synchronize_session=False))

    return fn


def leave(node_id: str, now: datetime) -> Callable[[Session], bool]:
    """This node stopped cleanly: the trunks it registered are for the others to take
    at once; if none of its calls is still live in the store, there is nothing for
    another node to take over (it is marked as if it had taken itself over). False when
    some are: another node will close them after the lease."""

    def fn(s: Session) -> bool:
        give_back(node_id)(s)
        live = s.scalar(select(func.count()).select_from(Call)
                        .where(Call.node_id == node_id, Call.status.in_(LIVE_STATUSES)))
        row = s.get(Node, node_id)
        if live or row is None:
            return False
        row.taken_over_at, row.taken_over_by = now, node_id
        return True

    return fn


class TakenOver(NamedTuple):
    """A dead node this one took over, and what became of its live calls."""

    node_id: str
    seen_at: datetime
    requeued: int
    closed: int


def take_over(node_id: str, now: datetime, lease_s: float
              ) -> Callable[[Session], list[TakenOver]]:
    """Take over every other node not heard from for ``lease_s``: mark it taken (so no
    other node does it too; SKIP LOCKED passes over one being taken right now) and close
    or requeue its live calls, in one transaction."""

    def fn(s: Session) -> list[TakenOver]:
        cutoff = now - timedelta(seconds=lease_s)
        dead = list(s.scalars(
            select(Node).where(Node.id != node_id, Node.seen_at < cutoff,
                               or_(Node.taken_over_at.is_(None),
                                   Node.taken_over_at < Node.seen_at))
            .with_for_update(skip_locked=True)))
        out = []
        for node in dead:
            # Compare and set, as well: where rows cannot be locked (SQLite), a node that
            # took it over since our look makes this match nothing.
            done = s.execute(update(Node).where(
                Node.id == node.id, Node.seen_at == node.seen_at,
                or_(Node.taken_over_at.is_(None), Node.taken_over_at < Node.seen_at))
                .values(taken_over_at=now, taken_over_by=node_id)
                .execution_options(synchronize_session=False))
            if getattr(done, "rowcount", 0) != 1:
                continue
            counts = recover(now, node.id, why=f"atende node {node.id} stopped")(s)
            out.append(TakenOver(node.id, node.seen_at, counts["requeued"], counts["closed"]))
        return out

    return fn


# The loop -------------------------------------------------------------------------------
class Membership:
    """This node's place among the nodes: joins at start, then says it is alive every
    third of a lease and takes over nodes that stopped. ``on_taken_over`` callbacks run
    after a take-over (the queue and the webhook sender have work then)."""

    def __init__(self, store: Store, node_id: str, lease_s: float,
                 wall: Callable[[], datetime],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.node_id = node_id
        self.lease_s = lease_s
        self.incarnation = secrets.token_hex(8)
        self._wall = wall
        self._clock = clock
        self._loop = WakeableLoop(self.round)
        self._taken_over: list[Callable[[], None]] = []
        # Since when every beat has reached the database. After an outage every node's
        # seen_at is old: none takes another over until all have had a lease to beat.
        self._beating_since: float | None = None
        self._duplicate_told = False
        self.alive = [node_id]  # the nodes alive, this one among them, in name order

    def on_taken_over(self, callback: Callable[[], None]) -> None:
        self._taken_over.append(callback)

    def share(self, limit: int) -> int:
        """This node's part of a limit all nodes share (a trunk's max_concurrent_calls):
        the limit split evenly over the nodes alive, the rest one each to the first by
        name, so the parts add up to it and no call needs asking the others. Alone, all
        of it."""
        n, i = len(self.alive), self.alive.index(self.node_id)
        return limit // n + (1 if i < limit % n else 0)

    async def join(self) -> dict[str, int]:
        """Before any call: be alive, and close or requeue what this node left live."""
        counts = await self.store.run(join(self.node_id, self.incarnation, self._wall()))
        self._beating_since = self._clock()
        await self._look_around()
        return counts

    async def _look_around(self) -> None:
        """Which nodes are alive (for ``share``)."""
        try:
            alive = await self.store.run(lambda s: alive_nodes(s, self._wall(),
                                                               self.lease_s))
            self.alive = sorted(alive | {self.node_id})
        except Exception as exc:  # the last known stand until the next round
            log.warning("node %s could not read which nodes are alive (%s)", self.node_id,
                        exc)

    def start(self) -> None:
        self._loop.start()

    async def leave(self) -> None:
        """After a clean stop, once this node's calls have ended and been written."""
        await self._loop.close()
        if self._beating_since is None:
            return  # never joined, or cut off from the database
        try:
            if not await self.store.run(leave(self.node_id, self._wall())):
                log.warning("node %s stops with calls still live: another node will "
                            "close them once it has not been heard from for %.0f s",
                            self.node_id, self.lease_s)
        except Exception as exc:  # then another node takes it over, finding nothing
            log.warning("node %s could not say it left (%s)", self.node_id, exc)

    async def round(self) -> float:
        """Say this node is alive and take over dead ones; how long until the next."""
        interval = self.lease_s / 3
        try:
            other = await self.store.run(beat(self.node_id, self.incarnation, self._wall()))
        except Exception as exc:
            self._beating_since = None
            log.warning("node %s could not say it is alive (%s)", self.node_id,
                        str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__)
            return interval
        if self._beating_since is None:
            self._beating_since = self._clock()
        await self._look_around()
        if other is not None and not self._duplicate_told:
            self._duplicate_told = True
            log.error("another atende runs as node %r too: give each node its own "
                      "ATENDE_NODE_ID, or their calls will be taken for dead", self.node_id)
        if self._clock() - self._beating_since < self.lease_s:
            return interval
        try:
            taken = await self.store.run(take_over(self.node_id, self._wall(),
                                                   self.lease_s))
        except Exception:
            log.exception("taking over dead nodes failed; trying again")
            return interval
        for t in taken:
            log.log(logging.WARNING if t.requeued or t.closed else logging.INFO,
                    "node %s was not heard from since %s: took it over (%d call(s) queued "
                    "again, %d closed)", t.node_id, t.seen_at.isoformat(), t.requeued,
                    t.closed)
        if taken:
            for callback in self._taken_over:
                callback()
        return interval
