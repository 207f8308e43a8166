"""Replicas of the service on one PostgreSQL, telling each other's hubs (docs/protocol.md
12.41; SCALE.md decision 1: ``LISTEN/NOTIFY`` only between messages-service replicas).

Theory of operation. Each replica is one *run*, ``<server.node>.<8 hex digits>``. Every
notification this replica's hubs are sent (``HubConnections.broadcast``) is also handed
to ``publish``: encoded at once, queued, and written by the *writer* task as rows of
``replica_notes`` with a ``NOTIFY`` (``storage.notes``), as many as queued in one
transaction. The *reader* task holds a connection that ``LISTEN``s; woken by a notify (or
every ``check_every`` seconds, which also proves the connection alive), it reads the rows
after the last id it has seen and gives those of other runs to this replica's hubs
(``deliver``), in id order, which is the order they were written in.

What is kept where, and what happens on failures:

- The hub that asked is told by its own replica before its answer (12.23); hubs of other
  replicas a moment later (one insert and one notify; a few milliseconds).
- The reader's connection drops (the database restarted, the backend was terminated, the
  network failed): it connects again, with doubling delays from ``retry_min`` to
  ``retry_max``, ``LISTEN``s, then reads everything after its last id. Nothing is missed
  while the notes are still kept (``keep``, ten minutes by default).
- Away longer than that (the pruned mark is past its last id): it cannot know what it
  missed, so it ``lost()``: the service closes its hub links (1012), and each hub, logged
  in again, asks for its groups and badges afresh, as after any link drop.
- The writer's connection fails: the notes wait in memory (at most ``PENDING_MAX``; past
  that the oldest are dropped and counted) and are written once it connects again. A note
  whose write committed but whose answer was lost is written again: other replicas'
  hubs may then see one notification twice, which changes nothing (each says a state).

``start()`` connects both (a database it cannot reach then is an error for the operator);
``stop()`` writes what is queued (for up to ``STOP_TIMEOUT``) and closes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import deque
from collections.abc import Callable
from itertools import islice
from typing import Any

import orjson

from .errors import Unavailable
from .storage import notes

__all__ = ["NOTES_KEPT", "Replicas"]

log = logging.getLogger(__name__)

JsonObject = dict[str, Any]

NOTES_KEPT = 600.0
"""Seconds a note stays readable: how long a replica may be cut off and catch up."""
PRUNE_EVERY = 60.0
BATCH_MAX = 500
"""Notes written in one transaction, at most."""
READ_MAX = 1000
"""Notes read in one query, at most (a replica catching up reads page after page)."""
PENDING_MAX = 100_000
"""Notes waiting in memory for the database, at most."""
STOP_TIMEOUT = 5.0

_FAILURES = notes.FAILURES


class Replicas:
    """This replica's side of the notes: ``start()``, then ``publish`` each notification
    made here; ``deliver`` gets each one another replica made; ``lost`` is called when
    notes were pruned before this replica read them. ``stop()`` when done."""

    def __init__(
        self,
        url: str,
        node: str,
        *,
        deliver: Callable[[JsonObject], None],
        lost: Callable[[], None],
        keep: float = NOTES_KEPT,
        retry_min: float = 0.1,
        retry_max: float = 5.0,
        check_every: float = 10.0,
    ) -> None:
        self.run = f"{node}.{secrets.token_hex(4)}"
        self._url = url
        self._deliver = deliver
        self._lost = lost
        self.keep = keep
        self._retry = (retry_min, retry_max)
        self._check_every = check_every
        self._pending: deque[str] = deque()
        self._written = asyncio.Event()
        """Set while nothing waits to be written (``stop`` waits for it)."""
        self._written.set()
        self._to_write = asyncio.Event()
        self._to_read = asyncio.Event()
        self._reader: Any = None
        self._writer: Any = None
        self._last = 0
        """The highest note id this replica has read (or skipped as its own)."""
        self._tasks: list[asyncio.Task[None]] = []
        self.up = False
        """The reader listens and its last read worked (``/healthz``)."""
        self.published = 0
        self.delivered = 0
        self.dropped = 0
        self.gaps = 0
        """Times this replica found notes pruned before it read them (``lost``)."""

    # -- life --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect the reader (listening, from the newest note on) and the writer."""
        try:
            await self._listen(catch_up=False)
            self._writer = await notes.connect(self._url, f"switchboard {self.run} notes")
        except _FAILURES as exc:
            await self._close_connections()
            raise Unavailable(f"replica notes: {exc}") from exc
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._read_loop(), name=f"replica reader {self.run}"),
            loop.create_task(self._write_loop(), name=f"replica writer {self.run}"),
        ]
        log.info("replica %s: telling other replicas' hubs through PostgreSQL", self.run)

    async def stop(self) -> None:
        """Write what waits (for up to ``STOP_TIMEOUT``), then close both connections."""
        if self._pending and self._tasks:
            try:
                await asyncio.wait_for(self._written.wait(), STOP_TIMEOUT)
            except TimeoutError:
                log.warning("replica %s: %d note(s) not written", self.run, len(self._pending))
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self._close_connections()

    # -- writing -----------------------------------------------------------------------------

    def publish(self, message: JsonObject) -> None:
        """A notification this replica made, for the others' hubs (never blocks)."""
        try:
            body = orjson.dumps(message).decode()
        except TypeError:  # orjson's encode error: nothing the hubs could read either
            log.exception("replica %s: a notification that is not JSON", self.run)
            return
        if len(self._pending) >= PENDING_MAX:
            self._pending.popleft()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 10_000 == 0:
                log.warning("replica %s: %d note(s) dropped", self.run, self.dropped)
        self._pending.append(body)
        self._written.clear()
        self._to_write.set()

    async def _write_loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_prune = loop.time()
        delay = self._retry[0]
        while True:
            if not self._pending:
                self._written.set()
                wait = max(0.0, next_prune - loop.time())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._to_write.wait(), wait)
                self._to_write.clear()
            try:
                await self._write_some()
                if loop.time() >= next_prune:
                    next_prune = loop.time() + PRUNE_EVERY
                    await notes.prune(self._writer, self.keep)
            except _FAILURES as exc:
                log.warning("replica %s: writing notes failed: %r", self.run, exc)
                self._drop("_writer")
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry[1])
                continue
            delay = self._retry[0]

    async def _write_some(self) -> None:
        """One transaction of what waits (connecting first if need be)."""
        if self._writer is None or self._writer.is_closed():
            self._writer = await notes.connect(self._url, f"switchboard {self.run} notes")
        batch = list(islice(self._pending, BATCH_MAX))
        if not batch:
            return
        try:
            await notes.append(self._writer, self.run, batch)
        except notes.Unwritable:  # never written, however often tried: not kept
            log.exception("replica %s: %d note(s) refused", self.run, len(batch))
        else:
            self.published += len(batch)
        for _ in batch:
            self._pending.popleft()

    # -- reading -----------------------------------------------------------------------------

    async def _listen(self, *, catch_up: bool) -> None:
        """A new reader connection, listening; then, on a first start, the newest note is
        where reading begins, and after a drop everything after the last id is read."""
        connection = await notes.connect(self._url, f"switchboard {self.run} listen")
        self._reader = connection
        connection.add_termination_listener(self._terminated)
        await connection.add_listener(notes.CHANNEL, self._notified)
        if catch_up:
            await self._read_all()
        else:
            self._last = await notes.newest(connection)
        self.up = True

    def _notified(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        """A notify: this replica's own notes right after the last id are skipped without
        a read; anything else wakes the reader."""
        origin, _, ids = payload.partition(" ")
        first, _, last = ids.partition(" ")
        own = origin == self.run and first.isdigit() and last.isdigit()
        if own and int(first) == self._last + 1:
            self._last = int(last)
            return
        self._to_read.set()

    def _terminated(self, _connection: object) -> None:
        self.up = False
        self._to_read.set()

    async def _read_loop(self) -> None:
        delay = self._retry[0]
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._to_read.wait(), self._check_every)
            self._to_read.clear()
            try:
                if self._reader is None or self._reader.is_closed():
                    self._drop("_reader")
                    await self._listen(catch_up=True)
                    log.info("replica %s: listening again", self.run)
                else:
                    await self._read_all()
            except _FAILURES as exc:
                self.up = False
                log.warning("replica %s: reading notes failed: %r", self.run, exc)
                self._drop("_reader")
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry[1])
                self._to_read.set()  # try again at once after the delay
                continue
            delay = self._retry[0]

    async def _read_all(self) -> None:
        """Every note after the last id, page by page; others' go to this replica's hubs."""
        while True:
            found = await notes.read_after(self._reader, self._last, READ_MAX)
            if found.pruned > self._last:
                self.gaps += 1
                log.warning(
                    "replica %s: notes %d..%d were pruned before they were read; "
                    "closing the hub links so that they ask again",
                    self.run,
                    self._last + 1,
                    found.pruned,
                )
                self._last = found.pruned
                self._lost()
            for note in found.notes:
                self._last = max(self._last, note.id)
                if note.origin != self.run:
                    self._give(note)
            self.up = True
            if len(found.notes) < READ_MAX:
                return

    def _give(self, note: notes.Note) -> None:
        try:
            message = orjson.loads(note.body)
        except orjson.JSONDecodeError:
            log.warning("replica %s: note %d is not JSON; skipped", self.run, note.id)
            return
        if isinstance(message, dict):
            self.delivered += 1
            self._deliver(message)

    # -- connections -------------------------------------------------------------------------

    def _drop(self, which: str) -> None:
        """Forget a failed connection (``_reader`` or ``_writer``) without waiting on it."""
        connection = getattr(self, which)
        setattr(self, which, None)
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.terminate()

    async def _close_connections(self) -> None:
        self.up = False
        for which in ("_reader", "_writer"):
            connection = getattr(self, which)
            setattr(self, which, None)
            if connection is not None and not connection.is_closed():
                try:
                    await asyncio.wait_for(connection.close(), STOP_TIMEOUT)
                except _FAILURES:
                    connection.terminate()
