"""Limits counted over all nodes in Redis: a trunk's or an assistant's
max_concurrent_calls. Each place taken is a member of a sorted set per limit (the call's
id), scored by when it lapses by Redis's own clock; taking one is a script that drops
the lapsed, counts the rest and adds the call only under the limit, so two nodes never
both take the last place. Each node
keeps its places alive (every third of a lease) and gives them back when its calls end;
a node that dies stops keeping them, and its places lapse within a lease (when its calls
are taken over). Keeping them alive also puts them back after Redis lost them.

Redis is a help, not a need: when it cannot be reached, ``take`` says so (None) and the
caller falls back to this node's part of the limit (cluster/nodes.py: Membership.share).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from atende.cluster.shared import honour_cancel, unreachable

log = logging.getLogger(__name__)
PREFIX = "atende:places:"
RETRY_S = 2.0  # after a failure, calls go by the local parts this long before Redis is tried again

# KEYS[1]: the set; ARGV: limit, member, lease in ms. 1 when taken (or held already).
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if not redis.call('ZSCORE', KEYS[1], ARGV[2]) and
   redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + lease, ARGV[2])
redis.call('PEXPIRE', KEYS[1], lease)
return 1
"""

# KEYS: the sets; ARGV[1]: lease in ms, then for each key its count of members and them.
_KEEP = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[1])
local i = 2
for _, key in ipairs(KEYS) do
  local n = tonumber(ARGV[i])
  for j = i + 1, i + n do
    redis.call('ZADD', key, now + lease, ARGV[j])
  end
  redis.call('PEXPIRE', key, lease)
  i = i + n + 1
end
return 0
"""


def key_of(name: str) -> str:
    return PREFIX + name


class Places:
    """This node's side of the limits counted in Redis. ``held`` says which places this
    node holds now (by limit name, the members): what the keep-alive renews."""

    def __init__(self, url: str, lease_s: float,
                 held: Callable[[], Mapping[str, list[str]]],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._client = aioredis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        self._take = self._client.register_script(_TAKE)
        self._keep = self._client.register_script(_KEEP)
        self.lease_ms = int(lease_s * 1000)
        self._held = held
        self._clock = clock
        self._retry_at = float("-inf")
        self.problem: str | None = None
        self._given: list[tuple[str, str]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def counting(self) -> bool:
        """Whether the limits are counted in Redis now (else each node keeps its part)."""
        return self.problem is None

    async def take(self, name: str, limit: int, member: str) -> bool | None:
        """Take a place under ``limit`` for ``member``: True, False when all are taken
        (on whichever nodes), None when Redis cannot say (then count locally)."""
        if self.problem is not None and self._clock() < self._retry_at:
            return None
        try:
            taken = await self._take(keys=[key_of(name)],
                                     args=[limit, member, self.lease_ms])
            honour_cancel()
        except (RedisError, OSError) as exc:
            honour_cancel(exc)
            self._failed(exc)
            return None
        self._recovered()
        return bool(taken)

    def give(self, name: str, member: str) -> None:
        """Give back a place (sent in the background: a call's end does not wait)."""
        self._given.append((key_of(name), member))
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        """Stop keeping places, and give back what was given up to now (the rest lapses
        within a lease)."""
        if self._task is not None:
            self._task.cancel()
            # Its end, not its CancelledError: a cancellation of our own must still come
            # through (suppressing CancelledError here swallowed the caller's too).
            await asyncio.wait([self._task])
        if self.problem is None:
            await self._give_back()
        with contextlib.suppress(Exception):
            await self._client.aclose()

    def health(self) -> tuple[str, object, str | None]:
        """For /health: shown, never failing it (without Redis each node keeps its part)."""
        shown = "counted over all nodes" if self.problem is None else (
            f"{self.problem}: each node keeps to its part until it is back")
        return "call_limits", shown, None

    async def keep(self) -> None:
        """Renew every place this node holds (and put back any Redis lost)."""
        held = {key_of(name): members for name, members in self._held().items() if members}
        args: list[str | int] = [self.lease_ms]
        for members in held.values():
            args += [len(members), *members]
        try:
            if held:
                await self._keep(keys=list(held), args=args)
            else:
                await self._client.ping()
            honour_cancel()
        except (RedisError, OSError) as exc:
            honour_cancel(exc)
            self._failed(exc)
            return
        self._recovered()

    async def _give_back(self) -> None:
        given, self._given = self._given, []
        if not given:
            return
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for key, member in given:
                    pipe.zrem(key, member)
                await pipe.execute()
            honour_cancel()
        except (RedisError, OSError) as exc:
            honour_cancel(exc)
            # Not kept alive any more, so they lapse within a lease anyway.
            self._failed(exc)

    async def _run(self) -> None:
        every = self.lease_ms / 3000
        next_keep = self._clock()
        while True:
            try:
                if self._clock() >= next_keep:
                    await self.keep()
                    next_keep = self._clock() + every
                await self._give_back()
            except Exception as exc:  # a bug must not stop the keeping for good
                honour_cancel(exc)
                log.exception("keeping the call limits' places failed")
                self._failed(exc)
                next_keep = self._clock() + every
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, next_keep - self._clock())):
                    await self._wake.wait()

    def _failed(self, exc: BaseException) -> None:
        why = unreachable(exc)
        if self.problem is None:
            log.warning("Redis %s: trunks' and assistants' call limits are kept by each "
                        "node's part until it is back", why)
        self.problem = why
        self._retry_at = self._clock() + RETRY_S

    def _recovered(self) -> None:
        if self.problem is not None:
            log.info("trunks' and assistants' call limits are counted in Redis again")
            self.problem = None
