"""Settings an operator changes at run time, on every node at once (SCALE.md decisions 3
and 8): the trace flags.

Theory of operation: the flags live in Redis (``sb:trace``, a hash of flag -> 0/1) and a
change is announced on the pub/sub channel ``sb:ctl``. A node that is told of a change,
or that (re)connects its subscription, reads the hash and sets its tracer from it, so a
change published while a node's subscription was down is not lost: pub/sub only says
"read again". A change made through one node's admin API (``Tracer.set_flags``) is
written to the hash and announced; a node applying the cluster's flags does not announce
them again. A node starting while the hash is empty writes its own flags there.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from redis.exceptions import RedisError

from tracing import Tracer

__all__ = ["CONTROL_CHANNEL", "TRACE_FLAGS", "ControlChannel"]

log = logging.getLogger(__name__)

CONTROL_CHANNEL = "sb:ctl"
TRACE_FLAGS = "sb:trace"


class ControlChannel:
    def __init__(self, redis: Any, subscriber: Any, tracer: Tracer, address: str) -> None:
        self._redis = redis
        self._subscriber = subscriber
        self._tracer = tracer
        self._address = address
        self._applying = False
        self._unsent: dict[str, bool] | None = None
        """The flags last set here and not yet written to Redis."""
        self._wake = asyncio.Event()
        tracer.on_change.append(self._changed)

    async def start(self) -> None:
        """Take the cluster's flags, or give it ours when it has none."""
        stored = await self._redis.hgetall(TRACE_FLAGS)
        if stored:
            self._apply(stored)
        else:
            await self._publish(self._tracer.flags())

    def stop(self) -> None:
        if self._changed in self._tracer.on_change:
            self._tracer.on_change.remove(self._changed)

    def _changed(self, flags: dict[str, bool]) -> None:
        """The tracer's flags changed here: tell the others, unless they told us."""
        if not self._applying:
            self._unsent = dict(flags)
            self._wake.set()

    async def run_publisher(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._unsent is not None:
                flags, self._unsent = self._unsent, None
                try:
                    await self._publish(flags)
                except (RedisError, OSError) as exc:
                    log.warning("cluster: could not announce trace flags (%s)", exc)
                    self._unsent = self._unsent or flags
                    await asyncio.sleep(0.5)

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
                self._apply(await self._redis.hgetall(TRACE_FLAGS))
                delay = 0.05
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    if not _text(message.get("data")).endswith(f" {self._address}"):
                        self._apply(await self._redis.hgetall(TRACE_FLAGS))
            except (RedisError, OSError) as exc:
                log.warning("cluster: control channel lost (%s)", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            finally:
                await pubsub.aclose()

    def _apply(self, stored: dict[Any, Any]) -> None:
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
