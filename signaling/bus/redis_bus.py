"""The Redis bus: hub nodes in several processes sharing one Redis (SCALE.md decisions
1-5, performance rules 1-5).

Theory of operation: the hub hands the bus the cluster actions its switch returned
(``take``); nothing waits on Redis there. They collect until the writer task runs, then
leave in one pipeline (``writer``, ``outbound``): the registrations this node wrote or
withdrew, numbered stream entries for each target node holding its frames, the lookups
and the claims. The answers go back to the switch through the hub (``BusPeer``).

A reader task follows this run's inbox with ``XREAD BLOCK`` from its start and hands
each entry to ``inbound``, which drops copies and notices gaps. A heartbeat task renews
the lease and finds dead runs (``lease``); a control channel keeps the trace flags the
same on every node and tells the directory changes' follower of new versions
(``control``); users' presence is shared and followed by ``presence``, whose reads ride
in the writer's pipelines. ``up``, which ``/healthz`` shows, is true while every task
runs, the heartbeat works, and the run has not been fenced.

A run that has not renewed its lease for ``lease - heartbeat`` fences itself before the
others may declare it dead (``fence``): the calls with the other runs end here, frames for
them are dropped, lookups find this node's devices only, and the writer and the reader
wait; what it must write (registrations, presence, claims) waits with the writer. When a
renewal works again it tells the runs it cut off (a reset entry each, before anything
else) and writes its state again; when Redis says it was declared dead, it stays fenced.

A new registration's ``RegisterResult`` waits for the pipeline that writes it
(``written``): once Redis has taken it, every node finds the device. If Redis does not
answer within ``cluster.answer_wait`` the answer goes anyway, and the registration is
written when Redis is back.

The cluster's login throttles and visitor accounts (``logins``) ask Redis on a connection
of their own, answered within ``cluster.answer_wait`` (docs 12.44).
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

from config import ClusterConfig, LoginConfig, SupportConfig
from signaling.appwebsocket.throttle import ThrottlePolicy
from signaling.core.actions import Claimed, LoginChecked, LookedUp, PresenceShares, Recalled
from signaling.core.nodes.frames import NodeFrame
from signaling.stopping import stop_tasks
from tracing import Tracer

from . import keys
from .control import ControlChannel, DirectoryFollower
from .errors import BusUnreachable
from .fence import Fence, Standing
from .inbound import Inbound
from .lease import NodeLease
from .logins import SharedLogins
from .outbound import Outbound
from .presence import RedisPresence
from .redis_book import RedisBook
from .stats import BusStats
from .writer import QUEUED_MAX, Answer, Writer

__all__ = ["QUEUED_MAX", "BusPeer", "BusStats", "RedisBus"]

log = logging.getLogger(__name__)

READ_BLOCK_MS = 1000
COMMAND_TIMEOUT = 5.0
"""Seconds a Redis command may take before the connection counts as broken."""


class BusPeer(Protocol):
    """Where the bus delivers: the hub, which runs the switch's entry point and carries
    out what it returns."""

    def from_nodes(self, sender: str, frames: list[NodeFrame]) -> None: ...

    def looked_up(self, answer: LookedUp) -> None: ...

    def recalled(self, answer: Recalled) -> None: ...

    def claimed(self, answer: Claimed) -> None: ...

    def presence_shares(self, answer: PresenceShares) -> None: ...

    def login_checked(self, answer: LoginChecked) -> None: ...

    def node_down(self, address: str) -> None: ...

    def node_up(self, address: str) -> None:
        """The run is live (told at every heartbeat: the switch meets each run once)."""

    def node_reset(self, address: str) -> None:
        """The run fenced itself and came back: its calls here end, its users' presence
        stands."""


class RedisBus:
    def __init__(
        self,
        config: ClusterConfig,
        name: str,
        tracer: Tracer | None = None,
        directory: DirectoryFollower | None = None,
        login: LoginConfig | None = None,
        support: SupportConfig | None = None,
        resume_grace: float = 0.0,
    ) -> None:
        """``tracer``: its flags are the cluster's (``control``), when given;
        ``directory``: told of the directory changes' versions the others announce;
        ``login``, ``support``, ``resume_grace``: the numbers of the throttles and visitor
        accounts, and how long the snapshots of a run that is gone stay (``lease``)."""
        self.config, self.name, self._resume_grace = config, name, resume_grace
        self._tracer, self._directory = tracer, directory
        self.address = f"{name}.{secrets.token_hex(4)}"
        """This run's address: the switch's node name in the cluster (``keys``)."""
        self.stats = BusStats()
        self._fence = Fence(
            config.lease - config.heartbeat, fenced=self._fenced_self, back=self._rejoin
        )
        self._writer = self._make_writer()
        self.take = self._writer.take
        """A cluster action of the switch: it leaves with the next pipeline."""
        self.book = RedisBook(self.address, self._writer.queue_op)
        self.logins = self._shared_logins(login or LoginConfig(), support or SupportConfig())
        """The cluster's login throttles and visitor accounts (``logins``)."""
        self._peer: BusPeer | None = None
        self._redis: Any = None
        self._reader: Any = None
        self._subscriber: Any = None
        self._outbound: Outbound | None = None
        self._inbound: Inbound | None = None
        self._lease: NodeLease | None = None
        self._control: ControlChannel | None = None
        self._presence: RedisPresence | None = None
        self._started = False
        self._tasks: list[asyncio.Task[None]] = []
        self._beat_ok_at = 0.0

    def _make_writer(self) -> Writer:
        return Writer(
            self.stats,
            self._fence,
            answer_wait=self.config.answer_wait,
            answer=self._answer,
            cut_off=self._cut_off,
            node_down=self._node_down,
            dead=self._dead,
        )

    def _shared_logins(self, login: LoginConfig, support: SupportConfig) -> SharedLogins:
        logins = SharedLogins(
            ThrottlePolicy.from_config(login),
            visitor_ttl=support.visitor_ttl,
            visitors_per_hour=support.visitors_per_hour,
            grace=self.config.lease,
            answer_wait=self.config.answer_wait,
            queue_op=self._writer.queue_op,
            up=lambda: self._fence.up,
        )
        logins.answered = self._login_checked
        return logins

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self, peer: BusPeer) -> None:
        """Connect, take the node's name (``NodeNameTaken`` if a live run holds it,
        ``BusUnreachable`` if Redis does not answer) and start the tasks."""
        self._peer = peer
        self._started = True
        lease = self._build(peer)
        try:
            acquired = time.monotonic()
            await lease.acquire()
            await self._start_control()
        except (RedisError, OSError) as exc:
            await self._close_connections()
            shown = self.config.redis.rpartition("@")[2]
            raise BusUnreachable(f"cannot reach Redis at {shown}: {exc}") from exc
        except BaseException:
            await self._close_connections()
            raise
        self._beat_ok_at = time.monotonic()
        self._fence.renewed(acquired)
        self._run_tasks()
        self._meet()

    async def _start_control(self) -> None:
        """The channel that keeps the trace flags and the admin API's directory changes
        the same on every node, when the bus has either (``control``)."""
        if self._tracer is not None or self._directory is not None:
            self._control = ControlChannel(
                self._redis, self._subscriber, self.address, self._tracer, self._directory
            )
            await self._control.start()

    def _build(self, peer: BusPeer) -> NodeLease:
        """The connections and the parts that use them; the lease, to be acquired."""
        self._redis = self._client(COMMAND_TIMEOUT)
        self._reader = self._client(READ_BLOCK_MS / 1000 + COMMAND_TIMEOUT)
        self._subscriber = self._client(None)
        self.logins.connect(self._client(self.config.answer_wait))
        give_up = self.config.lease + 3 * self.config.heartbeat
        self._inbound = Inbound(peer, self.stats, self._is_dead, self._cut_off, peer.node_reset)
        self._presence = self._writer.presence = self._shared_presence()
        self._outbound = self._writer.outbound = Outbound(
            self._redis,
            self.address,
            self.config.inbox_max,
            self.stats,
            give_up,
            read_presence=self._presence.fill,
            heard=self._inbound.heard,
            open_=self._fence.open,
        )
        self._lease = NodeLease(
            self._redis,
            self.name,
            self.address,
            lease=self.config.lease,
            heartbeat=self.config.heartbeat,
            node_down=self._node_down,
            renewed=self._renewed,
            fenced=self._fenced,
            resume_grace=self._resume_grace,
        )
        return self._lease

    def _shared_presence(self) -> RedisPresence:
        return RedisPresence(
            self._redis,
            self._subscriber,
            address=self.address,
            lease=keys.lease(self.name),
            heartbeat=self.config.heartbeat,
            stats=self.stats,
            read=self._writer.read_presence,
        )

    def _client(self, timeout: float | None) -> Any:
        return aioredis.Redis.from_url(
            self.config.redis, socket_connect_timeout=COMMAND_TIMEOUT, socket_timeout=timeout
        )

    def _run_tasks(self) -> None:
        runs: dict[str, Coroutine[Any, Any, None]] = {
            "write": self._writer.run(),
            "read": self._read_loop(),
            "heartbeat": self._heartbeat_loop(),
            "logins": self.logins.asks.run(),
        }
        if self._presence is not None:
            runs["presence"] = self._presence.run_subscriber()
        if self._control is not None:
            runs["announce"] = self._control.run_publisher()
            runs["control"] = self._control.run_subscriber()
        loop = asyncio.get_running_loop()
        for name, run in runs.items():
            self._tasks.append(loop.create_task(run, name=f"bus-{name}"))

    async def stop(self) -> None:
        """Send what waits (briefly), stop the tasks, and give the name and the run's
        keys back."""
        if not self._started:
            return
        self._fence.stop()
        writer = self._writer
        if self._fence.up and (writer.next or not writer.settled.is_set()):
            writer.wake()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(writer.settled.wait(), 2.0)
        if self._control is not None:
            self._control.stop()
        self._writer.stop()
        await stop_tasks(self._tasks)
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._lease is not None and not self._lease.fenced:
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                await asyncio.wait_for(self._lease.release(), 2.0)
        await self._close_connections()

    async def _close_connections(self) -> None:
        for client in (self._redis, self._reader, self._subscriber, self.logins.asks.redis):
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
        if not self._started or not self._fence.up:
            return False
        if any(task.done() for task in self._tasks):
            return False
        return time.monotonic() - self._beat_ok_at < self.config.lease

    @property
    def standing(self) -> Standing:
        """Up, fenced (cut off from Redis, may come back) or dead (restart it)."""
        return self._fence.standing

    @property
    def nodes(self) -> int:
        return len(self._lease.known) if self._lease is not None else 0

    # -- from the hub ------------------------------------------------------------------------

    def written(self) -> asyncio.Future[None]:
        """Done once Redis has taken everything taken so far (a registration's write: the
        device can be found), or after ``cluster.answer_wait`` if it has not answered."""
        return self._writer.written()

    def _cut_off(self, address: str) -> None:
        """The calls with ``address`` end, though it may live (entries to or from it were
        lost): the users it holds online are read again, as it still holds them."""
        if self._peer is not None:
            self._peer.node_down(address)
        if self._presence is not None:
            self._presence.read_all()

    def _reassert(self) -> None:
        self.book.reassert()
        if self._outbound is not None:
            for op in self._outbound.reassert():
                self._writer.queue_op(op)
        if self._presence is not None:
            for op in self._presence.reassert():
                self._writer.queue_op(op)
        for op in self.logins.reassert():
            self._writer.queue_op(op)

    def _login_checked(self, answer: LoginChecked) -> None:
        if self._peer is not None:
            self._peer.login_checked(answer)

    def _is_dead(self, address: str) -> bool:
        return self._lease is not None and address in self._lease.dead

    def _dead(self) -> set[str]:
        return self._lease.dead if self._lease is not None else set()

    def _node_down(self, address: str) -> None:
        if self._outbound is not None:
            self._outbound.forget(address)
        if self._inbound is not None:
            self._inbound.forget(address)
        self._writer.forget(address)
        if self._peer is not None:
            self._peer.node_down(address)

    def _renewed(self, sent: float, lost: bool) -> None:
        """A renewal sent at ``sent`` worked; ``lost``: it wrote the lease again."""
        fenced = not self._fence.up
        self._fence.renewed(sent)  # if it was fenced and is back: _rejoin
        if lost and not fenced:
            self._reassert()

    def _fenced_self(self) -> None:
        """The lease went unrenewed for ``lease - heartbeat`` (``fence``): the calls with
        every other run end here, as their ``node_down`` would, before those runs may
        declare this one dead; what they send meanwhile is dropped once this run is back."""
        assert self._lease is not None and self._inbound is not None
        assert self._outbound is not None and self._peer is not None
        self.stats.fences += 1
        known = {*self._lease.known.values(), *self._inbound.senders(), *self._outbound.targets()}
        runs = frozenset(known - {self.address} - self._lease.dead)
        self._fence.cut = runs
        self._inbound.expect(runs, self._fence.epoch)
        for address in runs:
            self._outbound.restart(address)
        self._writer.drop_unsent(refuse=False)
        for address in sorted(runs):
            self._peer.node_down(address)

    def _rejoin(self) -> None:
        """Back from a fence, not declared dead: each run it cut off reads a reset before
        anything else from this one, then this run's state is written again."""
        assert self._lease is not None
        self.stats.rejoins += 1
        runs = sorted(self._fence.cut - self._lease.dead)
        resets = [(run, {"n": self.address, "r": self._fence.epoch}) for run in runs]
        self._writer.next.entries[:0] = resets
        self._reassert()
        self._writer.wake()

    def _fenced(self) -> None:
        """Declared dead by the others: fenced for good (``lease``). Nothing more is
        written; whatever waited for Redis is answered from this node alone."""
        self._fence.declared_dead()
        self._writer.drop_unsent(refuse=True)

    # -- the tasks -----------------------------------------------------------------------------

    def _answer(self, answer: Answer) -> None:
        peer = self._peer
        assert peer is not None
        try:
            if type(answer) is LookedUp:
                peer.looked_up(answer)
            elif type(answer) is Recalled:
                peer.recalled(answer)
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
            await self._fence.open.wait()
            try:
                reply = await self._reader.xread({inbox: last}, count=512, block=READ_BLOCK_MS)
            except (RedisError, OSError) as exc:
                log.warning("cluster: reading the inbox failed (%s)", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            delay = 0.05
            if not self._fence.up:
                continue  # read again once back: the entries of the runs it cut off wait
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
            self._meet()

    def _meet(self) -> None:
        """Tell the switch of every live run the lease knows, as long as this run is not
        fenced: it meets each once (its support chats' boards, docs 12.46)."""
        lease, peer = self._lease, self._peer
        if lease is None or peer is None or not self._fence.up:
            return
        for address in sorted(set(lease.known.values()) - lease.dead - {self.address}):
            try:
                peer.node_up(address)
            except Exception:
                log.exception("cluster: internal error meeting %s", address)
