"""A node's lease on its name, and how the survivors learn that a node died (SCALE.md
decision 5).

Theory of operation: a run of a node holds ``sb:node:{name}`` (its address as the value,
an expiry of ``cluster.lease``) and renews it every ``cluster.heartbeat``. At start a
second live run of the same name finds the key held and is refused (``NodeNameTaken``);
the run makes its inbox stream (a marker entry: nobody else ever creates it). Every
heartbeat a node also reads which address each known name has now: a run whose name
another run holds now (a restart) is dead at once; a run whose lease is missing is dead
once it has stayed missing for two more heartbeats (Redis may have restarted without its
data, and every node writes its lease again at its own next heartbeat). Each survivor
tells its own switch at once (``node_down``: the calls with that run's devices end as a
lost link would); the survivor that sets ``sb:janitor:{address}`` removes the dead run's
registrations, claims, presence shares and inbox from Redis (the key lasts a minute while
it cleans, so a janitor that fails is followed by another, and a day once it is done),
and gives its registrations' snapshots the resume grace: their clients may resume on
another node until then (docs 12.43).
Redis's clock alone decides expiry; no clocks are compared across machines.

Each renewal that works is reported with the time it was sent (``renewed``): a run that
has not renewed for a while fences itself before the others may declare it dead
(``fence``). When the lease was gone (Redis lost it, or it ran out while the run was cut
off and nobody declared the run dead yet), the renewal writes it again and the node
writes its state again. A run that finds itself declared dead (its janitor key exists,
or another run holds its name) is fenced for good: the others ended its calls and drop
what it sends, so it must not go on as if nothing happened; it ends its own cross-node
calls, reports itself down and waits to be restarted. A clean stop removes the run's own
keys.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from . import keys
from .errors import NodeNameTaken

__all__ = ["NodeLease"]

_DONE = "done"

log = logging.getLogger(__name__)

_RENEW = """
if redis.call('EXISTS', KEYS[3]) == 1 then
  return 3
end
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
"""1: renewed; 2: the lease was gone and is written again; 0: another run holds the
name; 3: this run was declared dead."""

_FORGET = """
local prefix = ARGV[1] .. ':'
for _, set in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  for _, member in ipairs(redis.call('SMEMBERS', set)) do
    if member == ARGV[1] or string.sub(member, 1, #prefix) == prefix then
      redis.call('SREM', set, member)
    end
  end
end
for _, entry in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  local bar = string.find(entry, '|', 1, true)
  if bar then
    redis.call('HDEL', string.sub(entry, 1, bar - 1), string.sub(entry, bar + 1))
  end
end
for _, key in ipairs(redis.call('SMEMBERS', KEYS[5])) do
  redis.call('HDEL', key, ARGV[1])
  if redis.call('HLEN', key) == 1 and redis.call('HEXISTS', key, 'p') == 1 then
    redis.call('DEL', key)
  end
  redis.call('PUBLISH', ARGV[4] .. string.sub(key, #ARGV[3] + 1), ARGV[1])
end
for _, key in ipairs(redis.call('SMEMBERS', KEYS[6])) do
  if tonumber(ARGV[5]) <= 0 then
    redis.call('DEL', key)
  elseif redis.call('PTTL', key) == -1 then
    redis.call('PEXPIRE', key, ARGV[5])
  end
end
redis.call('DEL', KEYS[1], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
if redis.call('HGET', KEYS[2], ARGV[2]) == ARGV[1] then
  redis.call('HDEL', KEYS[2], ARGV[2])
end
return 1
"""
"""Remove what a run kept: its members of every claim set, its registrations, its shares
of users' presence (announced, as the run would have: ``presence``), its inbox, and its
name from the nodes unless a new run holds it; its snapshots that had no expiry (their
connections were open) expire after the resume grace (ARGV[5], in ms) from now."""


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
        renewed: Callable[[float, bool], None],
        fenced: Callable[[], None],
        resume_grace: float = 0.0,
    ) -> None:
        self._redis = redis
        self.name = name
        self.address = address
        self._lease_ms = int(lease * 1000)
        self._grace = 2 * heartbeat
        self._node_down = node_down
        self._renewed = renewed
        """Called with when the renewal that worked was sent (monotonic), and whether
        it had to write the lease again (the node's state is then written again too)."""
        self._fenced = fenced
        self._grace_ms = int(resume_grace * 1000)
        """How long a gone run's snapshots stay (``_FORGET``)."""
        self._renew = redis.register_script(_RENEW)
        self._forget = redis.register_script(_FORGET)
        self.known: dict[str, str] = {}
        """Node name -> the address of its run, as last read."""
        self.dead: set[str] = set()
        """Addresses of runs declared dead, by this node or by their successor."""
        self._unclean: set[str] = set()
        """Dead runs whose cleaning this node has not seen done yet."""
        self._missing: dict[str, float] = {}
        """Runs whose lease was found missing, and since when (monotonic seconds)."""
        self.fenced = False

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
        await self.make_inbox()
        previous = await self._redis.hget(keys.NODES, self.name)
        await self._redis.hset(keys.NODES, self.name, self.address)
        if previous is not None and _text(previous) != self.address:
            await self._declare_dead(_text(previous))
        nodes = await self._redis.hgetall(keys.NODES)
        self.known = {_text(name): _text(address) for name, address in nodes.items()}

    async def make_inbox(self) -> None:
        """The run's inbox exists from now on (others never create it: ``nomkstream``)."""
        await self._redis.xadd(keys.inbox(self.address), {"m": "1"})

    async def release(self) -> None:
        """A clean stop: the name is free at once and the run's keys are gone; the
        survivors end its calls within two heartbeats."""
        lease = keys.lease(self.name)
        if _text(await self._redis.get(lease)) == self.address:
            await self._redis.delete(lease)
        await self._forget_run(self.address)

    async def beat(self) -> None:
        """Renew, then look for dead runs. Raises what Redis raises (the caller counts
        failures)."""
        if self.fenced:
            return
        sent = time.monotonic()
        renewed = await self._renew(
            keys=[keys.lease(self.name), keys.NODES, keys.janitor(self.address)],
            args=[self.address, self._lease_ms, self.name],
        )
        if renewed in (0, 3):
            self._fence("declared dead by the others" if renewed == 3 else "its name taken")
            return
        if renewed == 2:
            log.warning(
                "cluster: this node's lease was gone (Redis lost it, or it ran out while "
                "the node was cut off); writing its state again"
            )
            await self.make_inbox()
            self._renewed(sent, True)
            self._missing.clear()  # the others may have lost theirs: give them a heartbeat
            return
        self._renewed(sent, False)
        await self._check_others(time.monotonic())

    def _fence(self, why: str) -> None:
        log.error(
            "cluster: this node (%s) was %s; its calls with other nodes end; restart it",
            self.address,
            why,
        )
        self.fenced = True
        for address in sorted(set(self.known.values()) - {self.address}):
            self._node_down(address)
        self._fenced()

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
        for address in list(self._unclean):
            await self._clean(address)

    async def _declare_dead(self, address: str) -> None:
        if address in self.dead or address == self.address:
            return
        self.dead.add(address)
        log.warning("cluster: node run %s is gone", address)
        self._node_down(address)
        self._unclean.add(address)
        await self._clean(address)

    async def _clean(self, address: str) -> None:
        """Remove what a dead run kept in Redis, if this node is its janitor."""
        janitor = keys.janitor(address)
        if not await self._redis.set(janitor, f"cleaning by {self.name}", nx=True, ex=60):
            if _text(await self._redis.get(janitor)) == _DONE:
                self._unclean.discard(address)
            return  # another survivor cleans; if it fails, its key runs out
        await self._forget_run(address)
        await self._redis.set(janitor, _DONE, ex=86_400)
        self._unclean.discard(address)
        log.info("cluster: cleaned up after %s", address)

    async def _forget_run(self, address: str) -> None:
        name = address.rpartition(".")[0]
        await self._forget(
            keys=[
                keys.node_claims(address),
                keys.NODES,
                keys.node_registrations(address),
                keys.inbox(address),
                keys.node_presence(address),
                keys.node_tokens(address),
            ],
            args=[address, name, keys.PRESENCE_PREFIX, keys.CHANGES_PREFIX, self._grace_ms],
        )


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value
