"""What the sans-I/O core asks the I/O layer to do."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from signaling.appwebsocket.throttle import Verdict

if TYPE_CHECKING:
    from .nodes.frames import DeviceRecord, NodeFrame, Snapshot

__all__ = [
    "Ack",
    "Action",
    "CheckLogin",
    "Claim",
    "Claimed",
    "Close",
    "ForgiveLogin",
    "Forward",
    "KeepVisitor",
    "LoginChecked",
    "LookedUp",
    "Lookup",
    "Notify",
    "PresenceShare",
    "PresenceShares",
    "PresenceWatch",
    "Recall",
    "Recalled",
    "Send",
    "Store",
    "StoredAck",
    "ToService",
    "Unclaim",
    "VisitorRecord",
    "VisitorReleased",
    "WhenFindable",
]


@dataclass(slots=True)  # not frozen: one is built per relayed frame (see messages.py)
class Send:
    """Send ``text`` (one JSON frame) to connection ``conn``."""

    conn: int
    text: str


@dataclass(slots=True)  # not frozen: one is built per acked message (see messages.py)
class Ack:
    """An ``im_ack`` for a registration that asked for cumulative acks (docs/protocol.md
    12.31): the I/O layer joins it with the acks next to it on the same call into one
    frame, or sends it alone in the single form (``frames.ack_text``). Why an action of its
    own: only the I/O layer knows where a batch of frames from one connection ends."""

    conn: int
    src: object
    number: int
    message_id: str
    seq: int
    time: int
    state: str


@dataclass(frozen=True, slots=True)
class Close:
    """Close connection ``conn`` with a WebSocket close code, after what is queued."""

    conn: int
    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class ToService:
    """Send ``message`` to the messages service over the hub's link (PROTOCOL §6.2)."""

    message: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StoredAck:
    """Whom to tell ``im_ack stored`` once a Post is durable (PROTOCOL §7.5)."""

    conn: int
    call_id: str
    number: int
    message_id: str | None
    seq: int
    domain: str = ""
    author: str = ""
    """Whose message id it is (tenant and writer's sip): the key of §4.6 to settle."""


@dataclass(slots=True)  # not frozen: one is built per stored message (see Send)
class Store:
    """Append ``post`` to the hub's durable outbox (PROTOCOL §7.3, §7.7). When it is on
    disk, the I/O layer hands ``ack`` (if any) back through ``Switch.stored``."""

    post: dict[str, Any]
    ack: StoredAck | None


@dataclass(frozen=True, slots=True)
class Notify:
    """Tell the outside world (a webhook, PROTOCOL §9.6) that ``event`` happened."""

    event: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Forward:
    """Carry ``frame`` to switch ``node`` (SCALE.md: a call between switches). Only a
    switch that is part of a cluster makes these; the bus hands them to ``from_nodes``."""

    node: str
    frame: NodeFrame


@dataclass(frozen=True, slots=True)
class Lookup:
    """Find the registrations of these users on every switch; the answer comes back
    through ``Switch.looked_up`` with the same ``request``."""

    request: int
    domain: str
    sips: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LookedUp:
    """The answer to ``Lookup`` ``request``: every registration of the users asked for."""

    request: int
    devices: tuple[DeviceRecord, ...]


@dataclass(frozen=True, slots=True)
class Recall:
    """Take the snapshot the book keeps under ``key`` (a resume token's hash), if it is
    a registration of (``domain``, ``sip``): read and marked taken by ``request`` in one
    step, so a token works once across every switch (docs 12.43); a snapshot the
    switch cannot use goes back (``DeviceBook.give_back``). Another user's is left
    alone. The answer comes back through ``Switch.recalled`` with the same ``request``."""

    request: int
    key: str
    domain: str
    sip: str


@dataclass(frozen=True, slots=True)
class Recalled:
    """The answer to ``Recall`` ``request``: the snapshot, or None (no such token, or
    it expired, or it is another user's)."""

    request: int
    snapshot: Snapshot | None


@dataclass(frozen=True, slots=True)
class Claim:
    """Add ``member`` to the shared set ``key`` if it holds fewer than ``limit`` (one
    atomic step across switches, e.g. an agent's ``max_chats``); the answer comes back
    through ``Switch.claimed``."""

    request: int
    key: str
    member: str
    limit: int


@dataclass(frozen=True, slots=True)
class Claimed:
    """The answer to ``Claim`` ``request``: whether ``member`` is in the set now, and
    who is (a refused claim learns who holds what it asked for)."""

    request: int
    granted: bool
    holders: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Unclaim:
    """Take ``member`` out of the shared set ``key`` again (no answer)."""

    key: str
    member: str


@dataclass(frozen=True, slots=True)
class WhenFindable:
    """What this switch sends connection ``conn`` from here on waits until the
    registration it just wrote to the cluster's book can be found by every switch (docs
    12.39): its ``RegisterResult`` first. The bus releases it once Redis has taken the
    write, or after ``cluster.answer_wait`` if Redis does not answer."""

    conn: int


@dataclass(frozen=True, slots=True)
class PresenceShare:
    """This switch's share of a user's presence changed (docs 12.39): ``online`` is whether
    a device of the user here counts as online, None once the user has no registration
    here; ``published`` the activity and note a device here just published."""

    domain: str
    sip: str
    online: bool | None
    published: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class PresenceWatch:
    """Follow (``on``) or stop following a user's presence on the other switches: while
    followed, the answer comes through ``Switch.presence_shares`` now and after every
    change."""

    domain: str
    sip: str
    on: bool


@dataclass(frozen=True, slots=True)
class PresenceShares:
    """A followed user's presence on the other switches: (switch, online there) for each
    switch where the user has a registration, and the activity and note last published
    on any switch (None: nothing published since the user's first registration)."""

    domain: str
    sip: str
    shares: tuple[tuple[str, bool], ...]
    published: tuple[str, str] | None


@dataclass(frozen=True, slots=True)
class CheckLogin:
    """Ask the cluster's throttle about connection ``conn``'s ``AppLogin`` (docs 12.44):
    whether the (address, account) pair is locked, and if not, with ``charge``, count the
    attempt as a wrong password until ``ForgiveLogin`` (``LoginThrottle.gate``). With
    ``visitor``, also read that visitor account, which this switch does not know. The
    answer comes back through ``Switch.login_checked``."""

    conn: int
    address: str
    account: str
    charge: bool
    visitor: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class VisitorRecord:
    """A visitor account as the cluster keeps it (docs 12.44): enough for any switch to
    let it log in and to carry its context into its chats."""

    domain: str
    sip: str
    dn: str
    password: str = field(repr=False)
    context: object = None


@dataclass(frozen=True, slots=True)
class LoginChecked:
    """The answer to ``CheckLogin`` of ``conn``: the verdict, None when the cluster's
    throttle did not answer in time (the switch's own counts decide alone), and the
    visitor account asked for, if it exists."""

    conn: int
    verdict: Verdict | None
    visitor: VisitorRecord | None = None


@dataclass(frozen=True, slots=True)
class ForgiveLogin:
    """The attempt ``CheckLogin`` counted had the right password: take the count back."""

    address: str
    account: str
    taken: tuple[str, ...]
    """The budgets that gave the attempt a token (``Verdict.taken``): only they get one
    back."""


@dataclass(frozen=True, slots=True)
class KeepVisitor:
    """Keep ``record`` in the cluster for another ``support.visitor_ttl``: it is in use
    here (made, logged in, or still registered when its period ended)."""

    record: VisitorRecord


@dataclass(frozen=True, slots=True)
class VisitorReleased:
    """This switch no longer holds the visitor account: it lives on in the cluster while
    another switch keeps it, and ends there when nobody does."""

    domain: str
    sip: str


Action = (
    Send
    | Ack
    | Close
    | ToService
    | Store
    | Notify
    | Forward
    | Lookup
    | Recall
    | Claim
    | Unclaim
    | WhenFindable
    | PresenceShare
    | PresenceWatch
    | CheckLogin
    | ForgiveLogin
    | KeepVisitor
    | VisitorReleased
)
