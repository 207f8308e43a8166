"""Request handlers: the hub's forwarded requests and its own queries (PROTOCOL §7.4,
§7.6, §12.10). ``Post`` is not here: it goes to the writer.

Each handler parses its request (``requests``), checks what the store cannot (group
admins, licences, queues), asks the store, and returns a ``Reply``: the frames for the asker, in
order (``…Ind``s, then ``…Result``), and the notifications for every hub, which go out
first. Errors are raised as ``MessagesServiceError``s; the connection answers them.

Authorization, in one place (§12.10): every forwarded request acts for the ``user`` and
``domain`` the hub stamped; a ``topic`` other than that user is ``forbidden``; ids are
looked up in the user's own topic only (``not_found`` otherwise); group changes need an
admin (``forbidden``). Reading a group's chat needs membership (PROTOCOL §7.6: only
members read it), checked even though rows are per-member copies and a non-member would
find none of its own but those from before it left.

A support queue's side of a stored support chat (docs/protocol.md 12.32) is kept under
the queue's sip: ``ReadChats``, ``ReadChat`` and ``DeleteChat`` with ``queue`` act on it
for an agent of that queue, or (``ReadChat``/``DeleteChat`` of one chat) for an agent who
wrote in that chat; ``Search`` looks through the queues the caller answers for too.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, Final

from filebuffers import Owner

from . import render
from .attachments import Attachments
from .directory import TenantDirectory
from .errors import Forbidden, NotFound, Unavailable, UnknownMt, Unlicensed
from .requests import (
    Caller,
    parse_create_file_buffer,
    parse_delete,
    parse_delete_chat,
    parse_read_chat,
    parse_read_chats,
    parse_search,
    parse_set_read,
    parse_write_group,
    parse_write_member,
    queue_of,
    read_caller,
    text,
)
from .storage import (
    Badge,
    ChatDeleted,
    ChatRemoval,
    GroupInfo,
    MessageStore,
    NewPost,
    StoredMessage,
    group_id_of,
)

__all__ = ["HUB_ONLY", "Handlers", "Reply", "refuse_forwarded"]

log = logging.getLogger(__name__)

JsonObject = dict[str, Any]

HUB_ONLY: Final = frozenset({"Post", "ReadBadge", "SyncGroups"})
"""Requests only the hub itself may make, never a client's session (§12.10)."""


@dataclass(slots=True)
class Reply:
    answers: list[JsonObject] = field(default_factory=list)
    """For the asker, in order; ``handle`` stamps the request's ``src`` on each."""
    notifications: list[JsonObject] = field(default_factory=list)
    """For every logged-in hub, sent *before* the answers (PROTOCOL §7.6, 12.23): each
    hub link delivers in order and the hub applies a notification before it reads the
    next frame, so the hub forwarding a ``WriteGroupResult`` already routes by the new
    group, and any hub answering a read made after the change knows it too."""


def refuse_forwarded(mt: str, body: JsonObject) -> None:
    """A request carrying ``session`` came from a client: it may never be a hub-only one."""
    if mt in HUB_ONLY and "session" in body:
        raise Forbidden(f"{mt} is not allowed on a session")


class Handlers:
    def __init__(
        self,
        store: MessageStore,
        directory: TenantDirectory,
        attachments: Attachments | None = None,
    ) -> None:
        self._store = store
        self._directory = directory
        self._attachments = attachments
        self._table: dict[str, Callable[[JsonObject], Awaitable[Reply]]] = {
            "CreateFileBuffer": self.create_file_buffer,
            "Attachments": self.attachments,
            "ReadChats": self.read_chats,
            "ReadChat": self.read_chat,
            "SetRead": self.set_read,
            "Delete": self.delete,
            "DeleteChat": self.delete_chat,
            "Search": self.search,
            "WriteGroup": self.write_group,
            "WriteMember": self.write_member,
            "ReadGroups": self.read_groups,
            "ReadBadge": self.read_badge,
            "SyncGroups": self.sync_groups,
        }

    async def handle(self, mt: str, body: JsonObject) -> Reply:
        handler = self._table.get(mt)
        if handler is None:
            raise UnknownMt(f"unknown mt {mt[:40]!r}")
        reply = await handler(body)
        src = body.get("src")
        if src is not None:
            for answer in reply.answers:
                answer["src"] = src
        return reply

    # -- reading (§7.4) --------------------------------------------------------------------

    async def read_chats(self, body: JsonObject) -> Reply:
        caller, request = read_caller(body), parse_read_chats(body)
        topic = await self._topic(caller, queue_of(body))
        chats = await self._store.chats(caller.domain, topic, unread_only=request.unread)
        notes = await self._store.deletion_notes(caller.domain, topic)
        return Reply(
            [
                *map(render.chat_ind, chats),
                *map(render.chat_deleted_ind, notes),
                {"mt": "ReadChatsResult"},
            ]
        )

    async def read_chat(self, body: JsonObject) -> Reply:
        caller, request = read_caller(body), parse_read_chat(body)
        group_id = group_id_of(request.peer)
        if group_id is not None:
            group = await self._store.group(caller.domain, group_id)
            if group is None or group.member(caller.user) is None:
                raise Forbidden("only members read a group's chat")
        topic = await self._topic(caller, queue_of(body), request.peer)
        page = await self._store.read_chat(
            caller.domain,
            topic,
            request.peer,
            older=request.older,
            count=request.count,
            rows=not request.noind,
        )
        answers: list[JsonObject] = [
            {"mt": "ReadChatInd", "msg": render.message(msg)} for msg in page.messages
        ]
        answers.append({"mt": "ReadChatResult", "more": page.more})
        await self._store.drop_deletion_note(caller.domain, topic, request.peer)
        badges = [await self._badge(caller)] if page.had_unread and topic == caller.user else []
        return Reply(answers, badges)

    async def set_read(self, body: JsonObject) -> Reply:
        caller, request = read_caller(body), parse_set_read(body)
        mark = await self._store.set_read(caller.domain, caller.user, request.id)
        if mark is None:
            raise NotFound(f"no message {request.id} of yours")
        notifications = [await self._badge(caller)] if mark.unread_changed else []
        msg = mark.message
        if not msg.grp:  # the hub tells the peer with im_seen on a live call (§7.4)
            notifications.append(
                {
                    "mt": "Seen",
                    "domain": caller.domain,
                    "user": caller.user,
                    "peer": msg.peer,
                    "callId": msg.call_id,
                    "seq": msg.seq,
                }
            )
        return Reply([{"mt": "SetReadResult", "id": request.id}], notifications)

    async def delete(self, body: JsonObject) -> Reply:
        caller, request = read_caller(body), parse_delete(body)
        if self._attachments is not None:  # §8.6: this side's files go with its copy, first
            message = await self._store.own_message(caller.domain, caller.user, request.id)
            if message is not None:
                await self._forget(Owner(caller.domain, caller.user), (message,))
        removal = await self._store.delete(caller.domain, caller.user, request.id)
        if removal is None:
            raise NotFound(f"no message {request.id} of yours")
        badges = [await self._badge(caller)] if removal.was_unread else []
        return Reply([{"mt": "DeleteResult", "id": request.id}], badges)

    async def delete_chat(self, body: JsonObject) -> Reply:
        """docs/protocol.md 12.32: one whole chat of the caller's side (or of its queue's)
        in one request; the other side's devices are told (``ChatDeleted``)."""
        caller, request = read_caller(body), parse_delete_chat(body)
        peer, queue = request.peer, queue_of(body)
        group_id = group_id_of(peer)
        if group_id is not None:  # a group's chat: only the caller's own copy goes
            group = await self._store.group(caller.domain, group_id)
            if queue is not None or group is None or group.member(caller.user) is None:
                raise Forbidden("only members delete a group's chat")
        topic = await self._topic(caller, queue, peer)
        one_to_one = group_id is None
        both = one_to_one and self._directory.delete_chat(caller.domain) == "both"
        sides = [(topic, peer), (peer, topic)] if both else [(topic, peer)]
        forgotten = await self._forget_first(caller.domain, sides)
        removal = await self._store.delete_chat(
            caller.domain,
            topic,
            peer,
            other=peer if one_to_one else None,
            deleter=caller.user,
            role=self._deleter_role(caller.domain, queue, peer, one_to_one),
            both=both,
        )
        if removal is None:
            raise NotFound(f"no chat with {peer[:80]!r}")
        notifications = await self._chat_removed(caller.domain, removal, forgotten)
        removed = len(removal.removed.get(topic, ()))
        return Reply([{"mt": "DeleteChatResult", "sip": peer, "removed": removed}], notifications)

    def _deleter_role(self, domain: str, queue: str | None, peer: str, one_to_one: bool) -> str:
        """Who deletes a chat, as its deletion note tells the other side: an agent for its
        queue, a queue's customer, a group's member, or a user."""
        if queue is not None:
            return "agent"
        if self._directory.queue(domain, peer) is not None:
            return "customer"
        return "user" if one_to_one else "member"

    async def _chat_removed(
        self, domain: str, removal: ChatRemoval, forgotten: set[int]
    ) -> list[JsonObject]:
        """A chat is deleted, the files of its rows ``forgotten`` first: those of rows
        stored since go now, while the store answers; the notifications are the new
        badges of the users whose unread count changed, then the other side's
        ``ChatDeleted``."""
        for side, messages in removal.removed.items():
            late = tuple(message for message in messages if message.id not in forgotten)
            try:
                await self._forget(Owner(domain, side), late)
            except Unavailable:
                log.warning("the files of %d deleted message(s) of %s stay", len(late), side)
        notifications: list[JsonObject] = []
        for side in removal.unread_changed:
            if self._directory.queue(domain, side) is None:
                count = await self._store.unread_total(domain, side)
                notifications.append(render.badge(Badge(domain, side, count)))
        if removal.note is not None:
            notifications += self._told(removal.note)
        return notifications

    def _told(self, note: ChatDeleted) -> list[JsonObject]:
        """``ChatDeleted`` for each user of the other side: the user, or a queue's agents."""
        queue = self._directory.queue(note.domain, note.topic)
        users = list(queue.agents) if queue is not None else [note.topic]
        event = render.chat_deleted(note)
        return [
            {**event, "domain": note.domain, "user": user}
            | ({"queue": queue.sip} if queue is not None else {})
            for user in users
        ]

    async def _forget_first(self, domain: str, sides: list[tuple[str, str]]) -> set[int]:
        """The files of the rows with attachments of each (topic, peer) chat of
        ``sides``, before the rows go (``_forget``); the ids of those rows."""
        forgotten: set[int] = set()
        if self._attachments is not None:
            for topic, peer in sides:
                messages = await self._store.attached(domain, topic, peer)
                await self._forget(Owner(domain, topic), messages)
                forgotten.update(message.id for message in messages)
        return forgotten

    async def _forget(self, owner: Owner, messages: tuple[StoredMessage, ...]) -> None:
        """§8.6: a side's file buffers go with its copy of the messages. Before the rows
        do: a file store that cannot answer fails the request with every row still
        there, to be asked again, where the files of rows already gone would stay, and
        count toward their owner's quota, for ever."""
        if self._attachments is not None:
            for message in messages:
                if message.attach:
                    await self._attachments.forget(owner, message)

    async def _topic(self, caller: Caller, queue: str | None, peer: str | None = None) -> str:
        """Whose rows a request acts on: the caller's own, or with ``queue`` the queue's,
        for an agent of the queue or (one chat, ``peer``) an agent who wrote in it."""
        if queue is None:
            return caller.user
        config = self._directory.queue(caller.domain, queue)
        if config is None:
            raise NotFound(f"no queue {queue[:80]!r}")
        if caller.user in config.agents:
            return queue
        if peer is not None and peer in await self._store.writers_in(
            caller.domain, queue, caller.user
        ):
            return queue
        raise Forbidden("only the queue's agents, or an agent of that chat, read its history")

    def queue_side(self, post: NewPost) -> NewPost:
        """A stored support chat keeps the queue's side too (docs/protocol.md 12.32): a
        one-to-one Post between a customer and a queue that stores the customer's side
        (a licensed, logged-in customer) also gets a row under the queue's sip. An
        anonymous visitor's chat is never posted at all, so it stays unstored."""
        if post.grp or not post.sides:
            return post
        queue = next(
            (
                sip
                for sip in (post.author, post.peer)
                if self._directory.queue(post.domain, sip) is not None
            ),
            None,
        )
        if queue is None or queue in post.sides:
            return post
        return replace(post, sides=(*post.sides, queue))

    # -- files (§8) ------------------------------------------------------------------------

    async def create_file_buffer(self, body: JsonObject) -> Reply:
        caller, request = read_caller(body), parse_create_file_buffer(body)
        owner = Owner(caller.domain, caller.user)
        answer = await self._files().create(owner, request.name, request.size, request.mime)
        return Reply([answer])

    async def attachments(self, body: JsonObject) -> Reply:
        caller, request = read_caller(body), parse_delete(body)  # {id}, as Delete
        session = text(body, "session")
        message = await self._store.own_message(caller.domain, caller.user, request.id)
        if message is None:
            raise NotFound(f"no message {request.id} of yours")
        owner = Owner(caller.domain, caller.user)
        files = await self._files().files(owner, message, session)
        return Reply([{"mt": "AttachmentsResult", "files": files}])

    def _files(self) -> Attachments:
        if self._attachments is None:
            raise Unavailable("file buffers are not available")
        return self._attachments

    async def search(self, body: JsonObject) -> Reply:
        caller, request = read_caller(body), parse_search(body)
        found: list[tuple[StoredMessage, str | None]] = [
            (msg, None)
            for msg in await self._store.search(
                caller.domain, caller.user, request.text, request.count
            )
        ]
        for queue in self._directory.queues_of(caller.domain, caller.user):
            hits = await self._store.search(caller.domain, queue.sip, request.text, request.count)
            found += ((msg, queue.sip) for msg in hits)
        found.sort(key=lambda hit: hit[0].id, reverse=True)  # ids grow: newest first
        answers: list[JsonObject] = []
        for msg, queue_sip in found[: request.count]:
            answer: JsonObject = {"mt": "SearchInd", "msg": render.message(msg), "sip": msg.peer}
            if queue_sip is not None:
                answer["queue"] = queue_sip
            answers.append(answer)
        answers.append({"mt": "SearchResult"})
        return Reply(answers)

    # -- groups (§7.6) ---------------------------------------------------------------------

    async def write_group(self, body: JsonObject) -> Reply:
        caller, request = read_caller(body), parse_write_group(body)
        if request.id is None:
            group = await self._store.create_group(caller.domain, request.dn, caller.user)
        else:
            await self._admin_of(caller, request.id)
            renamed = await self._store.rename_group(caller.domain, request.id, request.dn)
            group = _found(renamed, request.id)
        return Reply(
            [{"mt": "WriteGroupResult", "id": group.id, "sip": group.sip}],
            [render.group_ind(group)],
        )

    async def write_member(self, body: JsonObject) -> Reply:
        caller, request = read_caller(body), parse_write_member(body)
        group = _found(await self._store.group(caller.domain, request.grp), request.grp)
        me = group.member(caller.user)
        if request.remove:  # PROTOCOL §12.10 (extension): admins, or the member itself
            if request.member != caller.user and not (me and me.admin):
                raise Forbidden("only a group admin removes other members")
            if group.member(request.member) is None:
                raise NotFound(f"{request.member[:80]!r} is not a member")
            changed = await self._store.remove_member(caller.domain, group.id, request.member)
        else:
            if not (me and me.admin):
                raise Forbidden("only a group admin adds or changes members")
            self._licensed_user(caller.domain, request.member)
            changed = await self._store.put_member(
                caller.domain, group.id, request.member, admin=request.admin
            )
        group = _found(changed, group.id)
        return Reply(
            [{"mt": "WriteMemberResult", "grp": group.id, "member": request.member}],
            [render.group_ind(group)],
        )

    async def read_groups(self, body: JsonObject) -> Reply:
        caller = read_caller(body)
        answers: list[JsonObject] = []
        for group in await self._store.groups_of(caller.domain, caller.user):
            me = group.member(caller.user)
            answers.append(
                {
                    "mt": "ReadGroupsInd",
                    "id": group.id,
                    "sip": group.sip,
                    "dn": group.dn,
                    "admin": bool(me and me.admin),
                }
            )
        answers.append({"mt": "ReadGroupsResult"})
        return Reply(answers)

    # -- the hub's own queries (§12.10) ------------------------------------------------------

    async def read_badge(self, body: JsonObject) -> Reply:
        domain, user = text(body, "domain"), text(body, "user")
        count = await self._store.unread_total(domain, user)
        return Reply([{"mt": "ReadBadgeResult", "count": count}])

    async def sync_groups(self, body: JsonObject) -> Reply:
        groups = await self._store.all_groups()
        return Reply([*map(render.group_ind, groups), {"mt": "SyncGroupsResult"}])

    # -- helpers -----------------------------------------------------------------------------

    async def _badge(self, caller: Caller) -> JsonObject:
        count = await self._store.unread_total(caller.domain, caller.user)
        return render.badge(Badge(caller.domain, caller.user, count))

    async def _admin_of(self, caller: Caller, group_id: int) -> GroupInfo:
        group = _found(await self._store.group(caller.domain, group_id), group_id)
        me = group.member(caller.user)
        if not (me and me.admin):
            raise Forbidden("only a group admin changes the group")
        return group

    def _licensed_user(self, domain: str, sip: str) -> None:
        user = self._directory.user(domain, sip)
        if user is None:
            raise NotFound(f"no user {sip[:80]!r}")
        if not self._directory.licensed(user):
            raise Unlicensed(f"{sip[:80]!r} has no messages licence")


def _found(group: GroupInfo | None, group_id: int) -> GroupInfo:
    if group is None:
        raise NotFound(f"no group {group_id}")
    return group
