"""The cluster's registrations in Redis, as one node writes them (SCALE.md decision 4).

The switch calls ``publish`` and ``withdraw`` synchronously from its core, so they only
queue a write for the bus's next pipeline; nothing waits on Redis. Reads never happen
here: a switch learns the others' registrations through ``Lookup``, which the bus answers
from the same keys. The same goes for the registrations' snapshots (``keep``, ``drop``;
docs 12.43), which another node takes with ``Recall`` when a client resumes there
(``RECALL``) and gives back when that client's connection closed before it could use
it (``give_back``). The book remembers what it wrote, so that the node can write it all
again when Redis has lost it (a restart without persistence, a failover that lost the
tail): the nodes hold the truth about their own connections.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from signaling.core.nodes.frames import DeviceRecord, Snapshot

from . import keys
from .codec import encode_record, encode_snapshot

__all__ = ["RECALL", "Op", "RedisBook", "taken_mark"]

Op = Callable[[Any], None]
"""A write for the next pipeline: it is called with the pipeline and queues commands."""

RECALL = """
local value = redis.call('GET', KEYS[1])
if not value then
  return false
end
if string.sub(value, 1, #ARGV[3]) == ARGV[3] then
  return string.sub(value, #ARGV[3] + 1)
end
local ok, snapshot = pcall(cjson.decode, value)
if ok and type(snapshot) == 'table' and snapshot[1] == ARGV[1] and snapshot[2] == ARGV[2] then
  redis.call('SET', KEYS[1], ARGV[3] .. value, 'KEEPTTL')
  return value
end
return false
"""
"""Take a resume token's snapshot if it is the user's (domain, sip; ARGV[1], ARGV[2]),
in one step, so that the token works once, on one node (docs 12.43). The snapshot is
not deleted but marked taken by the question (ARGV[3], ``taken_mark``), with the expiry
it had: nobody else can take it, the same question asked again (a pipeline resent after
a broken connection) gets the same answer instead of nothing, and the taker can give it
back (``GIVE_BACK``). The mark goes when the node that wrote the snapshot lets the
registration go (``drop``), or expires as the snapshot would have."""

GIVE_BACK = """
local value = redis.call('GET', KEYS[1])
if value and string.sub(value, 1, #ARGV[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], string.sub(value, #ARGV[1] + 1), 'KEEPTTL')
  return 1
end
return 0
"""
"""Undo ``RECALL``: the snapshot under KEYS[1] is takeable again, if it still bears this
question's mark (ARGV[1]). A snapshot its node dropped or wrote again since stays as it
is: the token may no longer be good."""


def taken_mark(address: str, request: int) -> str:
    """What ``RECALL`` puts before a snapshot it took for question ``request`` of run
    ``address``; not JSON, so that no other question takes the snapshot."""
    return f"taken {address} {request}\n"


class RedisBook:
    def __init__(self, address: str, queue: Callable[[Op], None]) -> None:
        self.address = address
        self._queue = queue
        self.mine: dict[int, DeviceRecord] = {}
        """This run's registrations by ref, as published."""
        self.snapshots: dict[str, tuple[Snapshot, float | None]] = {}
        """Their snapshots by token hash, as kept, with their expiry."""

    def publish(self, record: DeviceRecord) -> None:
        self.mine[record.ref] = record
        self._queue(_publish(record))

    def withdraw(self, node: str, ref: int) -> None:
        record = self.mine.pop(ref, None)
        if record is not None:
            self._queue(_withdraw(record))

    def keep(self, key: str, snapshot: Snapshot, expiry: float | None) -> None:
        self.snapshots[key] = (snapshot, expiry)
        self._queue(_keep(self.address, key, snapshot, expiry))

    def drop(self, key: str) -> None:
        if self.snapshots.pop(key, None) is not None:
            self._queue(_drop(self.address, key))

    def give_back(self, key: str, request: int) -> None:
        """The snapshot under ``key`` that this run's ``Recall`` ``request`` took was not
        used (the client's connection closed meanwhile): takeable again (``GIVE_BACK``)."""
        name, mark = keys.token(key), taken_mark(self.address, request)
        self._queue(lambda pipe: pipe.eval(GIVE_BACK, 1, name, mark))

    def reassert(self) -> None:
        """Write every registration of this run again, and its snapshot (Redis lost
        them); a detached one's expires a whole grace later."""
        for record in self.mine.values():
            self._queue(_publish(record))
        for key, (snapshot, expiry) in self.snapshots.items():
            self._queue(_keep(self.address, key, snapshot, expiry))


def _field(record: DeviceRecord) -> str:
    return f"{record.node}:{record.ref}"


def _publish(record: DeviceRecord) -> Op:
    key, field = keys.registrations(record.domain, record.sip), _field(record)
    value = orjson.dumps(encode_record(record))

    def write(pipe: Any) -> None:
        pipe.hset(key, field, value)
        pipe.sadd(keys.node_registrations(record.node), f"{key}|{field}")

    return write


def _withdraw(record: DeviceRecord) -> Op:
    key, field = keys.registrations(record.domain, record.sip), _field(record)

    def write(pipe: Any) -> None:
        pipe.hdel(key, field)
        pipe.srem(keys.node_registrations(record.node), f"{key}|{field}")

    return write


def _keep(address: str, key: str, snapshot: Snapshot, expiry: float | None) -> Op:
    """Write the snapshot; a SET without expiry also takes back one set before."""
    name, value = keys.token(key), encode_snapshot(snapshot)
    milliseconds = None if expiry is None else max(1, int(expiry * 1000))

    def write(pipe: Any) -> None:
        pipe.set(name, value, px=milliseconds)
        pipe.sadd(keys.node_tokens(address), name)

    return write


def _drop(address: str, key: str) -> Op:
    name = keys.token(key)

    def write(pipe: Any) -> None:
        pipe.delete(name)
        pipe.srem(keys.node_tokens(address), name)

    return write
