"""``MessageStore``: every query the service makes, each one named.

Every method that reads or changes rows takes the ``(domain, user)`` it acts for and
looks only at that user's own topic, so an id or a peer taken from a request can never
reach another user's rows (PROTOCOL §7.2: each side has its own copy). Authorization
beyond that (group admins, licences) is the handlers' job.

Open with ``await MessageStore.open(url)`` (runs the migrations), ``close()`` when done.
"""

from __future__ import annotations

import html
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import F

from messages_service.errors import Unavailable
from tracing import Tracer

from .chat_removal import attached, delete_chat, drop_note, notes_of
from .database import Database, Dialect
from .migrations import migrate
from .models import Chat, Group, Member, Message
from .post_keys import prune_keys
from .posts import write_posts
from .rows import (
    ChatDeleted,
    ChatPage,
    ChatRemoval,
    ChatSummary,
    GroupInfo,
    MemberInfo,
    NewPost,
    PostBatch,
    ReadMark,
    Removal,
    StoredMessage,
    group_sip,
)
from .unread import mark_read, unread_totals

__all__ = ["MessageStore"]

_SEARCH_CHUNK = 200
SEARCH_SCAN_MAX = 10_000
"""Rows a Search reads when the database cannot narrow them (a non-ASCII needle): the
service answers one hub's requests in order, so one search through a long history
must not hold up every other user of that hub."""
_TAG = re.compile(r"<[^>]*>")
DEFAULT_KEY_TTL = 24 * 3600.0
_PRUNE_EVERY = 60.0
"""Seconds between two prunings of expired idempotency keys (one indexed DELETE)."""


class MessageStore:
    def __init__(
        self,
        db: Database,
        *,
        key_ttl: float = DEFAULT_KEY_TTL,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self.key_ttl = key_ttl
        """How long a client message id stays an idempotency key (PROTOCOL §4.6)."""
        self.wall = wall
        """Wall-clock seconds, injected: key ages are measured with it."""
        self._next_prune = 0.0

    @classmethod
    async def open(
        cls, url: str, tracer: Tracer | None = None, *, key_ttl: float = DEFAULT_KEY_TTL
    ) -> MessageStore:
        """Open the database at ``url`` and bring its schema up to date."""
        db = await Database.open(url, tracer)
        try:
            await db.run(migrate(db))
        except BaseException:
            await db.close()
            raise
        return cls(db, key_ttl=key_ttl)

    async def close(self) -> None:
        await self._db.close()

    @property
    def dialect(self) -> Dialect:
        return self._db.dialect

    async def ready(self) -> bool:
        """True when the database answers ``SELECT 1`` (``/healthz``)."""
        try:
            await self._db.run(self._ping())
        except Unavailable:
            return False
        return True

    async def _ping(self) -> None:
        await self._db.client().execute_query("SELECT 1")

    # -- Posts ---------------------------------------------------------------------------

    async def write_posts(self, posts: list[NewPost]) -> PostBatch:
        """Store a batch of Posts in one transaction (see ``posts``); now and then, first
        drop the idempotency keys that have expired."""
        now = self.wall()
        ttl_ms = int(self.key_ttl * 1000)
        if now >= self._next_prune:
            self._next_prune = now + min(_PRUNE_EVERY, self.key_ttl)
            await self._db.run(self._prune_keys(int(now * 1000) - ttl_ms))
        return await self._db.run(
            write_posts(self._db, posts, now_ms=int(now * 1000), key_ttl_ms=ttl_ms)
        )

    async def idempotency_keys(self) -> int:
        """How many client message ids are held as keys now (``/metrics``, tests)."""
        return await self._db.run(self._count_keys())

    async def _count_keys(self) -> int:
        rows = await self._db.client().execute_query_dict("SELECT COUNT(*) AS n FROM post_keys")
        return int(rows[0]["n"])

    async def _prune_keys(self, cutoff_ms: int) -> int:
        async with self._db.transaction() as tx:
            return await prune_keys(self._db, tx, cutoff_ms)

    # -- reading -------------------------------------------------------------------------

    async def chats(self, domain: str, user: str, *, unread_only: bool) -> list[ChatSummary]:
        """The user's chats, newest first (PROTOCOL §7.4 ``ReadChats``)."""
        return await self._db.run(self._chats(domain, user, unread_only))

    async def _chats(self, domain: str, user: str, unread_only: bool) -> list[ChatSummary]:
        query = Chat.filter(domain=domain, topic=user, last_id__gt=0)
        if unread_only:
            query = query.filter(unread__gt=0)
        chats = await (
            query.using_db(self._db.client())
            .order_by("-last_id")
            .values_list("peer", "peer_dn", "grp", "last_time", "unread")
        )
        return [
            ChatSummary(peer, peer_dn, bool(grp), last_time, unread)
            for peer, peer_dn, grp, last_time, unread in chats
        ]

    async def read_chat(
        self, domain: str, user: str, peer: str, *, older: int | None, count: int, rows: bool
    ) -> ChatPage:
        """A page of one chat, newest first, and all of the chat marked read
        (PROTOCOL §12.10 ``ReadChat``; ``rows=False`` for ``noind``)."""
        return await self._db.run(self._read_chat(domain, user, peer, older, count, rows))

    async def _read_chat(
        self, domain: str, user: str, peer: str, older: int | None, count: int, rows: bool
    ) -> ChatPage:
        conn = self._db.client()
        chat = await Chat.filter(domain=domain, topic=user, peer=peer).using_db(conn).first()
        if chat is None:
            return ChatPage((), False, False)
        page: list[StoredMessage] = []
        if rows:
            query = Message.filter(domain=domain, topic=user, peer=peer, deleted=False)
            if older is not None:
                query = query.filter(id__lt=older)
            found = await query.using_db(conn).order_by("-id").limit(count + 1)
            page = [row.stored(user, chat.peer_read_upto) for row in found]
        had_unread = False
        if chat.last_id > chat.read_upto:
            # Up to the newest row seen now: a row stored meanwhile stays unread.
            async with self._db.transaction() as tx:
                locked = await _locked_chat(tx, chat.id)
                if locked is not None and locked.read_upto < chat.last_id:
                    had_unread = locked.unread > 0
                    await mark_read(self._db, tx, chat.id, chat.last_id)
        return ChatPage(tuple(page[:count]), len(page) > count, had_unread)

    async def unread_total(self, domain: str, user: str) -> int:
        """The user's badge (PROTOCOL §12.10 ``ReadBadge``)."""
        return (await self._db.run(self._unread_totals(domain, [user])))[user]

    async def _unread_totals(self, domain: str, users: list[str]) -> dict[str, int]:
        return await unread_totals(self._db, self._db.client(), domain, users)

    async def search(self, domain: str, user: str, needle: str, count: int) -> list[StoredMessage]:
        """Up to ``count`` of the user's messages whose text contains ``needle``, any
        case, newest first (PROTOCOL §12.10 ``Search``)."""
        return await self._db.run(self._search(domain, user, needle, count))

    async def _search(self, domain: str, user: str, needle: str, count: int) -> list[StoredMessage]:
        # Texts are stored as sanitized HTML: the database narrows the candidates (when
        # its case folding can: ASCII only), the exact test runs on the visible text.
        conn = self._db.client()
        wanted = needle.casefold()
        prefilter = html.escape(needle, quote=False) if needle.isascii() else ""
        marks = dict(
            await Chat.filter(domain=domain, topic=user)
            .using_db(conn)
            .values_list("peer", "peer_read_upto")
        )
        hits: list[StoredMessage] = []
        before: int | None = None
        scanned = 0
        while len(hits) < count and (prefilter or scanned < SEARCH_SCAN_MAX):
            query = Message.filter(domain=domain, topic=user, deleted=False)
            if prefilter:
                query = query.filter(text__icontains=prefilter)
            if before is not None:
                query = query.filter(id__lt=before)
            size = _SEARCH_CHUNK if prefilter else min(_SEARCH_CHUNK, SEARCH_SCAN_MAX - scanned)
            chunk = await query.using_db(conn).order_by("-id").limit(size)
            scanned += len(chunk)
            hits += (
                row.stored(user, marks.get(row.peer, 0))
                for row in chunk
                if wanted in _visible_text(row.text).casefold()
            )
            if len(chunk) < size:
                break
            before = chunk[-1].id
        return hits[:count]

    # -- changing read state ---------------------------------------------------------------

    async def set_read(self, domain: str, user: str, message_id: int) -> ReadMark | None:
        """Mark the user's chat read up to ``message_id``; for a one-to-one message also
        mark, in the peer's chat with the user, the peer's copy of it as read by the
        peer (``read:true``). None when the id is not a live row of the user's topic."""
        return await self._db.run(self._set_read(domain, user, message_id))

    async def _set_read(self, domain: str, user: str, message_id: int) -> ReadMark | None:
        conn = self._db.client()
        row = await _own_row(conn, domain, user, message_id)
        if row is None:
            return None
        changed = False
        async with self._db.transaction() as tx:
            chat = await (
                Chat.filter(domain=domain, topic=user, peer=row.peer)
                .select_for_update()
                .using_db(tx)
                .first()
            )
            if chat is not None and message_id > chat.read_upto:
                await mark_read(self._db, tx, chat.id, message_id)
                after = await Chat.filter(id=chat.id).using_db(tx).first()
                changed = after is not None and after.unread != chat.unread
        # Apart from the transaction above: one chat row locked at a time cannot deadlock
        # with the writer's upserts, and this only ever moves a marker forward.
        if not row.grp:
            await _mark_peer_copy_read(conn, row)
        return ReadMark(row.stored(), changed)

    async def own_message(self, domain: str, user: str, message_id: int) -> StoredMessage | None:
        """A live row of the user's own topic, or None (``Attachments``)."""
        return await self._db.run(self._own_message(domain, user, message_id))

    async def _own_message(self, domain: str, user: str, message_id: int) -> StoredMessage | None:
        row = await _own_row(self._db.client(), domain, user, message_id)
        return None if row is None else row.stored()

    async def delete(self, domain: str, user: str, message_id: int) -> Removal | None:
        """Delete a row of the user's own topic, leaving a tombstone (a resent Post must
        not bring it back). None when the id is not a live row of the user's topic."""
        return await self._db.run(self._delete(domain, user, message_id))

    async def _delete(self, domain: str, user: str, message_id: int) -> Removal | None:
        async with self._db.transaction() as tx:
            row = await _own_row(tx, domain, user, message_id)
            if row is None:
                return None
            # Only if still live: two deletes of one row at once (two devices) must not
            # both take it off the unread count.
            if not await Message.filter(id=row.id, deleted=False).using_db(tx).update(deleted=True):
                return None
            chat = await (
                Chat.filter(domain=domain, topic=user, peer=row.peer)
                .select_for_update()
                .using_db(tx)
                .first()
            )
            if chat is None:
                return Removal(row.stored(), False)
            was_unread = row.author != user and row.id > chat.read_upto
            if was_unread:
                await Chat.filter(id=chat.id).using_db(tx).update(unread=F("unread") - 1)
            if chat.last_id == row.id:  # the chat now ends at its newest live row
                latest = (
                    await Message.filter(domain=domain, topic=user, peer=row.peer, deleted=False)
                    .using_db(tx)
                    .order_by("-id")
                    .first()
                )
                await (
                    Chat.filter(id=chat.id)
                    .using_db(tx)
                    .update(
                        last_id=latest.id if latest else 0,
                        last_time=latest.time_ms if latest else 0,
                    )
                )
        return Removal(row.stored(), was_unread)

    # -- deleting a whole chat (docs/protocol.md 12.32) ---------------------------------------

    async def delete_chat(
        self, domain: str, topic: str, peer: str, **how: Any
    ) -> ChatRemoval | None:
        """Delete ``topic``'s chat with ``peer`` (``how``: ``other``, ``deleter``, ``role``,
        ``both``; see ``chat_removal.delete_chat``). None when there is no such chat."""
        now_ms = int(self.wall() * 1000)
        return await self._db.run(
            delete_chat(self._db, domain=domain, topic=topic, peer=peer, now_ms=now_ms, **how)
        )

    async def attached(self, domain: str, topic: str, peer: str) -> tuple[StoredMessage, ...]:
        """The live rows with attachments of ``topic``'s chat with ``peer``."""
        return await self._db.run(attached(self._db.client(), domain, topic, peer))

    async def deletion_notes(self, domain: str, topic: str) -> list[ChatDeleted]:
        """What ``topic`` has not seen yet of chats deleted on the other side."""
        return await self._db.run(notes_of(self._db.client(), domain, topic))

    async def drop_deletion_note(self, domain: str, topic: str, peer: str) -> None:
        await self._db.run(drop_note(self._db.client(), domain, topic, peer))

    async def writers_in(self, domain: str, topic: str, writer: str) -> set[str]:
        """The peers of ``topic``'s chats in which ``writer`` wrote a row (a support
        agent writing as its queue: the chats it took part in)."""
        return await self._db.run(self._writers_in(domain, topic, writer))

    async def _writers_in(self, domain: str, topic: str, writer: str) -> set[str]:
        query = Message.filter(domain=domain, topic=topic, writer=writer)
        peers = await query.using_db(self._db.client()).distinct().values_list("peer", flat=True)
        return {str(peer) for peer in peers}

    # -- groups ----------------------------------------------------------------------------

    async def create_group(self, domain: str, dn: str, creator: str) -> GroupInfo:
        """A new group whose first member and admin is ``creator``."""
        return await self._db.run(self._create_group(domain, dn, creator))

    async def _create_group(self, domain: str, dn: str, creator: str) -> GroupInfo:
        async with self._db.transaction() as tx:
            group = await Group.create(domain=domain, dn=dn, using_db=tx)
            await Member.create(
                group_id=group.id, domain=domain, sip=creator, admin=True, using_db=tx
            )
        return GroupInfo(group.id, domain, dn, (MemberInfo(creator, True),))

    async def group(self, domain: str, group_id: int) -> GroupInfo | None:
        """The group with its members, or None (also for another tenant's group)."""
        return await self._db.run(self._group(self._db.client(), domain, group_id))

    async def _group(self, conn: BaseDBAsyncClient, domain: str, group_id: int) -> GroupInfo | None:
        groups = await _with_members(
            conn, await Group.filter(id=group_id, domain=domain).using_db(conn)
        )
        return groups[0] if groups else None

    async def rename_group(self, domain: str, group_id: int, dn: str) -> GroupInfo | None:
        """Rename a group (and its members' chats with it)."""
        return await self._db.run(self._rename_group(domain, group_id, dn))

    async def _rename_group(self, domain: str, group_id: int, dn: str) -> GroupInfo | None:
        async with self._db.transaction() as tx:
            await Group.filter(id=group_id, domain=domain).using_db(tx).update(dn=dn)
            chats = Chat.filter(domain=domain, peer=group_sip(group_id), grp=True)
            await chats.using_db(tx).update(peer_dn=dn)
            return await self._group(tx, domain, group_id)

    async def put_member(
        self, domain: str, group_id: int, sip: str, *, admin: bool
    ) -> GroupInfo | None:
        """Add ``sip`` to the group, or change whether it is an admin."""
        return await self._db.run(self._put_member(domain, group_id, sip, admin))

    async def _put_member(
        self, domain: str, group_id: int, sip: str, admin: bool
    ) -> GroupInfo | None:
        async with self._db.transaction() as tx:
            updated = (
                await Member.filter(group_id=group_id, sip=sip).using_db(tx).update(admin=admin)
            )
            if not updated:
                await Member.create(
                    group_id=group_id, domain=domain, sip=sip, admin=admin, using_db=tx
                )
            return await self._group(tx, domain, group_id)

    async def remove_member(self, domain: str, group_id: int, sip: str) -> GroupInfo | None:
        """Remove ``sip`` from the group; its rows stay (they are its own copies)."""
        return await self._db.run(self._remove_member(domain, group_id, sip))

    async def _remove_member(self, domain: str, group_id: int, sip: str) -> GroupInfo | None:
        async with self._db.transaction() as tx:
            await Member.filter(group_id=group_id, domain=domain, sip=sip).using_db(tx).delete()
            return await self._group(tx, domain, group_id)

    async def groups_of(self, domain: str, user: str) -> list[GroupInfo]:
        """The groups ``user`` is a member of, oldest first."""
        return await self._db.run(self._groups_of(domain, user))

    async def _groups_of(self, domain: str, user: str) -> list[GroupInfo]:
        conn = self._db.client()
        memberships = Member.filter(domain=domain, sip=user).using_db(conn)
        ids = await memberships.values_list("group_id", flat=True)
        groups = await Group.filter(domain=domain, id__in=ids).using_db(conn)
        return await _with_members(conn, groups)

    async def all_groups(self) -> list[GroupInfo]:
        """Every group of every tenant (PROTOCOL §12.10 ``SyncGroups``)."""
        return await self._db.run(self._all_groups())

    async def _all_groups(self) -> list[GroupInfo]:
        conn = self._db.client()
        return await _with_members(conn, await Group.all().using_db(conn))


async def _locked_chat(tx: BaseDBAsyncClient, chat_id: int) -> Chat | None:
    """The chat's row, locked until the transaction ends (PostgreSQL; SQLite has one
    writer at a time anyway)."""
    return await Chat.filter(id=chat_id).select_for_update().using_db(tx).first()


async def _own_row(
    conn: BaseDBAsyncClient, domain: str, user: str, message_id: int
) -> Message | None:
    query = Message.filter(id=message_id, domain=domain, topic=user, deleted=False)
    return await query.using_db(conn).first()


async def _mark_peer_copy_read(conn: BaseDBAsyncClient, row: Message) -> None:
    """``row`` (in the reader's topic) is read: in the peer's chat with the reader, the
    peer's copy of the same message (same callId and seq) becomes ``peer_read_upto``."""
    copies = await (
        Message.filter(domain=row.domain, topic=row.peer, call_id=row.call_id, seq=row.seq)
        .using_db(conn)
        .values_list("id", flat=True)
    )
    if not copies:  # the peer holds no licence: nothing stored on that side
        return
    await (
        Chat.filter(domain=row.domain, topic=row.peer, peer=row.topic, peer_read_upto__lt=copies[0])
        .using_db(conn)
        .update(peer_read_upto=copies[0])
    )


async def _with_members(conn: BaseDBAsyncClient, groups: Iterable[Group]) -> list[GroupInfo]:
    by_id = {group.id: group for group in groups}
    members: dict[int, list[MemberInfo]] = defaultdict(list)
    if by_id:
        for group_id, sip, admin in (
            await Member.filter(group_id__in=list(by_id))
            .using_db(conn)
            .order_by("id")
            .values_list("group_id", "sip", "admin")
        ):
            members[group_id].append(MemberInfo(sip, bool(admin)))
    return [
        GroupInfo(group.id, group.domain, group.dn, tuple(members[group.id]))
        for group in sorted(by_id.values(), key=lambda group: group.id)
    ]


def _visible_text(text: str) -> str:
    """What a reader sees of a stored (sanitized) HTML text: tags gone, entities decoded.
    The hub's sanitizer leaves only attribute-free allow-listed tags, so a simple pattern
    is exact here."""
    return html.unescape(_TAG.sub("", text))
