"""Stopping background tasks for good."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

__all__ = ["stop_tasks"]

AGAIN_AFTER = 0.1
"""Seconds a cancelled task may take to end before it is cancelled again."""


async def stop_tasks(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel ``tasks`` and wait until every one has ended; what they raised is the
    caller's to read. A task still running after its cancellation is cancelled again:
    on Python 3.11, ``asyncio.wait_for`` (which redis-py wraps around every write to a
    socket with a timeout) returns normally and drops a cancellation that arrives just
    as what it waits for finishes, and the task's loop then goes on (fixed in 3.12)."""
    pending = [task for task in tasks if not task.done()]
    while pending:
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=AGAIN_AFTER)
        pending = [task for task in pending if not task.done()]
