"""The parts of a switch's seat in a cluster that its call core and its devices are given
(SCALE.md decision 10). They are built before both and are complete without them; the
seat that runs frames from other switches through the call core (``seat``) is built
after, and given these parts.

- This switch's own registrations, written to the cluster's ``DeviceBook`` under a
  number (``ref``) other switches name each by, with their snapshots (``snapshots``);
  the devices part tells of each one that comes, detaches, resumes or ends, and the
  homes of its calls hear of it.
- Resume on another switch (docs 12.43): a ``Register`` with a token this switch does
  not know waits for the cluster's snapshot (``recall``); a registration that moved
  here tells the switch it left and the homes of its calls (``moved_in``), and one that
  moved away is let go, its calls homed here kept for it there (``moved_away``).
- The stand-ins for devices on other switches (``remote_legs``) and the
  ``ReachableDevices`` the call core offers calls to; the proxy legs of this switch's
  devices in calls homed elsewhere (``proxy_legs``); support agents' claims and groups'
  homes; live support's boards and Queue requests across switches (``boards``).
- Which stand-ins each call holds: a call's while its caller's leg lives, a group's while
  its live call does. The call core tells of each leg's end and each group call's.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from config import Config

from ..calls import Leg
from ..causes import Q931
from ..directory_view import TenantLookup
from ..messages import Inbound, Signaling
from ..outbox import Outbox
from ..registry import Registration
from .agent_claims import AgentClaims
from .boards import NodeBoards
from .directory import DeviceBook, DeviceDirectory, ReachableDevices
from .frames import (
    DeviceAway,
    DeviceBack,
    DeviceGone,
    DeviceMoved,
    DeviceRecord,
    Snapshot,
    TakeOver,
)
from .group_homes import GroupHomes, GroupKey
from .moves import Moves, Recalling
from .proxy_legs import ProxyLegs, SlowReaders
from .remote_legs import RemoteDevices
from .snapshots import Snapshots, token_key

__all__ = ["Parked", "SeatParts", "device_record", "outbox_and_seat_parts"]


@dataclass(slots=True)
class Parked:
    """A setup waiting for its ``Lookup`` (or its group's home, which ``homes`` keeps it
    for while it asks)."""

    conn: int
    reg: Registration
    inbound: Inbound
    msg: Signaling
    settle: Callable[[], None] | None = None
    """For a group's setup: give the group's home back if the setup made no call."""
    later: list[tuple[Inbound, Signaling]] = field(default_factory=list)
    """The device's frames on the same call number meanwhile (a ``rel``, a message):
    they run after the setup, in order, as they would have on one switch."""


def outbox_and_seat_parts(
    name: str,
    book: DeviceBook | None,
    tenants: TenantLookup,
    registry: DeviceDirectory,
    config: Config,
    slow: SlowReaders,
) -> tuple[Outbox, SeatParts | None]:
    """A switch's outbox and, for one built with the cluster's ``book``, the parts of its
    seat: the stand-ins for devices elsewhere are built first, then the outbox that
    forwards their frames, then the parts, given both. A switch alone has no parts.
    ``slow``: how the switch finds a reader that is not keeping up and cuts it off (the
    proxy legs check it for a relayed message, docs 12.39)."""
    if book is None:
        return Outbox(), None
    remote = RemoteDevices(tenants=tenants)
    outbox = Outbox(remote.forward, remote.relay)
    max_message = config.limits.max_message
    parts = SeatParts(
        name,
        book,
        remote=remote,
        registry=registry,
        tenants=tenants,
        outbox=outbox,
        max_message=max_message,
        slow=slow,
        grace=config.signaling.resume_grace,
    )
    return outbox, parts


def device_record(node: str, ref: int, reg: Registration) -> DeviceRecord:
    """What other switches learn of a registration of ``node``'s."""
    return DeviceRecord(node, ref, reg.domain, reg.user.sip, reg.hw, reg.flags)


class SeatParts:
    def __init__(
        self,
        name: str,
        book: DeviceBook,
        *,
        remote: RemoteDevices,
        registry: DeviceDirectory,
        tenants: TenantLookup,
        outbox: Outbox,
        max_message: int,
        slow: SlowReaders,
        grace: float = 0.0,
    ) -> None:
        self.name = name
        self.tenants = tenants
        """Where a remote device's user is found, and a setup's users (by the seat)."""
        self._book = book
        self.outbox = outbox
        """The switch's, shared with the seat built after these parts."""
        self.remote = remote
        self.proxies = ProxyLegs(outbox=outbox, max_message=max_message, slow=slow)
        self.devices = ReachableDevices(registry, remote)
        """What the call core offers calls to: local registrations, then remote ones."""
        self.requests = itertools.count(1)
        """Numbers for the questions to the bus (lookups, claims): one answer entry point."""
        self.claims = AgentClaims(outbox, name, self.requests)
        """Support agents' ``max_chats`` across switches (given to the queues)."""
        self.homes: GroupHomes[Parked] = GroupHomes(outbox, name, self.requests)
        self.boards = NodeBoards(name, outbox, self.proxies, remote, tenants, self.record)
        """Boards of chats homed elsewhere, Queue requests to their homes (docs 12.46)."""
        self.snapshots = Snapshots(book, name, grace)  # a detached one's lasts ``grace`` s
        self.moves = Moves()
        self._start_books()

    def _start_books(self) -> None:
        """This switch's registrations by number, and what calls hold of other switches."""
        self._refs: dict[Registration, int] = {}
        self._own: dict[int, Registration] = {}
        self._waiting: dict[Registration, set[str]] = {}
        """Homes whose offer reached a device while it was away (told ``DeviceAway``): no
        proxy leg names them, yet its resume or end must reach them."""
        self._next_ref = itertools.count(1)
        self._call_holds: dict[Leg, tuple[Registration, ...]] = {}
        """The stand-ins each call's setup found, by the caller's leg."""
        self._group_holds: dict[GroupKey, tuple[Registration, ...]] = {}
        """The stand-ins of each group's members, while its live call is here."""

    # -- this switch's own registrations ----------------------------------------------------

    def ref(self, reg: Registration) -> int | None:
        """The number other switches know ``reg`` by; None if it is not one of ours."""
        return self._refs.get(reg)

    def record(self, reg: Registration) -> DeviceRecord | None:
        """What other switches know ``reg`` by; None if it is not one of ours."""
        ref = self._refs.get(reg)
        return device_record(self.name, ref, reg) if ref is not None else None

    def own(self, ref: int) -> Registration | None:
        return self._own.get(ref)

    def away_from(self, reg: Registration, home: str) -> None:
        """``home`` offered to ``reg`` while it was away, and was told so: its resume or
        its end reaches that home too."""
        self._waiting.setdefault(reg, set()).add(home)
        self.homed(reg, home)

    def homed(self, reg: Registration, home: str) -> None:
        """A call homed on ``home`` reached the device: a move must tell that home."""
        ref = self._refs.get(reg)
        if ref is not None:
            self.snapshots.homed(reg, ref, home)

    def registered(self, reg: Registration) -> None:
        ref = next(self._next_ref)
        self._refs[reg], self._own[ref] = ref, reg
        self._book.publish(device_record(self.name, ref, reg))
        self.snapshots.write(reg, ref)
        self.outbox.when_findable(reg.conn)  # its RegisterResult waits until others find it

    def detached(self, reg: Registration) -> None:
        ref = self._refs.get(reg)
        if ref is None:
            return
        self.snapshots.write(reg, ref)  # it expires with the resume grace now
        for home in {proxy.home for proxy in self.proxies.of_device(reg)}:
            self.outbox.forward(home, DeviceAway(ref))

    def resumed(self, reg: Registration, seqs: Sequence[tuple[str, int]], replaced: str) -> None:
        """A new connection took the device over with token ``replaced``, which works no
        more: each home offers its calls again."""
        ref = self._refs.get(reg)
        if ref is None:
            return
        self.snapshots.drop(replaced)
        self.snapshots.write(reg, ref)
        for home in sorted(self.proxies.drop(reg) | self._waiting.pop(reg, set())):
            self.outbox.forward(home, DeviceBack(ref, tuple(seqs)))

    def ended(self, reg: Registration, cause: Q931) -> None:
        ref = self._refs.pop(reg, None)
        if ref is None:  # a stand-in for a device elsewhere
            return self.remote.forget(reg)
        del self._own[ref]
        self._book.withdraw(self.name, ref)
        self.snapshots.drop(reg.token)
        self.snapshots.forget(reg)
        for home in sorted(self.proxies.drop(reg) | self._waiting.pop(reg, set())):
            self.outbox.forward(home, DeviceGone(ref, int(cause)))

    # -- resume on another switch (docs 12.43) -------------------------------------------------

    def recall(self, waiting: Recalling, domain: str, token: str) -> None:
        """A Register of ``domain``'s user names ``token``, which this switch does not
        know: perhaps another's. The book is asked for its snapshot; the Register waits
        for the answer, and so do the connection's frames after it."""
        number = next(self.requests)
        self.moves.wait(number, waiting)
        self.outbox.recall(number, token_key(token), domain, waiting.user.sip)

    def give_back(self, waiting: Recalling, snapshot: Snapshot | None) -> None:
        """The Register that waited for ``snapshot`` cannot use it (its connection closed
        meanwhile): the token works again, as if it had not been asked."""
        if snapshot is not None and waiting.request.resume is not None:
            self._book.give_back(token_key(waiting.request.resume), waiting.number)

    def moved_in(
        self, reg: Registration, snapshot: Snapshot, seqs: Sequence[tuple[str, int]]
    ) -> None:
        """``reg``, registered here now, took over the registration of ``snapshot``: the
        switch that held it lets it go, and the homes of its calls offer them here."""
        self.snapshots.moved_in(reg, snapshot)
        self.registered(reg)
        ref, pairs = self._refs[reg], tuple(seqs)
        self.outbox.forward(snapshot.node, TakeOver(snapshot.ref, ref, pairs))
        moved = DeviceMoved(snapshot.node, snapshot.ref, self.name, ref, pairs)
        for home in snapshot.homes:
            if home not in (self.name, snapshot.node):
                self.outbox.forward(home, moved)

    def moved_away(
        self, reg: Registration, to: str, ref: int, seqs: Sequence[tuple[str, int]]
    ) -> None:
        """``reg`` resumed on switch ``to``, where it is ``ref``: no longer this switch's
        registration. The homes of its calls elsewhere hear where it is, the new switch
        too if one is (the new switch tells them as well: a home told twice does it
        once); calls homed here keep it as their stand-in for the device there."""
        old = self._refs.pop(reg)
        del self._own[old]
        self._book.withdraw(self.name, old)
        self.snapshots.drop(reg.token)
        self.snapshots.forget(reg)
        moved = DeviceMoved(self.name, old, to, ref, tuple(seqs))
        self.moves.went(old, moved)
        for home in sorted(self.proxies.drop(reg) | self._waiting.pop(reg, set())):
            self.outbox.forward(home, moved)
        if reg.legs:
            self.remote.adopt(reg, to, ref)

    # -- the stand-ins calls hold ----------------------------------------------------------

    def keep_for_call(self, leg: Leg, devices: tuple[Registration, ...]) -> None:
        """The stand-ins a setup found stay while its caller's leg does."""
        self._call_holds[leg] = devices

    def keep_also(self, leg: Leg, devices: tuple[Registration, ...]) -> None:
        """More stand-ins the call of ``leg`` may offer to (an agent's devices looked up
        after its setup, docs 12.46): held with those held for it before, each once."""
        held = self._call_holds.get(leg, ())
        held = tuple(device for device in held if self.remote.key(device) is not None)
        fresh = tuple(device for device in devices if device not in held)
        self.remote.keep(fresh)
        self._call_holds[leg] = held + fresh

    def keep_for_group(self, group: GroupKey, devices: tuple[Registration, ...]) -> None:
        """The stand-ins of a group's members stay while its live call lasts; those kept
        for it before are let go."""
        devices, self._group_holds[group] = self._group_holds.get(group, ()), devices
        self.remote.release(devices)

    def leg_ended(self, leg: Leg) -> None:
        """A leg of a call here ended: the stand-ins its call held are let go with the
        caller's leg, and a stand-in goes with its last leg."""
        devices = self._call_holds.pop(leg, None) if self._call_holds else None
        if devices is not None:
            self.remote.release(devices)
        reg = leg.reg
        if reg.conn <= 0 and not reg.legs:  # a stand-in (or a device away) with no call
            self.remote.idle(reg)

    def group_ended(self, domain: str, sip: str) -> None:
        """The group's live call here ended (the call core tells it)."""
        self.group_over((domain, sip))

    def group_over(self, group: GroupKey) -> None:
        """No live call of the group here: its home is free, its members' stand-ins go."""
        self.homes.ended(group)
        self.remote.release(self._group_holds.pop(group, ()))
