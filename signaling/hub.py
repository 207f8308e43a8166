"""asyncio glue around the sans-I/O ``Switch``: sockets, send queues and the timer task.

A connection with frames to send gets a bounded send queue drained by a writer task of
its own (``hub_link``), both made for the first frame and dropped once all are sent (an
idle connection has neither), so one slow or dead client never slows the others: when
its queue overflows the connection is closed 4008 (DESIGN "Principles"). The queues
(``SendQueues``) are built before the hub and the switch, which asks them whether a
receiver is congested. One timer task
sleeps until the switch's next deadline; the clock is injected, so tests that advance a
manual clock call ``wake()`` afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from signaling.appwebsocket import closecodes
from signaling.core.actions import (
    Ack,
    Action,
    CheckLogin,
    Claim,
    Claimed,
    Close,
    ForgiveLogin,
    Forward,
    KeepVisitor,
    LoginChecked,
    LookedUp,
    Lookup,
    Notify,
    PresenceShare,
    PresenceShares,
    PresenceWatch,
    Recall,
    Recalled,
    Send,
    Store,
    StoredAck,
    ToService,
    Unclaim,
    VisitorReleased,
    WhenFindable,
)
from signaling.core.nodes.frames import NodeFrame
from tracing import Tracer

from .core.frames import ack_text
from .core.switch import Switch
from .hub_link import Link, Peer, SendQueues, WirePeer, close_quietly
from .metrics import FrameTimes

if TYPE_CHECKING:
    from .bus.redis_bus import RedisBus
    from .messages_link import ServiceConnector, ServiceLink
    from .post_outbox import PostOutbox
    from .support.webhooks import WebhookSender

__all__ = ["Hub", "Peer", "WirePeer"]

log = logging.getLogger(__name__)


_perf_counter = time.perf_counter
"""Read twice a frame: a global rather than the module's attribute."""

_CLUSTER = frozenset((Forward, Lookup, Recall, Claim, Unclaim, PresenceShare, PresenceWatch))
"""Actions for the bus (SCALE.md); a switch standing alone makes none."""

_SHARED = (CheckLogin, ForgiveLogin, KeepVisitor, VisitorReleased)
"""Actions on the cluster's logins and visitor accounts (docs/protocol.md 12.44)."""


class _AckRun:
    """Acks for one call of one connection, made in one batch, that leave as one frame
    (docs/protocol.md 12.31): consecutive seqs, one time, one state."""

    __slots__ = ("first", "ids", "seq")

    def __init__(self, ack: Ack) -> None:
        self.first = ack
        self.ids = [ack.message_id]
        self.seq = ack.seq

    def take(self, ack: Ack) -> bool:
        """Join ``ack`` to the run if it is the next one of the run's call and state."""
        first = self.first
        if (
            ack.seq != self.seq + 1
            or ack.number != first.number
            or ack.state != first.state
            or ack.time != first.time
            or ack.src != first.src
        ):
            return False
        self.ids.append(ack.message_id)
        self.seq = ack.seq
        return True

    def text(self) -> str:
        first = self.first
        return ack_text(first.src, first.number, self.ids, self.seq, first.time, first.state)


class Hub:
    """The switch's asyncio side, built with its parts: the connections' send queues (the
    ones the switch was given), the messages service's outbox and link (from
    ``service``, when the service is enabled) and the webhook sender (when configured).
    ``start`` and ``stop`` run them; the tracer is the switch's."""

    def __init__(
        self,
        switch: Switch,
        *,
        queues: SendQueues,
        service: ServiceConnector | None = None,
        webhooks: WebhookSender | None = None,
        bus: RedisBus | None = None,
    ) -> None:
        self.switch = switch
        self.bus = bus
        """The way to the other nodes, when clustering (``signaling.bus.redis_bus``)."""
        self.tracer: Tracer = switch.tracer
        """``pbx`` traces every frame in and out; the core traces ``signalling``."""
        self.frame_times = FrameTimes()
        """How long each client frame takes here, for ``/metrics``."""
        self.tracer.on_change.append(self._flags_changed)
        self._queues = queues
        """Every open connection's WebSocket and, while it has frames to send, its link."""
        self._runs: dict[int, _AckRun] = {}
        """Acks of registrations that asked for cumulative acks, waiting for the end of the
        batch (or for another frame to their connection) to leave as one frame."""
        self._batches = 0
        self._wake = asyncio.Event()
        self._sleeping_until = math.inf
        self._armed_seen = 0
        """The switch's ``timers.armed`` when its next deadline was last looked at."""
        self._timer_task: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self.webhooks = webhooks
        """Where ``Notify`` actions go (PROTOCOL §9.6), when configured."""
        self.outbox: PostOutbox | None = None
        self.link: ServiceLink | None = None
        """The messages service's side (PROTOCOL §7), when it is enabled."""
        if service is not None:
            self.outbox, self.link = service.build(self)

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        if self.bus is not None:  # first: a node whose name is taken must not serve
            await self.bus.start(self)
        try:
            await self._start_parts()
        except BaseException:  # the node does not serve: its name is free again at once
            if self.bus is not None:
                await self.bus.stop()
            raise

    async def _start_parts(self) -> None:
        if self.webhooks is not None:
            self.webhooks.start()
        self._timer_task = asyncio.get_running_loop().create_task(self._run_timers())
        if self.outbox is not None:
            recovered = await self.outbox.open()
            self.switch.recovered(json.loads(text) for text in recovered)
        if self.link is not None:
            self.link.start()

    async def stop(self) -> None:
        """Close every connection with 1012 (restarting) and stop the timers."""
        for conn_id in list(self._queues.peers):
            self._apply(self.switch.kick(conn_id, closecodes.WS_1012_SERVICE_RESTART, "restart"))
        links = self._queues.links.values()
        writers = [link.writer for link in links if link.writer is not None]
        if writers or self._closing:
            await asyncio.wait([*writers, *self._closing], timeout=2.0)
        if self.link is not None:
            await self.link.stop()
        if self.outbox is not None:
            await self.outbox.close()
        if self._timer_task is not None:
            self._timer_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer_task
        if self.webhooks is not None:
            await self.webhooks.stop()
        if self.bus is not None:
            await self.bus.stop()

    def wake(self) -> None:
        """Re-read the clock now (tests call this after advancing a manual clock)."""
        self._wake.set()

    # -- connections --------------------------------------------------------------------------

    def attach(self, peer: Peer, address: str) -> int:
        conn_id, actions = self.switch.open(address)
        self._queues.add(conn_id, peer)
        self._apply(actions)
        return conn_id

    def receive(self, conn_id: int, text: str) -> None:
        began = _perf_counter()
        if self.tracer.pbx:
            self._trace_pbx(conn_id, "recv", text)
        self._apply(self.switch.receive(conn_id, text))
        self.frame_times.observe(_perf_counter() - began)

    def receive_all(self, conn_id: int, texts: list[str]) -> None:
        """The text frames of one read, as one event: the core takes them in order and
        returns their actions together, which are carried out once (one drain, one
        ``_apply``, one timing for all: each frame is counted with the average). Frame by
        frame with the ``pbx`` trace on, so that each frame's sends follow it there; and
        for a sender whose own frames already wait in a queue, so that one overflowing it
        (closed 4008) stops the rest of the read as before."""
        if self.tracer.pbx or conn_id in self._queues.links:
            for text in texts:
                self.receive(conn_id, text)
            return
        began = _perf_counter()
        self._apply(self.switch.receive_all(conn_id, texts))
        self.frame_times.observe_each(_perf_counter() - began, len(texts))

    def begin_batch(self) -> None:
        """Frames from one read of one connection follow (``signaling.hub_socket``): acks
        they cause wait for ``end_batch`` to be joined (docs/protocol.md 12.31)."""
        self._batches += 1

    def end_batch(self) -> None:
        self._batches -= 1
        if not self._batches and self._runs:
            self._apply([])

    def apply(self, actions: list[Action]) -> None:
        """Carry out what the core returned to a caller other than the hub (the visitors'
        route calls an entry point of the switch too)."""
        self._apply(actions)

    def _flags_changed(self, flags: dict[str, bool]) -> None:
        self._apply(self.switch.set_browser_trace(flags["browser"]))

    def _trace_pbx(self, conn_id: int, direction: str, text: str) -> None:
        if "\\u" in text:  # "dig\u0065st" is "digest": redact what the JSON says
            with contextlib.suppress(ValueError, RecursionError):
                text = json.dumps(json.loads(text), ensure_ascii=False, separators=(",", ":"))
        conn = self.switch.connections.get(conn_id)
        principal = conn.principal if conn is not None else None
        user = (principal.sip or principal.app) if principal is not None else None
        domain = principal.domain if principal is not None else None
        self.tracer.record("pbx", f"{direction} {text}", conn=conn_id, user=user, domain=domain)

    def receive_binary(self, conn_id: int) -> None:
        self._apply(self.switch.receive_binary(conn_id))

    async def detach(self, conn_id: int, clean: bool) -> None:
        self._apply(self.switch.closed(conn_id, clean))
        link = self._queues.remove(conn_id)
        if link is not None and link.writer is not None:
            writer = link.writer
            link.stop()
            with contextlib.suppress(asyncio.CancelledError):
                await writer

    @property
    def connection_count(self) -> int:
        return len(self._queues.peers)

    def held(self) -> dict[str, int]:
        """What the hub and its core keep now, by kind; all 0 once every connection has
        closed and the resume grace is over (``Switch.held``)."""
        return {
            **self.switch.held(),
            "sockets": len(self._queues.peers),
            "send_queues": len(self._queues.links),
            "closing": len(self._closing),
        }

    # -- the messages service --------------------------------------------------------------

    def service_up(self) -> None:
        self._apply(self.switch.service_up())

    def service_down(self) -> None:
        self._apply(self.switch.service_down())

    def from_service(self, message: dict[str, Any]) -> None:
        self._apply(self.switch.from_service(message))

    def stored(self, acks: list[StoredAck]) -> None:
        self._apply(self.switch.stored(acks))

    def duplicate(self, post: dict[str, Any], original: dict[str, Any]) -> None:
        self._apply(self.switch.duplicate(post, original))

    # -- the other nodes (signaling.bus) ------------------------------------------------------

    def from_nodes(self, sender: str, frames: list[NodeFrame]) -> None:
        self._apply(self.switch.from_nodes(sender, frames))

    def looked_up(self, answer: LookedUp) -> None:
        self._apply(self.switch.looked_up(answer))

    def recalled(self, answer: Recalled) -> None:
        self._apply(self.switch.recalled(answer))

    def claimed(self, answer: Claimed) -> None:
        self._apply(self.switch.claimed(answer))

    def node_down(self, address: str) -> None:
        self._apply(self.switch.node_down(address))

    def node_up(self, address: str) -> None:
        self._apply(self.switch.node_up(address))

    def node_reset(self, address: str) -> None:
        self._apply(self.switch.node_down(address, calls_only=True))

    def presence_shares(self, answer: PresenceShares) -> None:
        self._apply(self.switch.presence_shares(answer))

    def login_checked(self, answer: LoginChecked) -> None:
        self._apply(self.switch.login_checked(answer))

    # -- carrying out actions ------------------------------------------------------------------

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Run a close in the background, keeping a reference until it is done."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def _apply(self, actions: list[Action]) -> None:
        """Carry out one event's actions, in order. A frame for a connection with room
        in its transport and nothing queued is written at once (every frame relayed
        while the readers keep up): that path reads as little as it can."""
        runs, links, wired = self._runs, self._queues.links, self._queues.wired
        tracer, outbox, index = self.tracer, self.outbox, 0
        while True:
            if index == len(actions):
                if not runs or self._batches:
                    break
                # the batch is over: its acks leave
                actions.extend(Send(conn, run.text()) for conn, run in runs.items())
                runs.clear()
            action = actions[index]  # an overflow appends its consequences, in order
            index += 1
            if type(action) is not Send:
                if type(action) is Store and outbox is not None:  # a licensed chat's Post
                    outbox.add(action.post, action.ack)
                else:
                    index = self._apply_other(action, actions, index)
                continue
            conn = action.conn
            if runs and conn in runs:  # the relay, first and cheapest, after the
                index -= 1  # acks before it
                actions.insert(index, Send(conn, runs.pop(conn).text()))
                continue
            if tracer.pbx:
                self._trace_pbx(conn, "send", action.text)
            if conn not in links:
                peer = wired.get(conn)
                if peer is not None and peer.writable_now:
                    peer.write_text(action.text)  # no queue, no task: out this turn
                    continue
            self._queue(action, actions)
        armed = self.switch.timers.armed
        if armed != self._armed_seen:  # a timer was armed: is it sooner than the sleep?
            self._armed_seen = armed
            deadline = self.switch.next_deadline()
            if deadline is not None and deadline < self._sleeping_until:
                self._wake.set()

    def _queue(self, action: Send, actions: list[Action]) -> None:
        """A frame into its connection's send queue (made now if need be): one that
        overflows closes the connection, whose consequences join ``actions``."""
        link = self._queues.link(action.conn)
        if link is not None and not link.closing and not link.push(action.text, self._queues.limit):
            actions.extend(self._overflow(action.conn, link))

    def _apply_other(self, action: Action, actions: list[Action], index: int) -> int:
        """Every action but a relayed frame; returns where ``_apply`` goes on (an ack run
        that must leave first is put in front of ``action``, which is then seen again)."""
        runs = self._runs
        if type(action) is Ack:
            run = runs.get(action.conn)
            if run is None:
                runs[action.conn] = _AckRun(action)
            elif not run.take(action):  # the run leaves first; this ack is seen again
                del runs[action.conn]
                actions.insert(index - 1, Send(action.conn, run.text()))
                return index - 1
        elif type(action) is Close:
            if runs and action.conn in runs:
                actions.insert(index - 1, Send(action.conn, runs.pop(action.conn).text()))
                return index - 1
            link = self._queues.link(action.conn)
            if link is not None and not link.closing:
                link.closing = True
                self._enqueue_close(link, action.code, action.reason)
        elif type(action) is ToService:
            if self.link is not None:
                self.link.send(action.message)
        elif type(action) is Notify and self.webhooks is not None:
            self.webhooks.emit(action.event, action.data)
        elif type(action) in _CLUSTER and self.bus is not None:
            self.bus.take(action)
        elif isinstance(action, _SHARED) and self.bus is not None:
            self.bus.logins.take(action)
        elif type(action) is WhenFindable and self.bus is not None:
            link = self._queues.link(action.conn)
            if link is not None and not link.closing:  # the RegisterResult waits for Redis
                link.push(self.bus.written(), self._queues.limit)
        return index

    def _enqueue_close(self, link: Link, code: int, reason: str) -> None:
        if not link.push((code, reason), self._queues.limit):
            link.stop()
            self._spawn(close_quietly(link.peer, code, reason))

    def _overflow(self, conn_id: int, link: Link) -> list[Action]:
        """A client that does not read its messages is closed 4008, nobody else waits.

        The core refuses relays to a congested receiver itself; this is the backstop for
        everything else (offers, typing, replies)."""
        log.info("connection %d: send queue full, closing (slow consumer)", conn_id)
        link.closing = True
        link.stop()
        code = closecodes.WS_4008_SLOW_CONSUMER
        self._spawn(close_quietly(link.peer, code, "slow consumer"))
        return self.switch.kick(conn_id, code, "slow consumer")

    async def _run_timers(self) -> None:
        clock = self.switch.clock
        while True:
            deadline = self.switch.next_deadline()
            self._sleeping_until = math.inf if deadline is None else deadline
            delay = None if deadline is None else max(0.0, deadline - clock.monotonic())
            self._wake.clear()
            if delay is None or delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
            self._apply(self.switch.fire_timers())
