"""Request handlers: the hub's forwarded requests and its own queries (PROTOCOL §7.4,
§7.6, §12.10). ``Post`` is not here: it goes to the writer.

Each handler parses its request (``requests``), checks what the store cannot (group
admins, licences), asks the store, and returns a ``Reply``: the frames for the asker, in
order (``…Ind``s, then ``…Result``), and the notifications for every hub, which go out
first. Errors are raised as ``MessagesServiceError``s; the connection answers them.

Authorization, in one place (§12.10): every forwarded request acts for the ``user`` and
``domain`` the hub stamped; a ``topic`` other than that user is ``forbidden``; ids are
looked up in the user's own topic only (``not_found`` otherwise); group changes need an
admin (``forbidden``). Reading a group's chat needs membership (PROTOCOL §7.6: only
members read it), checked even though rows are per-member copies and a non-member would
find none of its own but those from before it left.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
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
    parse_read_chat,
    parse_read_chats,
    parse_search,
    parse_set_read,
    parse_write_group,
    parse_write_member,
    read_caller,
    text,
)
from .storage import Badge, GroupInfo, MessageStore, group_id_of

__all__ = ["HUB_ONLY", "Handlers", "Reply", "refuse_forwarded"]

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
        chats = await self._store.chats(caller.domain, caller.user, unread_only=request.unread)
        return Reply([*map(render.chat_ind, chats), {"mt": "ReadChatsResult"}])

    async def read_chat(self, body: JsonObject) -> Reply:
        caller, request = read_caller(body), parse_read_chat(body)
        group_id = group_id_of(request.peer)
        if group_id is not None:
            group = await self._store.group(caller.domain, group_id)
            if group is None or group.member(caller.user) is None:
                raise Forbidden("only members read a group's chat")
        page = await self._store.read_chat(
            caller.domain,
            caller.user,
            request.peer,
            older=request.older,
            count=request.count,
            rows=not request.noind,
        )
        answers: list[JsonObject] = [
            {"mt": "ReadChatInd", "msg": render.message(msg)} for msg in page.messages
        ]
        answers.append({"mt": "ReadChatResult", "more": page.more})
        badges = [await self._badge(caller)] if page.had_unread else []
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
        removal = await self._store.delete(caller.domain, caller.user, request.id)
        if removal is None:
            raise NotFound(f"no message {request.id} of yours")
        if self._attachments is not None:  # §8.6: this side's files go with its copy
            await self._attachments.forget(Owner(caller.domain, caller.user), removal.message)
        badges = [await self._badge(caller)] if removal.was_unread else []
        return Reply([{"mt": "DeleteResult", "id": request.id}], badges)

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
        hits = await self._store.search(caller.domain, caller.user, request.text, request.count)
        answers: list[JsonObject] = [
            {"mt": "SearchInd", "msg": render.message(msg), "sip": msg.peer} for msg in hits
        ]
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
