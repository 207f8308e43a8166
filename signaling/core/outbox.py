"""Where the core collects what it wants sent; the I/O layer drains it after each event."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .actions import (
    Ack,
    Action,
    Claim,
    Close,
    Forward,
    Lookup,
    Notify,
    PresenceShare,
    PresenceWatch,
    Recall,
    Send,
    Store,
    StoredAck,
    ToService,
    Unclaim,
    WhenFindable,
)
from .codec import encode
from .delivery_state import Delivery
from .nodes.frames import Reached

if TYPE_CHECKING:
    from .nodes.frames import NodeFrame

__all__ = ["Outbox", "RemoteFrames"]


RemoteFrames = Callable[[int, str], Forward | None]
"""The ``Forward`` that carries a frame for a device on another switch (negative
``conn``) there, or None if no call carries it (``nodes.remote_legs``)."""

_DELIVERED, _SENT, _HELD = Delivery.DELIVERED, Delivery.SENT, Delivery.HELD


def _nowhere(conn: int, text: str) -> None:
    """A standalone switch has no remote devices: nothing is sent to a negative conn."""


class Outbox:
    """Collects the actions of one event. The one place where a frame for a device
    becomes a local ``Send`` or, for a device on another switch, a ``Forward``: a
    remote device's registration has a negative ``conn`` (see ``nodes.remote_legs``),
    so a local send pays no lookup for the seam."""

    __slots__ = ("_actions", "_pending", "_reached", "_remote", "_remote_relay")

    def __init__(
        self, remote: RemoteFrames | None = None, remote_relay: RemoteFrames | None = None
    ) -> None:
        """``remote``: where frames for remote devices go, in a cluster (the stand-ins'
        ``RemoteDevices.forward``); ``remote_relay``: the same for a relayed message
        (``relay``), which its switch reports (``RemoteDevices.relay``). A standalone
        switch has neither."""
        self._actions: list[Action] = []
        self._pending: defaultdict[int, int] = defaultdict(int)
        """Frames for each connection collected since the last drain (counted on every
        frame: a ``defaultdict``'s ``+= 1`` is the cheapest count)."""
        self._reached: dict[str, dict[tuple[int, int], int]] = {}
        """Delivery reports not yet forwarded: per home switch, the highest seq handed
        to each (device, leg) in this batch (``reached``)."""
        self._remote: RemoteFrames = remote or _nowhere
        self._remote_relay: RemoteFrames = remote_relay or _nowhere

    def send(self, conn: int, message: dict[str, Any]) -> None:
        self.send_text(conn, encode(message))

    def send_text(self, conn: int, text: str) -> None:
        """Send a frame the caller already encoded (the relay builds its own). Connection
        0 is a detached registration's (§4.9): nothing can reach it, so nothing is sent."""
        if conn <= 0:
            if conn:  # a device on another switch (nodes.remote_legs)
                forward = self._remote(conn, text)
                if forward is not None:
                    self._carry(forward)
            return
        self._actions.append(Send(conn, text))
        self._pending[conn] += 1

    def relay(self, conn: int, text: str) -> Delivery:
        """A relayed message for a connected receiver, sent as ``send_text`` sends it;
        returns what its writer may be told: ``delivered`` once it is in the
        connection's queue, ``sent`` when it went to the device's switch, whose report
        decides (docs 12.39). The same test as ``send_text``: a local relay pays nothing
        for the seam."""
        if conn <= 0:
            return self._elsewhere(conn, text)
        self._actions.append(Send(conn, text))
        self._pending[conn] += 1
        return _DELIVERED

    def _elsewhere(self, conn: int, text: str) -> Delivery:
        if not conn:  # detached: nothing reaches it (the relay keeps it for the resume)
            return _HELD
        forward = self._remote_relay(conn, text)
        if forward is not None:
            self._carry(forward)
        return _SENT

    def ack(self, ack: Ack) -> None:
        """An ``im_ack`` the I/O layer may join with its neighbours (docs/protocol.md 12.31);
        ``Wire.ack`` makes these only for a connected local device (``conn`` > 0)."""
        self._actions.append(ack)
        self._pending[ack.conn] += 1

    def pending(self, conn: int) -> int:
        """Frames for ``conn`` collected since the last drain (not yet in its queue)."""
        return self._pending.get(conn, 0)

    def close(self, conn: int, code: int, reason: str) -> None:
        self._actions.append(Close(conn, code, reason))

    def to_service(self, message: dict[str, Any]) -> None:
        self._actions.append(ToService(message))

    def store(self, post: dict[str, Any], ack: StoredAck | None) -> None:
        self._actions.append(Store(post, ack))

    def notify(self, event: str, data: dict[str, Any]) -> None:
        self._actions.append(Notify(event, data))

    def forward(self, node: str, frame: NodeFrame) -> None:
        self._carry(Forward(node, frame))

    def _carry(self, forward: Forward) -> None:
        if self._reached:  # the reports of what reached the device go first (12.39)
            self._report(forward.node)
        self._actions.append(forward)

    def reached(self, node: str, device: int, leg: int, seq: int) -> None:
        """A message home ``node`` relayed on ``leg`` of ``device`` is in the device's
        connection's queue: reported with the others of this batch (``report``)."""
        legs = self._reached.get(node)
        if legs is None:
            legs = self._reached[node] = {}
        legs[device, leg] = seq

    def report(self) -> None:
        """The batch is over: one ``Reached`` to each home with what reached its devices."""
        for node in list(self._reached):
            self._report(node)

    def _report(self, node: str) -> None:
        legs = self._reached.pop(node, None)
        if legs:
            reached = tuple((device, leg, seq) for (device, leg), seq in legs.items())
            self._actions.append(Forward(node, Reached(reached)))

    def lookup(self, request: int, domain: str, sips: tuple[str, ...]) -> None:
        self._actions.append(Lookup(request, domain, sips))

    def recall(self, request: int, key: str, domain: str, sip: str) -> None:
        self._actions.append(Recall(request, key, domain, sip))

    def claim(self, request: int, key: str, member: str, limit: int) -> None:
        self._actions.append(Claim(request, key, member, limit))

    def unclaim(self, key: str, member: str) -> None:
        self._actions.append(Unclaim(key, member))

    def when_findable(self, conn: int) -> None:
        self._actions.append(WhenFindable(conn))

    def presence_share(
        self, domain: str, sip: str, online: bool | None, published: tuple[str, str] | None
    ) -> None:
        self._actions.append(PresenceShare(domain, sip, online, published))

    def presence_watch(self, domain: str, sip: str, on: bool) -> None:
        self._actions.append(PresenceWatch(domain, sip, on))

    def shared(self, action: Action) -> None:
        """An action on the cluster's logins or visitor accounts (docs 12.44)."""
        self._actions.append(action)

    def drain(self) -> list[Action]:
        actions, self._actions = self._actions, []
        self._pending.clear()
        return actions
