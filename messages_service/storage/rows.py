"""What goes into the store and what comes out: plain frozen values, never ORM objects,
so that nothing above the storage package depends on Tortoise."""

from __future__ import annotations

import re
from dataclasses import dataclass

from messages_service.errors import MessagesServiceError

__all__ = [
    "Badge",
    "ChatDeleted",
    "ChatPage",
    "ChatRemoval",
    "ChatSummary",
    "Duplicate",
    "FileGrant",
    "GroupInfo",
    "MemberInfo",
    "NewPost",
    "Original",
    "PostBatch",
    "ReadMark",
    "Removal",
    "StoredMessage",
    "group_id_of",
    "group_sip",
]

_GROUP_SIP = re.compile(r"group-([1-9][0-9]{0,15})")


def group_sip(group_id: int) -> str:
    """A group's address (PROTOCOL §12.10: ``group-<id>``)."""
    return f"group-{group_id}"


def group_id_of(sip: str) -> int | None:
    """The id in a group's address, or None when ``sip`` is not one."""
    match = _GROUP_SIP.fullmatch(sip)
    return int(match.group(1)) if match else None


@dataclass(frozen=True, slots=True)
class NewPost:
    """One Post to store (PROTOCOL §12.10). One-to-one: ``topic`` is the author, ``peer``
    the other user, ``sides`` those of the two who get a row. Group: ``grp`` is true,
    ``topic`` the group's sip, and every member gets a row."""

    domain: str
    author: str
    author_dn: str
    topic: str
    peer: str
    peer_dn: str
    grp: bool
    sides: tuple[str, ...]
    text: str
    attach: str | None
    call_id: str
    seq: int
    client_id: str | None
    time_ms: int
    writer: str = ""
    """Who wrote it when that is not ``author``: a support agent writing as its queue.
    Its client id is the writer's key (docs/protocol.md 12.21)."""


@dataclass(frozen=True, slots=True)
class Original:
    """The Post that first used a client message id (PROTOCOL §4.6 revised): what a
    resend of that id is answered with."""

    call_id: str
    seq: int
    time_ms: int


@dataclass(frozen=True, slots=True)
class Duplicate:
    """A Post that repeated a stored client id: no row was written; ``id`` is the row
    of the original (the author's where there is one, 0 if none is left)."""

    id: int
    original: Original


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One row of the user's own topic, as ``ReadChat`` and ``Search`` show it."""

    id: int
    peer: str
    grp: bool
    author: str
    author_dn: str
    text: str
    attach: str | None
    call_id: str
    seq: int
    time_ms: int
    read: bool | None = None
    """Has the peer read it: set on the user's own one-to-one messages where the store
    was asked (``ReadChat``, ``Search``), None everywhere else."""


@dataclass(frozen=True, slots=True)
class ChatSummary:
    peer: str
    peer_dn: str
    grp: bool
    last_time: int
    unread: int


@dataclass(frozen=True, slots=True)
class ChatPage:
    """Messages newest first; ``more`` when older ones exist."""

    messages: tuple[StoredMessage, ...]
    more: bool
    had_unread: bool
    """The chat had unread messages before this read marked all of it read."""


@dataclass(frozen=True, slots=True)
class ReadMark:
    """What ``SetRead`` changed: the row read, and whether the unread count moved."""

    message: StoredMessage
    unread_changed: bool


@dataclass(frozen=True, slots=True)
class Removal:
    """What ``Delete`` changed."""

    message: StoredMessage
    was_unread: bool


@dataclass(frozen=True, slots=True)
class MemberInfo:
    sip: str
    admin: bool


@dataclass(frozen=True, slots=True)
class GroupInfo:
    id: int
    domain: str
    dn: str
    members: tuple[MemberInfo, ...]

    @property
    def sip(self) -> str:
        return group_sip(self.id)

    def member(self, sip: str) -> MemberInfo | None:
        return next((member for member in self.members if member.sip == sip), None)


@dataclass(frozen=True, slots=True)
class Badge:
    """A user's total unread count (PROTOCOL §12.10 ``Badge``)."""

    domain: str
    user: str
    count: int


@dataclass(frozen=True, slots=True)
class FileGrant:
    """A Post with ``attach`` that is stored, and the users who have a row of it: each
    gets permanent buffers of its own (PROTOCOL §8.4)."""

    post: NewPost
    owners: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PostBatch:
    """The outcome of one group commit: per Post (in order) the id to answer with, or
    the error that Post alone gets; then the badges of users whose unread count moved."""

    outcomes: tuple[int | Duplicate | MessagesServiceError, ...]
    badges: tuple[Badge, ...]
    files: tuple[FileGrant, ...] = ()


@dataclass(frozen=True, slots=True)
class ChatDeleted:
    """A note for ``topic``: its chat with ``peer`` was deleted on the other side by
    ``deleter`` acting as ``role``; ``removed`` when ``topic``'s copy went too.
    ``peer_dn`` is ``peer``'s display name as ``topic``'s chat row knows it (empty when
    ``topic`` has no such row)."""

    domain: str
    topic: str
    peer: str
    deleter: str
    role: str
    removed: bool
    time_ms: int
    peer_dn: str = ""


@dataclass(frozen=True, slots=True)
class ChatRemoval:
    """What ``DeleteChat`` removed: per side (topic), its rows that were live, and the
    sides whose unread count changed; ``note`` the note left for the other side."""

    removed: dict[str, tuple[StoredMessage, ...]]
    unread_changed: tuple[str, ...]
    note: ChatDeleted | None
