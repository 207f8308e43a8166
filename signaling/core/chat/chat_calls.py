"""``ChatCalls``: the chat core's one object, built from its parts (PROTOCOL §4.4-§4.10, §7).

Theory of operation: a chat is a call without media. ``ChatCalls`` builds the parts,
each one concept, and routes the ``Switch``'s entry points to them:

- ``setup.py``: a ``setup``: where the call goes, its offers (or its refusal);
- ``control.py``: a client's frame on its leg (after the state table), the answer
  (first ``conn`` wins), release;
- ``relay.py``: where a message is relayed (facility, fragments, typing, app data);
- ``delivery.py``: where an ``im_ack`` is decided (Posts, stored, retries and resends);
- ``group_calls.py``: group chats; ``resume.py``: resume and replay;
- ``legs.py``: where a leg's state changes and where it ends; ``frames.py`` and
  ``wire.py`` (in ``signaling/core``) build and send every frame.

Presence subscriptions (``presence.py``) and live support (``queues.py``) are given to
it; the queues drive calls through the ``CallControl`` protocol, which this object
implements by handing each request to its part.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from config import LimitsConfig, SignalingConfig, SupportConfig, UserConfig
from tracing import Tracer

from ..actions import StoredAck
from ..agent_slots import AgentSlots
from ..calls import Call, Leg
from ..callstate import CLIENT_EVENTS, Event, Role
from ..clock import Clock
from ..directory_view import TenantLookup
from ..errors import BadState
from ..frames import rel
from ..groups import Group, GroupBook
from ..messages import Cause, ImMessage, Signaling
from ..nodes.directory import DeviceDirectory
from ..outbox import Outbox
from ..presence import Presence
from ..queues import Queues
from ..registry import Registration
from ..sender_ids import SenderIds, SenderKey
from ..support_boards import SharedBoards
from ..timers import TimerQueue
from ..wire import Wire
from .control import Control
from .delivery import Acks
from .group_calls import GroupCalls
from .legs import NORMAL, Legs
from .relay import Relay
from .resume import Resume
from .setup import Setup

__all__ = ["ChatCalls", "SeatHooks"]

JsonObject = dict[str, Any]

_SETUP = Event.SETUP
"""A global: cheaper to read than an enum's member, and read for every frame of a call."""


class SeatHooks(Protocol):
    """What a switch's seat in a cluster gives the chat core (``nodes.seat_parts``)."""

    @property
    def claims(self) -> AgentSlots: ...

    @property
    def boards(self) -> SharedBoards: ...

    def leg_ended(self, leg: Leg) -> None: ...

    def group_ended(self, domain: str, sip: str) -> None: ...


class ChatCalls:
    def __init__(
        self,
        *,
        outbox: Outbox,
        timers: TimerQueue,
        clock: Clock,
        tenants: TenantLookup,
        registry: DeviceDirectory,
        signaling: SignalingConfig,
        limits: LimitsConfig,
        congested: Callable[[int, int], bool],
        drop_slow: Callable[[int], None],
        presence: Presence,
        groups: GroupBook | None = None,
        licensed: Callable[[UserConfig], bool] = lambda user: False,
        support: SupportConfig | None = None,
        id_ttl: float = 24 * 3600.0,
        tracer: Tracer | None = None,
        seat: SeatHooks | None = None,
    ) -> None:
        """``seat``: the switch's seat in a cluster, which shares its agents' claims and
        its boards, and is told of each leg that ends and of each group's live call here
        that ends."""
        self.presence = presence
        self.calls: dict[str, Call] = {}
        self._wire = Wire(outbox)
        self._legs = self._leg_parts(tracer or Tracer(), seat.leg_ended if seat else None)
        sender_ids = SenderIds(signaling.sender_ids, id_ttl, clock)
        self._acks = self._delivery(outbox, sender_ids, licensed, limits.max_message)
        group_ended = seat.group_ended if seat is not None else None
        self._groups = self._group_calls(groups, registry, timers, clock, signaling, group_ended)
        self._relay = self._message_relay(
            outbox, timers, clock, signaling, limits.max_message, congested, drop_slow
        )
        self.support = self._queues(
            outbox, timers, clock, tenants, registry, support, signaling, licensed
        )(slots=seat.claims if seat else None, boards=seat.boards if seat else None)
        self._control = self._call_control(timers, clock)
        self._setup = self._call_setup(tenants, registry, signaling, licensed)
        self._resume = self._call_resume()

    # -- building the parts (each one is given what it uses) --------------------------------

    def _delivery(
        self,
        outbox: Outbox,
        sender_ids: SenderIds,
        licensed: Callable[[UserConfig], bool],
        max_message: int,
    ) -> Acks:
        return Acks(
            wire=self._wire,
            outbox=outbox,
            calls=self.calls,
            sender_ids=sender_ids,
            licensed=licensed,
            max_message=max_message,
        )

    def _leg_parts(self, tracer: Tracer, leg_ended: Callable[[Leg], None] | None) -> Legs:
        """In a cluster (``leg_ended`` given): the leg of a device elsewhere that ends
        takes the reports of its messages with it (docs 12.39), then ``leg_ended`` hears
        of it."""
        if leg_ended is None:
            return Legs(wire=self._wire, tracer=tracer)
        told = leg_ended

        def ended(leg: Leg) -> None:
            if leg.reg.conn < 0:  # its messages' reports come no more
                self._acks.unreached((leg,))
            told(leg)

        return Legs(wire=self._wire, tracer=tracer, leg_ended=ended)

    def _group_calls(
        self,
        book: GroupBook | None,
        registry: DeviceDirectory,
        timers: TimerQueue,
        clock: Clock,
        signaling: SignalingConfig,
        ended: Callable[[str, str], None] | None,
    ) -> GroupCalls:
        return GroupCalls(
            wire=self._wire,
            legs=self._legs,
            acks=self._acks,
            calls=self.calls,
            book=book if book is not None else GroupBook(),
            registry=registry,
            timers=timers,
            clock=clock,
            config=signaling,
            ended=ended,
        )

    def _message_relay(
        self,
        outbox: Outbox,
        timers: TimerQueue,
        clock: Clock,
        signaling: SignalingConfig,
        max_message: int,
        congested: Callable[[int, int], bool],
        drop_slow: Callable[[int], None],
    ) -> Relay:
        return Relay(
            wire=self._wire,
            outbox=outbox,
            legs=self._legs,
            acks=self._acks,
            groups=self._groups,
            presence=self.presence,
            timers=timers,
            clock=clock,
            config=signaling,
            max_message=max_message,
            congested=congested,
            drop_slow=drop_slow,
            first_words=lambda call: self.support.first_words(call),
        )

    def _queues(
        self,
        outbox: Outbox,
        timers: TimerQueue,
        clock: Clock,
        tenants: TenantLookup,
        registry: DeviceDirectory,
        support: SupportConfig | None,
        signaling: SignalingConfig,
        licensed: Callable[[UserConfig], bool],
    ) -> Callable[..., Queues]:
        """Live support, to be given what a cluster shares of it (``slots``: its agents'
        claims, ``boards``: its boards; a switch alone shares nothing)."""
        return functools.partial(
            Queues,
            chat=self,
            outbox=outbox,
            timers=timers,
            clock=clock,
            tenants=tenants,
            registry=registry,
            presence=self.presence,
            config=support or SupportConfig(),
            max_calls=signaling.max_calls,
            max_ids=signaling.max_ids,
            licensed=licensed,
        )

    def _call_control(self, timers: TimerQueue, clock: Clock) -> Control:
        return Control(
            wire=self._wire,
            legs=self._legs,
            acks=self._acks,
            relay=self._relay,
            groups=self._groups,
            support=self.support,
            calls=self.calls,
            timers=timers,
            clock=clock,
        )

    def _call_setup(
        self,
        tenants: TenantLookup,
        registry: DeviceDirectory,
        signaling: SignalingConfig,
        licensed: Callable[[UserConfig], bool],
    ) -> Setup:
        return Setup(
            wire=self._wire,
            legs=self._legs,
            acks=self._acks,
            relay=self._relay,
            control=self._control,
            groups=self._groups,
            support=self.support,
            presence=self.presence,
            calls=self.calls,
            tenants=tenants,
            registry=registry,
            config=signaling,
            licensed=licensed,
        )

    def _call_resume(self) -> Resume:
        return Resume(
            wire=self._wire,
            legs=self._legs,
            acks=self._acks,
            relay=self._relay,
            control=self._control,
            groups=self._groups,
            presence=self.presence,
        )

    # -- what others read -------------------------------------------------------------------

    @property
    def tracer(self) -> Tracer:
        """Call states and routing go to its ``signalling`` flag."""
        return self._legs.tracer

    @property
    def sender_ids(self) -> SenderIds:
        """Ids of stored messages per sender, across calls (§4.6 revised)."""
        return self._acks.sender_ids

    @property
    def groups(self) -> GroupBook:
        return self._groups.book

    @property
    def messages(self) -> int:
        """Chat messages accepted (given a seq) since start, for ``/metrics``."""
        return self._relay.messages

    @property
    def resends(self) -> Counter[str]:
        """Resends of stored ids, by who recognised them, for ``/metrics``."""
        return self._acks.resends

    @property
    def waiting_resends(self) -> int:
        return self._acks.waiting_resends

    @property
    def unreported(self) -> int:
        """Messages sent to devices on other switches, waiting for their reports."""
        return len(self._acks.reports)

    @property
    def _awaiting(self) -> dict[SenderKey, list[Leg]]:
        return self._acks.awaiting

    # -- entry points -----------------------------------------------------------------------

    def on_signaling(self, reg: Registration, msg: Signaling) -> None:
        """One ``Signaling`` from a client's registration."""
        sig = msg.sig
        event = CLIENT_EVENTS.get(sig.type)
        leg = reg.legs.get(msg.call)
        if leg is None:
            return self._setup.idle(reg, msg.call, event, sig)
        if event is None or event is _SETUP:
            raise BadState(f"{sig.type} not allowed in state {leg.state.value}")
        if leg.resume is not None:
            return self._resume.answered(leg, event, sig)
        if leg.call.presence:
            if event is Event.DISC:  # a subscription ends as on rel; disc is answered rel
                self.presence.ended(leg)
                return self._wire.sig(leg, rel(NORMAL))
            return self.presence.on_event(leg, event, sig)
        self._control.client_event(leg, event, sig)

    def registration_ended(self, reg: Registration, cause: Cause) -> None:
        """The device is gone: its calls end, peers learn it (typing stops first)."""
        for leg in list(reg.legs.values()):
            call = leg.call
            if call.presence:
                self.presence.ended(leg)
            elif call.group is not None:
                self._relay.stop_typing(leg)
                self._groups.leave(leg)
            elif leg.role is Role.CALLEE and call.callee is not leg:
                self._control.drop_offer(leg)
            else:
                self._relay.stop_typing(leg)
                self._control.release(call, cause, except_leg=leg)

    def detach(self, reg: Registration) -> None:
        self._resume.detach(reg)

    def resume(self, reg: Registration, seqs: dict[str, int]) -> None:
        self._resume.resume(reg, seqs)

    def adopt(self, reg: Registration, device: Registration, seqs: dict[str, int]) -> None:
        """The calls of stand-in ``device`` are ``reg``'s now (docs 12.43)."""
        self._resume.adopt(reg, device, seqs)

    def reached(self, leg: Leg, seq: int) -> None:
        """The switch of ``leg``'s device reports the messages up to ``seq`` in its
        connection's queue (docs 12.39)."""
        self._acks.reached(leg, seq)

    def unreached(self, legs: Iterable[Leg]) -> None:
        """No report will come for what was sent on these legs of devices elsewhere."""
        self._acks.unreached(legs)

    def group_live(self, domain: str, sip: str) -> bool:
        """Whether the group has a live call here (a cluster's group home asks)."""
        return self._groups.live(domain, sip)

    def group_changed(self, group: Group) -> None:
        self._groups.changed(group)

    def seen(self, call_id: str, reader: str, seq: int) -> None:
        self._acks.seen(call_id, reader, seq)

    def stored(self, leg: Leg, ack: StoredAck) -> None:
        self._acks.stored(leg, ack)

    def stored_late(self, ack: StoredAck) -> None:
        self._acks.stored_late(ack)

    def settled(self, ack: StoredAck) -> None:
        self._acks.settled(ack)

    def remember_stored(self, posts: Iterable[JsonObject]) -> None:
        self._acks.remember_stored(posts)

    def duplicate(self, post: JsonObject, original: JsonObject) -> None:
        self._acks.duplicate(post, original)

    # -- CallControl: what the support queues ask of a call (§9) --------------------------------

    def place(self, call: Call, reg: Registration, number: int) -> Leg:
        return self._setup.place(call, reg, number)

    def offer(self, call: Call, device: Registration, setup: JsonObject) -> Leg:
        return self._control.offer(call, device, setup)

    def answer(self, leg: Leg) -> None:
        self._control.take(leg)

    def write(self, leg: Leg, message: ImMessage) -> None:
        self._relay.write(leg, message)

    def release(self, call: Call, cause: Cause) -> None:
        self._control.release(call, cause)

    def arm_wait(self, call: Call, seconds: float) -> None:
        self._control.arm_wait(call, seconds)

    def withdraw(self, leg: Leg) -> None:
        self._control.withdraw(leg)

    def end_offer(self, leg: Leg, cause: Cause) -> None:
        self._control.end_offer(leg, cause)

    def hand_back(self, leg: Leg) -> None:
        self._control.hand_back(leg)

    def send_fty(self, leg: Leg, item: JsonObject) -> None:
        self._wire.fty(leg, item)
