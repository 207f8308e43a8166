"""The cluster's registrations in Redis, as one node writes them (SCALE.md decision 4).

The switch calls ``publish`` and ``withdraw`` synchronously from its core, so they only
queue a write for the bus's next pipeline; nothing waits on Redis. Reads never happen
here: a switch learns the others' registrations through ``Lookup``, which the bus answers
from the same keys. The same goes for the registrations' snapshots (``keep``, ``drop``;
docs 12.43), which another node takes with ``Recall`` when a client resumes there. The
book remembers what it wrote, so that the node can write it all again when Redis has
lost it (a restart without persistence, a failover that lost the tail): the nodes hold
the truth about their own connections.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from signaling.core.nodes.frames import DeviceRecord, Snapshot

from . import keys
from .codec import encode_record, encode_snapshot

__all__ = ["Op", "RedisBook"]

Op = Callable[[Any], None]
"""A write for the next pipeline: it is called with the pipeline and queues commands."""


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
