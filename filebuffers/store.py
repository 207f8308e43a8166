"""File buffers on a local (or shared) folder (PROTOCOL §8; DESIGN "Attachments").

Theory of operation. A *buffer* is what a client sees: an id, a name, a type, a size,
an owner and a lifetime. Its bytes live apart, as a *blob* named by their SHA-256, so
the permanent buffers made for each side of a message share one copy on disk while
each has its own id, owner and lifetime (deleting one side's buffer never touches the
other's). The folder holds::

    buffers/<id>.json     one per buffer: its metadata, replaced atomically
    blobs/<h[:2]>/<h>     the bytes, by SHA-256, written once and never changed
    incoming/<random>     uploads in progress

An upload is streamed chunk by chunk into ``incoming/`` with a running size check (the
writer stops at the limit, whatever the client declared) and a running hash, then
flushed, ``fsync``ed and renamed to its blob; only then does the buffer's metadata say
it holds bytes. A failed, refused or interrupted upload deletes its incoming file
before the error leaves ``upload``. Nothing a client sends becomes part of a path: ids
are checked against their alphabet, names are only metadata.

Garbage collection removes expired temporary buffers, incoming files older than a
temporary buffer lives, and blobs no buffer refers to once they are that old too (the
age keeps a blob that an upload has just renamed, but not yet recorded, alive).

Capabilities. A temporary buffer has two keys, each a random secret of its own: the
*read key* opens it for reading until it expires (its url goes into ``im_message.attach``
for every recipient to see), the *upload key* lets its creator upload into it once. Only
their SHA-256 is stored, compared in constant time. Keeping them apart means that
whoever receives the read url before the upload cannot fill the buffer (docs/protocol.md
12.13). A buffer stored before the keys were split has no upload key and takes no upload.

Quotas are counted per owner over the buffers that hold bytes; the counts are built
from the metadata at ``open`` and kept in memory, which is exact for one process per
folder (the embedded default and the split mode's single service).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import secrets
import time
from collections import defaultdict
from collections.abc import AsyncIterable, Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import aiofiles

from .errors import AlreadyUploaded, Expired, NotFound, TooBig
from .names import safe_name
from .sniff import SNIFF_BYTES, media_type, sniff

__all__ = ["Buffer", "Keys", "LocalStore", "Owner", "Usage"]

_ID = re.compile(r"[A-Za-z0-9_-]{22}")
_SHA256 = re.compile(r"[0-9a-f]{64}")

Kind = Literal["temporary", "permanent"]


@dataclass(frozen=True, slots=True)
class Owner:
    domain: str
    user: str


@dataclass(frozen=True, slots=True)
class Buffer:
    """One buffer's metadata, as stored in ``buffers/<id>.json``."""

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
        self._used: dict[Owner, int] = defaultdict(int)
        self._reserved: dict[Owner, int] = defaultdict(int)
        """Room held by uploads in progress, so that uploads at once share the quota."""
        self._uploading: set[str] = set()

    async def open(self) -> None:
        """Make the folders and count every owner's usage."""

        def scan() -> dict[Owner, int]:
            for part in ("buffers", "blobs", "incoming"):
                (self.root / part).mkdir(parents=True, exist_ok=True)
            used: dict[Owner, int] = defaultdict(int)
            for buffer in self._all_buffers():
                used[buffer.owner] += buffer.charged
            return used

        self._used = await asyncio.to_thread(scan)

    # -- what clients do ---------------------------------------------------------------

    def used(self, owner: Owner) -> int:
        """Bytes of the files ``owner`` uploaded, in all its buffers (see ``charged``)."""
        return self._used.get(owner, 0)

    def room(self, owner: Owner) -> int:
        """The most one more file of ``owner`` may hold: the file limit or what is left
        of the quota (less what uploads in progress may still take), whichever is
        smaller."""
        left = self.quota - self.used(owner) - self._reserved.get(owner, 0)
        return max(0, min(self.max_size, left))

    async def create(
        self, owner: Owner, name: str | None, mime: str | None, announced: int | None
    ) -> tuple[Buffer, Keys]:
        """A temporary buffer and its keys, one that reads it and one that uploads into
        it (PROTOCOL §8.1). An announced size over ``room`` is refused before anything
        is written."""
        room = self.room(owner)
        if announced is not None and announced > room:
            raise TooBig(room)
        keys = Keys(read=secrets.token_urlsafe(32), upload=secrets.token_urlsafe(32))
        now = self._clock()
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
            expires=now + self.temp_ttl,
            key_hash=_key_hash(keys.read),
            announced=announced,
            upload_hash=_key_hash(keys.upload),
        )
        await self._save(buffer)
        return buffer, keys

    async def get(self, buffer_id: str) -> Buffer | None:
        """The buffer, or None for an unknown or malformed id."""
        if _ID.fullmatch(buffer_id) is None:
            return None
        return await asyncio.to_thread(self._load, buffer_id)

    def opens(self, buffer: Buffer, key: str) -> bool:
        """True when ``key`` is the read key of the temporary ``buffer``."""
        return _matches(buffer.key_hash, key)

    def check_alive(self, buffer: Buffer, now: float) -> None:
        """``Expired`` for a temporary buffer past its lifetime."""
        if buffer.expired(now):
            raise Expired("the url has expired")

    async def check_upload(self, buffer_id: str, upload_key: str, declared: int | None) -> Buffer:
        """Everything that can refuse an upload before its body is read: an unknown
        buffer or a key that is not its upload key (``not_found``; the read key does
        not upload), expiry, a second upload, and a declared ``Content-Length`` over the
        room left (``too_big``)."""
        buffer = await self.get(buffer_id)
        if (
            buffer is None
            or buffer.kind != "temporary"
            or not _matches(buffer.upload_hash, upload_key)
        ):
            raise NotFound("no such upload")
        if buffer.expired(self._clock()):
            raise Expired("the upload url has expired")
        if buffer.uploaded or buffer_id in self._uploading:
            raise AlreadyUploaded("this buffer already holds its file")
        room = self.room(buffer.owner)
        if buffer.announced is not None:
            room = min(room, buffer.announced)
        if declared is not None and declared > room:
            raise TooBig(room)
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
        limit = self.room(owner)
        if buffer.announced is not None:  # the client said how big: not a byte more
            limit = min(limit, buffer.announced)
        self._uploading.add(buffer_id)
        self._reserved[owner] += limit
        incoming = self.root / "incoming" / secrets.token_hex(16)
        try:
            done = await self._write_upload(buffer, chunks, incoming, limit, claimed_mime)
            self._used[owner] += done.charged
            return done
        finally:
            self._reserved[owner] -= limit
            self._uploading.discard(buffer_id)
            with contextlib.suppress(FileNotFoundError):
                await asyncio.to_thread(incoming.unlink)

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
        size, digest, head = await _receive(chunks, incoming, limit)
        blob = self._blob_path(digest)
        await asyncio.to_thread(_settle, incoming, blob)
        current = await self.get(buffer.id)
        if current is None or current.expired(self._clock()):
            raise Expired("the upload url expired during the upload")
        mime = sniff(head, claimed_mime or buffer.mime)
        done = replace(current, size=size, sha256=digest, mime=mime)
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
        if temporary.kind != "temporary" or not temporary.uploaded:
            raise NotFound("no uploaded temporary buffer")
        existing = await self.get(buffer_id)
        if existing is not None:
            return existing
        permanent = replace(
            temporary,
            id=buffer_id,
            kind="permanent",
            domain=owner.domain,
            user=owner.user,
            created=self._clock(),
            expires=None,
            key_hash="",
            upload_hash="",
            uploader=temporary.user,
        )
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
        if _SHA256.fullmatch(buffer.sha256) is None:
            raise NotFound("the buffer holds no file")
        return self._blob_path(buffer.sha256)

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
        incoming = 0
        for path in (self.root / "incoming").iterdir():
            if _mtime(path) < older_than:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    incoming += 1
        blobs = 0
        for folder in (self.root / "blobs").iterdir():
            for path in folder.iterdir():
                if path.name not in referenced and _mtime(path) < older_than:
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
                        blobs += 1
        return incoming, blobs

    # -- metadata files ------------------------------------------------------------------

    def _meta_path(self, buffer_id: str) -> Path:
        if _ID.fullmatch(buffer_id) is None:
            raise NotFound("malformed buffer id")
        return self.root / "buffers" / f"{buffer_id}.json"

    def _blob_path(self, digest: str) -> Path:
        return self.root / "blobs" / digest[:2] / digest

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


async def _receive(chunks: AsyncIterable[bytes], path: Path, limit: int) -> tuple[int, str, bytes]:
    """Write ``chunks`` to ``path`` with a running size check and hash; flushed and
    ``fsync``ed. Returns (size, sha256 hex, the first ``SNIFF_BYTES``)."""
    hasher = hashlib.sha256()
    head = b""
    size = 0
    async with aiofiles.open(path, "wb") as file:
        async for chunk in chunks:
            if not chunk:
                continue
            size += len(chunk)
            if size > limit:
                raise TooBig(limit)
            if len(head) < SNIFF_BYTES:
                head += chunk[: SNIFF_BYTES - len(head)]
            hasher.update(chunk)
            await file.write(chunk)
        await file.flush()
        await asyncio.to_thread(os.fsync, file.fileno())
    return size, hasher.hexdigest(), head


def _settle(incoming: Path, blob: Path) -> None:
    """Make ``incoming`` the blob, or drop it when that content is stored already (then
    the blob's time is renewed, so a collection running now does not take it)."""
    blob.parent.mkdir(exist_ok=True)
    if blob.exists():
        os.utime(blob)
        return
    os.replace(incoming, blob)
    _sync_folder(blob.parent)


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
    _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _parse(data: bytes) -> Buffer | None:
    try:
        fields: dict[str, Any] = json.loads(data)
        return Buffer(**fields)
    except (ValueError, TypeError):
        return None


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return float("inf")


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _matches(stored_hash: str, key: str) -> bool:
    """True when ``key`` hashes to ``stored_hash``, compared in constant time; a buffer
    without that key (``""``) opens to nothing."""
    return bool(stored_hash) and secrets.compare_digest(stored_hash, _key_hash(key))
