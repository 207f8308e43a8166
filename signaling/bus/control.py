"""Settings an operator changes at run time, on every node at once (SCALE.md decisions 3
and 8): the trace flags, and the version of the admin API's directory changes.

Theory of operation: the flags live in Redis (``sb:trace``, a hash of flag -> 0/1) and a
change is announced on the pub/sub channel ``sb:ctl`` (``trace <run>``). A node that is
told of a change, or that (re)connects its subscription, reads the hash and sets its
tracer from it, so a change published while a node's subscription was down is not lost:
pub/sub only says "read again". A change made through one node's admin API
(``Tracer.set_flags``) is written to the hash and announced; a node applying the
cluster's flags does not announce them again. A node starting while the hash is empty
writes its own flags there.

The directory changes live in the cluster's database (``signaling.directory.shared``);
a node that made one announces its version (``directory <version> <run>``), and the
others' ``DirectoryFollower`` reads what it does not have yet. After every
(re)subscription the follower is told to read the version again (``announced(None)``).
Announcements wait here while Redis cannot be reached; only the newest is sent.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from redis.exceptions import RedisError

from tracing import Tracer

__all__ = ["CONTROL_CHANNEL", "TRACE_FLAGS", "ControlChannel", "DirectoryFollower"]

log = logging.getLogger(__name__)

CONTROL_CHANNEL = "sb:ctl"
TRACE_FLAGS = "sb:trace"


class DirectoryFollower(Protocol):
    def announced(self, version: int | None) -> None:
        """Another node made the directory changes up to ``version``; None: read the
        version again (announcements may have been lost)."""


class ControlChannel:
    def __init__(
        self,
        redis: Any,
        subscriber: Any,
        address: str,
        tracer: Tracer | None = None,
        directory: DirectoryFollower | None = None,
    ) -> None:
        self._redis = redis
        self._subscriber = subscriber
        self._tracer = tracer
        self._directory = directory
        self._address = address
        self._applying = False
        self._unsent: dict[str, bool] | None = None
        """The flags last set here and not yet written to Redis."""
        self._unsent_version: int | None = None
        """The directory version last made here and not yet announced."""
        self._wake = asyncio.Event()
        if tracer is not None:
            tracer.on_change.append(self._changed)

    async def start(self) -> None:
        """Take the cluster's flags, or give it ours when it has none."""
        if self._tracer is None:
            return
        stored = await self._redis.hgetall(TRACE_FLAGS)
        if stored:
            self._apply(stored)
        else:
            await self._publish(self._tracer.flags())

    def stop(self) -> None:
        if self._tracer is not None and self._changed in self._tracer.on_change:
            self._tracer.on_change.remove(self._changed)

    def announce_directory(self, version: int) -> None:
        """Tell the other nodes that the directory changes reached ``version``."""
        self._unsent_version = max(version, self._unsent_version or 0)
        self._wake.set()

    def _changed(self, flags: dict[str, bool]) -> None:
        """The tracer's flags changed here: tell the others, unless they told us."""
        if not self._applying:
            self._unsent = dict(flags)
            self._wake.set()

    async def run_publisher(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._unsent is not None or self._unsent_version is not None:
                try:
                    await self._send_unsent()
                except (RedisError, OSError) as exc:
                    log.warning("cluster: could not announce a change (%s)", exc)
                    await asyncio.sleep(0.5)

    async def _send_unsent(self) -> None:
        """The flags and the directory version waiting; on failure both wait again (the
        flags written twice are the same flags)."""
        flags, self._unsent = self._unsent, None
        version, self._unsent_version = self._unsent_version, None
        try:
            if flags is not None:
                await self._publish(flags)
            if version is not None:
                text = f"directory {version} {self._address}"
                await self._redis.publish(CONTROL_CHANNEL, text)
        except BaseException:
            self._unsent = self._unsent or flags
            if version is not None:
                self.announce_directory(version)
            raise

    async def _publish(self, flags: dict[str, bool]) -> None:
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(TRACE_FLAGS, mapping={name: int(on) for name, on in flags.items()})
        pipe.publish(CONTROL_CHANNEL, f"trace {self._address}")
        await pipe.execute()

    async def run_subscriber(self) -> None:
        """Follow the channel; after every (re)subscription read the flags again."""
        delay = 0.05
        while True:
            pubsub = self._subscriber.pubsub()
            try:
                await pubsub.subscribe(CONTROL_CHANNEL)
                await self._read_flags()
                if self._directory is not None:
                    self._directory.announced(None)
                delay = 0.05
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        await self._heard(_text(message.get("data")).split())
            except (RedisError, OSError) as exc:
                log.warning("cluster: control channel lost (%s)", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            finally:
                await pubsub.aclose()

    async def _heard(self, words: list[str]) -> None:
        """One announcement: ``trace <run>`` or ``directory <version> <run>``; a node's
        own are not news to it."""
        if not words or words[-1] == self._address:
            return
        kind, version = words[0], words[1] if len(words) == 3 else ""
        if kind == "trace":
            await self._read_flags()
        elif kind == "directory" and version.isdigit() and self._directory is not None:
            self._directory.announced(int(version))

    async def _read_flags(self) -> None:
        if self._tracer is not None:
            self._apply(await self._redis.hgetall(TRACE_FLAGS))

    def _apply(self, stored: dict[Any, Any]) -> None:
        assert self._tracer is not None
        flags = {_text(name): _text(value) == "1" for name, value in stored.items()}
        known = {name: on for name, on in flags.items() if name in self._tracer.flags()}
        if not known or all(self._tracer.flags()[name] == on for name, on in known.items()):
            return
        self._applying = True
        try:
            self._tracer.set_flags(known)
        finally:
            self._applying = False
        log.info("cluster: trace flags now %s", known)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
