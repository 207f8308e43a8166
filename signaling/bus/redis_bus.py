"""The Redis bus: hub nodes in several processes sharing one Redis (SCALE.md decisions
1-5, performance rules 1-5).

Theory of operation: the hub hands the bus the cluster actions its switch returned
(``take``); nothing waits on Redis there. They collect until the writer task runs, then
leave in one pipeline: the registrations this node wrote or withdrew, one stream entry
per target node holding every frame for it (``XADD`` to its inbox, trimmed to about
``cluster.inbox_max``), the lookups (``HGETALL`` of each user's registrations) and the
claims (one Lua script each: add the member if the set is not full). While a pipeline is
in flight the next one fills, so the busier the node, the more each carries. The
answers go back to the switch through the hub (``BusPeer``).

A reader task follows this run's inbox with ``XREAD BLOCK`` from its start and hands
each entry's frames to the switch in the order the sender wrote them. Entries carry the
sender's address and a number per (sender, target): a pipeline resent after a broken
connection may have been written once already, and the copy is dropped by its number.

A heartbeat task renews the lease and finds dead runs (``lease.NodeLease``). ``up`` is
what ``/healthz`` shows: the last heartbeat worked and the inbox is being read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from config import ClusterConfig
from signaling.core.actions import Action, Claim, Claimed, Forward, LookedUp, Lookup, Unclaim
from signaling.core.nodes.frames import DeviceRecord, NodeFrame

from . import keys
from .codec import decode_frames, decode_record, encode_frames
from .errors import BadFrame, BusUnreachable
from .lease import NodeLease
from .redis_book import Op, RedisBook

__all__ = ["BusPeer", "BusStats", "RedisBus"]

log = logging.getLogger(__name__)

QUEUED_MAX = 200_000
"""Frames waiting for Redis at most; beyond, while Redis is unreachable, frames are
dropped (counted in ``BusStats.dropped``) rather than kept in unbounded memory."""

_CLAIM = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1
   or redis.call('SCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('SADD', KEYS[1], ARGV[1])
  redis.call('SADD', KEYS[2], KEYS[1])
  return {1, redis.call('SMEMBERS', KEYS[1])}
end
return {0, redis.call('SMEMBERS', KEYS[1])}
"""


class BusPeer(Protocol):
    """Where the bus delivers: the hub, which runs the switch's entry point and carries
    out what it returns."""

    def from_nodes(self, sender: str, frames: list[NodeFrame]) -> None: ...

    def looked_up(self, answer: LookedUp) -> None: ...

    def claimed(self, answer: Claimed) -> None: ...

    def node_down(self, address: str) -> None: ...


@dataclass(slots=True)
class BusStats:
    """Counters for ``/metrics``."""

    frames_out: int = 0
    frames_in: int = 0
    entries_out: int = 0
    entries_in: int = 0
    pipelines: int = 0
    largest_pipeline: int = 0
    """Most frames one pipeline carried."""
    dropped: int = 0
    bad_entries: int = 0
    lag_ms: float = 0.0
    """Age of the last entry read when it was read (Redis's clock against this node's)."""


class _Batch:
    """What one pipeline carries; kept whole until Redis took it (a resend is the same)."""

    __slots__ = ("entries", "frames", "ops", "questions")

    def __init__(self) -> None:
        self.ops: list[Op] = []
        self.frames: dict[str, list[NodeFrame]] = {}
        self.entries: list[tuple[str, dict[str, Any]]] = []
        self.questions: list[Lookup | Claim] = []


class RedisBus:
    def __init__(self, config: ClusterConfig, name: str) -> None:
        self.config = config
        self.name = name
        self.address = f"{name}.{secrets.token_hex(4)}"
        """This run's address: the switch's node name in the cluster (``keys``)."""
        self.book = RedisBook(self.address, self._queue_op)
        self.stats = BusStats()
        self._next = _Batch()
        self._queued = 0
        self._sent: dict[str, int] = {}
        """Entries written per target: the next entry's number."""
        self._received: dict[str, int] = {}
        """The last entry number read per sender."""
        self._peer: BusPeer | None = None
        self._redis: Any = None
        self._reader: Any = None
        self._lease: NodeLease | None = None
        self._wake: asyncio.Event | None = None
        self._settled = asyncio.Event()
        """Set whenever the writer has sent everything it was given."""
        self._tasks: list[asyncio.Task[None]] = []
        self._beat_ok_at = 0.0
        self._reading = False

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self, peer: BusPeer) -> None:
        """Connect, take the node's name (``NodeNameTaken`` if a live run holds it) and
        start the writer, reader and heartbeat tasks."""
        self._peer = peer
        self._wake = asyncio.Event()
        self._redis = aioredis.Redis.from_url(self.config.redis, socket_connect_timeout=5)
        self._reader = aioredis.Redis.from_url(self.config.redis, socket_connect_timeout=5)
        self._claim = self._redis.register_script(_CLAIM)
        self._lease = NodeLease(
            self._redis,
            self.name,
            self.address,
            lease=self.config.lease,
            heartbeat=self.config.heartbeat,
            node_down=self._node_down,
            reasserted=self._reassert,
        )
        try:
            await self._lease.acquire()
        except (RedisError, OSError) as exc:
            await self._close_connections()
            shown = self.config.redis.rpartition("@")[2]
            raise BusUnreachable(f"cannot reach Redis at {shown}: {exc}") from exc
        except BaseException:
            await self._close_connections()
            raise
        self._beat_ok_at = time.monotonic()
        loop = asyncio.get_running_loop()
        for run in (self._write_loop, self._read_loop, self._heartbeat_loop):
            self._tasks.append(loop.create_task(run(), name=f"bus-{run.__name__.strip('_')}"))
        if self._pending():  # registrations written while the hub was starting
            self._wake.set()

    async def stop(self) -> None:
        """Send what waits (briefly), stop the tasks and give the name back."""
        if self._wake is None:
            return
        if self._pending():
            self._settled.clear()
            self._wake.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._settled.wait(), 2.0)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._lease is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._lease.release()
        await self._close_connections()

    def _pending(self) -> bool:
        batch = self._next
        return bool(batch.frames or batch.ops or batch.questions)

    async def _close_connections(self) -> None:
        for client in (self._redis, self._reader):
            if client is not None:
                with contextlib.suppress(RedisError, OSError):
                    await client.aclose()

    @property
    def up(self) -> bool:
        """The heartbeat worked within the last lease and the inbox is being read."""
        fresh = time.monotonic() - self._beat_ok_at < self.config.lease
        return self._wake is not None and fresh and self._reading

    @property
    def nodes(self) -> int:
        return len(self._lease.known) if self._lease is not None else 0

    # -- from the hub ------------------------------------------------------------------------

    def take(self, action: Action) -> None:
        """A cluster action of the switch: it leaves with the next pipeline."""
        batch = self._next
        if type(action) is Forward:
            if self._queued >= QUEUED_MAX:
                self.stats.dropped += 1
                return
            frames = batch.frames.get(action.node)
            if frames is None:
                frames = batch.frames[action.node] = []
            frames.append(action.frame)
            self._queued += 1
        elif type(action) is Unclaim:
            key, member = keys.claim_set(action.key), action.member
            batch.ops.append(lambda pipe: pipe.srem(key, member))
        elif type(action) is Lookup or type(action) is Claim:
            batch.questions.append(action)
        if self._wake is not None:
            self._wake.set()

    def _queue_op(self, op: Op) -> None:
        self._next.ops.append(op)
        if self._wake is not None:
            self._wake.set()

    def _reassert(self) -> None:
        self.book.reassert()

    def _node_down(self, address: str) -> None:
        self._received.pop(address, None)
        self._sent.pop(address, None)
        self._queued -= len(self._next.frames.pop(address, ()))  # nobody will read them
        if self._peer is not None:
            self._peer.node_down(address)

    # -- the writer ----------------------------------------------------------------------------

    async def _write_loop(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._next = self._next, _Batch()
            self._number(batch)
            results = await self._execute(batch)
            self._queued -= sum(len(frames) for frames in batch.frames.values())
            self._answer(batch, results)
            if not self._pending():
                self._settled.set()

    def _number(self, batch: _Batch) -> None:
        """Encode each target's frames as one entry with its number."""
        for target, frames in batch.frames.items():
            number = self._sent.get(target, 0) + 1
            self._sent[target] = number
            entry = {"n": self.address, "s": number, "f": encode_frames(frames)}
            batch.entries.append((target, entry))
        count = sum(len(frames) for frames in batch.frames.values())
        stats = self.stats
        stats.frames_out += count
        stats.entries_out += len(batch.entries)
        stats.pipelines += 1
        stats.largest_pipeline = max(stats.largest_pipeline, count)

    async def _execute(self, batch: _Batch) -> list[Any]:
        """Run the batch's pipeline until Redis took it (retrying while it cannot)."""
        delay = 0.05
        while True:
            pipe = self._redis.pipeline(transaction=False)
            for op in batch.ops:
                op(pipe)
            for target, entry in batch.entries:
                pipe.xadd(keys.inbox(target), entry, maxlen=self.config.inbox_max, approximate=True)
            first = len(pipe)
            for question in batch.questions:
                self._ask(pipe, question)
            try:
                results: list[Any] = await pipe.execute()
            except (RedisError, OSError) as exc:
                log.warning("cluster: Redis write failed (%s); retrying in %.2f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            return results[first:]

    def _ask(self, pipe: Any, question: Lookup | Claim) -> None:
        if type(question) is Lookup:
            for sip in question.sips:
                pipe.hgetall(keys.registrations(question.domain, sip))
        else:
            assert type(question) is Claim
            self._claim(
                keys=[keys.claim_set(question.key), keys.node_claims(self.address)],
                args=[question.member, question.limit],
                client=pipe,
            )

    def _answer(self, batch: _Batch, results: list[Any]) -> None:
        peer = self._peer
        assert peer is not None
        index = 0
        for question in batch.questions:
            if type(question) is Lookup:
                replies = results[index : index + len(question.sips)]
                index += len(question.sips)
                records = _records(replies, self._lease.dead if self._lease else set())
                peer.looked_up(LookedUp(question.request, records))
            else:
                granted, members = results[index]
                index += 1
                holders = tuple(sorted(_text(member) for member in members))
                peer.claimed(Claimed(question.request, bool(granted), holders))

    # -- the reader ----------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        inbox = keys.inbox(self.address)
        last: bytes | str = "0-0"
        delay = 0.05
        while True:
            try:
                reply = await self._reader.xread({inbox: last}, count=512, block=1000)
            except (RedisError, OSError) as exc:
                self._reading = False
                log.warning("cluster: reading the inbox failed (%s)", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            self._reading, delay = True, 0.05
            for _stream, entries in reply or ():
                for entry_id, fields in entries:
                    last = entry_id
                    self._deliver(entry_id, fields)

    def _deliver(self, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        stats = self.stats
        try:
            sender = fields[b"n"].decode()
            number = int(fields[b"s"])
            frames = decode_frames(fields[b"f"])
        except (KeyError, ValueError, UnicodeDecodeError, BadFrame) as exc:
            stats.bad_entries += 1
            log.error("cluster: dropped a malformed inbox entry %r: %s", entry_id, exc)
            return
        lease = self._lease
        if lease is not None and sender in lease.dead:
            return  # a dead run's late words: its calls here have ended already
        if number <= self._received.get(sender, 0):
            return  # a resent pipeline's copy
        self._received[sender] = number
        stats.entries_in += 1
        stats.frames_in += len(frames)
        with contextlib.suppress(ValueError):
            stats.lag_ms = time.time() * 1000 - int(entry_id.split(b"-")[0])
        assert self._peer is not None
        self._peer.from_nodes(sender, frames)

    # -- the heartbeat -------------------------------------------------------------------------

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


def _records(replies: list[dict[bytes, bytes]], dead: set[str]) -> tuple[DeviceRecord, ...]:
    """The registrations in ``replies``, but for those of runs known dead (the janitor
    may not have removed them yet)."""
    found: list[DeviceRecord] = []
    for reply in replies:
        for value in reply.values():
            try:
                record = decode_record(orjson.loads(value))
            except (ValueError, TypeError, BadFrame) as exc:
                log.error("cluster: a malformed registration in Redis: %s", exc)
                continue
            if record.node not in dead:
                found.append(record)
    return tuple(found)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
