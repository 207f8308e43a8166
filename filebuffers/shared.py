"""File buffers shared by several service processes: bytes on a shared folder, metadata,
uploads in progress and quotas in PostgreSQL (SCALE.md decision 9; docs/protocol.md
12.45).

Theory of operation. Any process may take any step of a buffer's life: one creates it,
another takes its upload, a third serves it, a fourth grants its permanent copies or
collects it. So nothing about a buffer is kept in a process's memory: its row in
``storage.BufferTable`` is the one truth, and the bytes are blobs in a folder every
process mounts (``blobs``: content-addressed, written by rename, so two processes
storing the same bytes is harmless). The rules that accept or refuse are ``model``'s,
the same ones ``LocalStore`` applies, so a client cannot tell one process from several.

An upload is claimed in the database before its body is read: the claim names the
upload by a random token and holds the room it may take in its owner's quota (one
guarded update), so a second upload into the buffer through any process is refused
``bad_state`` (409), and uploads at once through several processes share the quota
exactly. Its bytes become a blob in the transaction that records them in the buffer's
row, under the lock of those bytes; a failed upload gives its room back (``storage``
explains how that happens once).

Collection runs in every process: the expired buffers are deleted by one process at a
time, stale incoming files and orphaned blobs by whichever finds them; a blob is
orphaned when it is old and no row refers to it, asked of the database for exactly the
old blobs found, and asked again under the lock of its bytes as it is removed. Its age
alone cannot protect it: an upload that finds the bytes stored renews their time, but
another machine's view of a shared folder may lag. Expiry compares a process's clock
with times written by others, so the processes' clocks must agree (NTP) to well within
``files.temp_ttl``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
import time
from collections.abc import AsyncIterable, Callable
from dataclasses import replace
from pathlib import Path

from .blobs import BlobFolder
from .errors import AlreadyUploaded, Expired, NotFound, TooBig, Unavailable
from .model import (
    Buffer,
    Keys,
    Owner,
    Usage,
    check_declared,
    matches,
    new_temporary,
    permanent_copy,
    refuse_upload,
    valid_digest,
    valid_id,
)
from .sniff import sniff
from .storage import BufferTable

__all__ = ["SharedStore"]

log = logging.getLogger(__name__)


class SharedStore:
    """Buffers with their bytes in ``root`` (a folder every process sharing them mounts)
    and the rest in the PostgreSQL database at ``database``. Open with ``await open()``,
    close with ``await close()``."""

    def __init__(
        self,
        root: Path,
        database: str,
        *,
        max_size: int,
        temp_ttl: float,
        quota: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.root = root
        self.max_size = max_size
        self.temp_ttl = temp_ttl
        self.quota = quota
        self._clock = clock
        self._blobs = BlobFolder(root)
        self._table = BufferTable(database)

    async def open(self) -> None:
        """Make the folders and open the database (``Unavailable`` when it cannot be)."""
        await asyncio.to_thread(self._blobs.make)
        await self._table.open()

    async def close(self) -> None:
        await self._table.close()

    # -- what clients do ---------------------------------------------------------------

    async def used(self, owner: Owner) -> int:
        """Bytes of the files ``owner`` uploaded, in all its buffers, through any process."""
        used, _ = await self._table.usage(owner)
        return used

    async def room(self, owner: Owner) -> int:
        """The most one more file of ``owner`` may hold: the file limit or what is left
        of the quota (less what uploads in progress anywhere hold), whichever is smaller."""
        used, held = await self._table.usage(owner)
        return max(0, min(self.max_size, self.quota - used - held))

    async def create(
        self, owner: Owner, name: str | None, mime: str | None, announced: int | None
    ) -> tuple[Buffer, Keys]:
        """A temporary buffer and its keys (PROTOCOL §8.1); an announced size over
        ``room`` is refused before anything is written."""
        room = await self.room(owner)
        if announced is not None and announced > room:
            raise TooBig(room)
        buffer, keys = new_temporary(owner, name, mime, announced, self._clock(), self.temp_ttl)
        await self._table.insert(buffer)
        return buffer, keys

    async def get(self, buffer_id: str) -> Buffer | None:
        """The buffer, or None for an unknown or malformed id."""
        if not valid_id(buffer_id):
            return None
        return await self._table.get(buffer_id)

    def opens(self, buffer: Buffer, key: str) -> bool:
        """True when ``key`` is the read key of the temporary ``buffer``."""
        return matches(buffer.key_hash, key)

    def check_alive(self, buffer: Buffer, now: float) -> None:
        """``Expired`` for a temporary buffer past its lifetime."""
        if buffer.expired(now):
            raise Expired("the url has expired")

    async def check_upload(self, buffer_id: str, upload_key: str, declared: int | None) -> Buffer:
        """What can refuse an upload before it is claimed (``model.refuse_upload``, and
        a ``Content-Length`` over the room left); an upload running through another
        process is found by the claim."""
        buffer = refuse_upload(await self.get(buffer_id), upload_key, self._clock())
        check_declared(buffer, await self.room(buffer.owner), declared)
        return buffer

    async def upload(
        self,
        buffer_id: str,
        upload_key: str,
        chunks: AsyncIterable[bytes],
        *,
        declared: int | None = None,
        claimed_mime: str | None = None,
    ) -> Buffer:
        """Stream ``chunks`` into the buffer that ``upload_key`` opens for upload
        (PROTOCOL §8.2), as ``LocalStore.upload`` does: cut off with ``TooBig`` at the
        room held or the announced size, nothing left on disk or held on failure."""
        buffer = await self.check_upload(buffer_id, upload_key, declared)
        most = self.max_size if buffer.announced is None else min(self.max_size, buffer.announced)
        token = secrets.token_hex(16)
        held = await self._table.hold(buffer, token, most, self.quota)
        if held is None:
            raise AlreadyUploaded("this buffer already holds its file, or is being uploaded")
        incoming = self._blobs.incoming()
        try:
            done = await self._receive(buffer, chunks, incoming, held, claimed_mime)
            settle = functools.partial(self._settle, incoming, done.sha256)
            if not await self._table.finish(done, token, held, self._clock(), settle):
                raise Expired("the upload url expired during the upload")
            return done
        except BaseException:
            await self._give_back(buffer_id, token)
            raise
        finally:
            await self._blobs.discard(incoming)

    async def _receive(
        self,
        buffer: Buffer,
        chunks: AsyncIterable[bytes],
        incoming: Path,
        limit: int,
        claimed_mime: str | None,
    ) -> Buffer:
        """The upload's bytes, at most ``limit``, written to ``incoming`` (settled as
        their blob when they are recorded); the buffer as it is once they are."""
        received = await self._blobs.receive(chunks, incoming, limit)
        mime = sniff(received.head, claimed_mime or buffer.mime)
        return replace(buffer, size=received.size, sha256=received.digest, mime=mime)

    async def _settle(self, incoming: Path, digest: str) -> None:
        """The upload's bytes made their blob, inside the transaction that records them;
        a failing folder is ``Unavailable``, logged as the folder's and not taken for
        the database's."""
        try:
            await self._blobs.settle(incoming, digest)
        except OSError as exc:
            log.warning("file buffers' folder: %s: %s", type(exc).__name__, exc)
            raise Unavailable("the folder of file buffers failed") from exc

    async def _give_back(self, buffer_id: str, token: str) -> None:
        """Release a failed upload's claim and room; shielded, so a cancelled upload
        still does. If the database fails now, the buffer's collection does it later."""
        try:
            await asyncio.shield(self._table.release(buffer_id, token))
        except Unavailable:
            log.warning("file buffer %s: its upload's room is held until it expires", buffer_id)

    async def grant(self, temporary: Buffer, owner: Owner, buffer_id: str) -> Buffer:
        """The permanent buffer ``buffer_id`` of ``owner`` over the bytes of the uploaded
        ``temporary`` buffer (no copy is made); the existing one when it was granted
        already, by this process or another, so granting again changes nothing."""
        permanent = permanent_copy(temporary, owner, buffer_id, self._clock())
        if await self._table.insert(permanent):  # NotFound when its bytes are gone
            return permanent
        existing = await self._table.get(buffer_id)
        return existing if existing is not None else permanent

    async def delete(self, buffer_id: str) -> bool:
        """Forget the buffer for every process; its blob goes with a later collection if
        nothing else refers to it. False when there was no such buffer."""
        if not valid_id(buffer_id):
            return False
        return await self._table.delete(buffer_id)

    def blob(self, buffer: Buffer) -> Path:
        """Where the bytes of an uploaded buffer are."""
        if not valid_digest(buffer.sha256):
            raise NotFound("the buffer holds no file")
        return self._blobs.path(buffer.sha256)

    # -- housekeeping --------------------------------------------------------------------

    async def collect_garbage(self) -> Usage:
        """Remove expired buffers (for every process), stale incoming files and orphaned
        blobs."""
        now = self._clock()
        buffers = await self._table.delete_expired(now)
        older_than = now - self.temp_ttl
        incoming = await asyncio.to_thread(self._blobs.sweep_incoming, older_than)
        old = await asyncio.to_thread(self._blobs.old_blobs, older_than)
        referenced = await self._table.referenced(old) if old else set()
        blobs = 0
        for digest in (digest for digest in old if digest not in referenced):
            remove = functools.partial(asyncio.to_thread, self._blobs.remove, [digest], older_than)
            blobs += await self._table.remove_unreferenced(digest, remove)
        return Usage(buffers, incoming, blobs)
