"""Requests of the hub's link, parsed into frozen values (PROTOCOL §7.4, §7.6, §12.10).

Every parser takes the decoded JSON object and returns a value or raises ``BadJson``
naming the field: a field missing or of the wrong type is ``bad_json`` (§12.10), while
unknown properties are ignored (§1.3). Strings that no database can hold (a NUL
character, a lone surrogate from a ``\\ud800`` escape) are refused here too, so they can
never make a whole batch of Posts fail in the database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from .errors import BadJson, Forbidden, NotFound
from .storage import NewPost, group_id_of

__all__ = [
    "Caller",
    "CreateFileBuffer",
    "Delete",
    "DeleteChat",
    "ReadChat",
    "ReadChats",
    "Search",
    "SetRead",
    "WriteGroup",
    "WriteMember",
    "parse_create_file_buffer",
    "parse_delete",
    "parse_delete_chat",
    "parse_post",
    "parse_read_chat",
    "parse_read_chats",
    "parse_search",
    "parse_set_read",
    "parse_write_group",
    "parse_write_member",
    "queue_of",
    "read_caller",
]

JsonObject = dict[str, Any]

MAX_ID: Final = 2**53 - 1
"""PROTOCOL §1.5: numbers stay exact in JavaScript."""
DEFAULT_COUNT: Final = 50
MAX_COUNT: Final = 200
MAX_NAME: Final = 200
"""Longest group display name, in characters."""


@dataclass(frozen=True, slots=True)
class Caller:
    """Whom a forwarded request acts for: the session's user, stamped by the hub."""

    domain: str
    user: str


@dataclass(frozen=True, slots=True)
class ReadChats:
    unread: bool


@dataclass(frozen=True, slots=True)
class ReadChat:
    peer: str
    older: int | None
    count: int
    noind: bool


@dataclass(frozen=True, slots=True)
class SetRead:
    id: int


@dataclass(frozen=True, slots=True)
class Delete:
    id: int


@dataclass(frozen=True, slots=True)
class DeleteChat:
    peer: str


@dataclass(frozen=True, slots=True)
class CreateFileBuffer:
    name: str | None
    size: int | None
    mime: str | None


@dataclass(frozen=True, slots=True)
class Search:
    text: str
    count: int


@dataclass(frozen=True, slots=True)
class WriteGroup:
    dn: str
    id: int | None


@dataclass(frozen=True, slots=True)
class WriteMember:
    grp: int
    member: str
    admin: bool
    remove: bool


def read_caller(body: JsonObject) -> Caller:
    """``domain`` and ``user`` of a forwarded request; a ``topic`` other than the user is
    ``forbidden`` (PROTOCOL §12.10: every query acts on the session user's own topic)."""
    caller = Caller(domain=text(body, "domain"), user=text(body, "user"))
    topic = body.get("topic")
    if topic is not None and topic != caller.user:
        if not isinstance(topic, str):
            raise BadJson("topic: expected a string")
        raise Forbidden("topic: only the session's own topic")
    return caller


def parse_read_chats(body: JsonObject) -> ReadChats:
    return ReadChats(unread=flag(body, "unread"))


def parse_read_chat(body: JsonObject) -> ReadChat:
    return ReadChat(
        peer=text(body, "sip"),
        older=optional_id(body, "older"),
        count=count(body),
        noind=flag(body, "noind"),
    )


def parse_set_read(body: JsonObject) -> SetRead:
    return SetRead(id=number(body, "id"))


def parse_delete(body: JsonObject) -> Delete:
    return Delete(id=number(body, "id"))


def parse_delete_chat(body: JsonObject) -> DeleteChat:
    return DeleteChat(peer=text(body, "sip"))


def queue_of(body: JsonObject) -> str | None:
    """``queue``: an agent acts on its queue's side of support chats (docs 12.32)."""
    return None if body.get("queue") is None else text(body, "queue")


def parse_create_file_buffer(body: JsonObject) -> CreateFileBuffer:
    """PROTOCOL §8.1: every field may be left out; a name is only ever metadata."""
    return CreateFileBuffer(
        name=None if body.get("name") is None else text(body, "name", allow_empty=True),
        size=None if body.get("size") is None else number(body, "size", minimum=0),
        mime=None if body.get("mime") is None else text(body, "mime", allow_empty=True),
    )


def parse_search(body: JsonObject) -> Search:
    return Search(text=text(body, "text", allow_empty=True), count=count(body))


def parse_write_group(body: JsonObject) -> WriteGroup:
    dn = text(body, "dn").strip()
    if not dn or len(dn) > MAX_NAME:
        raise BadJson(f"dn: expected a name of 1 to {MAX_NAME} characters")
    return WriteGroup(dn=dn, id=optional_id(body, "id"))


def parse_write_member(body: JsonObject) -> WriteMember:
    return WriteMember(
        grp=_group_ref(body),
        member=text(body, "member"),
        admin=flag(body, "admin"),
        remove=flag(body, "remove"),
    )


def _group_ref(body: JsonObject) -> int:
    """``grp``: the group's id, or (accepted as well) its sip ``group-<id>``."""
    value = body.get("grp")
    if isinstance(value, str):
        group_id = group_id_of(value)
        if group_id is None:
            raise NotFound(f"no group {value[:80]!r}")
        return group_id
    return number(body, "grp")


def parse_post(body: JsonObject, now_ms: int) -> NewPost:
    """A Post from the hub (PROTOCOL §12.10); ``time`` defaults to ``now_ms``.

    A Post as the hub writes it is read in line (``_usual_post``); anything else, field
    by field (``_checked_post``), which gives the same Post or names the refused field.
    A property test holds the two to the same outcome for every input."""
    return _usual_post(body, now_ms) or _checked_post(body, now_ms)


def _usual_post(body: JsonObject, now_ms: int) -> NewPost | None:
    """The Post, when every field has the type and range the hub gives it; otherwise
    None, for ``_checked_post`` to read (and refuse) field by field."""
    get: Callable[[str], Any] = body.get
    grp, author, topic = get("grp"), get("author"), get("topic")
    if grp is True:  # a group's Post: no peer, no sides
        peer = peer_dn = ""
        sides: tuple[str, ...] = ()
    elif grp is False and topic == author:
        one_to_one = _usual_one_to_one(body, author)
        if one_to_one is None:
            return None
        peer, peer_dn, sides = one_to_one
    else:
        return None
    domain, dn, said, call_id = get("domain"), get("dn"), get("text"), get("callId")
    attach, client_id, writer = get("attach"), get("id"), get("writer")
    seq, time_ms = get("seq"), get("time")
    dn = "" if dn is None else dn
    time_ms = now_ms if time_ms is None else time_ms
    names, texts = (author, topic, domain, call_id), (dn, said, peer, peer_dn)
    if not _usual_fields(names, texts, attach, client_id, writer, (seq, time_ms)):
        return None
    fields = (domain, author, dn, topic, peer, peer_dn, grp, sides, said, attach, call_id)
    return NewPost(*fields, seq, client_id, time_ms, writer or "")


def _usual_fields(
    names: tuple[Any, ...],
    texts: tuple[Any, ...],
    attach: Any,
    client_id: Any,
    writer: Any,
    numbers: tuple[Any, ...],
) -> bool:
    """``names`` non-empty strings, ``texts`` strings, ``attach`` absent or a string,
    ``client_id`` and ``writer`` absent or non-empty strings, all of it valid text;
    ``numbers`` integers from 0 to 2^53-1."""
    for name in names:
        if type(name) is not str or not name:
            return False
    for value in texts:
        if type(value) is not str:
            return False
    if attach is not None and type(attach) is not str:
        return False
    for value in (client_id, writer):
        if value is not None and (type(value) is not str or not value):
            return False
    for number in numbers:
        if type(number) is not int or not 0 <= number <= MAX_ID:
            return False
    return _valid_text("".join([*names, *texts, attach or "", client_id or "", writer or ""]))


def _usual_one_to_one(body: JsonObject, author: str) -> tuple[str, str, tuple[str, ...]] | None:
    """``peer``, ``peer_dn`` and ``sides`` of a one-to-one Post as the hub writes them."""
    peer, peer_dn, sides = body.get("peer"), body.get("peer_dn"), body.get("sides")
    peer_dn = "" if peer_dn is None else peer_dn
    if type(peer) is not str or not peer or type(peer_dn) is not str or type(sides) is not list:
        return None
    if not sides:
        return None
    for side in sides:
        if side != author and side != peer:
            return None
    return peer, peer_dn, tuple(dict.fromkeys(sides))


def _checked_post(body: JsonObject, now_ms: int) -> NewPost:
    """``parse_post`` field by field, each field refused by name."""
    grp = flag(body, "grp")
    author = text(body, "author")
    topic = text(body, "topic")
    peer = peer_dn = ""  # a group Post names the group as topic, and no peer
    sides: tuple[str, ...] = ()
    if not grp:
        peer = text(body, "peer")
        peer_dn = text(body, "peer_dn", allow_empty=True, default="")
        sides = _sides(body, author, peer)
        if topic != author:
            raise BadJson("topic: a one-to-one Post is stored under its author")
    attach = body.get("attach")
    return NewPost(
        domain=text(body, "domain"),
        author=author,
        author_dn=text(body, "dn", allow_empty=True, default=""),
        topic=topic,
        peer=peer,
        peer_dn=peer_dn,
        grp=grp,
        sides=sides,
        text=text(body, "text", allow_empty=True),
        attach=None if attach is None else text(body, "attach", allow_empty=True),
        call_id=text(body, "callId"),
        seq=number(body, "seq", minimum=0),
        client_id=None if body.get("id") is None else text(body, "id"),
        time_ms=number(body, "time", minimum=0, default=now_ms),
        writer="" if body.get("writer") is None else text(body, "writer"),
    )


def _sides(body: JsonObject, author: str, peer: str) -> tuple[str, ...]:
    sides = body.get("sides")
    if not isinstance(sides, list) or not sides:
        raise BadJson("sides: expected a non-empty list of the author and/or the peer")
    if any(side not in (author, peer) for side in sides):
        raise BadJson("sides: only the author and the peer can be sides")
    return tuple(dict.fromkeys(sides))


# -- field readers ----------------------------------------------------------------------


def text(
    body: JsonObject, key: str, *, allow_empty: bool = False, default: str | None = None
) -> str:
    """A string property; empty only when ``allow_empty``; absent only with a default."""
    value = body.get(key)
    if value is None and default is not None:
        return default
    if not isinstance(value, str) or (not value and not allow_empty):
        raise BadJson(f"{key}: expected a {'' if allow_empty else 'non-empty '}string")
    if not _valid_text(value):
        raise BadJson(f"{key}: not valid text")
    return value


def number(body: JsonObject, key: str, *, minimum: int = 1, default: int | None = None) -> int:
    """An integer property in ``minimum``..2^53-1 (booleans are not numbers)."""
    value = body.get(key)
    if value is None and default is not None:
        return default
    if type(value) is not int or not minimum <= value <= MAX_ID:
        raise BadJson(f"{key}: expected an integer from {minimum} to 2^53-1")
    return value


def optional_id(body: JsonObject, key: str) -> int | None:
    return None if body.get(key) is None else number(body, key)


def flag(body: JsonObject, key: str) -> bool:
    """A boolean property, false when absent or null."""
    value = body.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise BadJson(f"{key}: expected true or false")
    return value


def count(body: JsonObject) -> int:
    """``count``: default 50, at most 200 (PROTOCOL §12.10); more is quietly capped."""
    return min(number(body, "count", minimum=0, default=DEFAULT_COUNT), MAX_COUNT)


def _valid_text(value: str) -> bool:
    """No NUL character and no lone surrogate: text every database can hold."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
