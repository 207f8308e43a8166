"""The hub's durable outbox of Posts (PROTOCOL §7.3, §7.7; DESIGN "Data flows").

Every message to be stored is appended here before anyone is told ``stored``, and stays
until the messages service answers ``PostResult``. The file is a journal of JSON lines:
``{"k":key,"post":{…}}`` when a Post is added, ``{"done":[keys…]}`` when the service has
it. At start the journal is read back and rewritten with only what is still pending, so
a hub killed at any moment resends exactly the Posts the service may not have (the
service's idempotency on ``(callId, seq)`` makes a resend harmless).

Writes are grouped: the relay only appends to a list (it never waits for the disk); one
flusher task writes whatever has accumulated, ``fsync``s once in a worker thread, then
reports those Posts durable. Under load that is one ``fsync`` for hundreds of messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from signaling.core.actions import StoredAck

__all__ = ["PostOutbox"]

log = logging.getLogger(__name__)

JsonObject = dict[str, Any]

_COMPACT_BYTES = 4 * 1024 * 1024
"""A journal bigger than this, and more than ``_COMPACT_RATIO`` times what is still
pending, is rewritten with only the pending Posts: it stays small under steady traffic,
and the rewrite's cost (proportional to what is pending) is paid rarely."""
_COMPACT_RATIO = 4


class PostOutbox:
    def __init__(
        self,
        path: Path,
        *,
        on_durable: Callable[[list[StoredAck]], None],
        on_ready: Callable[[], None] = lambda: None,
    ) -> None:
        """``on_durable`` hears the acks of Posts now on disk; ``on_ready`` is called
        after new Posts became durable (the link sends them on)."""
        self.path = path
        self._on_durable = on_durable
        self._on_ready = on_ready
        self.pending: dict[int, str] = {}
        """Durable Posts the service has not acknowledged, oldest first, as the JSON text
        that was journaled and that the link sends: each Post is encoded once."""
        self._pending_bytes = 0
        self.acknowledged = 0
        """Posts the service has stored since start, for ``/metrics``."""
        self._unsent: deque[int] = deque()
        """Keys of durable Posts not yet handed to the link, oldest first. A cursor, so
        sending costs the same however many Posts wait for their acknowledgement."""
        self._adding = _Adding()
        self._done: list[int] = []
        self._next_key = 1
        self._file: BinaryIO | None = None
        self._size = 0
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None

    # -- lifecycle -----------------------------------------------------------------------

    async def open(self) -> list[str]:
        """Read what a previous run left pending, rewrite the journal, start flushing.
        Returns every Post the journal still held, acknowledged or not, for the hub to
        learn their client ids (PROTOCOL §4.6)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.pending, settled = await asyncio.to_thread(_recover, self.path)
        self._next_key = max(self.pending, default=0) + 1
        self._unsent = deque(self.pending)
        self._pending_bytes = sum(len(text) for text in self.pending.values())
        self._file, self._size = await asyncio.to_thread(_rewrite, self.path, self.pending)
        if self.pending:
            log.info("outbox: %d stored messages to resend", len(self.pending))
        self._idle.set()
        self._flusher = asyncio.get_running_loop().create_task(self._flush_loop())
        return [*settled, *self.pending.values()]

    async def close(self) -> None:
        """Write what is waiting, then stop."""
        await self.flushed()
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        if self._file is not None:
            await asyncio.to_thread(self._file.close)
            self._file = None

    async def flushed(self) -> None:
        """Wait until everything added so far is on disk."""
        while self._adding or self._done or not self._idle.is_set():
            self._wake.set()
            await self._idle.wait()
            await asyncio.sleep(0)

    # -- the core's side -----------------------------------------------------------------

    def add(self, post: JsonObject, ack: StoredAck | None) -> None:
        """Queue a Post; ``ack`` is reported through ``on_durable`` once it is on disk.
        It is encoded now, once: until the flush it is a key and a text, neither of which
        the garbage collector walks (a dict a Post waiting for the disk was most of what
        a young-generation pass walked on a busy licensed hub)."""
        key = self._next_key
        self._next_key += 1
        post["src"] = key
        adding = self._adding
        if not adding.keys:  # the first since the last flush took its batch: wake it
            self._wake.set()
        adding.keys.append(key)
        adding.texts.append(_encode(post))
        if ack is not None:
            adding.acks.append(ack)

    def done(self, key: int) -> str | None:
        """The service has stored it; the Post as journaled, if it was still pending."""
        text = self.pending.pop(key, None)
        if text is not None:
            self.acknowledged += 1
            self._pending_bytes -= len(text)
            self._done.append(key)
            self._wake.set()
        return text

    def rewind(self) -> None:
        """Send every unacknowledged Post again, oldest first (after a reconnect the
        service may have missed any of them)."""
        self._unsent = deque(self.pending)

    def take_unsent(self, count: int) -> list[str]:
        """The oldest durable Posts not handed out since the last ``rewind``, ``count`` at
        most, oldest first: the link's next write."""
        unsent, pending = self._unsent, self.pending
        taken: list[str] = []
        while unsent and len(taken) < count:
            key = unsent.popleft()
            post = pending.get(key)
            if post is not None:  # else acknowledged meanwhile: nothing left to send
                taken.append(post)
        return taken

    # -- writing -------------------------------------------------------------------------

    async def _flush_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            self._idle.clear()
            try:
                await self._flush()
            except Exception:
                log.exception("outbox: writing the journal failed; retrying")
                await asyncio.sleep(0.5)
                self._wake.set()
            finally:
                self._idle.set()

    async def _flush(self) -> None:
        adding, self._adding = self._adding, _Adding()
        done, self._done = self._done, []
        if not adding and not done:
            return
        lines = list(map(_post_line, adding.keys, adding.texts))
        if done:
            lines.append(_line({"done": done}))
        data = b"".join(lines)
        assert self._file is not None
        try:
            await asyncio.to_thread(_append, self._file, data, bool(adding))
        except BaseException:
            self._adding.put_back(adding)  # nobody was told: try again, in the same order
            self._done[:0] = done
            # Cut off whatever part of it reached the file, so the retry starts a fresh
            # line: recovery may skip a torn line only at the very end.
            with contextlib.suppress(Exception):
                self._file = await asyncio.to_thread(_reopen_at, self.path, self._file, self._size)
            raise
        self._size += len(data)
        if adding:
            self.pending.update(zip(adding.keys, adding.texts, strict=True))
            self._pending_bytes += sum(map(len, adding.texts))
            self._unsent.extend(adding.keys)
            if adding.acks:
                self._on_durable(adding.acks)
            self._on_ready()
        if self._size > max(_COMPACT_BYTES, _COMPACT_RATIO * self._pending_bytes):
            file, snapshot = self._file, dict(self.pending)
            # Acknowledgements that arrive meanwhile are queued in _done and go to the
            # new file, after the Posts they cancel.
            self._file, self._size = await asyncio.to_thread(_rewrite, self.path, snapshot)
            await asyncio.to_thread(file.close)


class _Adding:
    """Posts added since the last flush, oldest first: their keys and texts side by side
    (ints and strings: nothing for the garbage collector to walk), and the acks of
    those that have one."""

    __slots__ = ("acks", "keys", "texts")

    def __init__(self) -> None:
        self.keys: list[int] = []
        self.texts: list[str] = []
        self.acks: list[StoredAck] = []

    def __bool__(self) -> bool:
        return bool(self.keys)

    def put_back(self, older: _Adding) -> None:
        """``older`` (a flush that failed) goes in front of what was added since."""
        self.keys[:0] = older.keys
        self.texts[:0] = older.texts
        self.acks[:0] = older.acks


_JSON_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _encode(record: JsonObject) -> str:
    """A Post (or journal record) as compact JSON, non-ASCII kept: ``orjson`` writes these
    exactly as ``json`` does (strings, integers, booleans and lists of strings: no floats)
    at a twentieth of the cost; anything it refuses (an integer beyond 64 bits, a lone
    surrogate) goes through ``json`` as before."""
    try:
        return orjson.dumps(record).decode()
    except TypeError:
        return _JSON_ENCODE(record)


def _line(record: JsonObject) -> bytes:
    return _encode(record).encode() + b"\n"


def _post_line(key: int, text: str) -> bytes:
    """``{"k":key,"post":…}`` around a Post already encoded."""
    return b'{"k":%d,"post":%s}\n' % (key, text.encode())


def _append(file: BinaryIO, data: bytes, sync: bool) -> None:
    """Acknowledgements need no fsync: losing one only means a harmless resend."""
    file.write(data)
    file.flush()
    if sync:
        os.fsync(file.fileno())


def _reopen_at(path: Path, file: BinaryIO, size: int) -> BinaryIO:
    """Close ``file`` (dropping what its buffer holds), cut the journal back to ``size``
    bytes and open it again to append."""
    with contextlib.suppress(OSError):
        file.close()
    os.truncate(path, size)
    return path.open("ab")


def _recover(path: Path) -> tuple[dict[int, str], list[str]]:
    """The Posts a journal holds that were never acknowledged, by key; and those it still
    holds that were (since its last rewrite), whose ids the hub remembers too."""
    pending: dict[int, str] = {}
    settled: list[str] = []
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return pending, settled
    for number, raw in enumerate(data.splitlines(), 1):
        try:
            record = json.loads(raw)
            if "done" in record:
                for key in record["done"]:
                    post = pending.pop(key, None)
                    if post is not None:
                        settled.append(post)
            else:
                pending[int(record["k"])] = _encode(record["post"])
        except (ValueError, KeyError, TypeError):
            # Only the last line can be torn (a crash mid-write); it was never reported
            # durable, so nobody was told "stored" about it.
            log.warning("outbox: skipping unreadable line %d of %s", number, path.name)
    return dict(sorted(pending.items())), settled


def _rewrite(path: Path, pending: dict[int, str]) -> tuple[BinaryIO, int]:
    """Replace the journal atomically with just ``pending``; returns it opened to append."""
    temporary = path.with_suffix(path.suffix + ".tmp")
    data = b"".join(_post_line(key, text) for key, text in pending.items())
    with temporary.open("wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return path.open("ab"), len(data)
