"""A switch's seat in a cluster: the lookups its setups wait for, and the frames other
switches send it (SCALE.md decision 10).

Theory of operation: a standalone switch has no seat and pays nothing for one. A
switch in a cluster first builds the parts of its seat its call core and its devices
are given (``seat_parts``: its registrations in the shared book, the stand-ins, the
proxy legs, claims and homes), then the call core and the devices, then this seat,
given all of them. A ``setup`` first asks the book, through a ``Lookup`` action, where
the users it needs are registered (the callee, a queue's agents, a group's members);
the setup waits here and runs when ``Switch.looked_up`` brings the answer, with
stand-ins for the devices found elsewhere (``remote_legs``). Frames from other switches
are sorted here: those about this switch's own devices go to ``proxy_legs``, those
about remote legs of calls homed here run through the call core, and so do the delivery
reports (``Reached``), which the end of each batch sends back for what reached this
switch's devices (docs 12.39). ``node_down`` ends both sides as a lost link would.

A registration resumed on another switch (docs 12.43) is let go here on that switch's
``TakeOver``; a home hearing ``DeviceMoved`` points the device's stand-in at its new
switch and offers the calls again, as after ``DeviceBack``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence

from config import Config

from ..actions import Claimed, LookedUp
from ..callstate import Role
from ..causes import Q931, hub_cause
from ..codec import parse_signaling
from ..errors import BadState, ProtocolError
from ..frames import rel
from ..frames import signaling as envelope
from ..groups import GroupBook
from ..messages import Inbound, Sig, Signaling
from ..registry import Registration
from .frames import (
    AgentChanged,
    BoardNews,
    BoardState,
    DeviceAway,
    DeviceBack,
    DeviceGone,
    DeviceMoved,
    FromDevice,
    Join,
    NodeFrame,
    Offer,
    QueueAnswer,
    QueueAsk,
    Reached,
    Refused,
    Release,
    TakeOver,
    ToLeg,
)
from .group_homes import GroupKey
from .moves import Recalling
from .needs import CallCore, DeviceEnds, Guard
from .proxy_legs import LOST
from .reoffers import Reoffers
from .seat_parts import Parked, SeatParts, device_record

__all__ = ["CallCore", "DeviceEnds", "Guard", "NodeSeat"]

log = logging.getLogger(__name__)


SupportFrame = BoardNews | BoardState | QueueAsk | QueueAnswer | AgentChanged


class NodeSeat:
    """Built after the call core and the devices, and given them with the parts they
    were given before (``seat_parts``)."""

    @staticmethod
    def of(
        parts: SeatParts | None,
        core: CallCore,
        ends: DeviceEnds,
        guard: Guard,
        groups: GroupBook,
        config: Config,
    ) -> NodeSeat | None:
        """The seat of a switch in a cluster (one with ``parts``); None for one alone."""
        if parts is None:
            return None
        limit = config.signaling.max_calls
        return NodeSeat(parts, core=core, ends=ends, guard=guard, groups=groups, max_calls=limit)

    def __init__(
        self,
        parts: SeatParts,
        *,
        core: CallCore,
        ends: DeviceEnds,
        guard: Guard,
        groups: GroupBook,
        max_calls: int,
    ) -> None:
        """``core`` runs calls homed here, ``ends`` gives a lost remote device its grace
        and ends it, ``guard`` runs a frame that waited; a setup's users are found in the
        parts' tenants and in ``groups``."""
        self.name = parts.name
        self._parts = parts
        self._out = parts.outbox
        self.core, self.ends, self._guard = core, ends, guard
        self._tenants = parts.tenants
        self._groups = groups
        self._max_calls = max_calls
        """Calls a device may be part of at once: its legs here and its proxy legs."""
        self.remote, self.proxies = parts.remote, parts.proxies
        self.claims, self.homes = parts.claims, parts.homes
        self.boards = parts.boards
        self.boards.attach(core.support)
        self._requests = parts.requests
        self._reoffers = Reoffers(
            name=self.name,
            outbox=self._out,
            requests=parts.requests,
            remote=parts.remote,
            devices=parts.devices,
            keep=parts.keep_also,
            chats=core.support,
        )
        self._parked: dict[int, Parked] = {}
        self._held: dict[tuple[Registration, int], Parked] = {}
        """The same waiting setups, by device and call number."""

    def held(self) -> dict[str, int]:
        return {
            "remote_devices": self.remote.held(),
            "proxy_legs": self.proxies.held(),
            "lookups_waiting": len(self._parked) + len(self._parts.moves) + self._reoffers.held(),
            "claims": self.claims.held() + self.homes.held(),
            **self.boards.held(),
        }

    # -- setups wait for their lookup --------------------------------------------------------

    def signaling(self, conn: int, reg: Registration, inbound: Inbound, msg: Signaling) -> bool:
        """A device's frame that is the cluster's business: on a call homed elsewhere
        (checked here, forwarded to the home), or a new call's ``setup``, which waits for
        its lookup (and a group's for its home). False leaves it to the call core, as on
        a standalone switch."""
        held = self._held.get((reg, msg.call)) if self._held else None
        if held is not None:  # its setup waits: this runs after it
            held.later.append((inbound, msg))
            return True
        proxy = self.proxies.get(reg, msg.call)
        if proxy is not None:
            self.proxies.on_signaling(proxy, msg, inbound.body["sig"])
            return True
        if msg.sig.type != "setup" or msg.call in reg.legs:
            return False
        sips, group = self._wanted(reg.domain, msg.sig)
        proxied = self.proxies.count(reg)
        if (proxied or group is not None) and len(reg.legs) + proxied >= self._max_calls:
            self._full(reg, msg.call)  # the home would not count this switch's calls
            return True
        if not msg.sig.has_fty("im_setup"):  # a presence subscription needs no lookup: the
            return False  # user is followed on every switch (presence_shares)
        parked = Parked(conn, reg, inbound, msg)
        if group is not None:
            parked.settle = functools.partial(self._settle, group)
            if not self.homes.mine(group):
                self._held[reg, msg.call] = parked
                self.homes.ask(group, parked)
                return True
        if not sips:
            return False
        self._held[reg, msg.call] = parked
        self._lookup(parked, sips)
        return True

    def _full(self, reg: Registration, number: int) -> None:
        """The device is in ``max_calls`` calls already: its ``setup`` is refused with
        47, as the call core refuses it on one switch."""
        refusal = rel(hub_cause(Q931.RESOURCE_UNAVAILABLE))
        self._out.send(reg.conn, envelope(reg.src, number, refusal))

    def _lookup(self, parked: Parked, sips: tuple[str, ...]) -> None:
        """Hold a new call's ``setup`` until the book says where its users are."""
        request = next(self._requests)
        self._parked[request] = parked
        self._out.lookup(request, parked.reg.domain, sips)

    def looked_up(self, answer: LookedUp) -> None:
        """The parked setup of ``answer`` runs, with stand-ins for what was found
        elsewhere, unless its device has moved on meanwhile."""
        parked = self._parked.pop(answer.request, None)
        if parked is None:
            self._reoffers.looked_up(answer)  # an agent's devices, for the chats waiting here
            return
        sips, _ = self._wanted(parked.reg.domain, parked.msg.sig)
        found = [record for record in answer.devices if record.node != self.name]
        self.remote.refresh(parked.reg.domain, sips, found)
        devices = self.remote.hold(parked.reg.domain, sips)
        try:
            self._run(parked, functools.partial(self.core.on_signaling, parked.reg, parked.msg))
        finally:
            self._keep(parked, devices)

    def _keep(self, parked: Parked, devices: tuple[Registration, ...]) -> None:
        """The stand-ins a setup found stay while its call may offer to them: a group's
        while its live call lasts, another's while the caller's leg does."""
        if not devices:
            return
        _, group = self._wanted(parked.reg.domain, parked.msg.sig)
        leg = parked.reg.legs.get(parked.msg.call)
        if group is not None and self.core.group_live(*group):
            self._parts.keep_for_group(group, devices)
        elif group is None and leg is not None and leg.role is Role.CALLER:
            self._parts.keep_for_call(leg, devices)
        else:
            self.remote.release(devices)

    def _run(self, parked: Parked, setup: Callable[[], None]) -> None:
        """The waiting ``setup`` goes on, then the frames sent after it; nothing runs if
        the device's connection is gone. A group's home is settled either way."""
        reg = parked.reg
        if self._held.get((reg, parked.msg.call)) is parked:
            del self._held[reg, parked.msg.call]
        try:
            if reg.conn != parked.conn or self._parts.ref(reg) is None:
                return  # the device moved on (closed, resumed elsewhere, unregistered)
            self._guard(parked.conn, parked.inbound, setup)
            for inbound, msg in parked.later:
                self._guard(parked.conn, inbound, functools.partial(self._again, reg, msg, inbound))
        finally:
            if parked.settle is not None:
                parked.settle()

    def _again(self, reg: Registration, msg: Signaling, inbound: Inbound) -> None:
        """A frame that waited behind a setup, routed as ``Switch`` routes a new one."""
        if not self.signaling(reg.conn, reg, inbound, msg):
            self.core.on_signaling(reg, msg)

    def _wanted(self, domain: str, sig: Sig) -> tuple[tuple[str, ...], GroupKey | None]:
        """The users a setup may be offered to: its callee, a queue's agents or a
        group's members, in the caller's tenant; and the group it calls, if any."""
        cd = sig.cd
        tenant = self._tenants.tenant(domain)
        if cd is None or tenant is None:
            return (), None
        sip, _, named = (cd.sip or "").partition("@")
        if named and named.lower() != domain:
            return (), None
        user = tenant.resolve(sip or None, cd.num)
        if user is not None:
            return (user.sip,), None
        queue = tenant.queue(sip) if sip else None
        if queue is not None:
            return queue.agents, None
        group = self._groups.get(domain, sip) if sip else None
        if group is None:
            return (), None
        return tuple(sorted(group.members)), (domain, group.sip)

    # -- a group's home ------------------------------------------------------------------------

    def claimed(self, answer: Claimed) -> None:
        """The answer to a ``Claim``: a group's home, or an agent's room for a chat."""
        found = self.homes.answered(answer)
        if found is None:
            self.claims.claimed(answer)
            return
        parked, home, early = found
        if home is None:  # this switch is the group's home now: the setup runs here
            self._lookup(parked, self._wanted(parked.reg.domain, parked.msg.sig)[0])
        else:
            self._run(parked, functools.partial(self._join, home, parked))
        for run in early:  # Joins that came before the answer, for it said we are home
            run()

    def _join(self, home: str, parked: Parked) -> None:
        """Another switch is the group's home: the device's setup goes there."""
        reg, number = parked.reg, parked.msg.call
        ref = self._parts.ref(reg)
        if ref is None or number in reg.legs:
            return
        self.proxies.join(home, reg, number, ref)
        self._parts.homed(reg, home)
        record = device_record(self.name, ref, reg)
        self._out.forward(home, Join(record, number, parked.inbound.body["sig"]))

    def _joined(self, node: str, frame: Join) -> None:
        """A device elsewhere sets up this switch's group call: run as its own setup. A
        switch speaks only for its own devices: a Join naming another's is dropped."""
        record = frame.record
        if record.node != node:
            log.warning("Join from switch %s for a device of %.40s dropped", node, record.node)
            return
        inbound = Inbound("Signaling", "PbxSignal", None, {"call": frame.leg, "sig": frame.sig})
        msg = parse_signaling(inbound)  # it parsed where the device is
        _, group = self._wanted(record.domain, msg.sig)
        if group is not None and not self.homes.mine(group) and self.homes.claiming(group):
            self.homes.after_answer(group, functools.partial(self._joined, node, frame))
            return  # the sender found this switch home: Redis's answer is on its way
        valid = group is not None and self.homes.mine(group)
        device = self.remote.ensure(record) if valid else None
        if group is None or device is None:
            self._out.forward(node, Release(record.ref, frame.leg, LOST))
            return
        try:
            self.core.on_signaling(device, msg)
        except ProtocolError as exc:  # as a local setup's: an Error, and no leg
            self._out.forward(node, Refused(record.ref, frame.leg, exc.code, exc.text))
        finally:
            self._settle(group)
            if not device.legs:  # refused: no call keeps it
                self.remote.idle(device)

    def _settle(self, group: GroupKey) -> None:
        if not self.core.group_live(*group):
            self._parts.group_over(group)

    # -- frames from other switches ------------------------------------------------------------

    def from_nodes(self, node: str, frames: Sequence[NodeFrame]) -> None:
        for frame in frames:
            try:
                self._frame(node, frame)
            except Exception:
                log.exception("internal error handling a frame from switch %s", node)
        self._out.report()  # what reached this switch's devices, once for the batch

    def _frame(self, node: str, frame: NodeFrame) -> None:
        kind = type(frame)
        if kind is ToLeg or kind is Release:
            return self.proxies.to_leg(node, frame)  # type: ignore[arg-type]
        if isinstance(frame, Reached):
            return self._reached(node, frame)
        if isinstance(frame, FromDevice):
            return self._from_device(node, frame)
        if isinstance(frame, Offer):
            return self._offer(node, frame)
        if isinstance(frame, Refused):
            return self.proxies.refused(node, frame)
        if isinstance(frame, Join):
            return self._joined(node, frame)
        if isinstance(frame, TakeOver):
            return self._taken_over(node, frame)
        if isinstance(frame, DeviceMoved):
            return self._moved(node, frame)
        if isinstance(frame, BoardNews | BoardState | QueueAsk | QueueAnswer | AgentChanged):
            return self._support(node, frame)
        device = self.remote.get(node, frame.device)
        if device is None:
            return None
        if isinstance(frame, DeviceAway):
            return self._away(device)
        if isinstance(frame, DeviceBack):
            self.remote.back(device)
            return self.core.resume(device, dict(frame.seqs))
        if isinstance(frame, DeviceGone):
            self.ends.end(device, Q931(frame.cause))

    def _support(self, node: str, frame: SupportFrame) -> None:
        """Live support's frames: boards, Queue requests to a chat's home, and agents
        who may take the chats waiting here (12.46)."""
        boards = self.boards
        if isinstance(frame, AgentChanged):
            self._reoffers.heard(frame)
        elif isinstance(frame, BoardNews):
            boards.news(node, frame)
        elif isinstance(frame, BoardState):
            boards.state(node, frame)
        elif isinstance(frame, QueueAsk):
            boards.asked(node, frame)
        else:
            boards.answered(node, frame)

    def _reached(self, node: str, frame: Reached) -> None:
        """Switch ``node`` reports messages in its devices' connections' queues."""
        for ref, number, seq in frame.legs:
            device = self.remote.get(node, ref)
            leg = device.legs.get(number) if device is not None else None
            if leg is not None:
                self.core.reached(leg, seq)

    def _away(self, device: Registration) -> None:
        """Nothing reaches a device elsewhere now: what was sent to it and not reported
        is held, and its calls wait as a local device's do when its link drops."""
        self.remote.away(device)
        self.core.unreached(list(device.legs.values()))
        self.core.detach(device)

    def _offer(self, home: str, frame: Offer) -> None:
        """A home offers a call to a device of this switch's."""
        reg = self._parts.own(frame.device)
        if reg is None:  # gone, or moved to another switch: the home hears where
            moved = self._parts.moves.where(frame.device)
            gone = DeviceGone(frame.device, int(Q931.NORMAL_CLEARING))
            self._out.forward(home, moved or gone)
        elif not reg.attached:  # a re-offer after a resume, and the device dropped again
            self._parts.away_from(reg, home)
            self._out.forward(home, DeviceAway(frame.device))
        elif len(reg.legs) + self.proxies.count(reg) >= self._max_calls:  # as a busy device
            refusal = rel(hub_cause(Q931.RESOURCE_UNAVAILABLE))  # declines: the home hears 47
            self._out.forward(home, FromDevice(frame.device, frame.leg, refusal))
        else:
            self.proxies.offer(home, reg, frame)
            self._parts.homed(reg, home)

    def _from_device(self, node: str, frame: FromDevice) -> None:
        """A remote device's event on its leg of a call homed here: as a local one's. A
        device whose stand-in went with its last leg is answered as on a call number
        without a call (its frame crossed the leg's end)."""
        device = self.remote.get(node, frame.device)
        try:
            if device is None:
                return _idle(frame)
            inbound = Inbound("Signaling", "PbxSignal", None, {"call": frame.leg, "sig": frame.sig})
            self.core.on_signaling(device, parse_signaling(inbound))
        except ProtocolError as exc:
            self._out.forward(node, Refused(frame.device, frame.leg, exc.code, exc.text))

    # -- resume on another switch (docs 12.43) -------------------------------------------------

    def holds(self, conn: int, inbound: Inbound) -> bool:
        """Whether a frame of connection ``conn`` waits behind its Register's recall."""
        return self._parts.moves.holds(conn, inbound)

    def recalled(self, request: int) -> Recalling | None:
        """The Register that waited for the answer to ``request``, now to go on."""
        return self._parts.moves.answered(request)

    def _taken_over(self, node: str, frame: TakeOver) -> None:
        """A client resumed registration ``frame.device`` of this switch on ``node``."""
        reg = self._parts.own(frame.device)
        if reg is not None:  # else it ended first (its grace ran out, it unregistered)
            self.ends.moved_away(reg, node, frame.ref, frame.seqs)

    def _moved(self, node: str, frame: DeviceMoved) -> None:
        """A device in calls homed here lives on switch ``frame.to`` now: its stand-in
        follows it there (or, moved here, its calls are its registration's here), and
        its calls are offered again and replayed after the client's seqs. Told by both
        switches, it moves once; a switch speaks only for a device it had or has."""
        if node not in (frame.node, frame.to):
            log.warning("DeviceMoved from switch %s for %.40s dropped", node, frame.node)
            return
        device = self.remote.get(frame.node, frame.device)
        if device is None:  # no call here holds it, or it moved already
            return
        if frame.to != self.name:
            return self._follow(device, frame.to, frame.ref, frame.seqs)
        reg = self._parts.own(frame.ref)
        if reg is not None:  # a call here offered to its old switch after it came here
            self.remote.take(frame.node, frame.device)
            return self.ends.moved_here(device, reg, frame.seqs)
        onward = self._parts.moves.where(frame.ref)  # and it moved on since
        if onward is None:
            return self.ends.end(device, Q931.TEMPORARY_FAILURE)
        self._follow(device, onward.to, onward.ref, onward.seqs)

    def _follow(
        self, device: Registration, to: str, ref: int, seqs: tuple[tuple[str, int], ...]
    ) -> None:
        other = self.remote.get(to, ref)
        if other is not None:  # a lookup found the new registration first (rare):
            self.ends.end(other, Q931.TEMPORARY_FAILURE)  # its offers end, the calls go on
        if device.attached:  # its old switch had not said it was away
            self._away(device)
        self.remote.rekey(device, to, ref)
        self.ends.remote_back(device)
        self.core.resume(device, dict(seqs))

    def node_up(self, node: str) -> None:
        """Switch ``node`` is live (the bus says so at each heartbeat): it learns this
        switch's support chats, once."""
        self.boards.node_up(node)

    def node_down(self, node: str) -> None:
        """Switch ``node`` is gone: calls homed there end for this switch's devices, and
        its devices in calls homed here are away as if their link were lost."""
        self.proxies.home_lost(node)
        self.boards.node_down(node)
        for device in self.remote.on_node(node):
            self._away(device)
            device.drop_cause = int(Q931.TEMPORARY_FAILURE)
            self.ends.remote_lost(device)


def _idle(frame: FromDevice) -> None:
    """A frame on a leg that is over, of a device no call here knows any more: a ``rel``
    or ``disc`` crossed the leg's end and is dropped; anything else is refused."""
    kind = frame.sig.get("type")
    if kind not in ("rel", "disc"):
        raise BadState(f"{str(kind)[:40]} not allowed in state idle")
