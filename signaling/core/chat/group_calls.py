"""Group calls: one live chat per group, any number of member devices (PROTOCOL §7.6).

Theory of operation: a member's ``setup`` to the group's sip joins the group's one live
call (made on the first join); the hub answers at once. Each message gets the call's
next ``seq``, goes to every joined device, is kept in the transcript and is always
posted (a group's chat is stored). Online members' devices not in the call yet are
offered it after each message and, answering, get what they missed. The call lives
while any device is in it; a member removed from the group leaves with cause 21.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable
from typing import Any

from config import SignalingConfig

from ..calls import Call, Leg, Line
from ..callstate import Event, LegState, Role
from ..causes import Q931, hub_cause
from ..clock import Clock
from ..codec import encode
from ..delivery_state import Delivery
from ..frames import (
    call_proc,
    conn,
    endpoint,
    fanout_text,
    line_item,
    post_from,
    post_head,
    rel,
    relayed_item,
    setup_offer,
    with_ids,
)
from ..groups import Group, GroupBook
from ..messages import ImMessage
from ..nodes.directory import DeviceDirectory
from ..registry import Registration
from ..timers import TimerQueue
from ..wire import Wire
from .delivery import Acks
from .legs import Legs
from .text import utf8_len

__all__ = ["GroupCalls"]

JsonObject = dict[str, Any]


class GroupCalls:
    def __init__(
        self,
        *,
        wire: Wire,
        legs: Legs,
        acks: Acks,
        calls: dict[str, Call],
        book: GroupBook,
        registry: DeviceDirectory,
        timers: TimerQueue,
        clock: Clock,
        config: SignalingConfig,
        ended: Callable[[str, str], None] | None = None,
    ) -> None:
        """``ended`` is told (domain, group sip) when a group's live call here ends (a
        cluster's seat gives the group's home back)."""
        self._wire = wire
        self._legs = legs
        self._acks = acks
        self._calls = calls
        self.book = book
        self._registry = registry
        self._timers = timers
        self._clock = clock
        self._config = config
        self._live: dict[tuple[str, str], Call] = {}
        """Each group's live call, by (domain, group sip)."""
        self._ended = ended or _nobody

    def live(self, domain: str, sip: str) -> bool:
        return (domain, sip) in self._live

    def named(self, domain: str, sip: str) -> Group | None:
        """The group a ``setup`` calls, if its ``cd`` names one of the caller's tenant."""
        return self.book.get(domain, sip)

    def join(self, reg: Registration, number: int, group: Group) -> Leg | None:
        """A member's setup to the group joins its one live chat; nobody else may (the
        refusal is sent, and None returned)."""
        if reg.user.sip not in group.members:
            self._legs.refuse(reg, number, Q931.CALL_REJECTED)
            return None
        call = self._live_call(reg, group)
        leg = Leg(call, reg, number, Role.CALLER, LegState.SETUP_SENT)
        reg.legs[number] = leg
        call.joined.append(leg)
        self._legs.hub_event(leg, Event.CALL_PROC, call_proc(leg))
        self._legs.hub_event(leg, Event.CONN, conn(group.dn))
        return leg

    def _live_call(self, reg: Registration, group: Group) -> Call:
        key = (reg.domain, group.sip)
        call = self._live.get(key)
        if call is None:
            call = Call(
                secrets.token_hex(16),
                reg.domain,
                self._config.max_ids,
                reg.user,
                group.as_user(),
                True,
            )
            call.group = group
            self._live[key] = call
            self._calls[call.call_id] = call
        return call

    def answer(self, leg: Leg, state: LegState) -> None:
        """An offered member device answers: it joins and gets what it missed."""
        call = leg.call
        leg.state = state  # the CLIENT table's answer to its conn
        if leg in call.offers:
            call.offers.remove(leg)
        call.joined.append(leg)
        if leg.ring is not None:
            leg.ring.cancel()
            leg.ring = None
        missed = [line for line in call.transcript if line.seq > leg.offered_after]
        hold = self._config.hold_messages
        for line in missed[-hold:] if hold else ():
            self._wire.fty(leg, line_item(line))

    def message(self, leg: Leg, html: str, raw: ImMessage, message_id: str | None) -> None:
        """Relay one message to every joined device, keep it, post it (§7.6)."""
        call = leg.call
        group = call.group
        assert group is not None
        wall = self._clock.wall()
        now = int(wall)
        seq = call.next_seq()
        user = leg.reg.user
        item = relayed_item(user, now, seq, html, raw.attach, raw.subject)
        if raw.participants is not None:  # the group's own list, never the writer's word
            item["participants"] = ",".join(sorted(group.members))
        receivers = [other for other in call.joined if other is not leg]
        body = encode(item)  # once for every member: only the envelope is the leg's
        for other in receivers:
            if not other.parked:  # a detached member device catches up when it resumes
                self._wire.text(other, fanout_text(other, body))
        keep = max(self._config.transcript_messages, self._config.hold_messages, 1)
        line = Line(
            seq, now, leg.role, user, html, raw.attach, raw.subject, message_id, utf8_len(html)
        )
        call.record(line, keep, self._config.transcript_bytes)
        self._offer_members(call, group, seq - 1)
        state = Delivery.DELIVERED if receivers else Delivery.PENDING
        head = post_head(
            domain=call.domain,
            author=user,
            topic=group.sip,
            peer=None,
            peer_dn=group.dn,
            sides=None,
        )
        message = post_from(
            head, html, call.call_id, seq, int(wall * 1000), raw.attach, message_id, None
        )
        self._acks.store(leg, message, seq, message_id, ack=state == Delivery.PENDING)
        if message_id is not None:
            self._acks.decided(leg, message_id, seq, now, state, keyed=True)

    def _offer_members(self, call: Call, group: Group, seen: int) -> None:
        """Online members' devices not yet in the group's chat are offered it (§7.6).

        Run after every message, when nearly always every device is in: a device whose
        joined leg is still among its legs is passed over at the cost of a lookup."""
        joined = {leg.reg: leg for leg in call.joined}
        max_calls = self._config.max_calls
        for member in sorted(group.members):
            for device in self._registry.of(call.domain, member):
                leg = joined.get(device)
                if leg is not None and device.legs.get(leg.number) is leg:
                    continue  # in the chat: a joined leg's call is the chat's
                if not device.no_media or not device.attached or len(device.legs) >= max_calls:
                    continue
                if any(other.call is call for other in device.legs.values()):
                    continue
                self._offer(call, group, device, seen)

    def _offer(self, call: Call, group: Group, device: Registration, seen: int) -> None:
        leg = Leg(call, device, device.allocate_offer_number(), Role.CALLEE, LegState.OFFERED)
        leg.offered_after = seen
        device.legs[leg.number] = leg
        call.offers.append(leg)
        cd = endpoint(device.user.sip, device.user.num)
        self._wire.sig(leg, with_ids(setup_offer({"sip": group.sip}, cd, group.dn), leg))
        leg.ring = self._timers.arm(
            self._clock.monotonic() + self._config.ring_timeout,
            functools.partial(self._no_answer, leg),
        )

    def _no_answer(self, leg: Leg) -> None:
        leg.ring = None
        self._wire.sig(leg, rel(hub_cause(Q931.NO_ANSWER)))
        self.leave(leg)

    def leave(self, leg: Leg) -> None:
        """One device leaves; the group's chat lives on while any device is in it."""
        call = leg.call
        self._legs.forget(leg)
        if leg.ring is not None:
            leg.ring.cancel()
            leg.ring = None
        for legs in (call.joined, call.offers):
            if leg in legs:
                legs.remove(leg)
        if not call.joined and not call.offers and call.group is not None:
            self._calls.pop(call.call_id, None)
            self._live.pop((call.domain, call.group.sip), None)
            self._ended(call.domain, call.group.sip)

    def changed(self, group: Group) -> None:
        """The service changed a group: devices of users no longer members leave (21)."""
        call = self._live.get((group.domain, group.sip))
        if call is None:
            return
        call.group = group
        for leg in [*call.joined, *call.offers]:
            if leg.reg.user.sip not in group.members:
                self._wire.sig(leg, rel(hub_cause(Q931.CALL_REJECTED)))
                self.leave(leg)


def _nobody(domain: str, sip: str) -> None:
    """A standalone switch: nobody needs to hear that a group's call ended."""
