"""Resume and replay: a device's calls across a dropped connection (PROTOCOL §4.9).

Theory of operation: when a device's connection drops (``detach``), its calls wait for
the resume grace; what it cannot do while away ends at once (its typing, a half-sent
message, offers it could not answer). Messages for it meanwhile are ``held`` in the
transcript. A new connection that takes the registration over (``resume``) gets each
live call offered again: a new call number, the same ``callId`` and ``confId``, and
``resumed``. Its ``conn`` (``answered``) brings the replay: every kept message above the
last ``seq`` it saw, and the acks it missed; the writers of messages that waited for it
learn they are ``delivered`` now. Its ``rel`` ends the call as any ``rel`` would.
"""

from __future__ import annotations

from typing import Any

from ..calls import ENDED_KEPT, NOTHING_ENDED, AckRecord, Leg, Line
from ..callstate import Event, Role
from ..delivery_state import Delivery, Outcome, advance
from ..errors import BadState
from ..frames import (
    RESUMED,
    disc_of,
    endpoint,
    line_item,
    rel,
    resumed_presence_setup,
    setup_offer,
    with_ids,
)
from ..messages import Sig
from ..presence import Presence
from ..registry import Registration
from ..wire import Wire
from .control import Control
from .delivery import Acks
from .group_calls import GroupCalls
from .legs import Legs
from .relay import Relay

__all__ = ["Resume"]

JsonObject = dict[str, Any]

_SILENT = frozenset((Delivery.PENDING, Delivery.SENT))
"""States a writer is not told of: ``stored`` or a report follows."""


class Resume:
    def __init__(
        self,
        *,
        wire: Wire,
        legs: Legs,
        acks: Acks,
        relay: Relay,
        control: Control,
        groups: GroupCalls,
        presence: Presence,
    ) -> None:
        self._wire = wire
        self._legs = legs
        self._acks = acks
        self._relay = relay
        self._control = control
        self._groups = groups
        self._presence = presence

    def detach(self, reg: Registration) -> None:
        """The device's connection dropped; its calls wait for a resume. What it cannot do
        while away ends now: its typing, a half-sent message, offers it could not answer."""
        for leg in list(reg.legs.values()):
            leg.fragments = None
            leg.relay_head = leg.ack_head = None
            call = leg.call
            if call.presence:
                continue
            self._relay.stop_typing(leg)
            if call.group is not None:
                if leg in call.offers:
                    self._groups.leave(leg)
            elif leg.role is Role.CALLEE and call.callee is not leg:
                self._control.drop_offer(leg)

    def resume(self, reg: Registration, seqs: dict[str, int]) -> None:
        """A new connection took the registration over: each live call is offered again
        (new call number, the same ``callId`` and ``confId``, ``resumed``); the replay
        follows its ``conn``. ``seqs`` may name a call by its ``confId`` or by the leg's
        ``callId`` (docs 12.18); the ``confId`` wins when both are there."""
        self._offer_again(reg, list(reg.legs.values()), seqs)
        self._tell_ended(reg, seqs)

    def adopt(self, reg: Registration, device: Registration, seqs: dict[str, int]) -> None:
        """``device`` stood in here for ``reg``'s device while it was on another switch
        (docs 12.43): its calls are ``reg``'s now, offered again as after a resume, and
        the calls that ended meanwhile are told as after one."""
        legs = list(device.legs.values())
        device.legs.clear()
        for leg in legs:
            leg.reg = reg
        if device.ended:
            ended = [*reg.ended.items(), *device.ended.items()]
            reg.ended = dict(ended[-ENDED_KEPT:])
        self._offer_again(reg, legs, seqs)
        self._tell_ended(reg, seqs)

    def _offer_again(self, reg: Registration, legs: list[Leg], seqs: dict[str, int]) -> None:
        for leg in sorted(legs, key=lambda leg: -leg.number):
            if reg.legs.get(leg.number) is leg:
                del reg.legs[leg.number]
            leg.number = reg.allocate_offer_number()
            reg.legs[leg.number] = leg
            leg.relay_head = None
            peer = leg.call.peer(leg)
            if peer is not None:
                peer.relay_head = None  # it names the sender, whose name may have changed
            leg.resume = seqs.get(leg.call.call_id, seqs.get(leg.call_id, 0))
            if self._legs.tracer.signalling:
                text = f"resumed {leg.call.call_id} after seq {leg.resume}"
                self._legs.note(reg, leg.number, text)
            self._wire.sig(leg, with_ids(_resumed_setup(leg), leg))

    def _tell_ended(self, reg: Registration, seqs: dict[str, int]) -> None:
        """Each call the client names in ``seqs`` that ended while it was away gets its
        ``rel`` with the cause it ended with, on a new call number (docs 12.35); then the
        registration forgets them."""
        ended, reg.ended = reg.ended, NOTHING_ENDED
        if not ended:
            return
        by_leg = {leg_id: conf_id for conf_id, (leg_id, _) in ended.items()}
        told: set[str] = set()
        for named in seqs:
            conf_id = named if named in ended else by_leg.get(named)
            if conf_id is None or conf_id in told:
                continue
            told.add(conf_id)
            leg_id, cause = ended[conf_id]
            ids = {"callId": leg_id, "confId": conf_id}
            self._wire.to_number(reg, reg.allocate_offer_number(), {**rel(cause), **ids})

    def answered(self, leg: Leg, event: Event, sig: Sig) -> None:
        """The client's answer to a re-offered call: ``conn`` (replay), or ``rel``."""
        if event is Event.REL or event is Event.DISC:
            leg.resume = None
            disc = disc_of(sig) if event is Event.DISC else None
            if leg.call.presence:
                self._presence.ended(leg)
                return self._control.rel_back(leg, None, disc)
            return self._control.release_by(leg, sig.cau, disc)
        if event is Event.ALERT:
            return None
        if event is not Event.CONN:
            raise BadState(f"{sig.type} not allowed in state resumed (answer conn first)")
        after, leg.resume = leg.resume or 0, None
        if leg.call.presence:
            return self._presence.resumed(leg)
        self._replay(leg, after)

    def _replay(self, leg: Leg, after: int) -> None:
        """Every kept message above ``after``, in order; the writers of those that waited
        for this device learn they are delivered now."""
        call, own = leg.call, leg.reg.user.sip
        for line in list(call.transcript):
            if line.seq <= after:
                if line.id is not None and call.group is None:
                    self._had(leg, line, line.id)
                continue
            item = line_item(line)
            mine = line.role is leg.role and line.sip == own
            if mine and line.id is not None:
                item["id"] = line.id  # so the client recognises its own message
            if call.group is not None:  # a group's messages ask no report
                self._wire.fty(leg, item)
                continue
            state = self._wire.relay_item(leg, item)
            if line.id is None:
                continue
            record = call.acks.get((line.role, line.sip, line.id))
            if record is None or record.seq != line.seq:
                continue
            if mine:  # what became of it while this device was away
                if record.state not in _SILENT:
                    self._wire.ack(leg, line.id, record)
            elif record.state == Delivery.HELD:
                self._replayed(leg, line, line.id, record, state)
        for (role, sip, message_id), record in list(call.acks.items()):
            mine = role is leg.role and sip == own
            if mine and not record.told and record.state not in _SILENT:  # older than the replay
                self._wire.ack(leg, message_id, record)

    def _had(self, leg: Leg, line: Line, message_id: str) -> None:
        """The client's seqs say it has a message that was held for it: it reached the
        old connection after all, whose switch's report never came (docs 12.43). Its
        writer learns it was delivered."""
        if line.role is leg.role and line.sip == leg.reg.user.sip:
            return
        record = leg.call.acks.get((line.role, line.sip, message_id))
        if record is not None and record.seq == line.seq and record.state == Delivery.HELD:
            record.state = advance(record.state, Outcome.RELAYED)
            self._acks.tell(leg.call, line.role, line.sip, message_id, record)

    def _replayed(
        self, leg: Leg, line: Line, message_id: str, record: AckRecord, state: Delivery
    ) -> None:
        """A held message reached the resumed device: ``delivered`` to its writer now,
        or, for a device on another switch, when that switch reports it (12.39)."""
        if state is Delivery.SENT:
            record.state = advance(record.state, Outcome.FORWARDED)
            self._acks.expect(leg, (line.role, line.sip), message_id, record, held=True)
            return
        record.state = advance(record.state, Outcome.RELAYED)
        self._acks.tell(leg.call, line.role, line.sip, message_id, record)


def _resumed_setup(leg: Leg) -> JsonObject:
    """The ``setup`` that offers a live call again (§4.9), as the device saw it first."""
    call, own = leg.call, leg.reg.user
    if call.presence:
        return resumed_presence_setup(call.callee_user)
    cd = endpoint(own.sip, own.num)
    extra = [*call.support.setup_fty(), RESUMED] if call.support is not None else [RESUMED]
    if call.group is not None:
        return setup_offer({"sip": call.group.sip}, cd, call.group.dn, extra)
    peer = call.peer(leg)
    if peer is not None:
        other = peer.reg.user
    else:
        other = call.callee_user if leg.role is Role.CALLER else call.caller_user
    return setup_offer(endpoint(other.sip, other.num), cd, other.dn, extra)
