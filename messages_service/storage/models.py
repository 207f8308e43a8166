"""The Tortoise models of the message store (PROTOCOL §7.2, §12.10).

The tables themselves are created by ``migrations`` (versioned SQL for SQLite and
PostgreSQL), never by ``generate_schemas``: these classes only tell Tortoise the column
names and types so that queries and bulk inserts can be written with the ORM. Keep them
in step with the latest migration.

Timestamps are integers (milliseconds since the epoch, PROTOCOL §1.5), so no time zone
setting of Tortoise or the database ever changes them.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from .rows import StoredMessage

__all__ = ["APP_LABEL", "Chat", "ChatDeletion", "Group", "Member", "Message"]

APP_LABEL = "messages"


class Message(Model):
    """One side's copy of one message: the row lives in ``topic`` (the user who owns the
    copy) under ``peer`` (the other user, or the group's sip). Unique on
    ``(domain, topic, call_id, seq)``, which makes a resent Post harmless. A deleted row
    stays as a tombstone so a resend cannot bring it back."""

    id = fields.BigIntField(primary_key=True)
    domain = fields.TextField()
    topic = fields.TextField()
    peer = fields.TextField()
    grp = fields.BooleanField()
    author = fields.TextField()
    author_dn = fields.TextField()
    text = fields.TextField()
    attach = fields.TextField(null=True)
    call_id = fields.TextField()
    seq = fields.BigIntField()
    client_id = fields.TextField(null=True)
    time_ms = fields.BigIntField()
    deleted = fields.BooleanField(default=False)
    writer = fields.TextField(null=True)
    """The agent who wrote a row its queue authored (docs/protocol.md 12.32), else null."""

    class Meta:
        table = "messages"
        app = APP_LABEL

    def stored(self, user: str | None = None, peer_read_upto: int = 0) -> StoredMessage:
        """The row as the store hands it out; ``read`` only on the user's own one-to-one
        messages, and only when the caller passed the user."""
        read = None
        if user is not None and self.author == user and not self.grp:
            read = self.id <= peer_read_upto
        return StoredMessage(
            id=self.id,
            peer=self.peer,
            grp=bool(self.grp),
            author=self.author,
            author_dn=self.author_dn,
            text=self.text,
            attach=self.attach,
            call_id=self.call_id,
            seq=self.seq,
            time_ms=self.time_ms,
            read=read,
        )


class Chat(Model):
    """One user's conversation with one peer (user or group): what ``ReadChats`` lists.

    ``read_upto`` is the newest row id this user has read; ``peer_read_upto`` the newest
    of this user's own rows the peer has read (``read:true`` in ``ReadChat``); ``unread``
    how many rows from others after ``read_upto`` are not deleted (see ``unread``)."""

    id = fields.BigIntField(primary_key=True)
    domain = fields.TextField()
    topic = fields.TextField()
    peer = fields.TextField()
    peer_dn = fields.TextField()
    grp = fields.BooleanField()
    last_id = fields.BigIntField(default=0)
    last_time = fields.BigIntField(default=0)
    read_upto = fields.BigIntField(default=0)
    peer_read_upto = fields.BigIntField(default=0)
    unread = fields.BigIntField(default=0)

    class Meta:
        table = "chats"
        app = APP_LABEL


class Group(Model):
    """A group chat (PROTOCOL §7.6); its address is ``group-<id>``."""

    id = fields.BigIntField(primary_key=True)
    domain = fields.TextField()
    dn = fields.TextField()

    class Meta:
        table = "groups"
        app = APP_LABEL


class Member(Model):
    """A user's membership of a group; ``domain`` repeats the group's so that a user's
    groups are found through one index."""

    id = fields.BigIntField(primary_key=True)
    group_id = fields.BigIntField()
    domain = fields.TextField()
    sip = fields.TextField()
    admin = fields.BooleanField(default=False)

    class Meta:
        table = "members"
        app = APP_LABEL


class ChatDeletion(Model):
    """A note for ``topic``: ``peer`` (its side of the chat) was deleted by ``deleter``
    acting as ``role`` (docs/protocol.md 12.32); ``removed`` when this side's copy went
    too. One per chat, the latest; dropped once ``topic`` reads or deletes that chat."""

    id = fields.BigIntField(primary_key=True)
    domain = fields.TextField()
    topic = fields.TextField()
    peer = fields.TextField()
    deleter = fields.TextField()
    role = fields.TextField()
    removed = fields.BooleanField()
    time_ms = fields.BigIntField()

    class Meta:
        table = "chat_deletions"
        app = APP_LABEL
