"""Deleting a whole chat in one transaction, and the notes it leaves (docs/protocol.md 12.32).

A chat is one side's conversation with one peer: its rows become tombstones (so a resent
Post cannot bring them back, as for ``Delete``), its chat row stops being listed
(``last_id`` 0) and counts nothing unread. With ``both`` the other side's copy goes the same
way in the same transaction. The other side of a one-to-one chat gets a note (one per
chat, the latest), read by ``ReadChats`` and dropped once that side reads or deletes the
chat: so a device that was offline learns of the deletion at its next sync.
"""

from __future__ import annotations

from dataclasses import replace

from tortoise.backends.base.client import BaseDBAsyncClient

from .database import Database
from .models import Chat, ChatDeletion, Message
from .rows import ChatDeleted, ChatRemoval, StoredMessage

__all__ = ["attached", "delete_chat", "drop_note", "notes_of"]


async def delete_chat(
    db: Database,
    *,
    domain: str,
    topic: str,
    peer: str,
    other: str | None,
    deleter: str,
    role: str,
    both: bool,
    now_ms: int,
) -> ChatRemoval | None:
    """Delete ``topic``'s chat with ``peer`` (and, with ``both``, ``other``'s chat with
    ``topic``); ``other`` is the side to tell (None for a group's chat). None when
    ``topic`` has no such chat."""
    async with db.transaction() as tx:
        exists = await Chat.filter(domain=domain, topic=topic, peer=peer).using_db(tx).exists()
        if not exists:
            return None
        removed = {topic: await _remove_side(tx, domain, topic, peer)}
        if both and other is not None:
            removed[other] = await _remove_side(tx, domain, other, topic)
        changed = tuple(side for side, (_, was_unread) in removed.items() if was_unread)
        note = None
        if other is not None:
            note = ChatDeleted(domain, other, topic, deleter, role, both, now_ms)
            await _put_note(tx, note)
            note = (await _named(tx, [note]))[0]
        await _drop(tx, domain, topic, peer)  # the deleter has nothing left to learn of it
    return ChatRemoval({side: rows for side, (rows, _) in removed.items()}, changed, note)


async def attached(
    client: BaseDBAsyncClient, domain: str, topic: str, peer: str
) -> tuple[StoredMessage, ...]:
    """The live rows with attachments of ``topic``'s chat with ``peer``: their files go
    before the rows do, so that a file store that fails leaves the chat to delete again."""
    live = Message.filter(domain=domain, topic=topic, peer=peer, deleted=False)
    rows = await live.filter(attach__isnull=False).using_db(client).order_by("id")
    return tuple(row.stored() for row in rows)


async def _remove_side(
    tx: BaseDBAsyncClient, domain: str, topic: str, peer: str
) -> tuple[tuple[StoredMessage, ...], bool]:
    """Tombstone every live row of one side's chat; its rows and whether it had unread."""
    chat = await (
        Chat.filter(domain=domain, topic=topic, peer=peer).select_for_update().using_db(tx).first()
    )
    live = Message.filter(domain=domain, topic=topic, peer=peer, deleted=False)
    rows = await live.using_db(tx).order_by("id")
    await live.using_db(tx).update(deleted=True)
    if chat is None:
        return tuple(row.stored() for row in rows), False
    newest = max((row.id for row in rows), default=chat.read_upto)
    await (
        Chat.filter(id=chat.id)
        .using_db(tx)
        .update(
            last_id=0,
            last_time=0,
            unread=0,
            read_upto=max(chat.read_upto, newest, chat.last_id),
        )
    )
    return tuple(row.stored() for row in rows), chat.unread > 0


async def _put_note(tx: BaseDBAsyncClient, note: ChatDeleted) -> None:
    await _drop(tx, note.domain, note.topic, note.peer)
    await ChatDeletion.create(
        domain=note.domain,
        topic=note.topic,
        peer=note.peer,
        deleter=note.deleter,
        role=note.role,
        removed=note.removed,
        time_ms=note.time_ms,
        using_db=tx,
    )


async def _drop(tx: BaseDBAsyncClient, domain: str, topic: str, peer: str) -> None:
    await ChatDeletion.filter(domain=domain, topic=topic, peer=peer).using_db(tx).delete()


async def notes_of(conn: BaseDBAsyncClient, domain: str, topic: str) -> list[ChatDeleted]:
    """``topic``'s notes, newest first."""
    rows = await ChatDeletion.filter(domain=domain, topic=topic).using_db(conn).order_by("-id")
    notes = [
        ChatDeleted(
            row.domain, row.topic, row.peer, row.deleter, row.role, bool(row.removed), row.time_ms
        )
        for row in rows
    ]
    return await _named(conn, notes)


async def _named(conn: BaseDBAsyncClient, notes: list[ChatDeleted]) -> list[ChatDeleted]:
    """``notes`` (all of one side) with each peer's display name from that side's chat
    rows, which a deletion keeps (unlisted) even when it removes the side's messages."""
    if not notes:
        return notes
    first = notes[0]
    rows = await Chat.filter(
        domain=first.domain, topic=first.topic, peer__in=[note.peer for note in notes]
    ).using_db(conn)
    names = {row.peer: row.peer_dn for row in rows}
    return [replace(note, peer_dn=names.get(note.peer, "")) for note in notes]


async def drop_note(conn: BaseDBAsyncClient, domain: str, topic: str, peer: str) -> None:
    """``topic`` read its chat with ``peer``: the note has been seen."""
    await ChatDeletion.filter(domain=domain, topic=topic, peer=peer).using_db(conn).delete()
