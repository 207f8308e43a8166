"""Stored values as they go on the wire (PROTOCOL §7.4, §12.10)."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from .storage import Badge, ChatDeleted, ChatSummary, GroupInfo, StoredMessage

__all__ = [
    "attached",
    "badge",
    "chat_deleted",
    "chat_deleted_ind",
    "chat_ind",
    "group_ind",
    "message",
]

JsonObject = dict[str, Any]


def message(stored: StoredMessage) -> JsonObject:
    """``msg`` of ``ReadChatInd`` and ``SearchInd``; ``read`` only on the user's own
    one-to-one messages (has the peer read it)."""
    out: JsonObject = {
        "id": stored.id,
        "author": stored.author,
        "dn": stored.author_dn,
        "text": stored.text,
        "timestamp": stored.time_ms,
        "attached": attached(stored.attach),
        "seq": stored.seq,
        "callId": stored.call_id,
    }
    if stored.read is not None:
        out["read"] = stored.read
    return out


def attached(attach: str | None) -> list[JsonObject]:
    """``attached`` from an ``attach`` value: blank-separated, URL-encoded URLs (§4.6).
    The name is the decoded last path segment, or the URL itself when it has none or
    does not parse (``http://[`` is URL-encoded text, but not a URL)."""
    files: list[JsonObject] = []
    for url in (attach or "").split():
        try:
            segment = urlsplit(url).path.rsplit("/", 1)[-1]
        except ValueError:
            segment = ""
        files.append({"name": unquote(segment) or url, "url": url})
    return files


def chat_ind(chat: ChatSummary) -> JsonObject:
    return {
        "mt": "ReadChatsInd",
        "sip": chat.peer,
        "dn": chat.peer_dn,
        "grp": chat.grp,
        "timestamp": chat.last_time,
        "unread": chat.unread,
    }


def group_ind(group: GroupInfo) -> JsonObject:
    """``GroupInd`` (PROTOCOL §12.10), pushed after every change and for ``SyncGroups``."""
    return {
        "mt": "GroupInd",
        "domain": group.domain,
        "id": group.id,
        "sip": group.sip,
        "dn": group.dn,
        "members": [{"sip": member.sip, "admin": member.admin} for member in group.members],
    }


def badge(value: Badge) -> JsonObject:
    return {"mt": "Badge", "domain": value.domain, "user": value.user, "count": value.count}


def chat_deleted(note: ChatDeleted) -> JsonObject:
    """``ChatDeleted`` (docs/protocol.md 12.32): ``sip`` the chat as its receiver names it
    (its peer) and ``dn`` that peer's display name, ``by`` who deleted it acting as
    ``role``, ``removed`` when the receiver's copy went too."""
    return {
        "mt": "ChatDeleted",
        "sip": note.peer,
        "dn": note.peer_dn or note.peer,
        "by": note.deleter,
        "role": note.role,
        "removed": note.removed,
        "time": note.time_ms,
    }


def chat_deleted_ind(note: ChatDeleted) -> JsonObject:
    """The same, listed by ``ReadChats`` until the chat is read or deleted."""
    return {**chat_deleted(note), "mt": "ChatDeletedInd"}
