"""File buffers on a local folder, for one service process (PROTOCOL §8; DESIGN
"Attachments").

Theory of operation. Buffers and their rules are ``model``'s; their bytes are blobs by
SHA-256 (``blobs``), so the permanent buffers made for each side of a message share one
copy on disk while each has its own id, owner and lifetime (deleting one side's buffer
never touches the other's). Besides the blob folder's ``blobs/`` and ``incoming/``, the
folder holds::

    buffers/<id>.json     one per buffer: its metadata, replaced atomically

An upload's bytes are settled as their blob before the buffer's metadata says it holds
them. A failed, refused or interrupted upload deletes its incoming file before the error
leaves ``upload``.

Garbage collection removes expired temporary buffers, incoming files older than a
temporary buffer lives, and blobs no buffer refers to once they are that old too.

Quotas are counted per owner over the buffers that hold bytes; the counts are built
from the metadata at ``open`` and kept in memory, which is exact for one process per
folder (the embedded default and the split mode's single service). Several processes
sharing buffers use ``shared.SharedStore`` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import time
from collections import defaultdict
from collections.abc import AsyncIterable, Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from .blobs import BlobFolder, sync_folder
from .errors import AlreadyUploaded, Expired, NotFound, TooBig
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

__all__ = ["LocalStore"]


class LocalStore:
    """Buffers in ``root``; see the module documentation. Open with ``await open()``."""

    def __init__(
        self,
        root: Path,
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
        self._used: dict[Owner, int] = defaultdict(int)
        self._reserved: dict[Owner, int] = defaultdict(int)
        """Room held by uploads in progress, so that uploads at once share the quota."""
        self._uploading: set[str] = set()

    async def open(self) -> None:
        """Make the folders and count every owner's usage."""

        def scan() -> dict[Owner, int]:
            self._blobs.make()
            (self.root / "buffers").mkdir(parents=True, exist_ok=True)
            used: dict[Owner, int] = defaultdict(int)
            for buffer in self._all_buffers():
                used[buffer.owner] += buffer.charged
            return used

        self._used = await asyncio.to_thread(scan)

    async def close(self) -> None:
        """Nothing to release: every file is closed when its operation ends."""

    # -- what clients do ---------------------------------------------------------------

    async def used(self, owner: Owner) -> int:
        """Bytes of the files ``owner`` uploaded, in all its buffers (see ``charged``)."""
        return self._used.get(owner, 0)

    async def room(self, owner: Owner) -> int:
        """The most one more file of ``owner`` may hold: the file limit or what is left
        of the quota (less what uploads in progress may still take), whichever is
        smaller."""
        return self._room(owner)

    def _room(self, owner: Owner) -> int:
        left = self.quota - self._used.get(owner, 0) - self._reserved.get(owner, 0)
        return max(0, min(self.max_size, left))

    async def create(
        self, owner: Owner, name: str | None, mime: str | None, announced: int | None
    ) -> tuple[Buffer, Keys]:
        """A temporary buffer and its keys, one that reads it and one that uploads into
        it (PROTOCOL §8.1). An announced size over ``room`` is refused before anything
        is written."""
        room = self._room(owner)
        if announced is not None and announced > room:
            raise TooBig(room)
        buffer, keys = new_temporary(owner, name, mime, announced, self._clock(), self.temp_ttl)
        await self._save(buffer)
        return buffer, keys

    async def get(self, buffer_id: str) -> Buffer | None:
        """The buffer, or None for an unknown or malformed id."""
        if not valid_id(buffer_id):
            return None
        return await asyncio.to_thread(self._load, buffer_id)

    def opens(self, buffer: Buffer, key: str) -> bool:
        """True when ``key`` is the read key of the temporary ``buffer``."""
        return matches(buffer.key_hash, key)

    def check_alive(self, buffer: Buffer, now: float) -> None:
        """``Expired`` for a temporary buffer past its lifetime."""
        if buffer.expired(now):
            raise Expired("the url has expired")

    async def check_upload(self, buffer_id: str, upload_key: str, declared: int | None) -> Buffer:
        """Everything that can refuse an upload before its body is read
        (``model.refuse_upload``), an upload running now, and a declared
        ``Content-Length`` over the room left (``too_big``)."""
        buffer = refuse_upload(await self.get(buffer_id), upload_key, self._clock())
        if buffer_id in self._uploading:
            raise AlreadyUploaded("this buffer already holds its file")
        check_declared(buffer, self._room(buffer.owner), declared)
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
        (PROTOCOL §8.2; the read key does not). Stops with ``TooBig`` as soon as the
        bytes go over the room left, or over the size announced at ``create``, whatever
        ``declared`` said; on any failure (or cancellation) nothing of the upload is
        left on disk."""
        buffer = await self.check_upload(buffer_id, upload_key, declared)
        if buffer_id in self._uploading:  # another upload started since the check
            raise AlreadyUploaded("this buffer is being uploaded")
        owner = buffer.owner
        limit = self._room(owner)
        if buffer.announced is not None:  # the client said how big: not a byte more
            limit = min(limit, buffer.announced)
        self._uploading.add(buffer_id)
        self._reserved[owner] += limit
        incoming = self._blobs.incoming()
        try:
            done = await self._write_upload(buffer, chunks, incoming, limit, claimed_mime)
            self._used[owner] += done.charged
            return done
        finally:
            self._reserved[owner] -= limit
            self._uploading.discard(buffer_id)
            await self._blobs.discard(incoming)

    async def _write_upload(
        self,
        buffer: Buffer,
        chunks: AsyncIterable[bytes],
        incoming: Path,
        limit: int,
        claimed_mime: str | None,
    ) -> Buffer:
        """The upload's bytes, at most ``limit``, written to ``incoming`` and moved to
        their blob; then the buffer, unless it expired meanwhile, saved with their size,
        digest and media type."""
        received = await self._blobs.receive(chunks, incoming, limit)
        await self._blobs.settle(incoming, received.digest)
        current = await self.get(buffer.id)
        if current is None or current.expired(self._clock()):
            raise Expired("the upload url expired during the upload")
        mime = sniff(received.head, claimed_mime or buffer.mime)
        done = replace(current, size=received.size, sha256=received.digest, mime=mime)
        await self._save(done)
        return done

    async def promote(self, buffer_id: str, owners: list[Owner]) -> list[Buffer]:
        """One permanent buffer per owner over the temporary buffer's bytes (PROTOCOL
        §8.4), then the temporary buffer is deleted. Its bytes are not copied."""
        temporary = await self.get(buffer_id)
        if temporary is None:
            raise NotFound("no uploaded temporary buffer")
        made = [await self.grant(temporary, owner, secrets.token_urlsafe(16)) for owner in owners]
        await self.delete(buffer_id)
        return made

    async def grant(self, temporary: Buffer, owner: Owner, buffer_id: str) -> Buffer:
        """The permanent buffer ``buffer_id`` of ``owner`` over the bytes of the uploaded
        ``temporary`` buffer (no copy is made); the existing one when it was granted
        already, so granting again (a Post stored twice) changes nothing."""
        permanent = permanent_copy(temporary, owner, buffer_id, self._clock())
        existing = await self.get(buffer_id)
        if existing is not None:
            return existing
        await self._save(permanent)
        self._used[owner] += permanent.charged
        return permanent

    async def delete(self, buffer_id: str) -> bool:
        """Forget the buffer; its blob goes with the next collection if nothing else
        refers to it. False when there was no such buffer."""
        buffer = await self.get(buffer_id)
        if buffer is None:
            return False
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(self._meta_path(buffer_id).unlink)
            self._used[buffer.owner] -= buffer.charged
            return True
        return False

    def blob(self, buffer: Buffer) -> Path:
        """Where the bytes of an uploaded buffer are."""
        if not valid_digest(buffer.sha256):
            raise NotFound("the buffer holds no file")
        return self._blobs.path(buffer.sha256)

    # -- housekeeping --------------------------------------------------------------------

    async def collect_garbage(self) -> Usage:
        """Remove expired temporary buffers, stale incoming files and orphaned blobs."""
        now = self._clock()
        expired = [b for b in await asyncio.to_thread(self._all_buffers) if b.expired(now)]
        for buffer in expired:
            await self.delete(buffer.id)
        incoming, blobs = await asyncio.to_thread(self._sweep, now - self.temp_ttl)
        return Usage(len(expired), incoming, blobs)

    def _sweep(self, older_than: float) -> tuple[int, int]:
        referenced = {buffer.sha256 for buffer in self._all_buffers()}
        incoming = self._blobs.sweep_incoming(older_than)
        orphans = [d for d in self._blobs.old_blobs(older_than) if d not in referenced]
        return incoming, self._blobs.remove(orphans, older_than)

    # -- metadata files ------------------------------------------------------------------

    def _meta_path(self, buffer_id: str) -> Path:
        if not valid_id(buffer_id):
            raise NotFound("malformed buffer id")
        return self.root / "buffers" / f"{buffer_id}.json"

    async def _save(self, buffer: Buffer) -> None:
        path = self._meta_path(buffer.id)
        await asyncio.to_thread(_write_atomically, path, json.dumps(asdict(buffer)).encode())

    def _load(self, buffer_id: str) -> Buffer | None:
        try:
            data = self._meta_path(buffer_id).read_bytes()
        except FileNotFoundError:
            return None
        return _parse(data)

    def _all_buffers(self) -> list[Buffer]:
        found = []
        for path in (self.root / "buffers").glob("*.json"):
            with contextlib.suppress(FileNotFoundError):
                buffer = _parse(path.read_bytes())
                if buffer is not None:
                    found.append(buffer)
        return found


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    try:
        with temporary.open("wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    sync_folder(path.parent)


def _parse(data: bytes) -> Buffer | None:
    try:
        fields: dict[str, Any] = json.loads(data)
        return Buffer(**fields)
    except (ValueError, TypeError):
        return None
