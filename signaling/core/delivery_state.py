"""What became of one chat message, and every way that can change, in one table (PROTOCOL §4.6).

Theory of operation: each message a client sends with an ``id`` gets an ``AckRecord``
whose ``state`` is one of ``Delivery``; the writer hears it in an ``im_ack`` (the value
is the wire's word, which is why the enum is str-valued). A message starts in one of
four states, decided where it is relayed:

- ``delivered``: it went out to a connected receiver at once;
- ``sent``: it went to a receiver's device on another switch (docs 12.39); the writer
  hears nothing until that switch reports it in the connection's queue (then
  ``delivered``), or the device goes away first (then ``held``). Never on the wire;
- ``held``: nobody has answered yet (held until ``conn``) or the receiver's device is
  away (kept in the transcript until it resumes);
- ``pending``: the hub answered for an offline licensed user; the writer hears nothing
  until the Post is on disk. ``pending`` never goes on the wire.

It then moves only as ``TRANSITIONS`` says, on one of the ``Outcome`` events below; a
move the table does not hold is a bug of the hub, raised as ``DeliveryError``. Beside the
call-state table (``callstate.py``): that one says where a *leg* is, this one where a
*message* is. ``print(describe())`` shows the whole table.
"""

from __future__ import annotations

from enum import Enum, StrEnum

__all__ = ["TRANSITIONS", "Delivery", "DeliveryError", "Outcome", "advance", "describe"]


class Delivery(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    HELD = "held"
    DELIVERED = "delivered"
    STORED = "stored"
    NOT_DELIVERED = "not_delivered"


class Outcome(Enum):
    RELAYED = "relayed"
    """A held message reached its receiver (at ``conn``, or in the replay of a resume)."""
    FORWARDED = "forwarded"
    """A held message went to its receiver's device on another switch (at ``conn``, or
    in the replay of a resume): that switch's report decides."""
    REPORTED = "reported"
    """The receiver's switch reported the message in the device's connection's queue."""
    UNREPORTED = "unreported"
    """No report will come: the receiver's device went away, its switch was lost, or its
    leg or the call ended first. The message waits as a held one does."""
    ON_DISK = "on_disk"
    """Its Post is durable (the outbox's ``stored``, or the service's duplicate answer)."""
    KEPT_FOR_LATER = "kept_for_later"
    """The receiver never came back, but the licensed chat's Post keeps the message."""
    LOST = "lost"
    """The call ended before any receiver took it, and nothing stored it."""


class DeliveryError(Exception):
    """A move the delivery table does not allow: a defect of the hub, never the client's.

    Not a ``SignalingError`` on purpose: that root is for what may be told to the peer (a
    code and a safe text); a defect of the hub is any other exception, which the client
    hears as ``internal`` while the log gets the traceback (``errors.py``)."""


_D, _O = Delivery, Outcome

TRANSITIONS: dict[tuple[Delivery, Outcome], Delivery] = {
    (_D.HELD, _O.RELAYED): _D.DELIVERED,
    (_D.HELD, _O.FORWARDED): _D.SENT,
    (_D.SENT, _O.REPORTED): _D.DELIVERED,
    (_D.SENT, _O.UNREPORTED): _D.HELD,
    (_D.HELD, _O.KEPT_FOR_LATER): _D.STORED,
    (_D.HELD, _O.LOST): _D.NOT_DELIVERED,
    (_D.PENDING, _O.ON_DISK): _D.STORED,
    # the service's duplicate answer may come first; the outbox's own "stored" follows
    (_D.STORED, _O.ON_DISK): _D.STORED,
}


def advance(state: Delivery, outcome: Outcome) -> Delivery:
    """The state after ``outcome``; ``DeliveryError`` if the table has no such move."""
    try:
        return TRANSITIONS[state, outcome]
    except KeyError:
        raise DeliveryError(f"{outcome.value} not allowed in state {state.value}") from None


def describe() -> str:
    """The table as text, one move a line (``state --outcome--> state``)."""
    return "\n".join(
        f"{before.value} --{outcome.value}--> {after.value}"
        for (before, outcome), after in TRANSITIONS.items()
    )
