"""Proxy legs: a switch's side of its own device in a call whose home is another switch.

Theory of operation: the home offers a call to one of this switch's devices (``Offer``).
The device gets a call number from its own registration, as for a local offer, and the
setup. From then on the proxy leg only passes frames: what the home sends (``ToLeg``,
``Release``) is pushed to the device with this switch's envelope and never decoded;
what the device sends on the leg is checked here first, where the connection is (the
rate limit already ran in ``Switch.receive``; here the leg's state in the client table
and each message's size), then forwarded to the home (``FromDevice``), which decides
everything else. A proxy leg ends on the home's ``Release``, on the device's ``rel``, or
with ``rel`` 41 when the home switch is lost (as a lost link would end it).

A relayed message (a ``ToLeg`` with its ``seq``) is what one switch calls ``delivered``
once it is in the connection's queue: so it is checked as the home checks a local
receiver (a reader that is not keeping up is cut off, 4008, and nothing is reported),
pushed, and reported to the home with the other messages of the batch (``Reached``,
through ``Outbox.reached``; docs 12.39).

A support chat's offer is an agent's (docs 12.46): what the device writes into it while it
rings goes to the home, which decides whether writing takes the chat (the queue's
``take_on_write``) or is refused; the leg keeps the offer's ids, so that a Queue request
naming them goes to the home; and after another agent took the chat (``rel`` 26) a late
frame on it is told ``already_taken``, as on one switch, whether it came after the ``rel``
or crossed it (the home, whose call may be over by then, refuses it ``bad_state``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import orjson

from ..callstate import CLIENT_EVENTS, Event, LegState, Role, client_event, hub_event
from ..causes import Q931, hub_cause
from ..chat.text import utf8_len
from ..codec import encode
from ..errors import AlreadyTaken, BadState, MessageTooBig
from ..frames import rel
from ..messages import Signaling
from ..outbox import Outbox
from ..registry import Registration
from .frames import FromDevice, Offer, Refused, Release, ToLeg

__all__ = ["LOST", "ProxyLeg", "ProxyLegs", "SlowReaders"]

_ENDED = 256
"""Proxy legs remembered after they end, so that what the home sent before it heard the
device's ``rel`` (an ack, an ``Error``) still reaches the device, as on one switch; only
the connection the leg was made on: a resumed device gets its calls offered again."""
LOST = encode(rel(hub_cause(Q931.TEMPORARY_FAILURE)))

SlowReaders = tuple[Callable[[int, int], bool], Callable[[int], None]]
"""Would a connection's queue overflow with that many more frames (``Switch.congested``),
and cut off a reader that is not keeping up (4008): as the relay has them."""


def _never(conn: int, pending: int) -> bool:
    return False


def _nobody(conn: int) -> None:
    """Without the switch's readers nobody is congested, so nobody is cut off."""


class ProxyLeg:
    """One device's leg in a call at another switch (``home``), known there as ``leg``."""

    __slots__ = (
        "conn",
        "device",
        "head",
        "home",
        "ids",
        "leg",
        "number",
        "reg",
        "role",
        "state",
        "support",
    )

    def __init__(
        self, home: str, device: int, leg: int, reg: Registration, number: int, role: Role
    ) -> None:
        self.home = home
        self.device = device
        self.leg = leg
        self.reg = reg
        self.conn = reg.conn
        """The device's connection when the leg was made: a late frame for the ended leg
        is for it alone (never a connection that resumed the registration)."""
        self.number = number
        self.role = role
        self.state = LegState.OFFERED if role is Role.CALLEE else LegState.SETUP_SENT
        self.head: tuple[object, str] | None = None
        """(src it was built for, the envelope up to ``"sig":``), like a leg's relay head."""
        self.ids: tuple[object, ...] = ()
        """The ``callId`` and ``confId`` its offer carried."""
        self.support = False
        """Whether it is an agent's offer of a support chat."""

    def frame(self, sig: str) -> str:
        """The whole frame for the device around a ``sig`` encoded at the home."""
        head, src = self.head, self.reg.src
        if head is None or head[0] is not src:
            envelope: dict[str, Any] = {"api": "PbxSignal", "mt": "Signaling"}
            if src is not None:
                envelope["src"] = src
            envelope["call"] = self.number
            head = self.head = (src, encode(envelope)[:-1] + ',"sig":')
        return f"{head[1]}{sig}}}"


class ProxyLegs:
    """This switch's proxy legs, by (home switch, device, home's leg number)."""

    def __init__(
        self, *, outbox: Outbox, max_message: int, slow: SlowReaders = (_never, _nobody)
    ) -> None:
        """``slow``: how the switch finds a reader that is not keeping up and cuts it off
        (a relayed message checks it, as the relay does)."""
        self._out = outbox
        self._max_message = max_message
        self._legs: dict[tuple[str, int, int], ProxyLeg] = {}
        self._ended: OrderedDict[tuple[str, int, int], ProxyLeg] = OrderedDict()
        self._by_reg: dict[Registration, dict[int, ProxyLeg]] = {}
        """Each device's proxy legs by its own call number: only devices that have one."""
        self._slow = slow

    def held(self) -> int:
        return len(self._legs)

    def offer(self, home: str, reg: Registration, frame: Offer) -> None:
        number = reg.allocate_offer_number()
        proxy = self._add(ProxyLeg(home, frame.device, frame.leg, reg, number, Role.CALLEE))
        if _QUEUE in frame.sig:  # a support chat's: its ids name it in Queue requests
            sig = orjson.loads(frame.sig)
            proxy.ids, proxy.support = (sig.get("callId"), sig.get("confId")), True
        self._out.send_text(reg.conn, proxy.frame(frame.sig))

    def join(self, home: str, reg: Registration, number: int, device: int) -> None:
        """The device's ``setup`` on its own call number goes to the home of a group's
        call (``Join``): the leg is the device's caller leg there, under that number."""
        self._add(ProxyLeg(home, device, number, reg, number, Role.CALLER))

    def _add(self, proxy: ProxyLeg) -> ProxyLeg:
        self._legs[proxy.home, proxy.device, proxy.leg] = proxy
        self._by_reg.setdefault(proxy.reg, {})[proxy.number] = proxy
        return proxy

    def to_leg(self, home: str, frame: ToLeg | Release) -> None:
        key = (home, frame.device, frame.leg)
        proxy = self._legs.get(key)
        if proxy is None:  # the device's rel crossed this frame: the home sent it before
            proxy = self._ended.get(key)  # it heard the rel, as a socket's queue would
            if proxy is not None and proxy.reg.conn == proxy.conn:
                self._out.send_text(proxy.conn, proxy.frame(frame.sig))
            return
        if type(frame) is ToLeg and frame.seq and proxy.reg.conn > 0:
            return self._message(home, proxy, frame)
        self._out.send_text(proxy.reg.conn, proxy.frame(frame.sig))
        if type(frame) is Release:
            if proxy.support and _NOT_SELECTED in frame.sig:  # another agent took it
                proxy.reg.remember_taken(proxy.number)
            self._forget(proxy)
        elif proxy.role is Role.CALLER and proxy.state is not LegState.CONNECTED:
            _heard(proxy, frame.sig)  # a caller's leg moves on the home's answers

    def _message(self, home: str, proxy: ProxyLeg, frame: ToLeg) -> None:
        """A relayed message: pushed and reported to the home, unless its reader is not
        keeping up (then cut off, as on one switch: the home hears ``DeviceAway``)."""
        conn = proxy.reg.conn
        congested, drop_slow = self._slow
        if congested(conn, self._out.pending(conn)):
            drop_slow(conn)
            return
        self._out.send_text(conn, proxy.frame(frame.sig))
        self._out.reached(home, frame.device, frame.leg, frame.seq)

    def refused(self, home: str, frame: Refused) -> None:
        key = (home, frame.device, frame.leg)
        proxy = self._legs.get(key) or self._ended.get(key)
        if proxy is not None and proxy.reg.conn == proxy.conn:
            code, text = frame.code, frame.text
            if code == "bad_state" and proxy.number in proxy.reg.taken:  # crossed its rel 26
                code, text = AlreadyTaken.code, "another agent took this chat"
            error = {"api": "PbxSignal", "mt": "Error", "code": code, "text": text}
            self._out.send(proxy.reg.conn, {**error, "call": proxy.number})
            if proxy.state is LegState.SETUP_SENT:  # a refused setup leaves no leg
                self._forget(proxy)

    def on_signaling(self, proxy: ProxyLeg, msg: Signaling, sig: dict[str, Any]) -> None:
        """The device's frame on a proxy leg: checked here, decided at the home."""
        kind = msg.sig.type
        event = CLIENT_EVENTS.get(kind)
        if event is None or event is Event.SETUP:
            raise BadState(f"{kind} not allowed in state {proxy.state.value}")
        fields = msg.sig.fields
        if event is Event.PROGRESS and fields and "cau" in fields:
            event = Event.DISC  # as the home will read it (12.25)
        state = proxy.state
        if not (proxy.support and event is Event.FACILITY and state is LegState.OFFERED):
            state = client_event(proxy.role, proxy.state, event)  # else the home decides
        for message in msg.sig.messages:
            if message.data is not None and utf8_len(message.data) > self._max_message:
                raise MessageTooBig(f"message data above {self._max_message} bytes")
        proxy.state = state
        if event is Event.REL:  # after disc the home's rel still comes (its Release)
            self._forget(proxy)
        self._out.forward(proxy.home, FromDevice(proxy.device, proxy.leg, sig))

    def leg(self, home: str, device: int, leg: int) -> ProxyLeg | None:
        """The proxy leg that is leg ``leg`` of ``device`` at ``home``."""
        return self._legs.get((home, device, leg))

    def get(self, reg: Registration, number: int) -> ProxyLeg | None:
        """The device's proxy leg with call number ``number``, if that call is homed elsewhere."""
        proxied = self._by_reg.get(reg)
        return proxied.get(number) if proxied is not None else None

    def count(self, reg: Registration) -> int:
        """How many calls homed elsewhere the device is in."""
        proxied = self._by_reg.get(reg)
        return len(proxied) if proxied is not None else 0

    def of_device(self, reg: Registration) -> list[ProxyLeg]:
        proxied = self._by_reg.get(reg)
        return list(proxied.values()) if proxied else []

    def drop(self, reg: Registration) -> set[str]:
        """Forget the device's proxy legs, not to be remembered as ended ones (its homes
        are told by the caller, and offer the calls again on a resume); returns the
        homes they belonged to."""
        homes = set()
        for proxy in self.of_device(reg):
            homes.add(proxy.home)
            self._forget(proxy, remember=False)
        return homes

    def home_lost(self, home: str) -> None:
        """The home switch is gone, and its calls with it: each device hears ``rel`` 41."""
        for proxy in [proxy for proxy in self._legs.values() if proxy.home == home]:
            self._out.send_text(proxy.reg.conn, proxy.frame(LOST))
            self._forget(proxy)

    def _forget(self, proxy: ProxyLeg, *, remember: bool = True) -> None:
        key = (proxy.home, proxy.device, proxy.leg)
        if self._legs.pop(key, None) is not None and remember:
            self._ended[key] = proxy
            if len(self._ended) > _ENDED:
                self._ended.popitem(last=False)
        proxied = self._by_reg.get(proxy.reg)
        if proxied is not None and proxied.get(proxy.number) is proxy:
            del proxied[proxy.number]
            if not proxied:
                del self._by_reg[proxy.reg]


_QUEUE = '{"type":"queue",'
"""How the item that names a support chat's queue starts in an agent's offer."""
_NOT_SELECTED = f'"num":{int(Q931.NON_SELECTED_USER_CLEARING)}}}'
"""How the cause of a ``rel`` ends when another device answered first."""

_ANSWERS = {
    '{"type":"call_proc"': Event.CALL_PROC,
    '{"type":"alert"': Event.ALERT,
    '{"type":"conn"': Event.CONN,
}
"""The home's answers to a caller's ``setup``, by how their encoded ``sig`` starts."""


def _heard(proxy: ProxyLeg, sig: str) -> None:
    """The home answered the device's ``setup``: its leg's state in the hub table."""
    for prefix, event in _ANSWERS.items():
        if sig.startswith(prefix):
            state = hub_event(proxy.role, proxy.state, event)
            if state is not None:
                proxy.state = state
            return
