"""Files of licensed chats (PROTOCOL §8.1, §8.4, §8.6): buffers made on request, granted
to every side of a stored message, listed with urls for the asking session, forgotten
with a side's copy of the message.

Theory of operation. A message's ``attach`` holds the urls of temporary buffers its
author uploaded. Once the Post is stored, each user who got a row of it is granted a
permanent buffer over the same bytes. Its id is derived, not stored: an HMAC of the
temporary buffer's id, the owner and the message (callId and seq), so that the row
(which keeps ``attach`` as sent) is enough to find each side's buffers again, granting
twice (a resent Post) makes nothing new, and the same url in two messages gives each
message buffers of its own. Expired uploads are not granted (their bytes may be
collected at any moment). Only buffers the author made and uploaded are granted, named by
their read url (key included): a message cannot claim someone else's file. The temporary
buffer lives on until it expires, so that a recipient who was online reads it from the
url it got.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

from filebuffers import Buffer, BufferStore, FileBufferError, Owner, TooBig
from filebuffers import Unavailable as StoreUnavailable
from filebuffers.routes import FILES_PATH, FileRoutes

from .errors import Unavailable
from .storage import FileGrant, StoredMessage

__all__ = ["Attachments"]

log = logging.getLogger(__name__)

JsonObject = dict[str, Any]

URL_LIFETIME = 900.0
"""Seconds a url from ``Attachments`` stays valid."""


class Attachments:
    def __init__(
        self,
        store: BufferStore,
        routes: FileRoutes,
        secret: bytes,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self._routes = routes
        self._secret = secret
        self._clock = clock

    async def create(
        self, owner: Owner, name: str | None, size: int | None, mime: str | None
    ) -> JsonObject:
        """``CreateFileBufferResult`` (§8.1): the buffer's id, its read ``url`` (for
        ``attach``) and its ``upload`` url (for the creator alone: docs/protocol.md
        12.13), or the ``too_big`` answer with the most that would be taken."""
        try:
            with _answering():
                buffer, keys = await self.store.create(owner, name, mime, size)
        except TooBig as refused:
            return {
                "mt": "CreateFileBufferResult",
                "error": True,
                "code": refused.code,
                "max_bytes": refused.max_bytes,
            }
        return {
            "mt": "CreateFileBufferResult",
            "id": buffer.id,
            "url": self._routes.read_url(buffer, keys.read),
            "upload": self._routes.upload_url(buffer, keys.upload),
        }

    async def grant(self, grants: tuple[FileGrant, ...]) -> None:
        """Permanent buffers for every side of freshly stored Posts (§8.4); ``Unavailable``
        when the store cannot answer now (the Posts are then answered so, and granted
        when resent), a warning for a file that cannot be granted at all."""
        for grant in grants:
            post = grant.post
            author = Owner(post.domain, post.author)
            with _answering():
                uploads = await self._uploads_of(post.attach, author)
            for temporary in uploads:
                for user in grant.owners:
                    owner = Owner(post.domain, user)
                    buffer_id = self._own_id(temporary.id, owner, post.call_id, post.seq)
                    try:
                        with _answering():
                            await self.store.grant(temporary, owner, buffer_id)
                    except (FileBufferError, OSError) as exc:
                        log.warning("attachment %s not granted: %r", temporary.id, exc)

    async def files(self, owner: Owner, message: StoredMessage, session: str) -> list[JsonObject]:
        """``AttachmentsResult`` files of ``owner``'s copy of ``message``, with urls for
        ``session`` only (§8.4)."""
        found = []
        for temporary_id in _temporary_ids(message.attach):
            own_id = self._own_id(temporary_id, owner, message.call_id, message.seq)
            with _answering():
                buffer = await self.store.get(own_id)
            if buffer is not None and buffer.owner == owner:
                url = self._routes.signed_url(buffer, session, URL_LIFETIME)
                found.append(
                    {
                        "id": buffer.id,
                        "url": url,
                        "name": buffer.name,
                        "size": buffer.size,
                        "mime": buffer.mime,
                    }
                )
        return found

    async def forget(self, owner: Owner, message: StoredMessage) -> None:
        """``owner`` deleted its copy of ``message``: its buffers go too (§8.6); the
        bytes stay while another side's buffer refers to them."""
        for temporary_id in _temporary_ids(message.attach):
            own_id = self._own_id(temporary_id, owner, message.call_id, message.seq)
            with _answering():
                await self.store.delete(own_id)

    async def _uploads_of(self, attach: str | None, author: Owner) -> list[Buffer]:
        """The uploaded temporary buffers of ``author`` that ``attach`` names by their
        read urls."""
        found = []
        for url in (attach or "").split():
            parsed = _our_buffer(url)
            if parsed is None:
                continue
            buffer = await self.store.get(parsed[0])
            if (
                buffer is not None
                and buffer.kind == "temporary"
                and buffer.uploaded
                and not buffer.expired(self._clock())
                and buffer.owner == author
                and self.store.opens(buffer, parsed[1])
            ):
                found.append(buffer)
        return found

    def _own_id(self, temporary_id: str, owner: Owner, call_id: str, seq: int) -> str:
        """The id of ``owner``'s buffer of that upload in that message: the same url in
        two messages gives two buffers, so deleting one message keeps the other's."""
        message = f"{temporary_id}\n{owner.domain}\n{owner.user}\n{call_id}\n{seq}".encode()
        digest = hmac.new(self._secret, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode()[:22]


@contextlib.contextmanager
def _answering() -> Iterator[None]:
    """A shared store whose database failed: the request is answered ``unavailable``
    (retry), as when the messages' own database fails."""
    try:
        yield
    except StoreUnavailable as exc:
        raise Unavailable("file buffers are unavailable") from exc


def _temporary_ids(attach: str | None) -> list[str]:
    return [parsed[0] for url in (attach or "").split() if (parsed := _our_buffer(url))]


def _our_buffer(url: str) -> tuple[str, str] | None:
    """(buffer id, read key) of a url of ours (absolute or not), else None."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    prefix = FILES_PATH + "/"
    if not parts.path.startswith(prefix):
        return None
    buffer_id = parts.path[len(prefix) :]
    keys = parse_qs(parts.query).get("key", [])
    return (buffer_id, keys[0]) if buffer_id and "/" not in buffer_id and keys else None
