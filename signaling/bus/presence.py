"""Presence across nodes in Redis (SCALE.md "Shared state": ``pres`` and ``pc``; docs
12.39): what one node writes of its users' presence, and how it follows the others'.

Theory of operation: a user's presence is one hash, ``sb:pres:{domain:sip}``: a field per
node run holding that run's share (``1`` a device of the user there counts as online,
``0`` the user only has a registration there) and ``p``, the activity and note last
published on any run. A run writes its share with one script when the core says it
changed (``PresenceShare``: 0/1 transitions and publishes, never per message or per
device), which also announces the change on ``sb:pc:{domain:sip}``; the key goes with the
last share. Each run lists the hashes it holds a share in, so that the survivor that
cleans up after a dead run removes its shares and announces them (``lease``).

A node follows the users its core watches (``PresenceWatch``) and reads their hash when
it starts following, when a change is announced by another node, and for every followed
user after its pub/sub subscription (re)starts, since pub/sub drops what is published
while a subscriber reconnects. Reads go in the writer's pipeline after its writes, so
they come back in the order Redis ran them; a read of a user is not handed on while a
newer write of this node's for that user is still on its way (the batch with that write
reads the user again). The answer leaves out this run's share and those of runs known
dead, whose shares the janitor may not have removed yet.

Redis restarting without its data empties every hash; each node writes its shares again
at its next heartbeat (``reassert``). Meanwhile a read would show users online elsewhere
as offline, so a read that finds this run's own lease missing is not handed on, and after
writing its own state again a node waits two heartbeats (the others write theirs within
one) before it reads every followed user again: subscribers see no ``closed`` in between.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from redis.exceptions import RedisError

from signaling.core.actions import PresenceShare, PresenceShares, PresenceWatch
from signaling.core.registry import UserKey

from . import keys
from .outbound import Batch
from .redis_book import Op
from .stats import BusStats

__all__ = ["RedisPresence"]

log = logging.getLogger(__name__)

_SHARE = """
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
  if redis.call('HLEN', KEYS[1]) == 1 and redis.call('HEXISTS', KEYS[1], 'p') == 1 then
    redis.call('DEL', KEYS[1])
  end
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  if ARGV[3] ~= '' then
    redis.call('HSET', KEYS[1], 'p', ARGV[3])
  end
end
redis.call('PUBLISH', ARGV[4], ARGV[1])
return 1
"""
"""Write this run's share (ARGV[2]: '1', '0', or '' to remove it) and the activity and
note just published (ARGV[3], or ''), then announce the change."""

_PUBLISHED = b"p"


class RedisPresence:
    def __init__(
        self,
        redis: Any,
        subscriber: Any,
        *,
        address: str,
        lease: str,
        heartbeat: float,
        stats: BusStats,
        read: Callable[[UserKey], None],
    ) -> None:
        """``lease``: the key holding this run's lease (a read checks Redis kept it);
        ``read``: queue a user's read for the writer's next pipeline."""
        self._redis = redis
        self._subscriber = subscriber
        self._address = address
        self._own = address.encode()
        self._lease = lease
        self._settle = 2 * heartbeat
        self._stats = stats
        self._read = read
        self.mine: dict[UserKey, tuple[bool, bytes]] = {}
        """This run's share of each user registered here, and what it last published
        (empty if nothing): written again after Redis lost them."""
        self._channels: dict[bytes, UserKey] = {}
        """The followed users, by the channel that announces their changes."""
        self._followed: set[UserKey] = set()
        self._pending: dict[UserKey, int] = {}
        """Writes of this run's shares not yet taken by Redis, per user."""
        self._held_until = 0.0
        """Reads are not handed on before this (monotonic): the others are writing their
        state again after Redis lost it (``inf`` until this run has written its own)."""
        self._reasserts = 0
        self._filled_at = 0
        """How many times this run wrote its state again, now and when the batch being
        written was filled: a read from before the last time proves nothing."""

    # -- what the core says ------------------------------------------------------------------

    def share(self, action: PresenceShare, batch: Batch) -> None:
        """This run's share of a user changed: written with ``batch``, and the user read
        again after it if followed here."""
        key = (action.domain, action.sip)
        had = key in self.mine
        if action.online is None:
            self.mine.pop(key, None)
        else:
            published = orjson.dumps(action.published) if action.published else b""
            kept = self.mine.get(key)
            if not published and kept is not None:
                published = kept[1]
            self.mine[key] = (action.online, published)
        batch.ops.append(self._write(key, action, had))
        batch.shares.append(key)
        self._pending[key] = self._pending.get(key, 0) + 1
        self._stats.presence_writes += 1
        if key in self._followed:
            batch.reads[key] = None

    def watch(self, action: PresenceWatch, batch: Batch) -> None:
        key = (action.domain, action.sip)
        channel = keys.presence_changes(*key).encode()
        if action.on:
            self._channels[channel] = key
            self._followed.add(key)
            batch.reads[key] = None
        else:
            self._channels.pop(channel, None)
            self._followed.discard(key)

    def _write(self, key: UserKey, action: PresenceShare, had: bool) -> Op:
        hash_key, channel = keys.presence(*key), keys.presence_changes(*key)
        index = keys.node_presence(self._address)
        value = "" if action.online is None else "1" if action.online else "0"
        published = orjson.dumps(action.published) if action.published else b""
        return self._op(hash_key, channel, index, value, published, had)

    def _op(
        self, hash_key: str, channel: str, index: str, value: str, published: bytes, had: bool
    ) -> Op:
        address = self._address

        def write(pipe: Any) -> None:
            # EVAL, not EVALSHA: no SCRIPT EXISTS round trip before the pipeline (which a
            # RegisterResult waits for); Redis keeps the compiled script by its hash
            pipe.eval(_SHARE, 1, hash_key, address, value, published, channel)
            if not value:
                pipe.srem(index, hash_key)
            elif not had:
                pipe.sadd(index, hash_key)

        return write

    def reassert(self) -> list[Op]:
        """Redis lost its data: this run's shares, written again. Reads wait for the
        others to do the same (two heartbeats), then every followed user is read."""
        index = keys.node_presence(self._address)
        ops = []
        for key, (on, published) in self.mine.items():
            hash_key, channel = keys.presence(*key), keys.presence_changes(*key)
            ops.append(self._op(hash_key, channel, index, "1" if on else "0", published, False))
        self._reasserts += 1
        self._held_until = time.monotonic() + self._settle
        asyncio.get_running_loop().call_later(self._settle, self.read_all)
        return ops

    def read_all(self) -> None:
        for key in self._followed:
            self._read(key)

    # -- the writer's pipeline ---------------------------------------------------------------

    def fill(self, pipe: Any, batch: Batch) -> None:
        """The batch's reads, after everything it writes: this run's lease, then each
        user's hash."""
        self._filled_at = self._reasserts
        pipe.get(self._lease)
        for key in batch.reads:
            pipe.hgetall(keys.presence(*key))
        self._stats.presence_reads += len(batch.reads)

    def answers(
        self, batch: Batch, replies: list[Any], dead: Iterable[str]
    ) -> list[PresenceShares]:
        """What the batch read, for the core: but for users no longer followed, users
        this run has written since (read again with that write), and everything while
        Redis is being filled again."""
        for key in batch.shares:
            left = self._pending[key] - 1
            if left:
                self._pending[key] = left
            else:
                del self._pending[key]
        if not batch.reads:
            return []
        lease, *hashes = replies
        if lease != self._own and self._filled_at == self._reasserts:
            self._held_until = float("inf")  # Redis lost its data: wait for reassert
        if time.monotonic() < self._held_until:
            return []
        gone = {address.encode() for address in dead} | {self._own}
        found: list[PresenceShares] = []
        for key, reply in zip(batch.reads, hashes, strict=True):
            if key not in self._followed:
                continue
            if key in self._pending:
                self._read(key)  # after the newer write
                continue
            answer = self._answer(key, reply, gone)
            if answer is not None:
                found.append(answer)
        return found

    def _answer(self, key: UserKey, reply: Any, gone: set[bytes]) -> PresenceShares | None:
        if isinstance(reply, Exception):
            self._stats.refused += 1
            log.error("cluster: Redis refused a presence read: %s", reply)
            return None
        shares: list[tuple[str, bool]] = []
        published: tuple[str, str] | None = None
        for field, value in reply.items():
            if field == _PUBLISHED:
                published = _published(value)
            elif field not in gone:
                shares.append((field.decode(), value == b"1"))
        return PresenceShares(key[0], key[1], tuple(sorted(shares)), published)

    # -- the announcements -------------------------------------------------------------------

    async def run_subscriber(self) -> None:
        """Follow every node's announcements; after each (re)subscription read every
        followed user, since what was announced meanwhile is lost."""
        delay = 0.05
        while True:
            pubsub = self._subscriber.pubsub()
            try:
                await pubsub.psubscribe(keys.PRESENCE_CHANGES)
                async for message in pubsub.listen():
                    kind = message.get("type")
                    if kind == "pmessage":
                        self._announced(message.get("channel"), message.get("data"))
                    elif kind == "psubscribe":
                        delay = 0.05
                        self.read_all()
            except (RedisError, OSError) as exc:
                log.warning("cluster: presence announcements lost (%s)", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            finally:
                await pubsub.aclose()

    def _announced(self, channel: Any, writer: Any) -> None:
        key = self._channels.get(channel)
        if key is not None and writer != self._own:  # its own writes read it already
            self._read(key)


def _published(value: bytes) -> tuple[str, str] | None:
    try:
        activity, note = orjson.loads(value)
    except (ValueError, TypeError):
        activity = note = None
    if not (isinstance(activity, str) and isinstance(note, str)):
        log.error("cluster: a malformed published presence in Redis: %.80r", value)
        return None
    return activity, note
