"""Where an ``im_ack`` is decided: delivery reports, Posts, and ids across calls (§4.6, §7.5).

Theory of operation: the relay (``relay.py``, ``group_calls.py``) decides where a message
went and hands the outcome here as a ``Delivery`` state; this part remembers it under
the writer's id (``Call.acks``, and ``SenderIds`` across calls once the message is
posted), tells the writer (``im_ack``), and hands licensed messages to the durable outbox
as Posts. Every later change of a message's state is a move of the delivery table
(``delivery_state.py``):

- ``held`` -> ``delivered`` when a held message is relayed at ``conn`` (``held_relayed``)
  or in a resume's replay (``resume.py``);
- ``sent`` -> ``delivered`` when the switch of a receiver's device elsewhere reports it
  in the connection's queue (``reached``, docs 12.39), or ``held`` when no report will
  come (``unreached``); ``held`` -> ``sent`` when a held message goes to such a device;
- ``held`` -> ``not_delivered``/``stored`` when the call ends first (``report_undelivered``,
  ``report_parked``);
- ``pending`` -> ``stored`` when the outbox has the Post on disk (``stored``,
  ``stored_late``, ``settled``) or the service says it already had it (``duplicate``).

A retry of a known id is answered from the record and relayed nowhere (``answered``).
Volatile messages nobody received go to the ``message.offline`` webhook (§9.6).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from config import UserConfig

from ..actions import StoredAck
from ..calls import AckRecord, Call, HeldMessage, Leg
from ..callstate import Role
from ..delivery_state import Delivery, Outcome, advance
from ..errors import BadMime
from ..frames import facility, im_ack, im_seen, post_from, post_head
from ..messages import ImMessage
from ..outbox import Outbox
from ..registry import Registration
from ..sanitize import sanitize
from ..sender_ids import SenderIds, SenderKey, sender_key, stored_record
from ..wire import Wire
from .reports import Reports, Unreported

__all__ = ["Acks"]

JsonObject = dict[str, Any]

_PENDING, _SENT = Delivery.PENDING, Delivery.SENT
_DELIVERED, _HELD = Delivery.DELIVERED, Delivery.HELD
"""Globals are cheaper to read than an enum's members (checked once per acked message)."""

_MAX_WAITING = 8
"""Resends of one id waiting for their original's "stored", at most (a client retrying
in a loop must not pile up legs)."""


class Acks:
    def __init__(
        self,
        *,
        wire: Wire,
        outbox: Outbox,
        calls: dict[str, Call],
        sender_ids: SenderIds,
        licensed: Callable[[UserConfig], bool],
        max_message: int,
    ) -> None:
        self._wire = wire
        self._out = outbox
        self._calls = calls
        self.sender_ids = sender_ids
        self._licensed = licensed
        self._max_message = max_message
        self.resends: Counter[str] = Counter()
        """Resends of stored ids, by who recognised them (``hub``, ``service``), for
        ``/metrics``."""
        self.awaiting: dict[SenderKey, list[Leg]] = {}
        """Resends whose original is not on disk yet: told when it is (``settled``)."""
        self.reports = Reports()
        """Messages ``sent`` to devices on other switches, until their reports come."""

    # -- a new message --------------------------------------------------------------------

    def answered(self, leg: Leg, message_id: str) -> bool:
        """A retry of a known id is acknowledged again and relayed nowhere (§4.6); True
        when this id was seen (on this call, or stored from any call of the writer)."""
        call = leg.call
        record = call.acked(leg, message_id)
        if record is not None:
            state = record.state  # pending: its "stored" is on the way; sent: its report
            if state is not _PENDING and state is not _SENT:
                self._wire.ack(leg, message_id, record)
            return True
        if call.stored or call.group is not None:  # stored: the id is the sender's key
            known = self.sender_ids.get(call.domain, leg.reg.user.sip, message_id)
            if known is not None:
                self._answer_resend(leg, message_id, known)
                return True
        return False

    def decided(
        self, leg: Leg, message_id: str, seq: int, now: int, state: Delivery, keyed: bool
    ) -> None:
        """Remember what became of a new message and tell its writer (unless ``pending``:
        then ``stored`` follows; or ``sent``: then the receiver's switch reports, docs
        12.39). ``keyed``: it was posted, its id is a key (§4.6)."""
        record = AckRecord(seq, now, state)
        leg.call.remember(leg, message_id, record)
        if keyed:
            self.sender_ids.put(leg.call.domain, leg.reg.user.sip, message_id, record)
        if state is _DELIVERED or state is _HELD:
            self._wire.ack(leg, message_id, record)
        elif state is _SENT:
            receiver = leg.call.peer(leg)
            if receiver is not None:
                self.expect(receiver, (leg.role, leg.reg.user.sip), message_id, record)

    def not_delivered(self, leg: Leg, message_id: str) -> None:
        """Refused before it had a seq: nobody can take it now."""
        self._wire.fty(leg, im_ack(message_id, Delivery.NOT_DELIVERED))

    def refused_at_setup(
        self, reg: Registration, number: int, messages: Iterable[ImMessage]
    ) -> None:
        """The messages of a ``setup`` that never became a call: none was delivered."""
        for message in messages:
            if message.id is not None:
                ack = im_ack(message.id, Delivery.NOT_DELIVERED)
                self._wire.to_number(reg, number, facility(ack))

    def post(
        self,
        leg: Leg,
        seq: int,
        time_ms: int,
        html: str,
        attach: str | None,
        message_id: str | None,
        *,
        ack: bool,
    ) -> None:
        """Hand one message of a one-to-one chat to the durable outbox (PROTOCOL §7.3)."""
        call = leg.call
        author, other = (
            (call.caller_user, call.callee_user)
            if leg.role is Role.CALLER
            else (call.callee_user, call.caller_user)
        )
        kept = leg.post_head  # the same for every message of the leg, but for a transfer
        if kept is None or kept[0] is not author or kept[1] is not other:
            sides = [user.sip for user in (author, other) if self._licensed(user)]
            head = post_head(
                domain=call.domain,
                author=author,
                topic=author.sip,
                peer=other.sip,
                peer_dn=other.dn,
                sides=list(dict.fromkeys(sides)),  # one side when chatting with oneself
            )
            kept = leg.post_head = (author, other, head)
        writer = leg.reg.user.sip
        writer_named = writer if writer != author.sip else None  # an agent as its queue
        message = post_from(
            kept[2], html, call.call_id, seq, time_ms, attach, message_id, writer_named
        )
        self.store(leg, message, seq, message_id, ack=ack)

    def store(
        self, leg: Leg, message: JsonObject, seq: int, message_id: str | None, *, ack: bool
    ) -> None:
        """The Post to the outbox; with ``ack``, the writer hears ``stored`` when it is
        on disk (``stored``), so its record is ``pending`` until then."""
        call = leg.call
        stored_ack = (
            StoredAck(
                leg.reg.conn,
                call.call_id,
                leg.number,
                message_id,
                seq,
                call.domain,
                leg.reg.user.sip,
            )
            if ack and message_id is not None
            else None
        )
        self._out.store(message, stored_ack)

    # -- held messages ----------------------------------------------------------------------

    def held_relayed(self, caller: Leg, message: HeldMessage, callee: Leg, state: Delivery) -> None:
        """A message held until ``conn`` reached the callee: posted now (a licensed chat),
        ``delivered`` to its writer; ``state`` ``sent``: it went to the callee's switch,
        whose report tells."""
        call = caller.call
        fields = message.im_message
        if call.stored:
            self.post(
                caller,
                fields["seq"],
                fields["time"] * 1000,
                fields["data"],
                fields.get("attach"),
                message.id,
                ack=False,
            )
        if message.id is None:
            return
        record = call.acked(caller, message.id)
        if record is not None:
            if state is _SENT:
                record.state = advance(record.state, Outcome.FORWARDED)
                writer = (caller.role, caller.reg.user.sip)
                self.expect(callee, writer, message.id, record, held=True)
            else:
                record.state = advance(record.state, Outcome.RELAYED)
                self._wire.ack(caller, message.id, record)
            if call.stored:  # posted now: its id is the sender's key (§4.6)
                self.sender_ids.put(call.domain, caller.reg.user.sip, message.id, record)

    def report_undelivered(self, call: Call, caller: Leg) -> None:
        """The call ended before ``conn``: each held message is ``not_delivered``."""
        held, call.held, call.held_bytes = call.held, [], 0
        for message in held:
            if message.id is not None:
                record = call.acked(caller, message.id)
                if record is not None:
                    record.state = advance(record.state, Outcome.LOST)
            ack = im_ack(message.id, Delivery.NOT_DELIVERED, seq=message.im_message["seq"])
            self._wire.fty(caller, ack)

    def report_parked(self, call: Call, except_leg: Leg | None) -> None:
        """Messages that waited for a detached device that never came back (§4.9): their
        writers learn they were stored (a licensed chat) or not delivered. Messages sent
        to a device elsewhere and never reported are held first (12.39)."""
        if self.reports:
            self.unreached(call.legs())
        acks = call.acks
        if call.group is not None or not any(r.state == Delivery.HELD for r in acks.values()):
            return
        outcome = Outcome.KEPT_FOR_LATER if call.stored else Outcome.LOST
        for (role, sip, message_id), record in acks.items():
            if record.state != Delivery.HELD:
                continue
            record.state = advance(record.state, outcome)
            writer = writer_of(call, role, sip)
            if writer is not None and writer is not except_leg:
                self._wire.ack(writer, message_id, record)

    # -- delivery reports from other switches (docs 12.39) -------------------------------------

    def expect(
        self,
        receiver: Leg,
        writer: tuple[Role, str],
        message_id: str,
        record: AckRecord,
        held: bool = False,
    ) -> None:
        """A message ``sent`` to ``receiver``'s device on another switch by ``writer``
        (its side and user) waits for that switch's report (``held``: its writer heard
        ``held`` already)."""
        role, sip = writer
        self.reports.expect(receiver, Unreported(record.seq, role, sip, message_id, record, held))

    def reached(self, receiver: Leg, seq: int) -> None:
        """The receiver's switch handed every message up to ``seq`` on this leg to the
        device's connection: ``delivered``, told to each writer (one batch's acks join
        as 12.31 says)."""
        call, wrote, writer = receiver.call, None, None
        for message in self.reports.reached(receiver, seq):
            record = message.record
            if record.state is not _SENT:
                continue
            record.state = advance(record.state, Outcome.REPORTED)
            if wrote != (message.role, message.sip):  # one writer for a run, as a rule
                wrote = (message.role, message.sip)
                writer = writer_of(call, message.role, message.sip)
            if writer is None:  # told after its resume
                record.told = False
            else:
                self._wire.ack(writer, message.message_id, record)

    def unreached(self, receivers: Iterable[Leg]) -> None:
        """No report will come for what was sent on these legs (the device went away,
        its switch was lost, the leg or the call ended): each message still ``sent`` is
        ``held``, as for a device away, and its writer hears so once."""
        for receiver in receivers:
            for message in self.reports.unreached(receiver):
                record = message.record
                if record.state is not _SENT:
                    continue
                record.state = advance(record.state, Outcome.UNREPORTED)
                if not message.held:
                    self.tell(receiver.call, message.role, message.sip, message.message_id, record)

    def tell(self, call: Call, role: Role, sip: str, message_id: str, record: AckRecord) -> None:
        """The writer of a message hears its new state now, or after its resume."""
        writer = writer_of(call, role, sip)
        if writer is not None:
            self._wire.ack(writer, message_id, record)
        else:
            record.told = False

    # -- the message.offline webhook (§9.6) ---------------------------------------------------

    def undelivered(
        self, reg: Registration, callee: UserConfig, messages: Iterable[ImMessage], cause: str
    ) -> None:
        """Messages of a refused ``setup`` that nobody received nor stored."""
        for message in messages:
            if not message.data:
                continue
            try:
                text = sanitize(message.data[: self._max_message], message.mime)
            except BadMime:
                continue  # never a message: nothing was lost
            self._offline(reg.domain, reg.user, callee, text, cause)

    def notify_offline(self, call: Call, items: list[JsonObject], cause: str) -> None:
        """Relayed items (already sanitized) that never arrived."""
        for item in items:
            text = item.get("data", "")
            self._offline(call.domain, call.caller_user, call.callee_user, text, cause)

    def _offline(
        self, domain: str, sender: UserConfig, callee: UserConfig, text: str, cause: str
    ) -> None:
        self._out.notify(
            "message.offline",
            {
                "domain": domain,
                "from": sender.sip,
                "from_dn": sender.dn,
                "to": callee.sip,
                "text": text,
                "mime": "text/html",
                "reason": cause,
            },
        )

    # -- what the outbox and the service report ------------------------------------------------

    def seen(self, call_id: str, reader: str, seq: int) -> None:
        """``reader`` has read up to ``seq``: tell the other side of the live call (§7.4)."""
        call = self._calls.get(call_id)
        if call is None:
            return
        for leg in (call.caller, call.callee):
            if leg is not None and leg.reg.user.sip != reader and not leg.parked:
                self._wire.fty(leg, im_seen(seq))

    def stored(self, leg: Leg, ack: StoredAck) -> None:
        """A Post of this leg's is on disk: ``im_ack stored`` (PROTOCOL §7.5)."""
        if ack.message_id is None:
            return
        record = leg.call.acked(leg, ack.message_id)
        if record is not None and record.seq == ack.seq:
            record.state = advance(record.state, Outcome.ON_DISK)
            self._wire.ack(leg, ack.message_id, record)

    def stored_late(self, ack: StoredAck) -> None:
        """A Post is on disk but its writer's device has moved (or gone): the record says
        ``stored`` now, so a retry is answered, and a live writer is told."""
        call = self._calls.get(ack.call_id)
        if call is None or ack.message_id is None:
            return
        for (role, sip, message_id), record in list(call.acks.items()):
            if (
                message_id == ack.message_id
                and record.seq == ack.seq
                and record.state == Delivery.PENDING
            ):
                record.state = advance(record.state, Outcome.ON_DISK)
                self.tell(call, role, sip, message_id, record)

    # -- ids across calls (§4.6 revised, docs 12.21) -------------------------------------------

    @property
    def waiting_resends(self) -> int:
        """Resends waiting for their original to be on disk (``Switch.held``)."""
        return sum(len(legs) for legs in self.awaiting.values())

    def _answer_resend(self, leg: Leg, message_id: str, known: AckRecord) -> None:
        """A stored message's id again, from another call or device of its sender: the
        original's ack, and nothing relayed or stored."""
        self.resends["hub"] += 1
        if known.state == Delivery.PENDING:  # the original's "stored" is moments away
            key = (leg.call.domain, leg.reg.user.sip, message_id)
            waiting = self.awaiting.setdefault(key, [])
            if leg not in waiting and len(waiting) < _MAX_WAITING:
                waiting.append(leg)
            return None
        # A copy: ``told`` belongs to the original writer's leg, not to this one; and the
        # report of a message sent elsewhere tells that leg alone: the copy hears held.
        state = _HELD if known.state is _SENT else known.state
        self._wire.ack(leg, message_id, AckRecord(known.seq, known.time, state))

    def settled(self, ack: StoredAck) -> None:
        """A Post is on disk, whether or not its call still lives: its id's record says
        ``stored``, and resends that waited for it hear so (§4.6)."""
        if ack.message_id is None or not ack.author:
            return
        key = (ack.domain, ack.author, ack.message_id)
        record = self.sender_ids.get(*key)
        if record is not None and record.seq == ack.seq and record.state == Delivery.PENDING:
            record.state = advance(record.state, Outcome.ON_DISK)
        for leg in self.awaiting.pop(key, ()):
            if record is not None and leg.reg.legs.get(leg.number) is leg:  # still on its call
                self._wire.ack(leg, key[2], AckRecord(record.seq, record.time, record.state))

    def remember_stored(self, posts: Iterable[JsonObject]) -> None:
        """Posts a previous run of this hub journaled (docs 12.21): their ids are keys
        from the start, so a client resending them after a restart is answered."""
        for message in posts:
            key = sender_key(message)
            record = stored_record(message)
            if key is not None and record is not None:
                self.sender_ids.put(*key, record)

    def duplicate(self, message: JsonObject, original: JsonObject) -> None:
        """The messages service already held this Post's id under an earlier Post (one
        this hub had forgotten): the writer's ack is corrected to the original's seq and
        time, and the memory answers with them from now on."""
        key, corrected = sender_key(message), stored_record(original)
        if key is None or corrected is None:
            return
        self.resends["service"] += 1
        known = self.sender_ids.get(*key)
        if known is None or known.seq == message.get("seq"):  # from now on: the original
            self.sender_ids.put(*key, corrected)
        call = self._calls.get(str(message.get("callId")))
        if call is not None:  # else the writer hears the original when it resends
            self._correct(call, key[1], key[2], message.get("seq"), corrected)

    def _correct(
        self, call: Call, author: str, message_id: str, seq: object, corrected: AckRecord
    ) -> None:
        for (role, sip, written), record in list(call.acks.items()):
            if sip != author or written != message_id or record.seq != seq:
                continue
            record.seq, record.time = corrected.seq, corrected.time
            if record.state == Delivery.PENDING:
                record.state = advance(record.state, Outcome.ON_DISK)
            if record.state is _SENT:  # its report tells, with the corrected seq
                continue
            if call.group is None:
                self.tell(call, role, sip, written, record)
                continue
            for leg in call.joined:  # a group's writer is one of its joined legs
                if leg.reg.user.sip == sip and not leg.parked:
                    self._wire.ack(leg, written, record)


def writer_of(call: Call, role: Role, sip: str) -> Leg | None:
    """The live, reachable leg of whoever wrote a message (not whoever holds that side
    now: a support chat changes agents)."""
    leg = call.caller if role is Role.CALLER else call.callee
    if leg is None or leg.reg.user.sip != sip or leg.parked:
        return None
    return leg
