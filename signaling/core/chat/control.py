"""Call control: a client's frames on its leg, the answer (first ``conn`` wins), release.

Theory of operation (§4.5, §4.7): ``client_event`` looks the client's frame up in the
``CLIENT`` table first (``bad_state`` unless allowed), then hands it on: a ``facility``
to the relay, ``info``/``progress``/... to the relay's ``signal``, ``alert`` to the
caller, ``conn`` to ``answer``, ``rel``/``disc`` to ``release_by``.

The first ``conn`` wins: since the core takes one event at a time, the first answer
processed is the only one; every other device is told cause 26. The caller hears
``conn``, and what it wrote before is relayed then (``held_relayed`` in ``delivery.py``
decides its new ack). ``rel`` from either side ends the call for both; in a group only
that device leaves. What the support queues ask of a call (offer one more agent, end
one offer, hand a chat back for a transfer) is here too, behind ``CallControl``.
"""

from __future__ import annotations

import functools
from typing import Any

from ..calls import Call, Leg
from ..callstate import RELAYED, Event, LegState, Role, client_event
from ..causes import Q931, hub_cause
from ..clock import Clock
from ..frames import conn, disc_of, line_item, rel, with_ids
from ..messages import Cause, Sig
from ..queues import Queues
from ..registry import Registration
from ..support_rules import takes_on_write
from ..timers import TimerQueue
from ..wire import Wire
from .delivery import Acks
from .group_calls import GroupCalls
from .legs import NORMAL, Legs
from .relay import Relay

__all__ = ["Control"]

JsonObject = dict[str, Any]

_FACILITY, _PROGRESS = Event.FACILITY, Event.PROGRESS
"""Globals: cheaper to read than an enum's members, and read for every frame of a call."""


class Control:
    def __init__(
        self,
        *,
        wire: Wire,
        legs: Legs,
        acks: Acks,
        relay: Relay,
        groups: GroupCalls,
        support: Queues,
        calls: dict[str, Call],
        timers: TimerQueue,
        clock: Clock,
    ) -> None:
        self._wire = wire
        self._legs = legs
        self._acks = acks
        self._relay = relay
        self._groups = groups
        self._support = support
        self._calls = calls
        self._timers = timers
        self._clock = clock

    # -- a client's frame on its leg --------------------------------------------------------

    def client_event(self, leg: Leg, event: Event, sig: Sig) -> None:
        if event is _FACILITY:  # the most frequent frame by far: messages
            if leg.call.support is not None and takes_on_write(leg, sig):
                self.take(leg)  # the queue's take_on_write: writing takes it, as Take would
            else:
                client_event(leg.role, leg.state, event)  # BadState unless allowed
            return self._relay.facility(leg, sig)
        next_state = client_event(leg.role, leg.state, event)  # BadState unless allowed
        if event is _PROGRESS and sig.fields and "cau" in sig.fields:
            event = Event.DISC  # progress with a cause: this device disconnected (12.25)
            next_state = client_event(leg.role, leg.state, event)
        if self._legs.tracer.signalling:
            change = f"{leg.state.value} -> {next_state.value}"
            self._legs.note(leg.reg, leg.number, f"{sig.type}: {change}")
        if event in RELAYED:
            return self._relay.signal(leg, event, sig)
        if event is Event.REL or event is Event.DISC:
            disc = disc_of(sig) if event is Event.DISC else None
            if leg.call.support is not None and leg in leg.call.offers:
                self._support.declined(leg)  # the others still ring
                return self.rel_back(leg, sig.cau, disc)
            return self.release_by(leg, sig.cau, disc)
        if event is Event.ALERT:
            leg.state = next_state
            caller = leg.call.caller
            if caller is not None:
                self._legs.hub_event(caller, Event.ALERT, {"type": "alert"})
            return None
        return self.answer(leg, next_state)

    # -- answer (§4.5) ------------------------------------------------------------------------

    def take(self, leg: Leg) -> None:
        """``Take`` (§9.4): the agent's device answers as if it had sent ``conn``."""
        self.answer(leg, client_event(leg.role, leg.state, Event.CONN))

    def answer(self, leg: Leg, state: LegState) -> None:
        """The first ``conn`` wins; every other device is told cause 26 (§4.5)."""
        call = leg.call
        if call.group is not None:
            return self._groups.answer(leg, state)
        leg.state = state  # the CLIENT table's answer to conn: connected
        call.callee = leg
        self._end_other_offers(call, leg)
        caller = call.caller
        if caller is None:
            return
        self._legs.hub_event(caller, Event.CONN, conn(leg.reg.user.dn))
        held, call.held, call.held_bytes = call.held, [], 0
        if call.support is not None:
            self._support.taken(call, leg)
            # an agent taking a transferred chat reads what was said before (§9.4)
            first_held = held[0].im_message["seq"] if held else call.seq + 1
            for line in list(call.transcript):
                if line.seq < first_held:
                    self._wire.fty(leg, line_item(line))
        for message in held:
            reached = self._wire.relay_item(leg, message.im_message)
            self._acks.held_relayed(caller, message, leg, reached)

    def _end_other_offers(self, call: Call, winner: Leg) -> None:
        losers, call.offers = [leg for leg in call.offers if leg is not winner], []
        for loser in losers:
            if call.support is not None:
                loser.reg.remember_taken(loser.number)
            self._legs.end(loser, hub_cause(Q931.NON_SELECTED_USER_CLEARING))
        if call.ring is not None:
            call.ring.cancel()
            call.ring = None

    # -- release (§4.7) -----------------------------------------------------------------------

    def release_by(self, leg: Leg, cause: Cause | None, disc: JsonObject | None = None) -> None:
        """``rel`` from either side ends the call for both (§4.7); in a group, only that
        device leaves. After ``disc`` (``disc``: what the other side hears before its
        ``rel``), the sender is answered ``rel`` too, as the network would."""
        self._relay.stop_typing(leg)
        if leg.call.group is not None:
            self._groups.leave(leg)
        else:
            self.release(leg.call, cause or NORMAL, except_leg=leg, disc=disc)
        self.rel_back(leg, cause, disc)

    def rel_back(self, leg: Leg, cause: Cause | None, disc: JsonObject | None) -> None:
        """The ``rel`` that answers a client's ``disc`` (none after its own ``rel``)."""
        if disc is not None:
            self._wire.sig(leg, rel(cause or NORMAL))

    def release(
        self,
        call: Call,
        cause: Cause,
        except_leg: Leg | None = None,
        disc: JsonObject | None = None,
    ) -> None:
        """The call ends; each leg but ``except_leg`` (whose rel ended it) hears why."""
        if self._calls.pop(call.call_id, None) is None:
            return
        if call.ring is not None:
            call.ring.cancel()
            call.ring = None
        self._report_unsent(call, except_leg)
        for leg in call.legs():
            if leg is except_leg:
                self._legs.forget(leg)
            elif (
                except_leg is not None
                and except_leg.role is Role.CALLEE
                and leg.role is Role.CALLEE
            ):
                # one device declined: the user's other devices stop ringing (§4.5, §4.7)
                self._legs.end(leg, hub_cause(Q931.NON_SELECTED_USER_CLEARING))
            else:
                self._legs.end(leg, cause, disc)
        if call.support is not None:
            by = except_leg.reg.user.sip if except_leg is not None else None
            self._support.closed(call, cause.num, by)
        call.unlink()

    def _report_unsent(self, call: Call, except_leg: Leg | None) -> None:
        """What never reached a receiver: the webhook and the writer hear it."""
        caller = call.caller
        if call.held and not call.stored:  # never reached the callee, nor stored for them
            self._acks.notify_offline(call, [held.im_message for held in call.held], "unanswered")
        if caller is not None and caller is not except_leg and call.held:
            self._acks.report_undelivered(call, caller)
        call.held, call.held_bytes = [], 0
        self._acks.report_parked(call, except_leg)

    def drop_offer(self, leg: Leg) -> None:
        """An offered device went away; with no device left the caller hears 18."""
        call = leg.call
        self.withdraw(leg)
        if call.support is not None:
            return None  # a support chat waits for the queue's other agents
        if not call.offers and call.callee is None:
            self.release(call, hub_cause(Q931.NO_USER_RESPONDING))

    # -- what the support queues ask (§9) -------------------------------------------------------

    def offer(self, call: Call, device: Registration, setup: JsonObject) -> Leg:
        """Offer ``call`` to one more device (the sig is the same for every device; the
        leg's ``callId`` and the ``confId`` are added here)."""
        leg = Leg(call, device, device.allocate_offer_number(), Role.CALLEE, LegState.OFFERED)
        device.legs[leg.number] = leg
        call.offers.append(leg)
        if self._legs.tracer.signalling:
            text = f"offered {call.call_id} from {call.caller_user.sip}"
            self._legs.note(device, leg.number, text)
        self._wire.sig(leg, with_ids(setup, leg))
        return leg

    def arm_wait(self, call: Call, seconds: float) -> None:
        """The call waits for an answer this long, then ends with cause 19 (no answer)."""
        if call.ring is not None:
            call.ring.cancel()
        call.ring = self._timers.arm(
            self._clock.monotonic() + seconds, functools.partial(self._ring_timeout, call)
        )

    def _ring_timeout(self, call: Call) -> None:
        call.ring = None
        self.release(call, hub_cause(Q931.NO_ANSWER))

    def withdraw(self, leg: Leg) -> None:
        """One offer ends (declined, or its device went away); the call waits on."""
        self._legs.forget(leg)
        if leg in leg.call.offers:
            leg.call.offers.remove(leg)

    def end_offer(self, leg: Leg, cause: Cause) -> None:
        """One device stops ringing (told ``cause``); the call waits on."""
        self._legs.end(leg, cause)
        if leg in leg.call.offers:
            leg.call.offers.remove(leg)

    def hand_back(self, leg: Leg) -> None:
        """A transfer: the agent's leg ends (16), the call is unanswered again."""
        self._relay.stop_typing(leg)
        call = leg.call
        call.callee = None
        if call.caller is not None:
            call.caller.relay_head = None  # it names the sender: the next agent is another
        self._legs.end(leg, NORMAL)
