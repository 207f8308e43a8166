"""The bytes of file buffers in a folder, by their SHA-256 (PROTOCOL §8).

The folder holds::

    blobs/<h[:2]>/<h>     the bytes, by SHA-256, written once and never changed
    incoming/<random>     uploads in progress

An upload is streamed chunk by chunk into ``incoming/`` with a running size check (the
writer stops at the limit, whatever the client declared) and a running hash, then
flushed, ``fsync``ed and renamed to its blob. Blobs are content-addressed and only ever
made by that rename, within one file system: two writers of the same bytes (two uploads
in one process, or two service processes on one shared folder) make the same file, and
whichever rename comes second replaces it with identical bytes. Nothing a client sends
becomes part of a path: a blob's name is a digest computed here.

Which blobs are still wanted is the metadata's business (a store's), so collection is
in two steps: the store asks for the old blobs, keeps those its buffers refer to, and
removes the rest. Age protects a blob that an upload has just renamed (or found there
already, which renews its time) but not yet recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
from collections.abc import AsyncIterable, Iterable
from dataclasses import dataclass
from pathlib import Path

import aiofiles

from .errors import Expired, TooBig
from .sniff import SNIFF_BYTES

__all__ = ["BlobFolder", "Received", "sync_folder"]


@dataclass(frozen=True, slots=True)
class Received:
    """An upload's bytes, written: their size, SHA-256 (hex) and first bytes to sniff."""

    size: int
    digest: str
    head: bytes


class BlobFolder:
    def __init__(self, root: Path) -> None:
        self.root = root

    def make(self) -> None:
        for part in ("blobs", "incoming"):
            (self.root / part).mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path:
        return self.root / "blobs" / digest[:2] / digest

    def incoming(self) -> Path:
        """A fresh name for an upload in progress."""
        return self.root / "incoming" / secrets.token_hex(16)

    async def receive(self, chunks: AsyncIterable[bytes], path: Path, limit: int) -> Received:
        """Write ``chunks`` to ``path`` with a running size check and hash; flushed and
        ``fsync``ed. ``TooBig`` as soon as the bytes go over ``limit``."""
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
        return Received(size, hasher.hexdigest(), head)

    async def settle(self, incoming: Path, digest: str) -> None:
        """Make ``incoming`` the blob of ``digest``, or drop it when that content is
        stored already (then the blob's time is renewed, so a collection running now
        does not take it). ``Expired`` when a collection took ``incoming`` first: it
        was untouched for as long as a temporary buffer lives, so its buffer is over."""
        try:
            await asyncio.to_thread(_settle, incoming, self.path(digest))
        except FileNotFoundError:
            raise Expired("the upload url expired during the upload") from None

    async def discard(self, path: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(path.unlink)

    def sweep_incoming(self, older_than: float) -> int:
        """Remove uploads left behind (by a crash) before ``older_than``; how many."""
        removed = 0
        for path in (self.root / "incoming").iterdir():
            if _mtime(path) < older_than:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed += 1
        return removed

    def old_blobs(self, older_than: float) -> list[str]:
        """The digests of blobs last written before ``older_than``."""
        return [
            path.name
            for folder in (self.root / "blobs").iterdir()
            for path in folder.iterdir()
            if _mtime(path) < older_than
        ]

    def remove(self, digests: Iterable[str], older_than: float) -> int:
        """Remove these blobs unless written again since ``older_than``; how many."""
        removed = 0
        for digest in digests:
            path = self.path(digest)
            if _mtime(path) < older_than:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed += 1
        return removed


def _settle(incoming: Path, blob: Path) -> None:
    blob.parent.mkdir(exist_ok=True)
    if blob.exists():
        os.utime(blob)
        return
    os.replace(incoming, blob)
    sync_folder(blob.parent)


def sync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return float("inf")
