"""Remote legs: the home switch's side of a device registered on another switch.

Theory of operation: the home runs the whole call (SCALE.md decision 2). A device on
another switch takes part through a stand-in ``Registration`` here, whose ``conn`` is a
negative number no connection ever has. The call core treats it as any device: it
offers to it, counts its legs, relays to it. Its frames reach ``Outbox.send_text`` like
every frame; for a negative ``conn`` the outbox asks ``RemoteDevices.forward``, which
takes the envelope off (the device's switch puts its own on) and carries the ``sig`` as
an ``Offer``, a ``ToLeg`` or, for the last frame of a leg, a ``Release``. A message the
relay hands over as such (``Outbox.relay``: a one-to-one call's) is asked of ``relay``
instead and goes with its ``seq``, read from the text, so that the device's switch
reports it (docs 12.39). What the device does on its leg comes back as ``FromDevice``
and runs through the call core unchanged.

While the device's connection is away (``DeviceAway``), or its switch is lost, the
stand-in's ``conn`` is 0, exactly as a local detached registration's (§4.9).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable

from ..actions import Forward
from ..directory_view import TenantLookup
from ..registry import Registration
from .frames import DeviceRecord, Offer, Release, ToLeg

__all__ = ["RemoteDevices"]

log = logging.getLogger(__name__)

_HEAD = '{"api":"PbxSignal","mt":"Signaling","call":'
"""How every frame for a stand-in starts: it has no ``src`` (the device's switch adds it)."""
_SIG = ',"sig":'
_MESSAGE = '{"type":"facility","fty":[{"type":"im_message","sender":'
"""How a relayed message's ``sig`` starts (``frames.relay_text``, ``relayed_item``)."""
_SEQ = ',"seq":'

DeviceKey = tuple[str, int]
"""(switch, the registration's number there)."""


class RemoteDevices:
    """The stand-ins for devices on other switches, by switch and by user. Built before
    the switch's outbox, which is given ``forward`` and ``relay``: the ways of every frame
    for them."""

    def __init__(self, *, tenants: TenantLookup) -> None:
        self._tenants = tenants
        self._by_key: dict[DeviceKey, Registration] = {}
        self._keys: dict[Registration, DeviceKey] = {}
        self._by_conn: dict[int, Registration] = {}
        self._conns: dict[Registration, int] = {}
        self._by_user: dict[tuple[str, str], list[Registration]] = {}
        self._uses: dict[Registration, int] = {}
        """How many calls hold each stand-in (``hold``): only stand-ins some call holds."""
        self._numbers = itertools.count(-1, -1)
        self._next_offer = -1
        self._told = False
        """Where a new stand-in's leg numbers start: below every forgotten one's, so a
        late frame for a leg of a forgotten stand-in is never taken for a new leg's."""

    def of(self, domain: str, sip: str) -> tuple[Registration, ...]:
        found = self._by_user.get((domain, sip))
        return tuple(found) if found else ()

    def get(self, node: str, ref: int) -> Registration | None:
        return self._by_key.get((node, ref))

    def by_conn(self, conn: int) -> Registration | None:
        return self._by_conn.get(conn)

    def key(self, device: Registration) -> DeviceKey | None:
        return self._keys.get(device)

    def on_node(self, node: str) -> list[Registration]:
        return [device for (where, _), device in self._by_key.items() if where == node]

    def held(self) -> int:
        return len(self._by_key)

    def refresh(self, domain: str, sips: Iterable[str], found: Iterable[DeviceRecord]) -> None:
        """A lookup's answer for these users: stand-ins for what it found elsewhere;
        those it no longer found go, unless a call still uses them. A stand-in that is
        found again is kept: its leg numbers go on, so a late frame for an ended leg can
        never be taken for a new one's."""
        keys = {(record.node, record.ref) for record in found}
        for sip in sips:
            for device in self.of(domain, sip):
                if not device.legs and self._keys[device] not in keys:
                    self.forget(device)
        for record in found:
            if (record.node, record.ref) not in self._by_key:
                self._add(record)

    def ensure(self, record: DeviceRecord) -> Registration | None:
        """The stand-in of ``record``'s device, made now if this switch had none."""
        return self._by_key.get((record.node, record.ref)) or self._add(record)

    def _add(self, record: DeviceRecord) -> Registration | None:
        tenant = self._tenants.tenant(record.domain)
        user = tenant.user(record.sip) if tenant is not None else None
        if user is None:
            return None
        device = Registration(0, record.domain, user, record.hw, record.flags, None)
        self._place(device, (record.node, record.ref))
        return device

    def _place(self, device: Registration, key: DeviceKey) -> None:
        """``device`` is the stand-in of ``key`` from now on, reached by a conn of its own."""
        conn = device.conn = next(self._numbers)
        device.next_offer = min(device.next_offer, self._next_offer)
        self._by_key[key], self._keys[device] = device, key
        self._by_conn[conn], self._conns[device] = device, conn
        self._by_user.setdefault((device.domain, device.user.sip), []).append(device)

    def adopt(self, device: Registration, node: str, ref: int) -> None:
        """A registration of this switch moved to switch ``node``, where it is ``ref``
        (a resume there, docs 12.43), and calls homed here still hold it: it stays, as
        their stand-in for the device there. Frames for it have no ``src``: its new
        switch puts its own envelope around them."""
        device.src = None
        self._place(device, (node, ref))

    def take(self, node: str, ref: int) -> Registration | None:
        """The stand-in of ``node``'s ``ref``, no longer one: the device resumed on this
        switch, and the calls homed here go on with it as a registration of its own.
        Its ``conn`` is left as it was: whether it was still reached tells the caller
        what was sent it and never reported (``Devices.moved_here``)."""
        device = self._by_key.get((node, ref))
        if device is not None:
            conn = device.conn
            self.forget(device)
            device.conn = conn
        return device

    def rekey(self, device: Registration, node: str, ref: int) -> None:
        """The device resumed on switch ``node``, where it is ``ref``: its stand-in goes
        on under that name, and reaches it there (its ``conn`` as before)."""
        del self._by_key[self._keys[device]]
        key = self._keys[device] = (node, ref)
        self._by_key[key] = device
        device.conn = self._conns[device]

    def hold(self, domain: str, sips: Iterable[str]) -> tuple[Registration, ...]:
        """The stand-ins of these users, kept while a call may still offer to them (a
        support chat's next agent, a group's member): until ``release``."""
        devices = tuple(device for sip in sips for device in self.of(domain, sip))
        self.keep(devices)
        return devices

    def keep(self, devices: Iterable[Registration]) -> None:
        """Hold these stand-ins once more each: until as many ``release``."""
        for device in devices:
            self._uses[device] = self._uses.get(device, 0) + 1

    def release(self, devices: Iterable[Registration]) -> None:
        """A call no longer offers to these: those without a leg or another call go."""
        for device in devices:
            uses = self._uses.get(device)
            if uses is None:  # forgotten meanwhile (gone from the book, or its switch)
                continue
            if uses > 1:
                self._uses[device] = uses - 1
                continue
            del self._uses[device]
            if not device.legs:
                self.forget(device)

    def idle(self, device: Registration) -> None:
        """The device's last leg here ended: its stand-in goes unless a call holds it (a
        later call's lookup makes a new one)."""
        if device in self._keys and device not in self._uses:
            self.forget(device)

    def _not_carried(self, text: str) -> None:
        """A frame no proxy leg carries (a Queue board update for an agent on another
        switch: the Queue API across switches is not built, docs 12.28). Logged once."""
        if not self._told:
            self._told = True
            log.debug("frames other than a call's for devices elsewhere are dropped: %.60s", text)

    def forget(self, device: Registration) -> None:
        key = self._keys.pop(device, None)
        if key is None:
            return
        self._next_offer = min(self._next_offer, device.next_offer)
        self._uses.pop(device, None)
        del self._by_key[key]
        del self._by_conn[self._conns.pop(device)]
        device.conn = 0  # reaches nothing now: a Take claimed meanwhile finds it gone
        user = (device.domain, device.user.sip)
        devices = self._by_user[user]
        devices.remove(device)
        if not devices:
            del self._by_user[user]

    def away(self, device: Registration) -> None:
        """Nothing reaches the device now (its connection or its switch is gone)."""
        device.conn = 0

    def back(self, device: Registration) -> None:
        device.conn = self._conns[device]

    def forward(self, conn: int, text: str) -> Forward | None:
        """One frame for a stand-in, as the call core built it: what carries it to its
        switch (``Outbox.send_text`` collects it), None for a frame no call carries."""
        found = self._split(conn, text)
        if found is None:
            return None
        node, ref, leg, sig = found
        if sig.startswith('{"type":"setup"'):
            return Forward(node, Offer(ref, leg, sig))
        if sig.startswith('{"type":"rel"'):
            return Forward(node, Release(ref, leg, sig))
        return Forward(node, ToLeg(ref, leg, sig))

    def relay(self, conn: int, text: str) -> Forward | None:
        """A relayed message of a one-to-one call (``Outbox.relay``): carried with its
        seq, which the device's switch reports once the message is in the connection's
        queue."""
        found = self._split(conn, text)
        if found is None:
            return None
        node, ref, leg, sig = found
        return Forward(node, ToLeg(ref, leg, sig, _seq(sig)))

    def _split(self, conn: int, text: str) -> tuple[str, int, int, str] | None:
        """Where a frame for a stand-in goes: (switch, device, leg, its ``sig``)."""
        device = self._by_conn.get(conn)
        key = self._keys.get(device) if device is not None else None
        if key is None or not text.startswith(_HEAD):
            self._not_carried(text)
            return None
        end = text.index(_SIG, len(_HEAD))
        return key[0], key[1], int(text[len(_HEAD) : end]), text[end + len(_SIG) : -1]


def _seq(sig: str) -> int:
    """A relayed message's seq (0 if it has none). The fields before it are strings,
    whose quotes JSON escapes: the first ``,"seq":`` is the field; the mime follows."""
    start = sig.find(_SEQ, len(_MESSAGE))
    if start < 0:
        return 0
    start += len(_SEQ)
    try:
        return int(sig[start : sig.index(",", start)])
    except ValueError:
        return 0
