"""HTTP upload and download of file buffers under ``/messages/files/`` (PROTOCOL §8.2-§8.5).

``POST /messages/files/<id>?key=<key>`` uploads the raw body into a temporary buffer.
Refusals that need no body come first (unknown buffer or key, expiry, a second upload,
a ``Content-Length`` over the room left), so a client learns them before it sends a
byte; then the body is streamed to the store, which stops at the limit whatever the
client declared. Every refusal is JSON ``{code, text}`` (``too_big`` adds ``max_bytes``)
with the status of §8.2.

``GET /messages/files/<id>?key=<key>`` reads a temporary buffer until it expires (the
recipient of a message that was online when it was relayed); ``GET
/messages/files/<id>?s=<session>&e=<expiry>&sig=<signature>`` reads a permanent buffer
with a url signed for one session (``Attachments``). Downloads are served with the safe
headers of §8.5, and with Range support.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .errors import BadRequest, FileBufferError, Forbidden, NotFound
from .interface import BufferStore
from .names import content_disposition
from .signing import sign, verify
from .sniff import INLINE_IMAGES
from .store import Buffer

__all__ = ["FILES_PATH", "FileRoutes"]

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

    def upload_url(self, buffer: Buffer, key: str) -> str:
        """Where a temporary buffer is uploaded to, and read from until it expires."""
        return f"{self._base}{FILES_PATH}/{buffer.id}?{urlencode({'key': key})}"

    def signed_url(self, buffer: Buffer, session: str, lifetime: float) -> str:
        """A url for ``session`` only, valid ``lifetime`` seconds (PROTOCOL §8.4)."""
        expires = int(self._clock() + lifetime)
        signature = sign(self._secret, buffer.id, session, expires)
        query = urlencode({"s": session, "e": expires, "sig": signature})
        return f"{self._base}{FILES_PATH}/{buffer.id}?{query}"

    # -- handlers ------------------------------------------------------------------------

    async def _upload(self, request: Request) -> Response:
        try:
            declared = _content_length(request)
            done = await self.store.upload(
                request.path_params["buffer_id"],
                request.query_params.get("key", ""),
                request.stream(),
                declared=declared,
                claimed_mime=request.headers.get("content-type"),
            )
        except FileBufferError as error:
            return _refusal(error)
        body = {"id": done.id, "size": done.size, "mime": done.mime, "sha256": done.sha256}
        return JSONResponse(body, status_code=201)

    async def _download(self, request: Request) -> Response:
        try:
            buffer = await self._readable(request)
            path = self.store.blob(buffer)
        except FileBufferError as error:
            return _refusal(error)
        headers = dict(SAFE_HEADERS)
        inline = buffer.mime in INLINE_IMAGES
        headers["Content-Disposition"] = content_disposition(buffer.name, inline=inline)
        return FileResponse(path, headers=headers, media_type=buffer.mime)

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
