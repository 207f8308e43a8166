"""A client's ``setup``: where a new call goes and how it is offered (PROTOCOL §4.4, §4.5).

Theory of operation: a ``setup`` on a call number the client has no call on is the
``CLIENT`` table's ``idle`` row. Its ``cd`` is resolved in the caller's own tenant: a
user (a chat, or with ``presence_subscribe`` a presence subscription), else a group
(``group_calls.py``), else a support queue (``queues.py``). A chat to a user is offered
with negative call numbers to every ``NO_MEDIA_CALL`` registration of the callee and
rings until ``signaling.ring_timeout``; a licensed callee with no registration is
answered by the hub itself (its messages are ``pending`` until stored). Nobody to offer
it to ends it at once: ``rel`` 18 (or 47 when every device is busy), the messages it
carried ``not_delivered``. Messages the ``setup`` carries are then written as if sent
after it (``relay.py``).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from config import QueueConfig, SignalingConfig, UserConfig

from ..calls import Call, Leg
from ..callstate import Event, LegState, Role, client_event
from ..causes import Q931
from ..directory_view import TenantLookup
from ..errors import AlreadyTaken, BadState
from ..frames import HUB_FTY, call_proc, conn, endpoint, setup_offer, with_ids
from ..messages import Sig
from ..nodes.directory import DeviceDirectory
from ..presence import Presence
from ..queues import Queues
from ..registry import Registration
from ..wire import Wire
from .control import Control
from .delivery import Acks
from .group_calls import GroupCalls
from .legs import Legs
from .relay import Relay

__all__ = ["Setup"]

JsonObject = dict[str, Any]


class Setup:
    def __init__(
        self,
        *,
        wire: Wire,
        legs: Legs,
        acks: Acks,
        relay: Relay,
        control: Control,
        groups: GroupCalls,
        support: Queues,
        presence: Presence,
        calls: dict[str, Call],
        tenants: TenantLookup,
        registry: DeviceDirectory,
        config: SignalingConfig,
        licensed: Callable[[UserConfig], bool],
    ) -> None:
        self._licensed = licensed
        self._wire = wire
        self._legs = legs
        self._acks = acks
        self._relay = relay
        self._control = control
        self._groups = groups
        self._support = support
        self._presence = presence
        self._calls = calls
        self._tenants = tenants
        self._registry = registry
        self._config = config

    def idle(self, reg: Registration, number: int, event: Event | None, sig: Sig) -> None:
        """A frame on a call number without a call: ``setup`` starts one."""
        if event is Event.REL or event is Event.DISC:
            return None  # crossed with our own rel: the call is already gone
        if event is not Event.SETUP and number in reg.taken:  # §9.2: another agent
            raise AlreadyTaken("another agent took this chat")  # answered first (26 follows)
        if event is None:
            raise BadState(f"{sig.type} not allowed in state idle")
        client_event(Role.CALLER, LegState.IDLE, event)  # BadState unless setup
        self.setup(reg, number, sig)

    def setup(self, reg: Registration, number: int, sig: Sig) -> None:
        if number < 0:
            raise BadState("setup not allowed on a negative call number (those are the hub's)")
        chat = sig.has_fty("im_setup")
        if not chat and not sig.has_fty("presence_subscribe"):
            return self._legs.refuse(reg, number, Q931.PROTOCOL_ERROR)
        if len(reg.legs) >= self._config.max_calls:
            return self._legs.refuse(reg, number, Q931.RESOURCE_UNAVAILABLE)
        callee, refusal = self._resolve(reg, sig)
        if callee is None:
            return self._not_a_user(reg, number, sig, refusal, chat)
        if not chat:
            return self._presence.subscribe(reg, number, callee)
        self._chat_to(reg, number, sig, callee)

    def _not_a_user(
        self, reg: Registration, number: int, sig: Sig, refusal: Q931, chat: bool
    ) -> None:
        """A chat to a group or a support queue of the caller's tenant, or refused."""
        sip = _own_tenant_sip(reg, sig) if chat else None
        group = self._groups.named(reg.domain, sip) if sip else None
        if group is not None:
            leg = self._groups.join(reg, number, group)
            return self._write_all(leg, sig)
        queue = self._queue_named(reg, sip)
        if queue is None:
            return self._legs.refuse(reg, number, refusal)
        if self._legs.tracer.signalling:
            self._legs.note(reg, number, f"setup to queue {queue.sip}")
        self._support.call(reg, number, sig, queue)

    def _chat_to(self, reg: Registration, number: int, sig: Sig, callee: UserConfig) -> None:
        """A chat to a user: offered to each of its devices, answered for it, or refused."""
        reachable = [
            device
            for device in self._registry.of(reg.domain, callee.sip)
            if device.no_media
            and device is not reg
            and device.attached
            # a registration of a removed App object never gets a new user's calls
            and device.user.app == callee.app
        ]
        devices = [device for device in reachable if len(device.legs) < self._config.max_calls]
        if not reachable and self._licensed(callee):
            return self._answer_for_offline(reg, number, sig, callee)
        if not devices:
            return self._unreachable(reg, number, sig, callee, busy=bool(reachable))
        stored = self._licensed(reg.user) or self._licensed(callee)
        call = self._new_call(reg, callee, stored)
        caller = self.place(call, reg, number)
        passed = [item for item in sig.fty if item["type"] not in HUB_FTY]
        cg, cd = endpoint(reg.user.sip, reg.user.num), endpoint(callee.sip, callee.num)
        offer = setup_offer(cg, cd, reg.user.dn, passed)
        if self._legs.tracer.signalling:
            text = f"setup to {callee.sip}: offered to {len(devices)} device(s)"
            self._legs.note(reg, number, text)
        for device in devices:
            leg = Leg(call, device, device.allocate_offer_number(), Role.CALLEE, LegState.OFFERED)
            device.legs[leg.number] = leg
            call.offers.append(leg)
            self._wire.sig(leg, with_ids(offer, leg))
        self._control.arm_wait(call, self._config.ring_timeout)
        self._write_all(caller, sig)

    def _unreachable(
        self, reg: Registration, number: int, sig: Sig, callee: UserConfig, *, busy: bool
    ) -> None:
        if self._legs.tracer.signalling:
            why = "every device at max_calls" if busy else "no registered device"
            self._legs.note(reg, number, f"setup to {callee.sip}: {why}")
        self._acks.undelivered(reg, callee, sig.messages, cause="unreachable")
        self._acks.refused_at_setup(reg, number, sig.messages)
        cause = Q931.RESOURCE_UNAVAILABLE if busy else Q931.NO_USER_RESPONDING
        self._legs.refuse(reg, number, cause)

    def place(self, call: Call, reg: Registration, number: int) -> Leg:
        """The caller's leg of a new call, which the caller learns is proceeding."""
        caller = Leg(call, reg, number, Role.CALLER, LegState.SETUP_SENT)
        call.caller = caller
        reg.legs[number] = caller
        self._calls[call.call_id] = call
        self._legs.hub_event(caller, Event.CALL_PROC, call_proc(caller))
        return caller

    def _answer_for_offline(
        self, reg: Registration, number: int, sig: Sig, callee: UserConfig
    ) -> None:
        """A licensed callee with no registration: the hub answers and stores (§7.5)."""
        call = self._new_call(reg, callee, True)
        call.answered_by_hub = True
        caller = self.place(call, reg, number)
        self._legs.hub_event(caller, Event.CONN, conn(callee.dn))
        self._write_all(caller, sig)

    def _new_call(self, reg: Registration, callee: UserConfig, stored: bool) -> Call:
        max_ids = self._config.max_ids
        return Call(secrets.token_hex(16), reg.domain, max_ids, reg.user, callee, stored)

    def _write_all(self, leg: Leg | None, sig: Sig) -> None:
        """The messages a ``setup`` carried, as if written right after it."""
        if leg is not None:
            for message in sig.messages:
                self._relay.write(leg, message)

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

    def _queue_named(self, reg: Registration, sip: str | None) -> QueueConfig | None:
        tenant = self._tenants.tenant(reg.domain) if sip else None
        return tenant.queue(sip) if tenant is not None and sip else None


def _own_tenant_sip(reg: Registration, sig: Sig) -> str | None:
    """The user part of ``cd.sip`` when it names the caller's own tenant (or none)."""
    sip = sig.cd.sip if sig.cd is not None else None
    if not sip:
        return None
    sip, _, domain = sip.partition("@")
    if domain and domain.lower() != reg.domain:
        return None
    return sip
