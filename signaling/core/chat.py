"""Chat calls: setup, forking, answer, messages, typing and release (PROTOCOL §4.4-§4.8).

Theory of operation: a client's ``setup`` with ``im_setup`` resolves its destination in
the caller's tenant and is offered (negative call numbers) to every ``NO_MEDIA_CALL``
registration of the callee. The first ``conn`` wins; the other devices get ``rel`` 26.
Messages written before ``conn`` are held and relayed in order at ``conn``; every message
gets the next ``seq`` of the call, the sender fields stamped by the hub, and, when the
client gave an ``id``, an ``im_ack``. Volatile chat stores nothing: anything that could
not be relayed is reported ``not_delivered``.

Licensed chat (PROTOCOL §7.3, §7.5): when either side holds the ``messages`` licence,
every message is also handed to the hub's durable outbox as a ``Post`` (a ``Store``
action); the relay never waits for it. A licensed callee with no registration is
answered by the hub itself: its messages are acknowledged ``stored`` once the outbox
has them on disk (``stored``).

Hot path: ``facility`` on a connected call -> ``_message`` -> one ``sanitize`` (free for
text without markup) -> one encode per receiving leg.
"""

from __future__ import annotations

import functools
import secrets
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from config import LimitsConfig, QueueConfig, SignalingConfig, SupportConfig, UserConfig
from tracing import Tracer

from .actions import StoredAck
from .calls import AckRecord, Call, Fragments, HeldMessage, Leg, Line
from .callstate import CLIENT_EVENTS, RELAYED, Event, LegState, Role, client_event, hub_event
from .causes import Q931, hub_cause
from .clock import Clock
from .codec import encode, encode_string
from .directory_view import TenantLookup
from .errors import AlreadyTaken, BadMime, BadState, MessageTooBig
from .groups import Group, GroupBook
from .messages import Cause, ImMessage, Sig, Signaling
from .outbox import Outbox
from .presence import Presence
from .queues import Queues
from .registry import Registration, Registry
from .sanitize import is_opaque, sanitize
from .sender_ids import SenderIds, SenderKey
from .timers import TimerQueue

__all__ = ["ChatCalls"]

JsonObject = dict[str, Any]
_NORMAL = hub_cause(Q931.NORMAL_CLEARING)


def utf8_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


class ChatCalls:
    def __init__(
        self,
        *,
        outbox: Outbox,
        timers: TimerQueue,
        clock: Clock,
        tenants: TenantLookup,
        registry: Registry,
        signaling: SignalingConfig,
        limits: LimitsConfig,
        congested: Callable[[int, int], bool],
        drop_slow: Callable[[int], None],
        presence: Presence,
        groups: GroupBook | None = None,
        licensed: Callable[[UserConfig], bool] = lambda user: False,
        support: SupportConfig | None = None,
        id_ttl: float = 24 * 3600.0,
    ) -> None:
        self.presence = presence
        self.groups = groups or GroupBook()
        self._group_calls: dict[tuple[str, str], Call] = {}
        self._out = outbox
        self._licensed = licensed
        self._congested = congested
        self._drop_slow = drop_slow
        self._timers = timers
        self._clock = clock
        self._tenants = tenants
        self._registry = registry
        self._config = signaling
        self._max_message = limits.max_message
        self._keep = signaling.transcript_messages
        self._keep_bytes = signaling.transcript_bytes
        self._resumable = signaling.resume_grace > 0
        """Transcripts serve resumes and transfers: without resume, only support calls
        keep one."""
        self.calls: dict[str, Call] = {}
        self.sender_ids = SenderIds(signaling.sender_ids, id_ttl, clock)
        """Ids of stored messages per sender, across calls (§4.6 revised)."""
        self.resends: Counter[str] = Counter()
        """Resends of stored ids, by who recognised them (``hub``, ``service``), for
        ``/metrics``."""
        self._awaiting: dict[SenderKey, list[Leg]] = {}
        """Resends whose original is not on disk yet: told when it is (``settled``)."""
        self.messages = 0
        """Chat messages accepted (given a seq) since start, for ``/metrics``."""
        self.tracer = Tracer()
        """Call states and routing go to its ``signalling`` flag (never on the relay of a
        message: that is ``pbx``'s to see)."""
        self.support = Queues(
            chat=self,
            outbox=outbox,
            timers=timers,
            clock=clock,
            tenants=tenants,
            registry=registry,
            presence=presence,
            config=support or SupportConfig(),
            max_calls=signaling.max_calls,
            max_ids=signaling.max_ids,
            licensed=licensed,
        )

    # -- entry points -------------------------------------------------------------------

    def on_signaling(self, reg: Registration, msg: Signaling) -> None:
        """One ``Signaling`` from a client's registration."""
        sig = msg.sig
        event = CLIENT_EVENTS.get(sig.type)
        leg = reg.legs.get(msg.call)
        if leg is None:
            if event is Event.SETUP:
                return self._setup(reg, msg.call, sig)
            if event is Event.REL or event is Event.DISC:
                return None  # crossed with our own rel: the call is already gone
            if msg.call in reg.taken:  # §9.2: another agent answered first; its rel
                raise AlreadyTaken("another agent took this chat")  # (26) is on the way
            raise BadState(f"{sig.type} not allowed in state idle")
        if event is None or event is Event.SETUP:
            raise BadState(f"{sig.type} not allowed in state {leg.state.value}")
        if leg.resume is not None:
            return self._on_resumed_leg(leg, event, sig)
        if leg.call.presence:
            if event is Event.DISC:  # a subscription ends as on rel; disc is answered rel
                self.presence.ended(leg)
                return self._send_sig(leg, {"type": "rel", "cau": _NORMAL.to_json()})
            return self.presence.on_event(leg, event, sig)
        next_state = client_event(leg.role, leg.state, event)  # BadState unless allowed
        if event is Event.PROGRESS and sig.fields and "cau" in sig.fields:
            event = Event.DISC  # progress with a cause: this device disconnected (12.25)
            next_state = client_event(leg.role, leg.state, event)
        if event is Event.FACILITY:
            return self._facility(leg, sig)
        if self.tracer.signalling:
            self._note(leg.reg, leg.number, f"{sig.type}: {leg.state.value} -> {next_state.value}")
        if event in RELAYED:
            return self._relay(leg, event, sig)
        if event is Event.REL or event is Event.DISC:
            disc = _disc_of(sig) if event is Event.DISC else None
            if leg.call.support is not None and leg in leg.call.offers:
                self.support.declined(leg)  # the others still ring
                return self._rel_back(leg, sig.cau, disc)
            return self._release_by(leg, sig.cau, disc)
        if event is Event.ALERT:
            leg.state = next_state
            return self._alert(leg.call)
        return self._answer(leg, next_state)

    def registration_ended(self, reg: Registration, cause: Cause) -> None:
        """The device is gone: its calls end, peers learn it (typing stops first)."""
        for leg in list(reg.legs.values()):
            call = leg.call
            if call.presence:
                self.presence.ended(leg)
            elif call.group is not None:
                self._stop_typing(leg)
                self._leave_group(leg)
            elif leg.role is Role.CALLEE and call.callee is not leg:
                self._drop_offer(leg)
            else:
                self._stop_typing(leg)
                self._release(call, cause, except_leg=leg)

    # -- resume (§4.9) ------------------------------------------------------------------

    def detach(self, reg: Registration) -> None:
        """The device's connection dropped; its calls wait for a resume. What it cannot do
        while away ends now: its typing, a half-sent message, offers it could not answer."""
        for leg in list(reg.legs.values()):
            leg.fragments = None
            leg.relay_head = None
            call = leg.call
            if call.presence:
                continue
            self._stop_typing(leg)
            if call.group is not None:
                if leg in call.offers:
                    self._leave_group(leg)
            elif leg.role is Role.CALLEE and call.callee is not leg:
                self._drop_offer(leg)

    def resume(self, reg: Registration, seqs: dict[str, int]) -> None:
        """A new connection took the registration over: each live call is offered again
        (new call number, the same ``callId`` and ``confId``, ``resumed``); the replay
        follows its ``conn``. ``seqs`` may name a call by its ``confId`` or by the leg's
        ``callId`` (docs 12.18); the ``confId`` wins when both are there."""
        for leg in sorted(reg.legs.values(), key=lambda leg: -leg.number):
            del reg.legs[leg.number]
            leg.number = reg.allocate_offer_number()
            reg.legs[leg.number] = leg
            leg.relay_head = None
            peer = leg.call.peer(leg)
            if peer is not None:
                peer.relay_head = None  # it names the sender, whose name may have changed
            leg.resume = seqs.get(leg.call.call_id, seqs.get(leg.call_id, 0))
            if self.tracer.signalling:
                self._note(reg, leg.number, f"resumed {leg.call.call_id} after seq {leg.resume}")
            self._send_sig(leg, self._resumed_setup(leg))

    def _resumed_setup(self, leg: Leg) -> JsonObject:
        call, own = leg.call, leg.reg.user
        resumed = {"type": "resumed"}
        setup: JsonObject = {"type": "setup", "channel": 0}
        if call.presence:
            watched = call.callee_user
            setup["cd"] = _endpoint(watched.sip, watched.num)
            setup["fty"] = [{"type": "presence_subscribe"}, resumed]
        else:
            if call.group is not None:
                setup["cg"], name = {"sip": call.group.sip}, call.group.dn
            else:
                peer = call.peer(leg)
                other = (
                    peer.reg.user
                    if peer is not None
                    else call.callee_user
                    if leg.role is Role.CALLER
                    else call.caller_user
                )
                setup["cg"], name = _endpoint(other.sip, other.num), other.dn
            setup["cd"] = _endpoint(own.sip, own.num)
            fty: list[JsonObject] = [
                {"type": "im_setup"},
                {"type": "name_identification", "name": name},
            ]
            if call.support is not None:
                fty.extend(call.support.setup_fty())
            setup["fty"] = [*fty, resumed]
        setup.update(leg.ids())
        return setup

    def _on_resumed_leg(self, leg: Leg, event: Event, sig: Sig) -> None:
        """The client's answer to a re-offered call: ``conn`` (replay), or ``rel``."""
        if event is Event.REL or event is Event.DISC:
            leg.resume = None
            disc = _disc_of(sig) if event is Event.DISC else None
            if leg.call.presence:
                self.presence.ended(leg)
                return self._rel_back(leg, None, disc)
            return self._release_by(leg, sig.cau, disc)
        if event is Event.ALERT:
            return None
        if event is not Event.CONN:
            raise BadState(f"{sig.type} not allowed in state resumed (answer conn first)")
        after, leg.resume = leg.resume or 0, None
        call = leg.call
        if call.presence:
            return self.presence.resumed(leg)
        self._replay(leg, after)

    def _replay(self, leg: Leg, after: int) -> None:
        """Every kept message above ``after``, in order; the writers of those that waited
        for this device learn they are delivered now."""
        call, own = leg.call, leg.reg.user.sip
        for line in list(call.transcript):
            if line.seq <= after:
                continue
            item = line.item()
            mine = line.role is leg.role and line.sip == own
            if mine and line.id is not None:
                item["id"] = line.id  # so the client recognises its own message
            self._send_fty(leg.reg, leg.number, item)
            if line.id is None or call.group is not None:
                continue
            record = call.acks.get((line.role, line.sip, line.id))
            if record is None or record.seq != line.seq:
                continue
            if mine:  # what became of it while this device was away
                if record.state != _PENDING:
                    self._send_ack(leg, line.id, record)
            elif record.state == "held":
                record.state = "delivered"
                self._tell(call, line.role, line.sip, line.id, record)
        for (role, sip, message_id), record in list(call.acks.items()):
            if not record.told and role is leg.role and sip == own:  # older than the replay
                self._send_ack(leg, message_id, record)

    def _tell(self, call: Call, role: Role, sip: str, message_id: str, record: AckRecord) -> None:
        """The writer of a message hears its new state now, or after its resume."""
        writer = self._writer(call, role, sip)
        if writer is not None:
            self._send_ack(writer, message_id, record)
        else:
            record.told = False

    def _writer(self, call: Call, role: Role, sip: str) -> Leg | None:
        """The live, reachable leg of whoever wrote a message (not whoever holds that side
        now: a support chat changes agents)."""
        leg = call.caller if role is Role.CALLER else call.callee
        if leg is None or leg.reg.user.sip != sip or leg.parked:
            return None
        return leg

    # -- setup and answer ---------------------------------------------------------------

    def _setup(self, reg: Registration, number: int, sig: Sig) -> None:
        if number < 0:
            raise BadState("setup not allowed on a negative call number (those are the hub's)")
        chat = sig.has_fty("im_setup")
        if not chat and not sig.has_fty("presence_subscribe"):
            return self._refuse(reg, number, Q931.PROTOCOL_ERROR)
        max_calls = self._config.max_calls
        if len(reg.legs) >= max_calls:
            return self._refuse(reg, number, Q931.RESOURCE_UNAVAILABLE)
        callee, refusal = self._resolve(reg, sig)
        if callee is None:
            group = self._group_named(reg, sig) if chat else None
            if group is not None:
                return self._join_group(reg, number, sig, group)
            queue = self._queue_named(reg, sig) if chat else None
            if queue is not None:
                if self.tracer.signalling:
                    self._note(reg, number, f"setup to queue {queue.sip}")
                return self.support.call(reg, number, sig, queue)
            return self._refuse(reg, number, refusal)
        if not chat:
            return self.presence.subscribe(reg, number, callee)
        stored = self._licensed(reg.user) or self._licensed(callee)
        reachable = [
            device
            for device in self._registry.of(reg.domain, callee.sip)
            if device.no_media
            and device is not reg
            and device.attached
            # a registration of a removed App object never gets a new user's calls
            and device.user.app == callee.app
        ]
        devices = [device for device in reachable if len(device.legs) < max_calls]
        if not reachable and self._licensed(callee):
            return self._answer_for_offline(reg, number, sig, callee)
        if not devices:
            if self.tracer.signalling:
                why = "every device at max_calls" if reachable else "no registered device"
                self._note(reg, number, f"setup to {callee.sip}: {why}")
            self._undelivered(reg, callee, sig.messages, cause="unreachable")
            for message in sig.messages:
                if message.id is not None:
                    self._send_fty(reg, number, _ack_not_delivered(message.id))
            cause = Q931.RESOURCE_UNAVAILABLE if reachable else Q931.NO_USER_RESPONDING
            return self._refuse(reg, number, cause)
        call = Call(
            secrets.token_hex(16), reg.domain, self._config.max_ids, reg.user, callee, stored
        )
        caller = self._place(call, reg, number)
        offer = {
            "type": "setup",
            "channel": 0,
            "cg": _endpoint(reg.user.sip, reg.user.num),
            "cd": _endpoint(callee.sip, callee.num),
            "fty": [
                {"type": "im_setup"},
                {"type": "name_identification", "name": reg.user.dn},
                *(item for item in sig.fty if item["type"] not in _HUB_FTY),
            ],
        }
        if self.tracer.signalling:
            self._note(reg, number, f"setup to {callee.sip}: offered to {len(devices)} device(s)")
        for device in devices:
            leg = Leg(call, device, device.allocate_offer_number(), Role.CALLEE, LegState.OFFERED)
            device.legs[leg.number] = leg
            call.offers.append(leg)
            self._send_sig(leg, {**offer, **leg.ids()})
        call.ring = self._timers.arm(
            self._clock.monotonic() + self._config.ring_timeout, lambda: self._ring_timeout(call)
        )
        for message in sig.messages:
            self._im_message(caller, message)

    def _place(self, call: Call, reg: Registration, number: int) -> Leg:
        """The caller's leg of a new call, which the caller learns is proceeding."""
        caller = Leg(call, reg, number, Role.CALLER, LegState.SETUP_SENT)
        call.caller = caller
        reg.legs[number] = caller
        self.calls[call.call_id] = call
        self._hub_event(caller, Event.CALL_PROC, {"type": "call_proc", **caller.ids()})
        return caller

    def _answer_for_offline(
        self, reg: Registration, number: int, sig: Sig, callee: UserConfig
    ) -> None:
        """A licensed callee with no registration: the hub answers and stores (§7.5)."""
        call = Call(secrets.token_hex(16), reg.domain, self._config.max_ids, reg.user, callee, True)
        call.answered_by_hub = True
        caller = self._place(call, reg, number)
        name = {"type": "name_identification", "name": callee.dn}
        self._hub_event(caller, Event.CONN, {"type": "conn", "fty": [name]})
        for message in sig.messages:
            self._im_message(caller, message)

    def _resolve(self, reg: Registration, sig: Sig) -> tuple[Any, Q931]:
        """The callee in the caller's tenant, or None and the cause to refuse with."""
        cd = sig.cd
        if cd is None:
            return None, Q931.UNALLOCATED_NUMBER
        sip = cd.sip
        if sip and "@" in sip:
            sip, _, domain = sip.partition("@")
            if domain.lower() != reg.domain:
                return None, Q931.CALL_REJECTED  # other tenants are never reachable (§3.3)
        tenant = self._tenants.tenant(reg.domain)
        callee = tenant.resolve(sip, cd.num) if tenant else None
        return callee, Q931.UNALLOCATED_NUMBER

    def _queue_named(self, reg: Registration, sig: Sig) -> QueueConfig | None:
        sip = _own_tenant_sip(reg, sig)
        tenant = self._tenants.tenant(reg.domain) if sip else None
        return tenant.queue(sip) if tenant is not None and sip else None

    # -- what the support queues use (§9) -----------------------------------------------

    def place(self, call: Call, reg: Registration, number: int) -> Leg:
        return self._place(call, reg, number)

    def offer(self, call: Call, device: Registration, setup: JsonObject) -> Leg:
        """Offer ``call`` to one more device (the sig is the same for every device; the
        leg's ``callId`` and the ``confId`` are added here)."""
        leg = Leg(call, device, device.allocate_offer_number(), Role.CALLEE, LegState.OFFERED)
        device.legs[leg.number] = leg
        call.offers.append(leg)
        if self.tracer.signalling:
            self._note(device, leg.number, f"offered {call.call_id} from {call.caller_user.sip}")
        self._send_sig(leg, {**setup, **leg.ids()})
        return leg

    def answer(self, leg: Leg) -> None:
        """``Take``: the same as the device's ``conn``."""
        self._answer(leg, LegState.CONNECTED)

    def write(self, leg: Leg, message: ImMessage) -> None:
        self._im_message(leg, message)

    def release(self, call: Call, cause: Cause) -> None:
        self._release(call, cause)

    def arm_wait(self, call: Call, seconds: float) -> None:
        """The call waits for an answer this long, then ends with cause 19."""
        if call.ring is not None:
            call.ring.cancel()
        call.ring = self._timers.arm(
            self._clock.monotonic() + seconds, functools.partial(self._ring_timeout, call)
        )

    def withdraw(self, leg: Leg) -> None:
        """One offer ends (declined, or its device went away); the call waits on."""
        self._forget(leg)
        if leg in leg.call.offers:
            leg.call.offers.remove(leg)

    def end_offer(self, leg: Leg, cause: Cause) -> None:
        """One device stops ringing (told ``cause``); the call waits on."""
        self._end_leg(leg, cause)
        if leg in leg.call.offers:
            leg.call.offers.remove(leg)

    def hand_back(self, leg: Leg) -> None:
        """A transfer: the agent's leg ends (16), the call is unanswered again."""
        self._stop_typing(leg)
        call = leg.call
        call.callee = None
        if call.caller is not None:
            call.caller.relay_head = None  # it names the sender: the next agent is another
        self._end_leg(leg, _NORMAL)

    def send_fty(self, reg: Registration, number: int, item: JsonObject) -> None:
        self._send_fty(reg, number, item)

    # -- groups (§7.6) ------------------------------------------------------------------

    def _group_named(self, reg: Registration, sig: Sig) -> Group | None:
        sip = _own_tenant_sip(reg, sig)
        return self.groups.get(reg.domain, sip) if sip else None

    def _join_group(self, reg: Registration, number: int, sig: Sig, group: Group) -> None:
        """A member's setup to the group joins its one live chat; nobody else may."""
        if reg.user.sip not in group.members:
            return self._refuse(reg, number, Q931.CALL_REJECTED)
        key = (reg.domain, group.sip)
        call = self._group_calls.get(key)
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
            self._group_calls[key] = call
            self.calls[call.call_id] = call
        leg = Leg(call, reg, number, Role.CALLER, LegState.SETUP_SENT)
        reg.legs[number] = leg
        call.joined.append(leg)
        self._hub_event(leg, Event.CALL_PROC, {"type": "call_proc", **leg.ids()})
        name = {"type": "name_identification", "name": group.dn}
        self._hub_event(leg, Event.CONN, {"type": "conn", "fty": [name]})
        for message in sig.messages:
            self._im_message(leg, message)

    def _group_answer(self, leg: Leg, state: LegState) -> None:
        """An offered member device answers: it joins and gets what it missed."""
        call = leg.call
        leg.state = state
        if leg in call.offers:
            call.offers.remove(leg)
        call.joined.append(leg)
        if leg.ring is not None:
            leg.ring.cancel()
            leg.ring = None
        missed = [line for line in call.transcript if line.seq > leg.offered_after]
        for line in missed[-self._config.hold_messages :] if self._config.hold_messages else ():
            self._send_fty(leg.reg, leg.number, line.item())

    def _group_message(
        self,
        leg: Leg,
        html: str,
        raw: ImMessage,
        message_id: str | None,
        wall: float,
    ) -> None:
        call = leg.call
        group = call.group
        assert group is not None
        now = int(wall)
        seq = call.next_seq()
        self.messages += 1
        user = leg.reg.user
        item = _relayed_item(leg, now, seq, html, raw)
        if raw.participants is not None:  # the group's own list, never the writer's word
            item["participants"] = ",".join(sorted(group.members))
        receivers = [other for other in call.joined if other is not leg]
        for other in receivers:
            if not other.parked:  # a detached member device catches up when it resumes
                self._send_fty(other.reg, other.number, item)
        size = utf8_len(html)
        keep = max(self._keep, self._config.hold_messages, 1)
        line = Line(seq, now, leg.role, user, html, raw.attach, raw.subject, message_id, size)
        call.record(line, keep, self._keep_bytes)
        self._offer_group(call, group, seq - 1)
        state = "delivered" if receivers else _PENDING
        post: JsonObject = {
            "mt": "Post",
            "type": 1,
            "domain": call.domain,
            "author": user.sip,
            "dn": user.dn,
            "topic": group.sip,
            "peer_dn": group.dn,
            "grp": True,
            "text": html,
            "callId": call.call_id,
            "seq": seq,
            "time": int(wall * 1000),
        }
        if raw.attach is not None:
            post["attach"] = raw.attach
        if message_id is not None:
            post["id"] = message_id
        pending = state == _PENDING and message_id is not None
        ack = (
            StoredAck(
                leg.reg.conn, call.call_id, leg.number, message_id, seq, call.domain, user.sip
            )
            if pending
            else None
        )
        self._out.store(post, ack)
        if message_id is not None:
            record = AckRecord(seq, now, state)
            call.remember(leg, message_id, record)
            self.sender_ids.put(call.domain, user.sip, message_id, record)
            if state != _PENDING:
                self._send_ack(leg, message_id, record)

    def _offer_group(self, call: Call, group: Group, seen: int) -> None:
        """Online members' devices not yet in the group's chat are offered it (§7.6)."""
        max_calls = self._config.max_calls
        for member in sorted(group.members):
            for device in self._registry.of(call.domain, member):
                if not device.no_media or not device.attached or len(device.legs) >= max_calls:
                    continue
                if any(other.call is call for other in device.legs.values()):
                    continue
                leg = Leg(
                    call, device, device.allocate_offer_number(), Role.CALLEE, LegState.OFFERED
                )
                leg.offered_after = seen
                device.legs[leg.number] = leg
                call.offers.append(leg)
                self._send_sig(
                    leg,
                    {
                        "type": "setup",
                        "channel": 0,
                        "cg": {"sip": group.sip},
                        "cd": _endpoint(device.user.sip, device.user.num),
                        "fty": [
                            {"type": "im_setup"},
                            {"type": "name_identification", "name": group.dn},
                        ],
                        **leg.ids(),
                    },
                )
                leg.ring = self._timers.arm(
                    self._clock.monotonic() + self._config.ring_timeout,
                    functools.partial(self._group_no_answer, leg),
                )

    def _group_no_answer(self, leg: Leg) -> None:
        leg.ring = None
        self._send_sig(leg, {"type": "rel", "cau": hub_cause(Q931.NO_ANSWER).to_json()})
        self._leave_group(leg)

    def _leave_group(self, leg: Leg) -> None:
        """One device leaves; the group's chat lives on while any device is in it."""
        call = leg.call
        self._forget(leg)
        if leg.ring is not None:
            leg.ring.cancel()
            leg.ring = None
        for legs in (call.joined, call.offers):
            if leg in legs:
                legs.remove(leg)
        if not call.joined and not call.offers and call.group is not None:
            self.calls.pop(call.call_id, None)
            self._group_calls.pop((call.domain, call.group.sip), None)

    def group_changed(self, group: Group) -> None:
        """The service changed a group: devices of users no longer members leave (21)."""
        call = self._group_calls.get((group.domain, group.sip))
        if call is None:
            return
        call.group = group
        for leg in [*call.joined, *call.offers]:
            if leg.reg.user.sip not in group.members:
                self._send_sig(leg, {"type": "rel", "cau": hub_cause(Q931.CALL_REJECTED).to_json()})
                self._leave_group(leg)

    # -- answer --------------------------------------------------------------------------

    def _alert(self, call: Call) -> None:
        if call.caller is not None:
            self._hub_event(call.caller, Event.ALERT, {"type": "alert"})

    def _answer(self, leg: Leg, state: LegState) -> None:
        """The first ``conn`` wins; every other device is told cause 26 (§4.5)."""
        call = leg.call
        if call.group is not None:
            return self._group_answer(leg, state)
        leg.state = state  # the table's answer: connected
        call.callee = leg
        losers, call.offers = [leg_ for leg_ in call.offers if leg_ is not leg], []
        for loser in losers:
            if call.support is not None:
                loser.reg.remember_taken(loser.number)
            self._end_leg(loser, hub_cause(Q931.NON_SELECTED_USER_CLEARING))
        if call.ring is not None:
            call.ring.cancel()
            call.ring = None
        caller = call.caller
        if caller is None:
            return
        name = {"type": "name_identification", "name": leg.reg.user.dn}
        self._hub_event(caller, Event.CONN, {"type": "conn", "fty": [name]})
        held, call.held, call.held_bytes = call.held, [], 0
        if call.support is not None:
            self.support.taken(call, leg)
            # an agent taking a transferred chat reads what was said before (§9.4)
            first_held = held[0].im_message["seq"] if held else call.seq + 1
            for line in list(call.transcript):
                if line.seq < first_held:
                    self._send_fty(leg.reg, leg.number, line.item())
        for message in held:
            self._send_fty(leg.reg, leg.number, message.im_message)
            if call.stored:
                fields = message.im_message
                self._post(
                    caller,
                    fields["seq"],
                    fields["time"] * 1000,
                    fields["data"],
                    fields.get("attach"),
                    message.id,
                    ack=False,
                )
            if message.id is not None:
                record = call.acked(caller, message.id)
                if record is not None:
                    record.state = "delivered"
                    self._send_ack(caller, message.id, record)
                    if call.stored:  # posted now: its id is the sender's key (§4.6)
                        self.sender_ids.put(call.domain, caller.reg.user.sip, message.id, record)

    # -- the other Signal types (docs/protocol.md 12.25) ---------------------------------

    def _relay(self, leg: Leg, event: Event, sig: Sig) -> None:
        """``info``, ``user_info``, ``channels`` between connected legs, ``progress`` from
        a ringing device to the caller: the documented fields as checked by the codec,
        nothing kept. Nobody to hear it (a group's offer, an offline callee answered by
        the hub, a device away) is no error: the message had no one to reach."""
        call = leg.call
        out: JsonObject = {"type": sig.type, **(sig.fields or {})}
        if event is Event.PROGRESS:
            caller = call.caller
            if call.group is None and caller is not None and not caller.parked:
                self._hub_event(caller, Event.PROGRESS, out)
            return None
        for receiver in _listeners(leg):
            if not receiver.parked:
                self._send_sig(receiver, out)

    # -- messages -----------------------------------------------------------------------

    def _facility(self, leg: Leg, sig: Sig) -> None:
        for message in sig.messages:
            self._im_message(leg, message)
            if leg.state is LegState.RELEASED:
                return None  # e.g. the receiver was cut off: the rest has nowhere to go
        if sig.fty:
            call = leg.call
            if call.caller_user.sip == call.callee_user.sip:  # §4.10: a call to oneself
                for item in sig.fty:
                    if item["type"] == "presence_publish":
                        self.presence.publish(leg.reg, item)
            peer = call.peer(leg)
            passed = [item for item in sig.fty if item["type"] not in _HUB_FTY]
            if peer is not None and passed and not peer.parked:  # unknown facilities travel
                # untouched (never kept: they are not messages)
                self._send_sig(peer, {"type": "facility", "fty": passed})

    def _im_message(self, leg: Leg, message: ImMessage) -> None:
        if message.is_typing_only:
            return self._typing(leg, bool(message.typing))
        data = message.data
        if data is None:
            if message.attach is None and leg.fragments is None:
                return None  # neither text, typing nor attachment: nothing to relay
            data = ""  # an attachment alone, or the data-less last fragment
        if message.more or leg.fragments is not None:
            return self._fragment(leg, message, data)
        self._message(leg, data, message.mime, message.id, message)

    def _fragment(self, leg: Leg, message: ImMessage, data: str) -> None:
        """Join ``more`` fragments; the joined data obeys ``limits.max_message`` (§4.6)."""
        parts = leg.fragments
        if parts is None:
            parts = leg.fragments = Fragments([], 0, message.mime, message.id)
        if not message.more:
            leg.fragments = None
        if parts.discarding:
            return None  # the rest of a message already refused as too big
        parts.size += utf8_len(data)
        if parts.size > self._max_message:
            parts.discarding = message.more
            parts.parts.clear()
            raise MessageTooBig(f"message data above {self._max_message} bytes")
        parts.parts.append(data)
        if not message.more:
            joined = "".join(parts.parts)
            self._message(leg, joined, parts.mime, parts.id or message.id, message)

    def _message(
        self, leg: Leg, data: str, mime: str | None, message_id: str | None, raw: ImMessage
    ) -> None:
        call = leg.call
        if message_id is not None:
            record = call.acked(leg, message_id)
            if record is not None:  # a retry: acknowledge again, relay nothing (§4.6)
                if record.state == _PENDING:
                    return None  # its "stored" is on the way (see ``stored``)
                return self._send_ack(leg, message_id, record)
            if call.stored or call.group is not None:  # stored: the id is the sender's key
                known = self.sender_ids.get(call.domain, leg.reg.user.sip, message_id)
                if known is not None:
                    return self._answer_resend(leg, message_id, known)
        size = utf8_len(data)
        if size > self._max_message:
            raise MessageTooBig(f"message data above {self._max_message} bytes")
        if is_opaque(mime):
            assert mime is not None
            return self._app_data(leg, data, mime, message_id, raw)
        if call.group is not None:
            self._group_message(leg, sanitize(data, mime), raw, message_id, self._clock.wall())
            return self._stop_typing(leg)
        peer = call.peer(leg)
        parked = peer is not None and peer.parked
        conn = peer.reg.conn if peer is not None else 0
        if peer is not None and not parked and self._congested(conn, self._out.pending(conn)):
            # The reader is not keeping up: say so now, then cut it off (4008), which
            # releases this call. Acknowledging "delivered" here would be a lie.
            if message_id is not None:
                self._send_fty(leg.reg, leg.number, _ack_not_delivered(message_id))
            return self._drop_slow(peer.reg.conn)
        if (
            peer is None
            and not call.answered_by_hub
            and (
                len(call.held) >= self._config.hold_messages
                or call.held_bytes + size > self._config.hold_bytes
            )
        ):
            if message_id is not None:
                self._send_fty(leg.reg, leg.number, _ack_not_delivered(message_id))
            return None
        html = sanitize(data, mime)  # after the cheap refusals: bleach is the costly part
        wall = self._clock.wall()
        now, wall_ms = int(wall), int(wall * 1000)
        seq = call.next_seq()
        self.messages += 1
        if call.support is not None:
            call.support.touch(self._clock.monotonic(), wall_ms)
        if self._keep and (self._resumable or call.support is not None):
            user = leg.reg.user
            size_html = utf8_len(html)
            line = Line(
                seq, now, leg.role, user, html, raw.attach, raw.subject, message_id, size_html
            )
            call.record(line, self._keep, self._keep_bytes)
        if peer is not None and not parked:
            self._out.send_text(peer.reg.conn, _relay_text(leg, peer, now, seq, html, raw))
            state = "delivered"
        elif parked:
            state = "held"  # in the transcript, replayed when the peer resumes (§4.9)
        elif call.answered_by_hub:
            state = _PENDING
        else:
            item = _relayed_item(leg, now, seq, html, raw)
            call.held.append(HeldMessage(item, message_id, size))
            call.held_bytes += size
            state = "held"
        if call.stored and (state != "held" or parked):  # held ones are posted when relayed
            self._post(leg, seq, wall_ms, html, raw.attach, message_id, ack=state == _PENDING)
        if message_id is not None:
            record = AckRecord(seq, now, state)
            call.remember(leg, message_id, record)
            if call.stored and (state != "held" or parked):  # posted: a key (§4.6)
                self.sender_ids.put(call.domain, leg.reg.user.sip, message_id, record)
            if state != _PENDING:
                self._send_ack(leg, message_id, record)
        if leg.typing is not None:
            self._stop_typing(leg)

    def _app_data(
        self, leg: Leg, data: str, mime: str, message_id: str | None, raw: ImMessage
    ) -> None:
        """Data of another mime, as opaque application data (docs/protocol.md 12.25):
        relayed unchanged, with its mime, only to connected legs whose registration said
        ``APP_DATA`` (they never render it as HTML); never sanitized, so never held,
        kept for a replay, stored or handed to a webhook. It takes a seq like any
        message, so acknowledgements and retries work as usual."""
        call = leg.call
        receivers = [other for other in _listeners(leg) if not other.parked and other.reg.app_data]
        if not receivers:
            raise BadMime(
                f"{mime[:40]!r} travels only as application data, to a connected device"
                " registered with APP_DATA"
            )
        wall = self._clock.wall()
        now = int(wall)
        seq = call.next_seq()
        if call.support is not None:  # application data is activity too (no idle close)
            call.support.touch(self._clock.monotonic(), int(wall * 1000))
        item = _relayed_item(leg, now, seq, data, raw, mime=mime, attach=False)
        for receiver in receivers:
            self._send_fty(receiver.reg, receiver.number, item)
        if message_id is not None:
            record = AckRecord(seq, now, "delivered")
            call.remember(leg, message_id, record)
            self._send_ack(leg, message_id, record)

    def _post(
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
        """Hand one message to the durable outbox as a Post (PROTOCOL §7.3)."""
        call = leg.call
        author, other = (
            (call.caller_user, call.callee_user)
            if leg.role is Role.CALLER
            else (call.callee_user, call.caller_user)
        )
        sides = [user.sip for user in (author, other) if self._licensed(user)]
        post: JsonObject = {
            "mt": "Post",
            "type": 1,
            "domain": call.domain,
            "author": author.sip,
            "dn": author.dn,
            "topic": author.sip,
            "peer": other.sip,
            "peer_dn": other.dn,
            "grp": False,
            "sides": list(dict.fromkeys(sides)),  # one side when chatting with oneself
            "text": html,
            "callId": call.call_id,
            "seq": seq,
            "time": time_ms,
        }
        if attach is not None:
            post["attach"] = attach
        writer = leg.reg.user.sip
        if message_id is not None:
            post["id"] = message_id
            if writer != author.sip:  # a support agent writes as its queue (§9): the key
                post["writer"] = writer  # is the agent's own (docs 12.21)
        stored_ack = (
            StoredAck(leg.reg.conn, call.call_id, leg.number, message_id, seq, call.domain, writer)
            if ack and message_id is not None
            else None
        )
        self._out.store(post, stored_ack)

    def seen(self, call_id: str, reader: str, seq: int) -> None:
        """``reader`` has read up to ``seq``: tell the other side of the live call (§7.4)."""
        call = self.calls.get(call_id)
        if call is None:
            return
        for leg in (call.caller, call.callee):
            if leg is not None and leg.reg.user.sip != reader and not leg.parked:
                self._send_fty(leg.reg, leg.number, {"type": "im_seen", "seq": seq})

    def stored(self, leg: Leg, ack: StoredAck) -> None:
        """A Post of this leg's is on disk: ``im_ack stored`` (PROTOCOL §7.5)."""
        if ack.message_id is None:
            return
        record = leg.call.acked(leg, ack.message_id)
        if record is not None and record.seq == ack.seq:
            record.state = "stored"
            self._send_ack(leg, ack.message_id, record)

    def stored_late(self, ack: StoredAck) -> None:
        """A Post is on disk but its writer's device has moved (or gone): the record says
        ``stored`` now, so a retry is answered, and a live writer is told."""
        call = self.calls.get(ack.call_id)
        if call is None or ack.message_id is None:
            return
        for (role, sip, message_id), record in list(call.acks.items()):
            if message_id == ack.message_id and record.seq == ack.seq and record.state == _PENDING:
                record.state = "stored"
                self._tell(call, role, sip, message_id, record)

    # -- ids across calls (§4.6 revised, docs 12.21) -------------------------------------

    @property
    def waiting_resends(self) -> int:
        """Resends waiting for their original to be on disk (``Switch.held``)."""
        return sum(len(legs) for legs in self._awaiting.values())

    def _answer_resend(self, leg: Leg, message_id: str, known: AckRecord) -> None:
        """A stored message's id again, from another call or device of its sender: the
        original's ack, and nothing relayed or stored."""
        self.resends["hub"] += 1
        if known.state == _PENDING:  # the original's "stored" is moments away
            waiting = self._awaiting.setdefault((leg.call.domain, leg.reg.user.sip, message_id), [])
            if leg not in waiting and len(waiting) < _MAX_WAITING:
                waiting.append(leg)
            return None
        # A copy: ``told`` belongs to the original writer's leg, not to this one.
        self._send_ack(leg, message_id, AckRecord(known.seq, known.time, known.state))

    def settled(self, ack: StoredAck) -> None:
        """A Post is on disk, whether or not its call still lives: its id's record says
        ``stored``, and resends that waited for it hear so (§4.6)."""
        if ack.message_id is None or not ack.author:
            return
        key = (ack.domain, ack.author, ack.message_id)
        record = self.sender_ids.get(*key)
        if record is not None and record.seq == ack.seq and record.state == _PENDING:
            record.state = "stored"
        for leg in self._awaiting.pop(key, ()):
            if record is not None and leg.reg.legs.get(leg.number) is leg:  # still on its call
                self._send_ack(leg, key[2], AckRecord(record.seq, record.time, record.state))

    def remember_stored(self, posts: Iterable[JsonObject]) -> None:
        """Posts a previous run of this hub journaled (docs 12.21): their ids are keys
        from the start, so a client resending them after a restart is answered."""
        for post in posts:
            key = _sender_key(post)
            record = _stored_record(post)
            if key is not None and record is not None:
                self.sender_ids.put(*key, record)

    def duplicate(self, post: JsonObject, original: JsonObject) -> None:
        """The messages service already held this Post's id under an earlier Post (one
        this hub had forgotten): the writer's ack is corrected to the original's seq and
        time, and the memory answers with them from now on."""
        key, corrected = _sender_key(post), _stored_record(original)
        if key is None or corrected is None:
            return
        self.resends["service"] += 1
        known = self.sender_ids.get(*key)
        if known is None or known.seq == post.get("seq"):  # from now on: the original
            self.sender_ids.put(*key, corrected)
        call = self.calls.get(str(post.get("callId")))
        if call is None:
            return  # the writer hears the original when it resends
        _, author, message_id = key
        for (role, sip, written), record in list(call.acks.items()):
            if sip == author and written == message_id and record.seq == post.get("seq"):
                record.seq, record.time = corrected.seq, corrected.time
                if record.state == _PENDING:
                    record.state = "stored"
                if call.group is None:
                    self._tell(call, role, sip, written, record)
                else:  # a group's writer is one of its joined legs
                    for leg in call.joined:
                        if leg.reg.user.sip == sip and not leg.parked:
                            self._send_ack(leg, written, record)

    def _typing(self, leg: Leg, typing: bool) -> None:
        """Typing is relayed, never held or stored; the hub owns its expiry (§4.6)."""
        if leg.call.group is not None:  # groups: relayed as sent, no expiry of the hub's
            item = self._typing_fty(leg, typing)
            for other in leg.call.joined:
                if other is not leg:
                    self._send_fty(other.reg, other.number, item)
            return None
        peer = leg.call.peer(leg)
        if peer is None or peer.parked:
            return None
        if not typing:
            return self._stop_typing(leg)
        if leg.typing is not None:
            leg.typing.cancel()
        deadline = self._clock.monotonic() + self._config.typing_ttl
        leg.typing = self._timers.arm(deadline, lambda: self._stop_typing(leg))
        self._send_fty(peer.reg, peer.number, self._typing_fty(leg, True))

    def _stop_typing(self, leg: Leg) -> None:
        timer, leg.typing = leg.typing, None
        if timer is None:
            return
        timer.cancel()
        peer = leg.call.peer(leg)
        if peer is not None and not peer.parked:
            self._send_fty(peer.reg, peer.number, self._typing_fty(leg, False))

    def _typing_fty(self, leg: Leg, typing: bool) -> JsonObject:
        user = leg.reg.user
        return {"type": "im_message", "typing": typing, "sender": user.sip, "sender_dn": user.dn}

    # -- release ------------------------------------------------------------------------

    def _release_by(self, leg: Leg, cause: Cause | None, disc: JsonObject | None = None) -> None:
        """``rel`` from either side ends the call for both (§4.7); in a group, only that
        device leaves. After ``disc`` (``disc``: what the other side hears before its
        ``rel``), the sender is answered ``rel`` too, as the network would."""
        self._stop_typing(leg)
        if leg.call.group is not None:
            self._leave_group(leg)
        else:
            self._release(leg.call, cause or _NORMAL, except_leg=leg, disc=disc)
        self._rel_back(leg, cause, disc)

    def _rel_back(self, leg: Leg, cause: Cause | None, disc: JsonObject | None) -> None:
        """The ``rel`` that answers a client's ``disc`` (none after its own ``rel``)."""
        if disc is not None:
            self._send_sig(leg, {"type": "rel", "cau": (cause or _NORMAL).to_json()})

    def _ring_timeout(self, call: Call) -> None:
        call.ring = None
        self._release(call, hub_cause(Q931.NO_ANSWER))

    def _release(
        self,
        call: Call,
        cause: Cause,
        except_leg: Leg | None = None,
        disc: JsonObject | None = None,
    ) -> None:
        if self.calls.pop(call.call_id, None) is None:
            return

        if call.ring is not None:
            call.ring.cancel()
            call.ring = None
        caller = call.caller
        if call.held and not call.stored:  # never reached the callee, nor stored for them
            self._notify_offline(call, [held.im_message for held in call.held], "unanswered")
        if caller is not None and caller is not except_leg and call.held:
            self._report_undelivered(call, caller)
        call.held, call.held_bytes = [], 0
        self._report_parked(call, except_leg)
        for leg in call.legs():
            if leg is except_leg:
                self._forget(leg)
            elif (
                except_leg is not None
                and except_leg.role is Role.CALLEE
                and leg.role is Role.CALLEE
            ):
                # one device declined: the user's other devices stop ringing (§4.5, §4.7)
                self._end_leg(leg, hub_cause(Q931.NON_SELECTED_USER_CLEARING))
            else:
                self._end_leg(leg, cause, disc)
        if call.support is not None:
            by = except_leg.reg.user.sip if except_leg is not None else None
            self.support.closed(call, cause.num, by)

    def _drop_offer(self, leg: Leg) -> None:
        """An offered device went away; with no device left the caller hears 18."""
        call = leg.call
        self._forget(leg)
        if leg in call.offers:
            call.offers.remove(leg)
        if call.support is not None:
            return None  # a support chat waits for the queue's other agents
        if not call.offers and call.callee is None:
            self._release(call, hub_cause(Q931.NO_USER_RESPONDING))

    def _report_undelivered(self, call: Call, caller: Leg) -> None:
        held, call.held, call.held_bytes = call.held, [], 0
        for message in held:
            ack: JsonObject = {"type": "im_ack", "seq": message.im_message["seq"]}
            if message.id is not None:
                ack["id"] = message.id
                record = call.acked(caller, message.id)
                if record is not None:
                    record.state = "not_delivered"
            ack["state"] = "not_delivered"
            self._send_fty(caller.reg, caller.number, ack)

    def _report_parked(self, call: Call, except_leg: Leg | None) -> None:
        """Messages that waited for a detached device that never came back (§4.9): their
        writers learn they were stored (a licensed chat) or not delivered."""
        if call.group is not None or not any(r.state == "held" for r in call.acks.values()):
            return
        state = "stored" if call.stored else "not_delivered"
        for (role, sip, message_id), record in call.acks.items():
            if record.state != "held":
                continue
            record.state = state
            writer = self._writer(call, role, sip)
            if writer is not None and writer is not except_leg:
                self._send_ack(writer, message_id, record)

    def _end_leg(self, leg: Leg, cause: Cause, disc: JsonObject | None = None) -> None:
        if disc is not None and not leg.parked:  # the other side's disc, then our rel
            self._send_sig(leg, {**disc, "cau": cause.to_json()})
        self._send_sig(leg, {"type": "rel", "cau": cause.to_json()})
        self._forget(leg)

    def _forget(self, leg: Leg) -> None:
        leg.state = LegState.RELEASED
        if leg.typing is not None:
            leg.typing.cancel()
            leg.typing = None
        if leg.reg.legs.get(leg.number) is leg:
            del leg.reg.legs[leg.number]

    def _undelivered(
        self, reg: Registration, callee: UserConfig, messages: Iterable[ImMessage], cause: str
    ) -> None:
        """PROTOCOL §9.6 ``message.offline``: messages nobody received nor stored."""
        for message in messages:
            if message.data:
                try:
                    text = sanitize(message.data[: self._max_message], message.mime)
                except BadMime:
                    continue  # never a message: nothing was lost
                self._out.notify(
                    "message.offline",
                    {
                        "domain": reg.domain,
                        "from": reg.user.sip,
                        "from_dn": reg.user.dn,
                        "to": callee.sip,
                        "text": text,
                        "mime": "text/html",
                        "reason": cause,
                    },
                )

    def _notify_offline(self, call: Call, items: list[JsonObject], cause: str) -> None:
        """``message.offline`` for relayed items (already sanitized) that never arrived."""
        for item in items:
            self._out.notify(
                "message.offline",
                {
                    "domain": call.domain,
                    "from": call.caller_user.sip,
                    "from_dn": call.caller_user.dn,
                    "to": call.callee_user.sip,
                    "text": item.get("data", ""),
                    "mime": "text/html",
                    "reason": cause,
                },
            )

    def _refuse(self, reg: Registration, number: int, cause: Q931) -> None:
        if self.tracer.signalling:
            self._note(reg, number, f"refused: rel cause {int(cause)} ({cause.name.lower()})")
        self._send_raw(reg, number, {"type": "rel", "cau": hub_cause(cause).to_json()})

    def _note(self, reg: Registration, number: int, text: str) -> None:
        user = reg.user
        self.tracer.record(
            "signalling", f"call {number}: {text}", conn=reg.conn, user=user.sip, domain=reg.domain
        )

    # -- sending ------------------------------------------------------------------------

    def _hub_event(self, leg: Leg, event: Event, sig: JsonObject) -> None:
        """Tell a leg what happened, if its state table lets that happen now."""
        next_state = hub_event(leg.role, leg.state, event)
        if next_state is not None:
            if self.tracer.signalling:
                change = f"{leg.state.value} -> {next_state.value}"
                self._note(leg.reg, leg.number, f"hub {sig.get('type')}: {change}")
            leg.state = next_state
            if leg.resume is None:  # a resumed call learns its state from the replay
                self._send_sig(leg, sig)

    def _send_ack(self, leg: Leg, message_id: str, record: AckRecord) -> None:
        record.told = not leg.parked
        if not record.told:
            return None  # told after the replay (``_replay``)
        ack = {
            "type": "im_ack",
            "id": message_id,
            "seq": record.seq,
            "time": record.time,
            "state": record.state,
        }
        self._send_fty(leg.reg, leg.number, ack)

    def _send_fty(self, reg: Registration, number: int, item: JsonObject) -> None:
        self._send_raw(reg, number, {"type": "facility", "fty": [item]})

    def _send_sig(self, leg: Leg, sig: JsonObject) -> None:
        self._send_raw(leg.reg, leg.number, sig)

    def _send_raw(self, reg: Registration, number: int, sig: JsonObject) -> None:
        message: JsonObject = {"api": "PbxSignal", "mt": "Signaling"}
        if reg.src is not None:
            message["src"] = reg.src
        message["call"] = number
        message["sig"] = sig
        self._out.send(reg.conn, message)


_MAX_WAITING = 8
"""Resends of one id waiting for their original's "stored", at most (a client retrying
in a loop must not pile up legs)."""

_PENDING = "pending"
"""Internal ack state of a message the hub answered for, until its Post is on disk."""

_HUB_FTY = frozenset(
    {
        "im_setup",
        "name_identification",
        "im_ack",
        "im_seen",
        "resumed",
        "presence_notify",
        "presence_publish",
        "queue",
    }
)
"""Facility types only the hub writes: a client's copies are dropped, never passed on,
so no peer can fake a name, an acknowledgement or a presence state."""


def _listeners(leg: Leg) -> list[Leg]:
    """The legs that hear what ``leg`` sends: the other members' in a group call, else
    the connected peer's (none before ``conn``)."""
    call = leg.call
    if call.group is not None:
        return [other for other in call.joined if other is not leg]
    peer = call.peer(leg)
    return [] if peer is None else [peer]


def _sender_key(post: JsonObject) -> SenderKey | None:
    """Whose client id a Post carries: (tenant, writer, id); the writer is the author
    unless an agent wrote as its queue (``writer``, docs 12.21)."""
    message_id, domain = post.get("id"), post.get("domain")
    writer = post.get("writer", post.get("author"))
    if isinstance(message_id, str) and isinstance(domain, str) and isinstance(writer, str):
        return (domain, writer, message_id)
    return None


def _stored_record(fields: JsonObject) -> AckRecord | None:
    """``stored`` with the ``seq`` and ``time`` (ms) of a Post or of a PostResult's
    ``original``."""
    seq, time_ms = fields.get("seq"), fields.get("time")
    if type(seq) is int and type(time_ms) is int:
        return AckRecord(seq, time_ms // 1000, "stored")
    return None


def _relayed_item(
    leg: Leg,
    now: int,
    seq: int,
    data: str,
    raw: ImMessage,
    *,
    mime: str = "text/html",
    attach: bool = True,
) -> JsonObject:
    """The ``im_message`` as receivers get it (PROTOCOL §12.5), as a dict: for messages
    held until ``conn``, for group calls and for application data (another ``mime``, no
    attachments); a one-to-one relay builds its frame as text (``_relay_text``)."""
    user = leg.reg.user
    item: JsonObject = {
        "type": "im_message",
        "sender": user.sip,
        "sender_dn": user.dn,
        "time": now,
        "seq": seq,
        "mime": mime,
        "data": data,
    }
    if attach and raw.attach is not None:
        item["attach"] = raw.attach
    if raw.subject is not None:
        item["subject"] = raw.subject
    return item


def _relay_text(sender: Leg, receiver: Leg, time: int, seq: int, html: str, raw: ImMessage) -> str:
    """The relayed ``Signaling`` frame, built from pieces (the hot path, §4.6).

    Byte for byte what ``encode`` makes of the same message (a test holds it to that):
    everything up to ``"time":`` is fixed for the receiving leg, so it is encoded once.
    """
    head = receiver.relay_head
    src = receiver.reg.src
    if head is None or head[0] is not src:
        envelope: JsonObject = {"api": "PbxSignal", "mt": "Signaling"}
        if src is not None:
            envelope["src"] = src
        envelope["call"] = receiver.number
        user = sender.reg.user
        head = receiver.relay_head = (
            src,
            encode(envelope)[:-1]
            + ',"sig":{"type":"facility","fty":[{"type":"im_message","sender":'
            + encode_string(user.sip)
            + ',"sender_dn":'
            + encode_string(user.dn)
            + ',"time":',
        )
    text = f'{head[1]}{time},"seq":{seq},"mime":"text/html","data":{encode_string(html)}'
    if raw.attach is not None:
        text += ',"attach":' + encode_string(raw.attach)
    if raw.subject is not None:
        text += ',"subject":' + encode_string(raw.subject)
    return text + "}]}}"


def _disc_of(sig: Sig) -> JsonObject:
    """What the other side hears of a client's ``disc`` (or ``progress`` with a cause)
    before its ``rel``: the same type and documented fields, and the facilities a peer
    may see; the cause is set where it is sent."""
    disc: JsonObject = {"type": sig.type, **(sig.fields or {})}
    passed = [item for item in sig.fty if item["type"] not in _HUB_FTY]
    if passed:
        disc["fty"] = passed
    return disc


def _own_tenant_sip(reg: Registration, sig: Sig) -> str | None:
    """The user part of ``cd.sip`` when it names the caller's own tenant (or none)."""
    sip = sig.cd.sip if sig.cd is not None else None
    if not sip:
        return None
    sip, _, domain = sip.partition("@")
    if domain and domain.lower() != reg.domain:
        return None
    return sip


def _endpoint(sip: str, num: str) -> JsonObject:
    return {"sip": sip, "num": num} if num else {"sip": sip}


def _ack_not_delivered(message_id: str) -> JsonObject:
    return {"type": "im_ack", "id": message_id, "state": "not_delivered"}
