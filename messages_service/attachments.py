"""Files of licensed chats (PROTOCOL §8.1, §8.4, §8.6): buffers made on request, granted
to every side of a stored message, listed with urls for the asking session, forgotten
with a side's copy of the message.

Theory of operation. A message's ``attach`` holds the urls of temporary buffers its
author uploaded. Once the Post is stored, each user who got a row of it is granted a
permanent buffer over the same bytes. Its id is derived, not stored: an HMAC of the
temporary buffer's id and the owner, so that the row (which keeps ``attach`` as sent)
is enough to find each side's buffers again, and granting twice (a resent Post) makes
nothing new. Only buffers the author made and uploaded are granted, with the key in
the url: a message cannot claim someone else's file. The temporary buffer lives on
until it expires, so that a recipient who was online reads it from the url it got.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from typing import Any
from urllib.parse import parse_qs, urlsplit

from filebuffers import Buffer, FileBufferError, LocalStore, Owner, TooBig
from filebuffers.routes import FILES_PATH, FileRoutes

from .storage import FileGrant, StoredMessage

__all__ = ["Attachments"]

log = logging.getLogger(__name__)

JsonObject = dict[str, Any]

URL_LIFETIME = 3600.0
"""Seconds a url from ``Attachments`` stays valid."""


class Attachments:
    def __init__(self, store: LocalStore, routes: FileRoutes, secret: bytes) -> None:
        self.store = store
        self._routes = routes
        self._secret = secret

    async def create(
        self, owner: Owner, name: str | None, size: int | None, mime: str | None
    ) -> JsonObject:
        """``CreateFileBufferResult`` (§8.1): the buffer's id and upload url, or the
        ``too_big`` answer with the most that would be taken."""
        try:
            buffer, key = await self.store.create(owner, name, mime, size)
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
            "url": self._routes.upload_url(buffer, key),
        }

    async def grant(self, grants: tuple[FileGrant, ...]) -> None:
        """Permanent buffers for every side of freshly stored Posts (§8.4)."""
        for grant in grants:
            post = grant.post
            for temporary in await self._uploads_of(post.attach, Owner(post.domain, post.author)):
                for user in grant.owners:
                    owner = Owner(post.domain, user)
                    try:
                        await self.store.grant(temporary, owner, self._own_id(temporary.id, owner))
                    except (FileBufferError, OSError) as exc:
                        log.warning("attachment %s not granted: %r", temporary.id, exc)

    async def files(self, owner: Owner, message: StoredMessage, session: str) -> list[JsonObject]:
        """``AttachmentsResult`` files of ``owner``'s copy of ``message``, with urls for
        ``session`` only (§8.4)."""
        found = []
        for temporary_id in _temporary_ids(message.attach):
            buffer = await self.store.get(self._own_id(temporary_id, owner))
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
            await self.store.delete(self._own_id(temporary_id, owner))

    async def _uploads_of(self, attach: str | None, author: Owner) -> list[Buffer]:
        """The uploaded temporary buffers ``attach`` names with their keys, of ``author``."""
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
                and buffer.owner == author
                and self.store.opens(buffer, parsed[1])
            ):
                found.append(buffer)
        return found

    def _own_id(self, temporary_id: str, owner: Owner) -> str:
        message = f"{temporary_id}\n{owner.domain}\n{owner.user}".encode()
        digest = hmac.new(self._secret, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode()[:22]


def _temporary_ids(attach: str | None) -> list[str]:
    return [parsed[0] for url in (attach or "").split() if (parsed := _our_buffer(url))]


def _our_buffer(url: str) -> tuple[str, str] | None:
    """(buffer id, key) of a url of ours (absolute or not), else None."""
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
