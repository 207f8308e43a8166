"""The garbage collector off the relay's path: what the hub does about its pauses.

Theory of operation. CPython frees almost everything by reference counting; its cycle
collector only looks for garbage that refers to itself. It walks the objects made since
its last pass (generation 0) when allocations outnumber deallocations by 700, those and
the survivors of ten such passes (generation 1) every tenth time, and every object the
process has (generation 2) every hundredth. A hub holds hundreds of thousands: 60-110
per idle registered connection, and each live call's transcript and acks (up to 200
lines and 1,024 ids). Measured under bench/relay.py (docs/benchmarks.md), three things
made that stall the event loop:

1. A full pass walks everything: 50-250 ms of CPU each, every few seconds under load.
   So the hub freezes (``gc.freeze``) what is alive at start-up and the survivors of
   every generation-1 and -2 pass (``collected``, a ``gc.callbacks`` hook): no later pass
   walks them again, and a full pass is as short as a generation-1 one.
2. The count that starts a pass goes down for every object freed, old or young. A busy
   call drops its oldest transcript line and ack for every new one, so it frees as many
   objects as it makes: the count stands still while generation 0 fills up, and a pass
   came only after 80,000-120,000 new objects (20-45 ms). So the hub runs a
   generation-1 pass (which takes generation 0 with it) on a clock, every
   ``YOUNG_EVERY`` (``tick``): at 1,000 messages a second one finds a few hundred
   objects (30 µs typically, 1 ms at most); at the relay's maximum, under 3 ms of CPU.
   An idle hub pays 3 ms of CPU a second for the twenty wake-ups (the loop's wake-up
   on this box, not the pass: one over nothing takes 1 µs). CPython's own passes still
   run when its count says so, and its thresholds stay (700, 10, 10): with passes this
   small, a larger threshold would only make the automatic ones fewer and longer.
3. Frozen objects are never looked at again, so garbage cycles among them would stay.
   The call core makes none: its calls, legs, registrations and connections are freed
   by reference counting alone (``Call.unlink``, tests/signaling/core/test_no_cycles.py);
   500 registered connections closed at once left nothing for the collector. The stack
   underneath makes a few while a connection opens (uvicorn's HTTP protocol and its
   parser refer to each other until the WebSocket is handed over): 1-3 objects per
   opened connection, when a pass froze them half-way. A *complete* collection
   (``complete``: unfreeze, collect, freeze again) frees them every ``COMPLETE_EVERY``.
   It walks everything, as a full pass did before (0.2-0.9 µs an object, the more the
   busier the box: 50-100 ms for a hub of 100,000 objects): one delayed burst of
   messages every ten minutes, not a round's p99, while what it finds stays bounded by
   the connections opened in ten minutes.

``pauses`` times every collection, by generation, for ``/metrics``
(``switchboard_gc_pause_seconds``); the hook costs two calls per collection.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable, Iterable

from .metrics import FrameTimes
from .stopping import stop_tasks

__all__ = ["COMPLETE_EVERY", "YOUNG_EVERY", "GcPauses"]

YOUNG_EVERY = 0.05
"""Seconds between the hub's own generation-1 passes."""
COMPLETE_EVERY = 600.0
"""Seconds between complete collections (everything unfrozen, walked, frozen again)."""

OLDEST = 2


class GcPauses:
    """Times the process's collections, freezes what outlives a generation-1 or -2 pass
    and runs generation-1 passes on a clock. ``start`` on the hub's loop once everything
    built at start-up is alive; ``stop`` at shutdown."""

    def __init__(self, timer: Callable[[], float] = time.perf_counter) -> None:
        self._timer = timer
        self._began = 0.0
        self._task: asyncio.Task[None] | None = None
        self.pauses = tuple(FrameTimes() for _ in range(OLDEST + 1))
        """Seconds each collection took, by generation."""
        self.completes = 0
        """Complete collections run (``complete``)."""

    async def start(self) -> None:
        """``install``, and the passes on this loop's clock (``tick``)."""
        self.install()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            await stop_tasks([self._task])
            self._task = None
        self.uninstall()

    def install(self) -> None:
        """Freeze everything alive now (modules, config, routes: they live as long as the
        process) and from now on what outlives each generation-1 or -2 pass."""
        gc.freeze()
        gc.callbacks.append(self.collected)

    def uninstall(self) -> None:
        """Stop watching; what was frozen goes back to the collector (a test process
        starts many hubs, and each one's garbage should be found once it stops)."""
        if self.collected in gc.callbacks:
            gc.callbacks.remove(self.collected)
        gc.unfreeze()

    def collected(self, phase: str, info: dict[str, int]) -> None:
        """The ``gc.callbacks`` hook: ``start`` and ``stop`` of every collection."""
        if phase == "start":
            self._began = self._timer()
            return
        generation = info["generation"]
        self.pauses[generation].observe(self._timer() - self._began)
        if generation:
            gc.freeze()  # the survivors: no later pass walks them again

    def tick(self, count: int) -> None:
        """The ``count``-th pass of the clock (from 1): generation 1, or a complete
        collection each time ``COMPLETE_EVERY`` has gone by."""
        if count % round(COMPLETE_EVERY / YOUNG_EVERY) == 0:
            self.complete()
        else:
            gc.collect(1)

    def complete(self) -> None:
        """Unfreeze, collect everything, freeze again: frees the cycles that formed among
        frozen objects."""
        gc.unfreeze()
        gc.collect()  # ``collected`` freezes the survivors at its end
        self.completes += 1

    async def _run(self) -> None:
        count = 0
        while True:
            await asyncio.sleep(YOUNG_EVERY)
            count += 1
            self.tick(count)

    def lines(self, name: str) -> Iterable[str]:
        """The histogram samples, labelled by generation."""
        for generation, times in enumerate(self.pauses):
            yield from times.lines(name, f'generation="{generation}"')
