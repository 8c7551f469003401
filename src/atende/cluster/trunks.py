"""Trunks when several atende nodes share the store. Each node reads the stored trunks'
versions every few seconds and applies what changed through another node (a new trunk
is used, a deleted one dropped), as its own API does at once for changes made through
it. And each extension trunk is registered by one node only: the nodes alive share them
out (each takes at most its share, and gives back what is over it when a node joins);
the trunks of a node that stopped are taken by the others."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from atende.aio import WakeableLoop
from atende.cluster.nodes import alive_nodes
from atende.store.db import Store
from atende.store.models import Trunk
from atende.telephony.trunks import TrunkManager

log = logging.getLogger(__name__)
FOLLOW_S = 3.0


def versions(s: Session) -> dict[str, datetime]:
    return {tid: at for tid, at in s.execute(select(Trunk.id, Trunk.updated_at))}


def rows(ids: list[str]) -> Callable[[Session], list[Trunk]]:
    return lambda s: list(s.scalars(select(Trunk).where(Trunk.id.in_(ids))))


def share_registrations(node_id: str, now: datetime, lease_s: float
                        ) -> Callable[[Session], tuple[set[str], dict[str, str]]]:
    """The enabled extension trunks this node registers from now on (taken, or kept, up
    to its share among the nodes alive), and who registers the others. A trunk is free
    when nobody has it or its node is not alive (not heard from for a lease, or gone);
    taking one is a compare-and-set, so two nodes never both get it."""

    def fn(s: Session) -> tuple[set[str], dict[str, str]]:
        alive = alive_nodes(s, now, lease_s) | {node_id}
        trunks = list(s.execute(select(Trunk.id, Trunk.registrar_node).where(
            Trunk.kind == "extension", Trunk.enabled.is_(True)).order_by(Trunk.id)))
        share = math.ceil(len(trunks) / len(alive))
        mine = [tid for tid, node in trunks if node == node_id]
        for tid in mine[share:]:  # over our share (a node joined): for the others
            _move(s, tid, node_id, None)
        mine = mine[:share]
        elsewhere = {}
        for tid, node in trunks:
            if node == node_id:
                continue
            free = node is None or node not in alive
            if free and len(mine) < share and _move(s, tid, node, node_id):
                mine.append(tid)
            elif node is not None and not free:
                elsewhere[tid] = node
        return set(mine), elsewhere

    return fn


def _move(s: Session, trunk_id: str, frm: str | None, to: str | None) -> bool:
    """The trunk's registrar from ``frm`` to ``to``, if it is still ``frm``."""
    held = Trunk.registrar_node.is_(None) if frm is None else Trunk.registrar_node == frm
    done = s.execute(update(Trunk).where(Trunk.id == trunk_id, held)
                     .values(registrar_node=to).execution_options(synchronize_session=False))
    return getattr(done, "rowcount", 0) == 1


class TrunkFollower:
    """Keeps this node's trunks as they are stored, whoever changed them, and registers
    its share of the extension trunks."""

    def __init__(self, store: Store, manager: TrunkManager, node_id: str, lease_s: float,
                 wall: Callable[[], datetime], every_s: float = FOLLOW_S) -> None:
        self.store = store
        self.manager = manager
        self.node_id = node_id
        self.lease_s = lease_s
        self._wall = wall
        self.every_s = every_s
        self._loop = WakeableLoop(self.round)
        self.start, self.wake, self.close = self._loop.start, self._loop.wake, self._loop.close
        self._busy = asyncio.Lock()  # one look at a time: a trunk is applied once

    async def catch_up(self) -> None:
        """Look now (a queued call names a trunk this node has not seen yet)."""
        await self.round()

    async def round(self) -> float:
        """One look at the store; how long until the next."""
        async with self._busy:
            return await self._look()

    async def _look(self) -> float:
        try:
            # Whose registrations first: the trunks applied next register or not by it.
            mine, elsewhere = await self.store.run(share_registrations(
                self.node_id, self._wall(), self.lease_s))
            await self.manager.own(mine, elsewhere)
            read_at = time.monotonic()
            stored = await self.store.run(versions)
            changed = await self.manager.follow(
                stored, read_at, lambda ids: self.store.run(rows(ids)))
        except Exception:
            log.exception("could not follow the stored trunks; looking again in %.0f s",
                          self.every_s)
            return self.every_s
        if changed:
            log.info("%d trunk(s) changed elsewhere: applied", changed)
        return self.every_s
