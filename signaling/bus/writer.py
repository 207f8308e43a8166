"""What one node writes to Redis, batched per turn of its writer task (SCALE.md
performance rules 2 and 5).

Theory of operation: the bus hands the writer the cluster actions its switch returned
(``take``); nothing waits on Redis there. They collect in a ``Batch`` until the writer
task runs, then leave in one pipeline (``Outbound``). While a pipeline is in flight the
next batch fills, so the busier the node, the more each carries. The answers go back
through ``answer``.

Delivery reports wait for the pace of ``report_pace`` (at most one pipeline with reports
every few milliseconds) unless something else leaves first and takes them along.

While Redis cannot be reached, frames wait in memory up to ``QUEUED_MAX``; beyond that the
frames for the node concerned are dropped and its calls here end as if it had died,
rather than reaching it with a hole in the middle.

While the run is fenced (``fence``) the writer waits; frames for other nodes are dropped
(their calls ended), lookups are answered with this node's devices only, and the rest
(registrations, presence, claims) waits to be written once the run is back. Once it was
declared dead nothing more is kept: claims are refused, and writes are dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from signaling.core.actions import (
    Action,
    Claim,
    Claimed,
    Forward,
    LookedUp,
    Lookup,
    PresenceShare,
    PresenceShares,
    PresenceWatch,
    Recall,
    Recalled,
    Unclaim,
)
from signaling.core.nodes.frames import Reached

from . import keys
from .fence import Fence, Standing
from .outbound import Batch, Outbound
from .presence import RedisPresence
from .redis_book import Op
from .report_pace import ReportPace
from .stats import BusStats

__all__ = ["QUEUED_MAX", "RETRY_DELAY", "Writer"]

log = logging.getLogger(__name__)

QUEUED_MAX = 200_000
"""Frames waiting for Redis at most (see the module's docstring)."""

RETRY_DELAY = 0.05
"""Seconds before entries whose target had no inbox are written again."""

Answer = LookedUp | Recalled | Claimed | PresenceShares


class Writer:
    def __init__(
        self,
        stats: BusStats,
        fence: Fence,
        *,
        answer_wait: float,
        answer: Callable[[Answer], None],
        cut_off: Callable[[str], None],
        node_down: Callable[[str], None],
        dead: Callable[[], set[str]],
    ) -> None:
        """``answer``: hands an answer from Redis to the switch; ``cut_off``: ends the
        calls with a node whose frames had to be dropped; ``node_down``: a node whose
        inbox stayed missing is gone; ``dead``: the runs known dead."""
        self._stats = stats
        self._fence = fence
        self._answer_wait = answer_wait
        self._answer = answer
        self._cut_off = cut_off
        self._node_down = node_down
        self._dead = dead
        self.next = Batch()
        self.writing: Batch | None = None
        """The batch being sent."""
        self.outbound: Outbound | None = None
        self.presence: RedisPresence | None = None
        self._queued = 0
        self._overflowed: set[str] = set()
        self._wake = asyncio.Event()
        self.settled = asyncio.Event()
        """Set whenever the writer has sent everything it was given."""
        self.settled.set()
        self._pace = ReportPace()
        self._report_timer: asyncio.TimerHandle | None = None

    # -- from the bus ------------------------------------------------------------------------

    def take(self, action: Action) -> None:
        """A cluster action of the switch: it leaves with the next pipeline."""
        batch = self.next
        if type(action) is Forward:
            target = action.node
            if self._queued >= QUEUED_MAX or target in self._overflowed or not self._fence.up:
                self._not_sent(target)
                return
            frames = batch.frames.get(target)
            if frames is None:
                frames = batch.frames[target] = []
            frames.append(action.frame)
            self._queued += 1
            if type(action.frame) is Reached:
                batch.reports += 1
                return self._wake_for_reports()
        elif not self._fence.up and self._unasked(action):
            return
        elif type(action) is Unclaim:
            key, member = action.key, action.member
            if self.outbound is not None:
                self.outbound.unclaimed(key, member)
            claim = keys.claim_set(key)
            batch.ops.append(lambda pipe: pipe.srem(claim, member))
        elif type(action) is Lookup or type(action) is Claim or type(action) is Recall:
            batch.questions.append(action)
        elif type(action) is PresenceShare and self.presence is not None:
            self.presence.share(action, batch)
        elif type(action) is PresenceWatch and self.presence is not None:
            self.presence.watch(action, batch)
        self.wake()

    def written(self) -> asyncio.Future[None]:
        """Done once Redis has taken everything taken so far (a registration's write: the
        device can be found), or after ``cluster.answer_wait`` if it has not answered."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        if not self._fence.up:  # found by the others once it is back: no use waiting
            waiter.set_result(None)
            return waiter
        self.next.waiters.append(waiter)
        self.wake()
        loop.call_later(self._answer_wait, self._overdue, waiter)
        return waiter

    def _overdue(self, waiter: asyncio.Future[None]) -> None:
        if not waiter.done():
            self._stats.late_answers += 1
            waiter.set_result(None)

    def queue_op(self, op: Op) -> None:
        if self._fence.standing is Standing.DEAD:
            return  # never written: the janitor has cleaned up after this run
        self.next.ops.append(op)
        self.wake()

    def read_presence(self, key: tuple[str, str]) -> None:
        self.next.reads[key] = None
        self.wake()

    def wake(self) -> None:
        self.settled.clear()
        self._wake.set()

    def _wake_for_reports(self) -> None:
        """A delivery report waits for its pace (``report_pace``), then wakes the writer."""
        wait = self._pace.wait(time.monotonic())
        if not wait:
            self.wake()
        elif self._report_timer is None:
            self._report_timer = asyncio.get_running_loop().call_later(wait, self._reports_due)

    def _reports_due(self) -> None:
        self._report_timer = None
        self.wake()

    def stop(self) -> None:
        """The bus stops: no report waits for its pace any more."""
        if self._report_timer is not None:
            self._report_timer.cancel()
            self._report_timer = None

    def forget(self, target: str) -> None:
        """``target`` is gone: nobody will read its frames."""
        self._queued -= len(self.next.frames.pop(target, ()))

    def _not_sent(self, target: str) -> None:
        if self._fence.up:
            self._overflow(target)
        else:  # fenced: the calls with every other run have ended here
            self._stats.fenced_frames += 1

    def _unasked(self, action: Action) -> bool:
        """Fenced: a lookup finds this node's devices only and a recall no snapshot
        (answered now); dead, a claim is refused and nothing else is kept for Redis.
        False: ``action`` waits as usual (written once the run is back)."""
        loop = asyncio.get_running_loop()
        if type(action) is Lookup:
            loop.call_soon(self._answer, LookedUp(action.request, ()))
            return True
        if type(action) is Recall:
            loop.call_soon(self._answer, Recalled(action.request, None))
            return True
        if self._fence.standing is not Standing.DEAD:
            return False
        if type(action) is Claim:
            loop.call_soon(self._answer, Claimed(action.request, False, ()))
        return True

    def _overflow(self, target: str) -> None:
        """Too much waits for Redis: the frames for ``target`` go, and so do the calls
        with it here (later, not inside the hub's turn that made the frame)."""
        self._stats.dropped += 1
        if target in self._overflowed:
            return
        self._overflowed.add(target)
        dropped = self.next.frames.pop(target, [])
        self._queued -= len(dropped)
        self._stats.dropped += len(dropped)
        log.error(
            "cluster: Redis unreachable and %d frames waiting; ending calls with %s",
            QUEUED_MAX,
            target,
        )
        asyncio.get_running_loop().call_soon(self._cut_off, target)

    def drop_unsent(self, *, refuse: bool) -> None:
        """The run fenced itself (``refuse`` false) or was declared dead: frames waiting
        for the other runs are dropped (their calls ended), resets kept; lookups are
        answered with this node's devices only, registrations waiting to be findable are
        answered, recalls find nothing, and claims are refused if ``refuse`` (nothing more
        is written)."""
        self._queued -= self.next.frame_count()
        self._stats.fenced_frames += self.next.frame_count()
        self.next.frames.clear()
        self.next.reports = 0
        self.next.drop_frames()  # now: what it takes once the run is back must go
        if self.writing is not None:
            self.writing.cut = True  # its next try leaves its frames out (Outbound.execute)
        loop = asyncio.get_running_loop()
        for batch in (self.next, self.writing):
            if batch is None:
                continue
            for waiter in batch.waiters:
                if not waiter.done():
                    waiter.set_result(None)
            for question in batch.questions:
                if type(question) is Lookup:
                    loop.call_soon(self._answer, LookedUp(question.request, ()))
                elif type(question) is Recall:
                    loop.call_soon(self._answer, Recalled(question.request, None))
                elif refuse:
                    loop.call_soon(self._answer, Claimed(question.request, False, ()))
        self.next.questions = [q for q in self.next.questions if type(q) is Claim]
        if refuse:
            self.next = Batch()

    # -- the task ------------------------------------------------------------------------------

    async def run(self) -> None:
        assert self.outbound is not None
        outbound, wake = self.outbound, self._wake
        while True:
            await wake.wait()
            await self._fence.open.wait()
            wake.clear()
            batch, self.next = self.next, Batch()
            if batch:
                self.writing = batch
                await self._write(outbound, batch)
                self.writing = None
            if not self.next:
                self.settled.set()

    async def _write(self, outbound: Outbound, batch: Batch) -> None:
        if batch.reports:
            self._pace.sent(time.monotonic())
        outbound.number(batch)
        placed, results = await outbound.execute(batch)
        for waiter in batch.waiters:
            if not waiter.done():  # else given up waiting, or its connection closed
                waiter.set_result(None)
        self._queued -= batch.frame_count()
        self._overflowed.clear()
        dead = self._dead()
        again, lost = outbound.unplaced(batch, placed, time.monotonic(), dead)
        if again:  # before anything newer for the same targets
            self.next.entries[:0] = again
            asyncio.get_running_loop().call_later(RETRY_DELAY, self.wake)
        for target in lost:
            log.error(
                "cluster: %s has had no inbox for %.0f s; ending calls with it",
                target,
                outbound.give_up,
            )
            self._node_down(target)
        for answer in outbound.answers(batch, results, dead):
            self._answer(answer)
        if self.presence is not None:
            asked = outbound.asked(batch)
            for shares in self.presence.answers(batch, results[asked:], dead):
                self._answer(shares)
