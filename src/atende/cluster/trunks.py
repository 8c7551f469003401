"""Trunks changed through another atende node: each node reads the stored trunks'
versions every few seconds and applies what changed (a new trunk registers, a deleted
one unregisters), as its own API does at once for changes made through it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from atende.aio import WakeableLoop
from atende.store.db import Store
from atende.store.models import Trunk
from atende.telephony.trunks import TrunkManager

log = logging.getLogger(__name__)
FOLLOW_S = 3.0


def versions(s: Session) -> dict[str, datetime]:
    return {tid: at for tid, at in s.execute(select(Trunk.id, Trunk.updated_at))}


def rows(ids: list[str]) -> Callable[[Session], list[Trunk]]:
    return lambda s: list(s.scalars(select(Trunk).where(Trunk.id.in_(ids))))


class TrunkFollower:
    """Keeps this node's trunks as they are stored, whoever changed them."""

    def __init__(self, store: Store, manager: TrunkManager, every_s: float = FOLLOW_S
                 ) -> None:
        self.store = store
        self.manager = manager
        self.every_s = every_s
        self._loop = WakeableLoop(self.round)
        self.start, self.close = self._loop.start, self._loop.close
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
