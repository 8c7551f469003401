"""What atende nodes tell each other through Redis (ATENDE_REDIS_URL), on one pub/sub
channel: the abuse guard's failures, so that a source failing on any node is counted,
and blocked, on every node, and the requests it let through, so that an address's rate
limit holds over all nodes; the live events of each node's calls, so that the event
stream of any node's API shows the calls of all; and which settings (assistants,
trunks) one changed, so that the others re-read them at once. Each message names its
node; a node skips its own. And requests for one node (on a channel of its own), answered on the
asker's: the API of any node acts on a call live on another (cancel, transfer).

Redis is a help, not a need: while it cannot be reached, each node goes on alone (its
own guard, its own events), says so on /health, and connects again, backing off. What
happens meanwhile is not sent later: an old failure or event is no use to the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import secrets
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from atende.calls.events import EventBus
from atende.telephony.abuse import AbuseGuard, Failure

log = logging.getLogger(__name__)
CHANNEL = "atende:nodes"
OUTBOX = 10_000  # told but not sent yet, at most (the oldest go first)
SEND_BATCH = 200  # messages published in one round trip, at most
SPENT_EVERY_S = 0.5  # how often each node says which addresses' requests it let through
Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


def unreachable(exc: BaseException) -> str:
    """Redis's failure in a few words: its message's first line, or the error's kind."""
    first = str(exc).strip().splitlines()
    return f"unreachable ({first[0][:200] if first else type(exc).__name__})"


def honour_cancel(exc: BaseException | None = None, above: int = 0) -> None:
    """Raise the cancellation back if the running task is being cancelled (asked more
    than ``above`` times). A cancellation that lands inside a Redis command can be lost:
    redis-py sends each command through ``asyncio.wait_for``, which on Python 3.11 lets
    one that lands as the send completes go, and the command runs on to its result; or
    it comes out as a Redis error. Either way the task would run on, cancelled in name
    only, and whoever awaits its end (a clean stop) would wait for ever. Called after
    each command, and where its errors are caught."""
    task = asyncio.current_task()
    if task is not None and task.cancelling() > above:
        raise asyncio.CancelledError from exc


class Unreachable(Exception):
    """Another node could not be asked, or did not answer in time."""


class Shared:
    """This node's link to the others through Redis."""

    def __init__(self, url: str, node_id: str, guard: AbuseGuard, events: EventBus,
                 clock: Callable[[], float]) -> None:
        self.url = url
        self.node_id = node_id
        self._guard = guard
        self._events = events
        self._clock = clock  # the guard's clock (the user agent's)
        self._out: deque[tuple[str, str]] = deque(maxlen=OUTBOX)  # (channel, message)
        self._wake = asyncio.Event()
        self.problem: str | None = "not connected yet"
        self.received = 0
        self._task: asyncio.Task[None] | None = None
        self._handlers: dict[str, Handler] = {}
        self._asked: dict[str, asyncio.Future[dict[str, Any]]] = {}  # by request id
        self._answering: set[asyncio.Task[None]] = set()
        self._changed: list[Callable[[frozenset[str]], None]] = []
        guard.on_failure(self._failure)
        events.on_publish(self._event)

    # what this node tells ------------------------------------------------------------
    def _tell(self, message: dict[str, Any], channel: str = CHANNEL) -> None:
        if self.problem is None:
            try:
                text = json.dumps({"node": self.node_id, **message}, separators=(",", ":"))
            except (TypeError, ValueError):  # what the others cannot read is not sent
                log.exception("a %s message for the other nodes could not be written",
                              message.get("t"))
                return
            self._out.append((channel, text))
            self._wake.set()

    def serve(self, kind: str, handler: Handler) -> None:
        """Answer other nodes' requests of ``kind`` with ``handler`` (its arguments in,
        its answer out, both JSON)."""
        self._handlers[kind] = handler

    async def ask(self, node_id: str, kind: str, args: dict[str, Any], timeout_s: float
                  ) -> dict[str, Any]:
        """Ask node ``node_id`` to do ``kind``; its answer. Unreachable when Redis is
        down or the node does not answer within ``timeout_s`` (it is down, or busy)."""
        if self.problem is not None:
            raise Unreachable(f"Redis is {self.problem}")
        rid = secrets.token_hex(8)
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._asked[rid] = answer
        try:
            self._tell({"t": "ask", "id": rid, "kind": kind, "args": args},
                       f"{CHANNEL}:{node_id}")
            async with asyncio.timeout(timeout_s):
                return await answer
        except TimeoutError:
            raise Unreachable(f"atende node {node_id} did not answer within "
                              f"{timeout_s:.0f} s") from None
        finally:
            self._asked.pop(rid, None)

    async def _answer(self, asker: str, rid: str, kind: str, args: dict[str, Any]) -> None:
        handler = self._handlers.get(kind)
        try:
            if handler is None:
                raise ValueError(f"this node does not do {kind!r}")
            result = await handler(args)
        except Exception as exc:  # the asker is told, whatever it was
            log.exception("a request from node %s (%s) failed", asker, kind)
            result = {"error": str(exc)[:300] or type(exc).__name__}
        self._tell({"t": "answer", "id": rid, "result": result}, f"{CHANNEL}:{asker}")

    def changed(self, kinds: frozenset[str]) -> None:
        """Settings of these kinds (assistants, trunks) were changed through this node:
        the others re-read them now rather than at their next look."""
        self._tell({"t": "changed", "what": sorted(kinds)})

    def on_changed(self, listener: Callable[[frozenset[str]], None]) -> None:
        """``listener`` with the kinds another node says it changed."""
        self._changed.append(listener)

    def _failure(self, f: Failure) -> None:
        self._tell({"t": "failure", "ip": f.ip, "reason": f.reason, "user": f.user,
                    "protected": f.protected})

    def _event(self, call_id: str | None, kind: str, data: dict[str, Any], at: float
               ) -> None:
        self._tell({"t": "event", "call_id": call_id, "kind": kind, "data": data,
                    "at": at})

    # what the others tell ------------------------------------------------------------
    def receive(self, raw: bytes | str) -> None:
        """One message from the channel: applied here unless it is this node's own or
        not understood (then dropped: another version of atende may say more)."""
        try:
            m = json.loads(raw)
            if not isinstance(m, dict) or m.get("node") == self.node_id:
                return
            if m["t"] == "failure":
                user = m.get("user")
                self._guard.failure(str(m["ip"]), self._clock(), str(m["reason"]),
                                    str(user) if user else None, bool(m["protected"]),
                                    remote=True)
            elif m["t"] == "event":
                call_id = m.get("call_id")
                self._events.publish(str(call_id) if call_id else None, str(m["kind"]),
                                     dict(m.get("data") or {}), float(m["at"]), remote=True)
            elif m["t"] == "spent":
                now = self._clock()
                for ip, (n, peer) in dict(m["by"]).items():
                    self._guard.spent_elsewhere(str(ip), int(n), now, bool(peer))
            elif m["t"] == "changed":
                kinds = frozenset(str(k) for k in m["what"])
                for listener in self._changed:
                    listener(kinds)
            elif m["t"] == "ask":
                task = asyncio.get_running_loop().create_task(self._answer(
                    str(m["node"]), str(m["id"]), str(m["kind"]), dict(m["args"])))
                self._answering.add(task)
                task.add_done_callback(self._answering.discard)
            elif m["t"] == "answer":
                waiting = self._asked.get(str(m["id"]))
                if waiting is not None and not waiting.done():
                    waiting.set_result(dict(m["result"]))
            else:
                return
        except (ValueError, KeyError, TypeError):
            log.debug("a message from another node not understood: %.200r", raw)
            return
        except Exception:  # understood, but applying it failed here: the next may not
            log.exception("a message from another node could not be applied: %.200r", raw)
            return
        self.received += 1

    # the connection ------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        for task in list(self._answering):
            task.cancel()
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task])  # (its end: a cancellation of ours comes through)

    def health(self) -> tuple[str, object, str | None]:
        """For /health: shown, never failing it (without Redis each node still works)."""
        if self.problem is None:
            return "redis", "ok", None
        return "redis", (f"{self.problem}: guard and live events are this node's own "
                         "until it is back"), None

    async def _run(self) -> None:
        delay = 0.5
        task = asyncio.current_task()
        while True:
            # (On 3.11 a task group whose task failed leaves its parent's count of
            # cancellations one up: only a count above this one is a cancellation.)
            asked = task.cancelling() if task is not None else 0
            client = aioredis.from_url(self.url, socket_connect_timeout=3,
                                       health_check_interval=10)
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(CHANNEL, f"{CHANNEL}:{self.node_id}")
                    honour_cancel(above=asked)
                    if self.problem is not None:
                        log.info("sharing with the other nodes through Redis")
                    self.problem, delay = None, 0.5
                    async with asyncio.TaskGroup() as tasks:
                        tasks.create_task(self._listen(pubsub))
                        tasks.create_task(self._send(client))
                        tasks.create_task(self._report_spent())
            except* (RedisError, OSError) as group:
                exc = group.exceptions[0]
                why = unreachable(exc)
                if self.problem is None or self.problem.startswith("not connected"):
                    log.warning("Redis %s: this node goes on alone until it is back", why)
                self.problem = why
                self._out.clear()
            except* Exception:  # a bug must not end the link for good: start it again
                log.exception("the link to the other nodes failed; connecting again")
                self.problem = "failed (see the log); connecting again"
                self._out.clear()
            finally:
                with contextlib.suppress(Exception):
                    await client.aclose()
            await asyncio.sleep(delay)
            delay = min(10.0, delay * 2)

    async def _listen(self, pubsub: Any) -> None:
        async for message in pubsub.listen():
            honour_cancel()
            if message.get("type") == "message":
                self.receive(message["data"])
        raise RedisError("the subscription ended")

    async def _report_spent(self) -> None:
        self._guard.take_spent()  # what was let through while Redis was away is old
        while True:
            await asyncio.sleep(SPENT_EVERY_S)
            if spent := self._guard.take_spent():
                self._tell({"t": "spent", "by": spent})

    async def _send(self, client: Any) -> None:
        """Publish what is waiting, in order, many messages to a round trip: a call
        makes several events within milliseconds, and one PUBLISH awaited after another
        cost the event loop more than the rest of the call's sharing."""
        while True:
            self._wake.clear()
            while self._out:
                batch = list(itertools.islice(self._out, SEND_BATCH))
                async with client.pipeline(transaction=False) as pipe:
                    for channel, text in batch:
                        pipe.publish(channel, text)
                    await pipe.execute()
                honour_cancel()
                for item in batch:  # (unless a full outbox pushed it out meanwhile)
                    if self._out and self._out[0] is item:
                        self._out.popleft()
            await self._wake.wait()
