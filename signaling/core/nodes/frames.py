"""What switches tell each other about calls that span them (SCALE.md "Home node and
remote legs").

Theory of operation: every call has one *home* switch, the one that received its
``setup``; it runs the whole call (seq, held messages, acks, transcript, first ``conn``
wins). A device registered on another switch takes part through a *remote leg* at the
home and a *proxy leg* on its own switch. These frames travel between the two:

    home  -> device's switch   Offer      a setup for one of its devices
                               ToLeg      any other frame for a proxy leg (a
                                          relayed message with its ``seq``)
                               Release    the last frame of a proxy leg (its ``rel``)
                               Refused    the home said no to the device's frame
    device's switch -> home    FromDevice the device's event on a proxy leg (checked)
                               Join       the device's setup to a group whose live
                                          call is homed there (docs 12.28)
                               DeviceAway / DeviceBack / DeviceGone
                                          the device's connection dropped, resumed, ended
                               Reached    the delivery report: relayed messages up to
                                          a seq are in the device's connection's
                                          queue (docs 12.39), per leg, once per batch
    device's new switch -> old TakeOver   the client resumed the device there (docs
                                          12.43): the old one lets it go, not its calls
    new or old switch -> home  DeviceMoved the device lives on the new switch now

Live support's boards and Queue requests travel between any two switches (docs 12.46):

    a chat's home -> every switch  BoardNews   an update of a queue's board
                                   BoardState  all its chats, to a switch it just met
    agent's switch -> chat's home  QueueAsk    a Take, Transfer or Close of its user's
    home -> agent's switch         QueueAnswer the answer to it
    any switch -> a waiting chat's home
                                   AgentChanged agents of the chat's queue may take
                                                chats now: the home offers them again

A device is named by ``device``, the number its own switch gave the registration
(``DeviceRecord.ref``); a leg by ``leg``, the call number the home uses for it. Frames
for a device carry ``sig``, the ``sig`` object already encoded as JSON text: the device's
switch puts its own envelope (``src``, its call number) around it and never decodes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "AgentChanged",
    "BoardNews",
    "BoardState",
    "DeviceAway",
    "DeviceBack",
    "DeviceGone",
    "DeviceMoved",
    "DeviceRecord",
    "FromDevice",
    "Join",
    "NodeFrame",
    "Offer",
    "QueueAnswer",
    "QueueAsk",
    "Reached",
    "Refused",
    "Release",
    "Snapshot",
    "TakeOver",
    "ToLeg",
]


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    """One registration as the shared directory knows it: where it is, whose it is."""

    node: str
    ref: int
    domain: str
    sip: str
    hw: str
    flags: frozenset[str]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A registration as its switch last wrote it to the book, under a hash of its
    resume token (``snapshots``, docs 12.43): whose it is, how the device registered,
    where it is (switch and number, as in its ``DeviceRecord``) and the other switches
    it has calls homed on, which a move must tell. Not a frame: read with ``Recall``."""

    domain: str
    sip: str
    hw: str
    flags: frozenset[str]
    node: str
    ref: int
    homes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Offer:
    """Offer a call to ``device``: its switch gives it a call number and sends ``sig``."""

    device: int
    leg: int
    sig: str


@dataclass(frozen=True, slots=True)
class ToLeg:
    """A frame for the device on proxy leg ``leg`` (a message, an ack, ``conn``...).
    ``seq`` is the message's when ``sig`` relays one of a one-to-one call, else 0: its
    switch reports it once it is in the connection's queue (``Reached``)."""

    device: int
    leg: int
    sig: str
    seq: int = 0


@dataclass(frozen=True, slots=True)
class Release:
    """The home ended leg ``leg``: ``sig`` (a ``rel``) is the device's last frame on it."""

    device: int
    leg: int
    sig: str


@dataclass(frozen=True, slots=True)
class FromDevice:
    """The device's ``sig`` on proxy leg ``leg``, already checked by its switch (size,
    rate, state): the home runs it as if the device were its own."""

    device: int
    leg: int
    sig: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Join:
    """The device ``record`` sent ``sig``, a ``setup`` to a group whose live call is
    homed at the target, on its call number ``leg``: the home runs it as the device's own
    (the device may be new to it, hence the whole record)."""

    record: DeviceRecord
    leg: int
    sig: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Refused:
    """The home refused the device's last frame on ``leg``: the device hears ``Error``."""

    device: int
    leg: int
    code: str
    text: str


@dataclass(frozen=True, slots=True)
class DeviceAway:
    """The device's connection dropped; its calls wait for a resume (§4.9)."""

    device: int


@dataclass(frozen=True, slots=True)
class DeviceBack:
    """A new connection resumed the device: the home offers its calls again and replays
    after ``seqs`` (the client's last seq per call, as it sent them)."""

    device: int
    seqs: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class DeviceGone:
    """The device's registration ended with ``cause``: its legs end as a local one's would."""

    device: int
    cause: int


@dataclass(frozen=True, slots=True)
class Reached:
    """The delivery report (docs 12.39): for each ``(device, leg, seq)``, the messages
    the home relayed on that leg up to ``seq`` were handed to the device's connection,
    as a message is ``delivered`` on one switch. Cumulative: one frame for whatever
    one batch of the home's frames brought, never one per message."""

    legs: tuple[tuple[int, int, int], ...]


@dataclass(frozen=True, slots=True)
class TakeOver:
    """A client resumed the receiver's registration ``device`` on the sender, where it is
    ``ref`` now (docs 12.43): the receiver closes a connection still holding it (4005)
    and lets it go without ending its calls; the calls homed at the receiver are offered
    to it again on the sender, replayed after ``seqs``."""

    device: int
    ref: int
    seqs: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class DeviceMoved:
    """Registration ``device`` of switch ``node`` lives on switch ``to`` as ``ref`` now
    (a resume there, docs 12.43): the home points its stand-in there and offers its
    calls again, replayed after ``seqs``. Sent by the new switch and by the old one."""

    node: str
    device: int
    to: str
    ref: int
    seqs: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class BoardNews:
    """An update of the board of ``queue`` (§9.3) about a support chat homed at the
    sender: ``mt`` and ``body`` as the home's own subscribers get them. ``kept``: the
    chat (``body["chat"]``) stays on that queue's board; False once it left it (closed,
    or transferred to another queue)."""

    domain: str
    queue: str
    mt: str
    body: dict[str, Any]
    kept: bool


@dataclass(frozen=True, slots=True)
class BoardState:
    """Every support chat homed at the sender as its queue's board shows it, (domain,
    queue, chat): the first the sender tells a switch it did not know, which forgets
    whatever it kept of the sender's chats before."""

    chats: tuple[tuple[str, str, dict[str, Any]], ...]


@dataclass(frozen=True, slots=True)
class QueueAsk:
    """A Queue request (``body``: ``Take``, ``Transfer`` or ``Close``, §9.4) of user
    ``sip`` on the sender about a chat homed at the target, which runs it as if the user
    were its own and answers ``QueueAnswer`` with the same ``ask``. ``record``: the asking
    connection's registration, if it has one (a ``Take`` connects it)."""

    ask: int
    domain: str
    sip: str
    record: DeviceRecord | None
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class QueueAnswer:
    """The home's answer to ``QueueAsk`` ``ask``: the body of its result or its error.
    For a ``TakeResult``, ``leg`` is the home's leg of the asking device: the asker's
    switch puts the device's own call number for it in ``call``."""

    ask: int
    body: dict[str, Any]
    leg: int = 0


@dataclass(frozen=True, slots=True)
class AgentChanged:
    """Agents ``sips`` of ``domain`` may take chats they were not offered: a device of
    theirs came or published its activity on the sender, or a chat of theirs homed there
    ended or was handed on. Sent to a switch holding a waiting chat of one of the agents'
    queues (as its board news showed it), which looks the agents' devices up again and
    offers its waiting chats to them as to agents of its own (docs 12.46). ``missed``:
    the sender just heard of a waiting chat of the receiver's, and these agents of its
    queue are online there; the receiver looks up only those it knows no device of (its
    chat's lookup may have come before they registered)."""

    domain: str
    sips: tuple[str, ...]
    missed: bool = False


NodeFrame = (
    Offer
    | ToLeg
    | Release
    | FromDevice
    | Join
    | Refused
    | DeviceAway
    | DeviceBack
    | DeviceGone
    | Reached
    | TakeOver
    | DeviceMoved
    | BoardNews
    | BoardState
    | QueueAsk
    | QueueAnswer
    | AgentChanged
)
"""Everything one switch forwards to another."""
