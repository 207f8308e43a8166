"""The Redis bus: hub nodes in several processes sharing one Redis (SCALE.md decisions
1-5, performance rules 1-5).

Theory of operation: the hub hands the bus the cluster actions its switch returned
(``take``); nothing waits on Redis there. They collect in a ``Batch`` until the writer
task runs, then leave in one pipeline (``outbound``): the registrations this node wrote
or withdrew, numbered stream entries for each target node holding its frames, the
lookups and the claims. While a pipeline is in flight the next batch fills, so the
busier the node, the more each carries. The answers go back to the switch through the
hub (``BusPeer``).

A reader task follows this run's inbox with ``XREAD BLOCK`` from its start and hands
each entry to ``inbound``, which drops copies and notices gaps. A heartbeat task renews
the lease and finds dead runs (``lease``); a control channel keeps the trace flags the
same on every node and tells the directory changes' follower of new versions
(``control``); users' presence is shared and followed by ``presence``, whose reads ride
in the writer's pipelines. ``up``, which ``/healthz`` shows, is true while every task
runs, the heartbeat works, and the run has not been fenced.

A new registration's ``RegisterResult`` waits for the pipeline that writes it
(``written``): once Redis has taken it, every node finds the device. If Redis does not
answer within ``cluster.answer_wait`` the answer goes anyway, and the registration is
written when Redis is back.

Delivery reports wait for the pace of ``report_pace`` (at most one pipeline with reports
every few milliseconds) unless something else leaves first and takes them along.

While Redis cannot be reached, frames wait in memory up to ``QUEUED_MAX``; beyond that
the frames for the node concerned are dropped and its calls here end as if it had died,
rather than reaching it with a hole in the middle.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Coroutine
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from config import ClusterConfig
from signaling.core.actions import (
    Action,
    Claim,
    Claimed,
    Forward,
    LookedUp,
    Lookup,
    PresenceShare,
    PresenceShares,
    PresenceWatch,
    Unclaim,
)
from signaling.core.nodes.frames import NodeFrame, Reached
from signaling.stopping import stop_tasks
from tracing import Tracer

from . import keys
from .control import ControlChannel, DirectoryFollower
from .errors import BusUnreachable
from .inbound import Inbound
from .lease import NodeLease
from .outbound import Batch, Outbound
from .presence import RedisPresence
from .redis_book import Op, RedisBook
from .report_pace import ReportPace
from .stats import BusStats

__all__ = ["QUEUED_MAX", "BusPeer", "BusStats", "RedisBus"]

log = logging.getLogger(__name__)

QUEUED_MAX = 200_000
"""Frames waiting for Redis at most (see the module's docstring)."""

READ_BLOCK_MS = 1000
RETRY_DELAY = 0.05
"""Seconds before entries whose target had no inbox are written again."""
COMMAND_TIMEOUT = 5.0
"""Seconds a Redis command may take before the connection counts as broken."""


class BusPeer(Protocol):
    """Where the bus delivers: the hub, which runs the switch's entry point and carries
    out what it returns."""

    def from_nodes(self, sender: str, frames: list[NodeFrame]) -> None: ...

    def looked_up(self, answer: LookedUp) -> None: ...

    def claimed(self, answer: Claimed) -> None: ...

    def presence_shares(self, answer: PresenceShares) -> None: ...

    def node_down(self, address: str) -> None: ...


class RedisBus:
    def __init__(
        self,
        config: ClusterConfig,
        name: str,
        tracer: Tracer | None = None,
        directory: DirectoryFollower | None = None,
    ) -> None:
        """``tracer``: its flags are the cluster's (``control``), when given;
        ``directory``: told of the directory changes' versions the others announce."""
        self.config = config
        self.name = name
        self._tracer = tracer
        self._directory = directory
        self.address = f"{name}.{secrets.token_hex(4)}"
        """This run's address: the switch's node name in the cluster (``keys``)."""
        self.book = RedisBook(self.address, self._queue_op)
        self.stats = BusStats()
        self._next = Batch()
        self._queued = 0
        self._overflowed: set[str] = set()
        self._peer: BusPeer | None = None
        self._redis: Any = None
        self._reader: Any = None
        self._subscriber: Any = None
        self._outbound: Outbound | None = None
        self._inbound: Inbound | None = None
        self._lease: NodeLease | None = None
        self._control: ControlChannel | None = None
        self._presence: RedisPresence | None = None
        self._wake: asyncio.Event | None = None
        self._settled = asyncio.Event()
        """Set whenever the writer has sent everything it was given."""
        self._settled.set()
        self._tasks: list[asyncio.Task[None]] = []
        self._beat_ok_at = 0.0
        self._pace = ReportPace()
        self._report_timer: asyncio.TimerHandle | None = None

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self, peer: BusPeer) -> None:
        """Connect, take the node's name (``NodeNameTaken`` if a live run holds it,
        ``BusUnreachable`` if Redis does not answer) and start the tasks."""
        self._peer = peer
        self._wake = asyncio.Event()
        self._redis = self._client(COMMAND_TIMEOUT)
        self._reader = self._client(READ_BLOCK_MS / 1000 + COMMAND_TIMEOUT)
        give_up = self.config.lease + 3 * self.config.heartbeat
        self._outbound = Outbound(
            self._redis, self.address, self.config.inbox_max, self.stats, give_up
        )
        self._inbound = Inbound(peer, self.stats, self._is_dead, self._cut_off)
        self._lease = NodeLease(
            self._redis,
            self.name,
            self.address,
            lease=self.config.lease,
            heartbeat=self.config.heartbeat,
            node_down=self._node_down,
            reasserted=self._reassert,
            fenced=self._fenced,
        )
        self._subscriber = self._client(None)
        self._presence = self._shared_presence()
        self._outbound.read_presence = self._presence.fill
        try:
            await self._lease.acquire()
            if self._tracer is not None or self._directory is not None:
                self._control = ControlChannel(
                    self._redis, self._subscriber, self.address, self._tracer, self._directory
                )
                await self._control.start()
        except (RedisError, OSError) as exc:
            await self._close_connections()
            shown = self.config.redis.rpartition("@")[2]
            raise BusUnreachable(f"cannot reach Redis at {shown}: {exc}") from exc
        except BaseException:
            await self._close_connections()
            raise
        self._beat_ok_at = time.monotonic()
        self._run_tasks()

    def _shared_presence(self) -> RedisPresence:
        return RedisPresence(
            self._redis,
            self._subscriber,
            address=self.address,
            lease=keys.lease(self.name),
            heartbeat=self.config.heartbeat,
            stats=self.stats,
            read=self._read_presence,
        )

    def _client(self, timeout: float | None) -> Any:
        return aioredis.Redis.from_url(
            self.config.redis, socket_connect_timeout=COMMAND_TIMEOUT, socket_timeout=timeout
        )

    def _run_tasks(self) -> None:
        runs: dict[str, Coroutine[Any, Any, None]] = {
            "write": self._write_loop(),
            "read": self._read_loop(),
            "heartbeat": self._heartbeat_loop(),
        }
        if self._presence is not None:
            runs["presence"] = self._presence.run_subscriber()
        if self._control is not None:
            runs["announce"] = self._control.run_publisher()
            runs["control"] = self._control.run_subscriber()
        loop = asyncio.get_running_loop()
        for name, run in runs.items():
            self._tasks.append(loop.create_task(run, name=f"bus-{name}"))
        if self._next:  # registrations written while the hub was starting
            self._wake_writer()

    async def stop(self) -> None:
        """Send what waits (briefly), stop the tasks, and give the name and the run's
        keys back."""
        if self._wake is None:
            return
        if self._next or not self._settled.is_set():
            self._wake_writer()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._settled.wait(), 2.0)
        if self._control is not None:
            self._control.stop()
        if self._report_timer is not None:
            self._report_timer.cancel()
        await stop_tasks(self._tasks)
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._lease is not None and not self._lease.fenced:
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                await asyncio.wait_for(self._lease.release(), 2.0)
        await self._close_connections()

    async def _close_connections(self) -> None:
        for client in (self._redis, self._reader, self._subscriber):
            if client is not None:
                with contextlib.suppress(RedisError, OSError):
                    await client.aclose()

    def announce_directory(self, version: int) -> None:
        """Tell the other nodes that the directory changes reached ``version``."""
        if self._control is not None:
            self._control.announce_directory(version)

    @property
    def up(self) -> bool:
        """Every task runs, the heartbeat worked within the last lease, and the run is
        not fenced."""
        if self._wake is None or (self._lease is not None and self._lease.fenced):
            return False
        if any(task.done() for task in self._tasks):
            return False
        return time.monotonic() - self._beat_ok_at < self.config.lease

    @property
    def nodes(self) -> int:
        return len(self._lease.known) if self._lease is not None else 0

    # -- from the hub ------------------------------------------------------------------------

    def take(self, action: Action) -> None:
        """A cluster action of the switch: it leaves with the next pipeline."""
        batch = self._next
        if type(action) is Forward:
            target = action.node
            if self._queued >= QUEUED_MAX or target in self._overflowed:
                self._overflow(target)
                return
            frames = batch.frames.get(target)
            if frames is None:
                frames = batch.frames[target] = []
            frames.append(action.frame)
            self._queued += 1
            if type(action.frame) is Reached:
                batch.reports += 1
                return self._wake_for_reports()
        elif type(action) is Unclaim:
            key, member = action.key, action.member
            if self._outbound is not None:
                self._outbound.unclaimed(key, member)
            claim = keys.claim_set(key)
            batch.ops.append(lambda pipe: pipe.srem(claim, member))
        elif type(action) is Lookup or type(action) is Claim:
            batch.questions.append(action)
        elif type(action) is PresenceShare and self._presence is not None:
            self._presence.share(action, batch)
        elif type(action) is PresenceWatch and self._presence is not None:
            self._presence.watch(action, batch)
        self._wake_writer()

    def written(self) -> asyncio.Future[None]:
        """Done once Redis has taken everything taken so far (a registration's write: the
        device can be found), or after ``cluster.answer_wait`` if it has not answered."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._next.waiters.append(waiter)
        self._wake_writer()
        loop.call_later(self.config.answer_wait, self._overdue, waiter)
        return waiter

    def _overdue(self, waiter: asyncio.Future[None]) -> None:
        if not waiter.done():
            self.stats.late_answers += 1
            waiter.set_result(None)

    def _read_presence(self, key: tuple[str, str]) -> None:
        self._next.reads[key] = None
        self._wake_writer()

    def _wake_writer(self) -> None:
        if self._wake is not None:
            self._settled.clear()
            self._wake.set()

    def _wake_for_reports(self) -> None:
        """A delivery report waits for its pace (``report_pace``), then wakes the writer."""
        wait = self._pace.wait(time.monotonic())
        if not wait:
            self._wake_writer()
        elif self._report_timer is None:
            self._report_timer = asyncio.get_running_loop().call_later(wait, self._reports_due)

    def _reports_due(self) -> None:
        self._report_timer = None
        self._wake_writer()

    def _overflow(self, target: str) -> None:
        """Too much waits for Redis: the frames for ``target`` go, and so do the calls
        with it here (later, not inside the hub's turn that made the frame)."""
        self.stats.dropped += 1
        if target in self._overflowed:
            return
        self._overflowed.add(target)
        dropped = self._next.frames.pop(target, [])
        self._queued -= len(dropped)
        self.stats.dropped += len(dropped)
        log.error(
            "cluster: Redis unreachable and %d frames waiting; ending calls with %s",
            QUEUED_MAX,
            target,
        )
        if self._peer is not None:
            asyncio.get_running_loop().call_soon(self._cut_off, target)

    def _cut_off(self, address: str) -> None:
        """The calls with ``address`` end, though it may live (entries to or from it were
        lost): the users it holds online are read again, as it still holds them."""
        if self._peer is not None:
            self._peer.node_down(address)
        if self._presence is not None:
            self._presence.read_all()

    def _queue_op(self, op: Op) -> None:
        self._next.ops.append(op)
        self._wake_writer()

    def _reassert(self) -> None:
        self.book.reassert()
        if self._outbound is not None:
            for op in self._outbound.reassert():
                self._queue_op(op)
        if self._presence is not None:
            for op in self._presence.reassert():
                self._queue_op(op)

    def _is_dead(self, address: str) -> bool:
        return self._lease is not None and address in self._lease.dead

    def _node_down(self, address: str) -> None:
        if self._outbound is not None:
            self._outbound.forget(address)
        if self._inbound is not None:
            self._inbound.forget(address)
        self._queued -= len(self._next.frames.pop(address, ()))  # nobody will read them
        if self._peer is not None:
            self._peer.node_down(address)

    def _fenced(self) -> None:
        self._queued -= self._next.frame_count()
        self._next.frames.clear()

    # -- the tasks -----------------------------------------------------------------------------

    async def _write_loop(self) -> None:
        assert self._wake is not None and self._outbound is not None
        outbound = self._outbound
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._next = self._next, Batch()
            if batch:
                await self._write(outbound, batch)
            if not self._next:
                self._settled.set()

    async def _write(self, outbound: Outbound, batch: Batch) -> None:
        if batch.reports:
            self._pace.sent(time.monotonic())
        outbound.number(batch)
        placed, results = await outbound.execute(batch)
        for waiter in batch.waiters:
            if not waiter.done():  # else given up waiting, or its connection closed
                waiter.set_result(None)
        self._queued -= batch.frame_count()
        self._overflowed.clear()
        dead = self._lease.dead if self._lease is not None else set()
        again, lost = outbound.unplaced(batch, placed, time.monotonic(), dead)
        if again:  # before anything newer for the same targets
            self._next.entries[:0] = again
            asyncio.get_running_loop().call_later(RETRY_DELAY, self._wake_writer)
        for target in lost:
            log.error(
                "cluster: %s has had no inbox for %.0f s; ending calls with it",
                target,
                outbound.give_up,
            )
            self._node_down(target)
        for answer in outbound.answers(batch, results, dead):
            self._answer(answer)
        if self._presence is not None:
            asked = outbound.asked(batch)
            for shares in self._presence.answers(batch, results[asked:], dead):
                self._answer(shares)

    def _answer(self, answer: LookedUp | Claimed | PresenceShares) -> None:
        peer = self._peer
        assert peer is not None
        try:
            if type(answer) is LookedUp:
                peer.looked_up(answer)
            elif type(answer) is PresenceShares:
                peer.presence_shares(answer)
            else:
                assert type(answer) is Claimed
                peer.claimed(answer)
        except Exception:
            log.exception("cluster: internal error handling an answer from Redis")

    async def _read_loop(self) -> None:
        assert self._inbound is not None
        inbound = self._inbound
        inbox = keys.inbox(self.address)
        last: bytes | str = "0-0"
        delay = 0.05
        while True:
            try:
                reply = await self._reader.xread({inbox: last}, count=512, block=READ_BLOCK_MS)
            except (RedisError, OSError) as exc:
                log.warning("cluster: reading the inbox failed (%s)", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            delay = 0.05
            for _stream, entries in reply or ():
                for entry_id, fields in entries:
                    last = entry_id
                    inbound.entry(entry_id, fields)

    async def _heartbeat_loop(self) -> None:
        assert self._lease is not None
        while True:
            await asyncio.sleep(self.config.heartbeat)
            try:
                await self._lease.beat()
            except (RedisError, OSError) as exc:
                log.warning("cluster: heartbeat failed (%s)", exc)
                continue
            except Exception:
                log.exception("cluster: internal error in the heartbeat")
                continue
            self._beat_ok_at = time.monotonic()
