"""The Post writer: one task, group commit (PROTOCOL §7.3, §12.10; DESIGN "Data flows").

Theory of operation. Posts are queued in the order they arrive. One task takes whatever
is queued (up to ``messages.batch_max``: natural batching, so under load each commit
carries everything that queued while the previous one ran, and alone a Post is written
at once) and stores it in one transaction. Then it answers every Post of the batch in
order (``PostResult`` with the id, or the ``Error`` that Post alone earned, such as an
unknown group) and finally sends one ``Badge`` per user whose unread count moved.

A failed transaction is retried once; if it fails again every Post of the batch, and
every Post queued behind it, is answered ``unavailable``, which tells the hub to keep
them in its outbox and resend them later, in order. Nothing is lost (the hub still
holds them) and nothing is doubled (the transaction wrote nothing, and Posts are
idempotent anyway). A stored Post whose files cannot be granted now (the database of
file buffers is unavailable) is answered ``unavailable`` too: its resend finds it
stored and grants its files then.

Call ``start()``, ``offer(...)`` (or ``await submit(...)`` when it has no room) for each
Post, ``await stop()`` to drain.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from . import render
from .errors import MessagesServiceError, Unavailable
from .storage import Duplicate, FileGrant, NewPost, PostBatch

__all__ = ["PostStore", "PostWriter", "QueuedPost"]

log = logging.getLogger(__name__)

JsonObject = dict[str, Any]

ATTEMPTS = 2
"""A batch is tried twice before its Posts are answered ``unavailable``."""

GROUP_POSTS_MAX = 512
"""Group Posts in one transaction, at most, whatever ``batch_max`` allows: each writes a
row per member, so a batch of 2,048 group Posts to large groups would hold the database
(and the loop, planning its rows) four times as long as the 512 allowed before batches
grew for one-to-one Posts."""

QUEUE_MIN = 2048
"""Posts the queue holds at least (it holds one batch's worth: one batch is written
while the next fills)."""


class PostStore(Protocol):
    async def write_posts(self, posts: list[NewPost]) -> PostBatch: ...


@dataclass(frozen=True, slots=True)
class QueuedPost:
    post: NewPost
    src: object
    answer: Callable[[JsonObject], None]
    """Sends a frame to the connection the Post came from (dropped if it is gone)."""
    batched: bool = False
    """Its hub takes the plain answers of one transaction in one ``PostResults`` frame
    (docs/protocol.md 12.48)."""


class PostWriter:
    def __init__(
        self,
        store: PostStore,
        *,
        batch_max: int,
        notify: Callable[[JsonObject], None],
        on_files: Callable[[tuple[FileGrant, ...]], Awaitable[None]] | None = None,
        group_posts_max: int = GROUP_POSTS_MAX,
    ) -> None:
        self._store = store
        self._on_files = on_files
        self._batch_max = max(1, batch_max)
        self._group_posts_max = max(1, group_posts_max)
        self._notify = notify
        # Bounded: a hub that sends faster than the database writes is slowed down by
        # its own socket, instead of growing this queue without limit.
        self._queue: asyncio.Queue[QueuedPost] = asyncio.Queue(max(self._batch_max, QUEUE_MIN))
        self._task: asyncio.Task[None] | None = None
        self._accepting = False
        self.batches = 0
        """Transactions committed so far (tests and metrics read it)."""
        self.posts = 0
        """Posts answered from a committed transaction (stored, or a duplicate)."""
        self.refused = 0
        """Posts answered ``unavailable`` because the database failed (resent by hubs)."""

    @property
    def waiting(self) -> int:
        """Posts queued for the next transaction."""
        return self._queue.qsize()

    def start(self) -> None:
        self._accepting = True
        self._task = asyncio.get_running_loop().create_task(self._run())

    def offer(self, item: QueuedPost) -> bool:
        """Queue one Post if there is room now (no task, no wait); False when the queue
        is full and the caller must ``submit`` it. After ``stop``, as ``submit``."""
        if not self._accepting:
            item.answer(Unavailable("service stopping").to_wire(item.src))
            return True
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            return False
        return True

    async def submit(self, item: QueuedPost) -> None:
        """Queue one Post; waits while the queue is full. After ``stop`` the Post is
        answered ``unavailable`` at once (the hub resends it to the next service)."""
        if not self._accepting:
            item.answer(Unavailable("service stopping").to_wire(item.src))
            return
        await self._queue.put(item)

    async def stop(self) -> None:
        """Stop taking Posts, write everything queued, then end the task."""
        self._accepting = False
        if self._task is None:
            return
        await self._queue.join()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _run(self) -> None:
        queue = self._queue
        while True:
            batch = [await queue.get()]
            groups = int(batch[0].post.grp)
            while (
                len(batch) < self._batch_max
                and groups < self._group_posts_max
                and not queue.empty()
            ):
                item = queue.get_nowait()
                batch.append(item)
                groups += item.post.grp
            try:
                await self._commit(batch)
            finally:
                for _ in batch:
                    queue.task_done()

    async def _commit(self, batch: Sequence[QueuedPost]) -> None:
        result = await self._write([item.post for item in batch])
        if result is None:
            self.refused += len(batch)
            for item in batch:
                item.answer(Unavailable().to_wire(item.src))
            # The Posts queued behind it are refused too: stored before the failed ones
            # (which the hub resends) they would get smaller ids, out of order (§7.7).
            while not self._queue.empty():
                item = self._queue.get_nowait()
                self.refused += 1
                item.answer(Unavailable().to_wire(item.src))
                self._queue.task_done()
            return
        self.batches += 1
        self.posts += len(batch)
        ungranted = await self._grant(result.files)
        stored = _StoredIds()
        for item, outcome in zip(batch, result.outcomes, strict=True):
            # Asked only when some files could not be granted: hashing a Post is not free.
            refused = bool(ungranted) and item.post in ungranted
            if item.batched and type(item.src) is int and not refused and type(outcome) is int:
                stored.add(item.answer, item.src, outcome)  # a row id
                continue
            stored.send(item.answer)  # what it waits to say first: answers keep their order
            if refused:
                self.refused += 1
                item.answer(Unavailable().to_wire(item.src))
            else:
                item.answer(_answer(item.src, outcome))
        stored.send_all()
        for badge in result.badges:
            self._notify(render.badge(badge))

    async def _grant(self, files: tuple[FileGrant, ...]) -> set[NewPost]:
        """Grant the files of stored Posts; the Posts whose files cannot be granted now.
        Before the answers: a Post is acknowledged only once its files are granted, so a
        crash in between, or a store that is unavailable, makes the hub resend it, and
        granting again is harmless. Only Posts with attachments pay for it."""
        if not files or self._on_files is None:
            return set()
        try:
            await self._on_files(files)
        except Unavailable:
            log.warning("the files of %d stored message(s) cannot be granted now", len(files))
            return {grant.post for grant in files}
        except Exception:
            log.exception("granting the files of %d stored message(s) failed", len(files))
        return set()

    async def _write(self, posts: list[NewPost]) -> PostBatch | None:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return await self._store.write_posts(posts)
            except Unavailable:
                log.warning("storing %d Post(s) failed (attempt %d)", len(posts), attempt)
            except Exception:
                # A bug, not the database: still answer "unavailable", never drop a Post.
                log.exception("storing %d Post(s) failed (attempt %d)", len(posts), attempt)
        return None


class _StoredIds:
    """The plain answers of one transaction, per connection, as ``[src, id]`` pairs: sent
    as one ``PostResults`` frame (docs/protocol.md 12.48) where a ``PostResult`` per Post
    cost its hub a frame to read for every stored message. Only integer ``src`` values
    (the hub's outbox keys) are gathered, so the frame holds integers alone."""

    __slots__ = ("_waiting",)

    def __init__(self) -> None:
        self._waiting: dict[Callable[[JsonObject], None], list[list[object]]] = {}

    def add(self, answer: Callable[[JsonObject], None], src: object, row_id: int) -> None:
        pairs = self._waiting.get(answer)
        if pairs is None:
            pairs = self._waiting[answer] = []
        pairs.append([src, row_id])

    def send(self, answer: Callable[[JsonObject], None]) -> None:
        """What waits for ``answer``'s connection, now: before an answer of its own."""
        pairs = self._waiting.pop(answer, None)
        if pairs:
            answer({"mt": "PostResults", "ids": pairs})

    def send_all(self) -> None:
        for answer in list(self._waiting):
            self.send(answer)


def _answer(src: object, outcome: int | Duplicate | MessagesServiceError) -> JsonObject:
    if isinstance(outcome, MessagesServiceError):
        return outcome.to_wire(src)
    if isinstance(outcome, Duplicate):  # docs/protocol.md 12.21: a client's resend
        original = outcome.original
        answer: JsonObject = {
            "mt": "PostResult",
            "id": outcome.id,
            "original": {
                "callId": original.call_id,
                "seq": original.seq,
                "time": original.time_ms,
            },
        }
    else:
        answer = {"mt": "PostResult", "id": outcome}
    if src is not None:
        answer["src"] = src
    return answer
