"""The admin API's changes shared by the nodes of a cluster (SCALE.md decision 8): kept in
the cluster's PostgreSQL, announced on the control channel, made on every node.

Theory of operation. Each node starts from its configuration and makes over it every
change the database holds (``storage``), as one process does with its file
(``change_set``). A change made through a node's admin API is written first (the commit
point: it is in the database when the API answers 2xx); the node then makes it, with
whatever else the write found committed before it, and announces the new version on
the control channel (``signaling.bus.control``). Another node told of a version newer
than its own reads the rows again and makes those newer than what it has made (the
whole set is small); so does a node whose subscription came back (announcements may
have been lost meanwhile) after reading the version, and every node each ``RECHECK``
seconds in any case (a node may have died between its write and its announcement).

What a node has made is one number, ``version``: every change up to it. Reads and
writes take turns (``_turn``), so a read never makes older rows over a newer change of
this node. Rows newer than ``version`` are made per tenant in one go, as at start: a
tenant added or removed first (it starts out empty, so all its rows are among them),
then deletions, then the rest until nothing more fits. Nodes changing at once are
serialized by the database; per entry, the last change wins.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from config import ConfigError
from signaling.stopping import stop_tasks

from .change_set import Change, TenantChanges, apply_changes, with_change
from .directory import Directory
from .errors import ChangesUnavailable
from .storage import ChangesTable, Row

__all__ = ["RECHECK", "SharedChanges"]

log = logging.getLogger(__name__)

RECHECK = 30.0
"""Seconds between two reads of the version when nothing was announced."""
REACHABLE_WAIT = 2.0
"""Seconds ``reachable`` waits for the database's answer."""
RETRY_MAX = 5.0
"""The longest wait before reading again after the database failed."""


class SharedChanges:
    """The cluster's ``ChangeLog``; also what the control channel tells of a version."""

    def __init__(
        self, table: ChangesTable, directory: Directory, *, recheck: float = RECHECK
    ) -> None:
        self._table = table
        self._directory = directory
        self._recheck = recheck
        self.version = 0
        """Every change up to this version is made here."""
        self.announce: Callable[[int], None] = lambda version: None
        """Tells the other nodes of a version (the bus's control channel)."""
        self._turn = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Open the database (``ConfigError`` when it cannot be used) and make every
        change it holds; then follow."""
        await self._table.open()
        try:
            await self.catch_up()
        except ChangesUnavailable as exc:
            await self._table.close()
            reason = f"cannot read the directory changes: {exc}"
            raise ConfigError("cluster.database", reason) from exc
        self._task = asyncio.get_running_loop().create_task(
            self._follow(), name="directory-changes"
        )

    async def stop(self) -> None:
        if self._task is not None:
            await stop_tasks([self._task])
            self._task = None
        await self._table.close()

    async def keep(self, change: Change, make: Callable[[], object]) -> None:
        """Write ``change``, make it here with whatever was committed before it, and
        announce it. ``make`` is not needed: the rows say the same."""
        async with self._turn:
            version, rows = await self._table.write(change)
            self._make(rows, version)
        self.announce(version)

    async def reachable(self, timeout: float = REACHABLE_WAIT) -> bool:
        """Whether the database answers now (``/healthz``'s ``directory``); a database
        that hangs counts as down and does not hang the probe."""
        try:
            await asyncio.wait_for(self._table.version(), timeout)
        except (TimeoutError, ChangesUnavailable):
            return False
        return True

    def announced(self, version: int | None) -> None:
        """Another node announced ``version``, or (None) the subscription came back and
        announcements may have been lost: read again when there may be more."""
        if version is None or version > self.version:
            self._wake.set()

    async def catch_up(self) -> None:
        """Make every change newer than ``version`` the database holds."""
        if await self._table.version() <= self.version:
            return
        async with self._turn:
            version, rows = await self._table.read()
            self._make(rows, version)

    def _make(self, rows: list[Row], version: int) -> None:
        if version <= self.version:
            return
        newer: TenantChanges = {}
        for row in rows:
            if row.version > self.version:
                with_change(newer, row.change)
        apply_changes(self._directory, newer)
        log.info("directory changes: made up to version %d (%s)", version, ", ".join(newer))
        self.version = version

    async def _follow(self) -> None:
        delay = 0.1
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._recheck):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.catch_up()
            except ChangesUnavailable:
                log.warning("directory changes: cannot read them; again in %.1f s", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)
                self._wake.set()
                continue
            except Exception:
                log.exception("directory changes: internal error making them")
                continue
            delay = 0.1
