"""A node's lease on its name, and how the survivors learn that a node died (SCALE.md
decision 5).

Theory of operation: a run of a node holds ``sb:node:{name}`` (its address as the value,
an expiry of ``cluster.lease``) and renews it every ``cluster.heartbeat``. At start a
second live run of the same name finds the key held and is refused (``NodeNameTaken``).
Every heartbeat a node also reads which address each known name has now: a run whose
lease is gone, or whose name another run holds now (a restart), is dead. Each survivor
tells its own switch at once (``node_down``: the calls with that run's devices end as a
lost link would); the first survivor to set ``sb:janitor:{address}`` removes the dead
run's registrations, claims and inbox from Redis. Redis's clock alone decides expiry;
no clocks are compared across machines.

When Redis has lost the lease (a restart without persistence), the renewal writes it
again and the node writes its registrations again (``reassert``). The other nodes lost
theirs at the same instant and write them again at their own next heartbeat: so a lease
found missing makes its run dead only once it has stayed missing for two heartbeats (a
run seen replaced by a new one of its name is dead at once).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from . import keys
from .errors import NodeNameTaken

__all__ = ["NodeLease"]

log = logging.getLogger(__name__)

_RENEW = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  redis.call('HSET', KEYS[2], ARGV[3], ARGV[1])
  return 2
end
return 0
"""
"""1: renewed; 2: the lease was gone and is written again; 0: another run holds it."""

_FORGET_CLAIMS = """
local prefix = ARGV[1] .. ':'
for _, set in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  for _, member in ipairs(redis.call('SMEMBERS', set)) do
    if member == ARGV[1] or string.sub(member, 1, #prefix) == prefix then
      redis.call('SREM', set, member)
    end
  end
end
redis.call('DEL', KEYS[1])
if redis.call('HGET', KEYS[2], ARGV[2]) == ARGV[1] then
  redis.call('HDEL', KEYS[2], ARGV[2])
end
return 1
"""
"""Take a dead run's members out of every claim set it added one to, and its name out of
the nodes unless a new run holds it."""


class NodeLease:
    def __init__(
        self,
        redis: Any,
        name: str,
        address: str,
        *,
        lease: float,
        heartbeat: float,
        node_down: Callable[[str], None],
        reasserted: Callable[[], None],
    ) -> None:
        self._redis = redis
        self.name = name
        self.address = address
        self._lease_ms = int(lease * 1000)
        self._grace = 2 * heartbeat
        self._node_down = node_down
        self._reasserted = reasserted
        self._renew = redis.register_script(_RENEW)
        self._forget_claims = redis.register_script(_FORGET_CLAIMS)
        self.known: dict[str, str] = {}
        """Node name -> the address of its run, as last read."""
        self.dead: set[str] = set()
        """Addresses of runs declared dead, by this node or by their successor."""
        self._missing: dict[str, float] = {}
        """Runs whose lease was found missing, and since when (monotonic seconds)."""

    async def acquire(self) -> None:
        """Take the name, or ``NodeNameTaken`` when a live run holds it. A previous run
        of this name whose lease ran out is cleaned up now."""
        lease = keys.lease(self.name)
        if not await self._redis.set(lease, self.address, nx=True, px=self._lease_ms):
            holder = await self._redis.get(lease)
            ttl = await self._redis.pttl(lease)
            raise NodeNameTaken(
                f"another live node is named {self.name!r} ({_text(holder)}, its lease "
                f"runs out in {max(ttl, 0) / 1000:.1f} s if it is dead): give this one "
                "another server.node (serve --node NAME)"
            )
        previous = await self._redis.hget(keys.NODES, self.name)
        await self._redis.hset(keys.NODES, self.name, self.address)
        if previous is not None and _text(previous) != self.address:
            await self._declare_dead(_text(previous))
        nodes = await self._redis.hgetall(keys.NODES)
        self.known = {_text(name): _text(address) for name, address in nodes.items()}

    async def release(self) -> None:
        """A clean stop: the name is free at once, and the survivors see this run gone
        at their next heartbeat."""
        lease = keys.lease(self.name)
        if _text(await self._redis.get(lease)) == self.address:
            await self._redis.delete(lease)

    async def beat(self) -> None:
        """Renew, then look for dead runs. Raises what Redis raises (the caller counts
        failures)."""
        renewed = await self._renew(
            keys=[keys.lease(self.name), keys.NODES],
            args=[self.address, self._lease_ms, self.name],
        )
        if renewed == 2:
            log.warning("cluster: Redis had lost this node's lease; writing its state again")
            self._reasserted()
            self._missing.clear()  # the others lost theirs too: give them their heartbeat
            return
        if renewed == 0:
            log.error("cluster: another run holds the name %r now", self.name)
        await self._check_others(time.monotonic())

    async def _check_others(self, now: float) -> None:
        nodes = {_text(k): _text(v) for k, v in (await self._redis.hgetall(keys.NODES)).items()}
        names = [name for name in nodes if name != self.name]
        holders = await self._redis.mget([keys.lease(name) for name in names]) if names else []
        missing: set[str] = set()
        for name, holder in zip(names, holders, strict=True):
            if not holder:
                missing.add(nodes[name])
            elif _text(holder) != nodes[name]:
                await self._declare_dead(nodes[name])
        for name, address in self.known.items():
            if name not in nodes and address != self.address:
                missing.add(address)
                nodes[name] = address  # still known until it is declared dead
            elif nodes[name] != address and address != self.address:
                await self._declare_dead(address)  # a new run of its name replaced it
        self._missing = {address: self._missing.get(address, now) for address in missing}
        for address, since in self._missing.items():
            if now - since >= self._grace:
                await self._declare_dead(address)
        self.known = {name: a for name, a in nodes.items() if a not in self.dead}

    async def _declare_dead(self, address: str) -> None:
        if address in self.dead or address == self.address:
            return
        self.dead.add(address)
        log.warning("cluster: node run %s is gone", address)
        self._node_down(address)
        if await self._redis.set(keys.janitor(address), self.name, nx=True, ex=3600):
            await self._clean(address)

    async def _clean(self, address: str) -> None:
        """Remove what a dead run kept in Redis (this node won the janitor's key)."""
        entries = await self._redis.smembers(keys.node_registrations(address))
        pipe = self._redis.pipeline(transaction=False)
        for entry in entries:
            key, _, field = _text(entry).partition("|")
            pipe.hdel(key, field)
        pipe.delete(keys.node_registrations(address), keys.inbox(address))
        await pipe.execute()
        name = address.rpartition(".")[0]
        await self._forget_claims(
            keys=[keys.node_claims(address), keys.NODES], args=[address, name]
        )
        log.info("cluster: cleaned up after %s (%d registrations)", address, len(entries))


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value
