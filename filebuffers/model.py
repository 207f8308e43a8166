"""What a buffer is, and the rules every store applies to it alike (PROTOCOL §8).

A *buffer* is what a client sees: an id, a name, a type, a size, an owner and a
lifetime. Its bytes live apart, as a blob named by their SHA-256 (``blobs``). Whichever
store keeps the metadata (a folder of JSON files, or PostgreSQL when several service
processes share the buffers), the rules here decide: how a temporary buffer and its two
keys are made, how a permanent copy is made from it, what refuses an upload before its
body is read, and how much one more file may hold. Keeping them in one place is what
makes a node of a cluster refuse and accept exactly what a single process does.

Capabilities. A temporary buffer has two keys, each a random secret of its own: the
*read key* opens it for reading until it expires (its url goes into ``im_message.attach``
for every recipient to see), the *upload key* lets its creator upload into it once. Only
their SHA-256 is stored, compared in constant time. Keeping them apart means that
whoever receives the read url before the upload cannot fill the buffer (docs/protocol.md
12.13). A buffer stored before the keys were split has no upload key and takes no upload.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, replace
from typing import Literal

from .errors import AlreadyUploaded, Expired, NotFound, TooBig
from .names import safe_name
from .sniff import media_type

__all__ = [
    "Buffer",
    "Keys",
    "Owner",
    "Usage",
    "check_declared",
    "key_hash",
    "matches",
    "new_temporary",
    "permanent_copy",
    "refuse_upload",
    "valid_digest",
    "valid_id",
]

_ID = re.compile(r"[A-Za-z0-9_-]{22}")
_SHA256 = re.compile(r"[0-9a-f]{64}")

Kind = Literal["temporary", "permanent"]


@dataclass(frozen=True, slots=True)
class Owner:
    domain: str
    user: str


@dataclass(frozen=True, slots=True)
class Buffer:
    """One buffer's metadata."""

    id: str
    kind: Kind
    domain: str
    user: str
    name: str
    mime: str
    size: int  # bytes held (0 until uploaded); the announced size is ``announced``
    sha256: str  # "" until uploaded
    created: float
    expires: float | None  # temporary buffers only
    key_hash: str = ""  # temporary buffers: SHA-256 of the read key
    announced: int | None = None
    uploader: str = ""  # permanent buffers: the user (same domain) who uploaded the bytes
    upload_hash: str = ""  # temporary buffers: SHA-256 of the upload key

    @property
    def owner(self) -> Owner:
        return Owner(self.domain, self.user)

    @property
    def uploaded(self) -> bool:
        return bool(self.sha256)

    def expired(self, now: float) -> bool:
        return self.expires is not None and now >= self.expires

    @property
    def charged(self) -> int:
        """What the buffer counts toward its owner's quota: its size when the owner
        uploaded the bytes, nothing for a copy received from someone else (who cannot
        be made to fill another user's quota)."""
        return self.size if self.uploader in ("", self.user) else 0


@dataclass(frozen=True, slots=True)
class Keys:
    """The two secrets of a new temporary buffer, given to its creator only: ``read``
    goes into the url that is shared, ``upload`` into the url the creator uploads to."""

    read: str
    upload: str

    def __repr__(self) -> str:  # a key must not reach a log through a repr
        return "Keys(read=***, upload=***)"


@dataclass(frozen=True, slots=True)
class Usage:
    """What one garbage collection removed."""

    buffers: int = 0
    incoming: int = 0
    blobs: int = 0


def valid_id(buffer_id: str) -> bool:
    """True for an id of the form stores make; nothing else reaches a path or a query."""
    return _ID.fullmatch(buffer_id) is not None


def valid_digest(digest: str) -> bool:
    return _SHA256.fullmatch(digest) is not None


def new_temporary(
    owner: Owner, name: str | None, mime: str | None, announced: int | None, now: float, ttl: float
) -> tuple[Buffer, Keys]:
    """A temporary buffer of ``owner`` living ``ttl`` seconds from ``now``, and its keys.
    The client's name and type are only claims: made safe here, and the type is decided
    by the bytes at upload."""
    keys = Keys(read=secrets.token_urlsafe(32), upload=secrets.token_urlsafe(32))
    buffer = Buffer(
        id=secrets.token_urlsafe(16),
        kind="temporary",
        domain=owner.domain,
        user=owner.user,
        name=safe_name(name),
        mime=media_type(mime),
        size=0,
        sha256="",
        created=now,
        expires=now + ttl,
        key_hash=key_hash(keys.read),
        announced=announced,
        upload_hash=key_hash(keys.upload),
    )
    return buffer, keys


def permanent_copy(temporary: Buffer, owner: Owner, buffer_id: str, now: float) -> Buffer:
    """The permanent buffer ``buffer_id`` of ``owner`` over the bytes of the uploaded
    ``temporary`` buffer: no keys (it is read through signed urls), no expiry, and the
    uploader named so that a received copy costs its owner nothing."""
    if temporary.kind != "temporary" or not temporary.uploaded:
        raise NotFound("no uploaded temporary buffer")
    return replace(
        temporary,
        id=buffer_id,
        kind="permanent",
        domain=owner.domain,
        user=owner.user,
        created=now,
        expires=None,
        key_hash="",
        upload_hash="",
        uploader=temporary.user,
    )


def refuse_upload(buffer: Buffer | None, upload_key: str, now: float) -> Buffer:
    """``buffer`` if ``upload_key`` may upload into it now; else why not: an unknown
    buffer or a key that is not its upload key (``not_found``; the read key does not
    upload), expiry, or bytes it holds already."""
    if buffer is None or buffer.kind != "temporary" or not matches(buffer.upload_hash, upload_key):
        raise NotFound("no such upload")
    if buffer.expired(now):
        raise Expired("the upload url has expired")
    if buffer.uploaded:
        raise AlreadyUploaded("this buffer already holds its file")
    return buffer


def check_declared(buffer: Buffer, room: int, declared: int | None) -> None:
    """``too_big`` for a ``Content-Length`` over the room left or over the size announced
    at creation, before the body is read."""
    if buffer.announced is not None:
        room = min(room, buffer.announced)
    if declared is not None and declared > room:
        raise TooBig(room)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def matches(stored_hash: str, key: str) -> bool:
    """True when ``key`` hashes to ``stored_hash``, compared in constant time; a buffer
    without that key (``""``) opens to nothing."""
    return bool(stored_hash) and secrets.compare_digest(stored_hash, key_hash(key))
