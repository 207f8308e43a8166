"""HTTP upload and download of file buffers under ``/messages/files/`` (PROTOCOL §8.2-§8.5).

``POST /messages/files/<id>?upload=<upload key>`` uploads the raw body into a temporary
buffer; only its creator got that url (``CreateFileBufferResult.upload``). Refusals
that need no body come first (unknown buffer or key, expiry, a second upload, a
``Content-Length`` over the room left), so a client learns them before it sends a byte;
then the body is streamed to the store, which stops at the limit whatever the client
declared. A POST to a read url (``?key=``, the one every recipient sees in
``attach``) is refused 403 ``forbidden``, unread, so nobody but the creator can fill
the buffer (docs/protocol.md 12.13). Every refusal is JSON ``{code, text}``
(``too_big`` adds ``max_bytes``) with the status of §8.2.

``GET /messages/files/<id>?key=<read key>`` reads a temporary buffer until it expires
(the recipient of a message that was online when it was relayed); ``GET
/messages/files/<id>?s=<session>&e=<expiry>&sig=<signature>`` reads a permanent buffer
with a url signed for one session (``Attachments``). Downloads are served with the safe
headers of §8.5, and with Range support.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .errors import BadRequest, FileBufferError, Forbidden, NotFound
from .interface import BufferStore
from .model import Buffer
from .names import content_disposition
from .signing import sign, verify
from .sniff import INLINE_IMAGES

__all__ = ["FILES_PATH", "FileRoutes"]

log = logging.getLogger(__name__)

FILES_PATH = "/messages/files"

SAFE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox",
    "Cache-Control": "private, no-cache",
    "Referrer-Policy": "no-referrer",
}
"""On every download (PROTOCOL §8.5): the browser must neither guess another type nor run
what it shows with the rights of our origin."""


class FileRoutes:
    """The two routes over one store. ``secret`` signs permanent buffers' urls."""

    def __init__(
        self,
        store: BufferStore,
        secret: bytes,
        *,
        base_url: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self._secret = secret
        self._base = base_url.rstrip("/")
        self._clock = clock

    def routes(self) -> list[BaseRoute]:
        path = FILES_PATH + "/{buffer_id}"
        return [Route(path, self._upload, methods=["POST"]), Route(path, self._download)]

    # -- urls ----------------------------------------------------------------------------

    def read_url(self, buffer: Buffer, read_key: str) -> str:
        """Where a temporary buffer is read from until it expires: the url that goes
        into ``im_message.attach`` (PROTOCOL §8.3). It takes no upload."""
        return f"{self._base}{FILES_PATH}/{buffer.id}?{urlencode({'key': read_key})}"

    def upload_url(self, buffer: Buffer, upload_key: str) -> str:
        """Where the creator uploads into a temporary buffer (§8.2); it reads nothing."""
        return f"{self._base}{FILES_PATH}/{buffer.id}?{urlencode({'upload': upload_key})}"

    def signed_url(self, buffer: Buffer, session: str, lifetime: float) -> str:
        """A url for ``session`` only, valid ``lifetime`` seconds (PROTOCOL §8.4)."""
        expires = int(self._clock() + lifetime)
        signature = sign(self._secret, buffer.id, session, expires)
        query = urlencode({"s": session, "e": expires, "sig": signature})
        return f"{self._base}{FILES_PATH}/{buffer.id}?{query}"

    # -- handlers ------------------------------------------------------------------------

    async def _upload(self, request: Request) -> Response:
        try:
            upload_key = request.query_params.get("upload")
            if upload_key is None:
                raise await self._not_an_upload(request)
            declared = _content_length(request)
            done = await self.store.upload(
                request.path_params["buffer_id"],
                upload_key,
                request.stream(),
                declared=declared,
                claimed_mime=request.headers.get("content-type"),
            )
        except FileBufferError as error:
            return _refusal(error)
        body = {"id": done.id, "size": done.size, "mime": done.mime, "sha256": done.sha256}
        return JSONResponse(body, status_code=201)

    async def _not_an_upload(self, request: Request) -> FileBufferError:
        """Why a POST without an upload key is refused: ``Forbidden`` when it names a
        temporary buffer by its read key (whoever got the url in a message may read the
        file, not fill it), else ``NotFound``, as for any key that opens nothing."""
        buffer = await self.store.get(request.path_params["buffer_id"])
        read_key = request.query_params.get("key")
        if (
            buffer is not None
            and buffer.kind == "temporary"
            and read_key is not None
            and self.store.opens(buffer, read_key)
        ):
            return Forbidden(
                "this url only reads the file; upload to the url in CreateFileBufferResult.upload"
            )
        return NotFound("no such upload")

    async def _download(self, request: Request) -> Response:
        try:
            buffer = await self._readable(request)
            path = self.store.blob(buffer)
            stat = await _stat(path)
        except FileBufferError as error:
            return _refusal(error)
        headers = dict(SAFE_HEADERS)
        inline = buffer.mime in INLINE_IMAGES
        headers["Content-Disposition"] = content_disposition(buffer.name, inline=inline)
        return FileResponse(path, headers=headers, media_type=buffer.mime, stat_result=stat)

    async def _readable(self, request: Request) -> Buffer:
        """The buffer the request may read; otherwise the reason it may not."""
        query = request.query_params
        buffer = await self.store.get(request.path_params["buffer_id"])
        if buffer is None or not buffer.uploaded:
            raise NotFound("no such file")
        now = self._clock()
        if buffer.kind == "temporary":
            if not self.store.opens(buffer, query.get("key", "")):
                raise NotFound("no such file")
            self.store.check_alive(buffer, now)
            return buffer
        try:
            expires = int(query.get("e", ""))
        except ValueError:
            raise Forbidden("a signed url is needed") from None
        if not verify(
            self._secret, buffer.id, query.get("s", ""), expires, query.get("sig", ""), now
        ):
            raise Forbidden("the url is not signed for this file, or has expired")
        return buffer


async def _stat(path: Path) -> os.stat_result:
    """The blob's size and times; ``NotFound`` when its bytes are missing, which only a
    folder not mounted (or restored apart from the metadata) explains: logged."""
    try:
        return await asyncio.to_thread(os.stat, path)
    except FileNotFoundError:
        log.warning("file buffers: no bytes at %s; is the files folder mounted?", path)
        raise NotFound("no such file") from None


def _content_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()):
        raise BadRequest("Content-Length must be a number")
    return int(value)


def _refusal(error: FileBufferError) -> JSONResponse:
    body: dict[str, Any] = error.to_json()
    headers = {"Cache-Control": "no-store"}
    return JSONResponse(body, status_code=error.status, headers=headers)
