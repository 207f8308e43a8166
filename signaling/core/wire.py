"""The one way from a leg to its connection: every frame the core sends on a call leaves here.

Theory of operation: the parts of the core (chat calls, presence, live support) hand a
leg and a frame (``frames``) to ``Wire``; it wraps the frame in the leg's ``Signaling``
envelope and queues it in the outbox for the leg's connection. ``text`` is the only
method that turns a leg into an outbox send, ``relay`` the one for a relayed message: it
also says what the writer may be told (``delivered``, or ``sent`` for a device on another
switch, docs 12.39). A detached leg's connection is 0, which the
outbox drops (§4.9); a leg whose device is on another switch has a negative one, which
the outbox forwards there (``nodes.remote_legs``, docs 12.28), in the same test, so a
local send pays nothing for it.

``to_number`` is for the one case without a leg: the answer to a ``setup`` refused
before any leg was made.
"""

from __future__ import annotations

from typing import Any

from .actions import Ack
from .calls import CUMULATIVE_ACK, AckRecord, Leg
from .codec import encode
from .delivery_state import Delivery
from .frames import facility, leg_ack_text, signaling
from .outbox import Outbox
from .registry import Registration

__all__ = ["Wire"]

JsonObject = dict[str, Any]


class Wire:
    __slots__ = ("_out",)

    def __init__(self, outbox: Outbox) -> None:
        self._out = outbox

    def text(self, leg: Leg, text: str) -> None:
        """An encoded frame for ``leg`` (the relay builds its own, see ``frames``)."""
        self._out.send_text(leg.reg.conn, text)

    def relay(self, leg: Leg, text: str) -> Delivery:
        """A relayed message (its ``seq`` in it) for a connected ``leg``: ``delivered``
        once in the connection's queue, ``sent`` when it went to the device's switch."""
        return self._out.relay(leg.reg.conn, text)

    def relay_item(self, leg: Leg, item: JsonObject) -> Delivery:
        """The same for an ``im_message`` item built as a dict (a held or kept one)."""
        return self.relay(leg, encode(signaling(leg.reg.src, leg.number, facility(item))))

    def sig(self, leg: Leg, sig: JsonObject) -> None:
        self.text(leg, encode(signaling(leg.reg.src, leg.number, sig)))

    def fty(self, leg: Leg, item: JsonObject) -> None:
        self.sig(leg, facility(item))

    def ack(self, leg: Leg, message_id: str, record: AckRecord) -> None:
        """The writer hears what became of its message now, or after its resume (then
        ``record.told`` stays False and the replay tells it)."""
        reg = leg.reg
        conn = reg.conn
        told = record.told = leg.resume is None and conn != 0  # not ``leg.parked``, in line
        if not told:
            return
        if conn > 0 and CUMULATIVE_ACK in reg.flags:  # joined by the I/O layer (12.31); a
            # device on another switch hears the single form, its switch joins nothing
            self._out.ack(
                Ack(conn, reg.src, leg.number, message_id, record.seq, record.time, record.state)
            )
        else:  # the single form of §4.6, as every ack of a run of one is built
            text = leg_ack_text(leg, message_id, record.seq, record.time, record.state)
            self._out.send_text(conn, text)

    def to_number(self, reg: Registration, number: int, sig: JsonObject) -> None:
        """A frame for a call number of ``reg`` that has no leg (a refused ``setup``)."""
        self._out.send(reg.conn, signaling(reg.src, number, sig))
