"""The hub's hook on the garbage collector (``signaling.gc_pauses``): every collection
timed by generation, the survivors of a generation-1 or -2 pass frozen, the clock's
passes, and a complete collection that frees what formed cycles among frozen objects.
These change the process's collector while they run and put it back (``uninstall``)."""

from __future__ import annotations

import asyncio
import gc
import itertools
import weakref
from collections.abc import Iterator

import pytest

from signaling.gc_pauses import COMPLETE_EVERY, YOUNG_EVERY, GcPauses

TICK = 2**-10
"""Seconds (just under 1 ms, exact in binary: the sums stay exact)."""


class Node:
    """Something that can be in a cycle and be watched (``weakref``)."""

    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture
def pauses() -> Iterator[GcPauses]:
    ticks = itertools.count()
    watcher = GcPauses(timer=lambda: next(ticks) * TICK)  # every collection: one tick
    gc.collect()
    watcher.install()
    try:
        yield watcher
    finally:
        watcher.uninstall()


def test_every_collection_is_timed_by_its_generation(pauses: GcPauses) -> None:
    before = [times.count for times in pauses.pauses]
    gc.collect(0)
    gc.collect(1)
    gc.collect(1)
    gc.collect(2)
    counts = [times.count - was for times, was in zip(pauses.pauses, before, strict=True)]
    assert counts[1:] == [2, 1]  # generation 0 may also run by itself meanwhile
    assert counts[0] >= 1
    full = pauses.pauses[2]
    assert full.total == full.count * TICK
    text = "\n".join(pauses.lines("gc"))
    assert f'gc_count{{generation="2"}} {full.count}' in text
    assert f'gc_bucket{{generation="2",le="0.001"}} {full.count}' in text
    assert 'gc_bucket{generation="0",le="+Inf"}' in text


def test_what_outlives_a_generation_1_pass_is_frozen(pauses: GcPauses) -> None:
    frozen = gc.get_freeze_count()
    kept = [[index] for index in range(1000)]
    gc.collect(0)
    assert gc.get_freeze_count() == frozen  # a young pass freezes nothing
    gc.collect(1)
    assert gc.get_freeze_count() >= frozen + len(kept)


def test_a_cycle_among_frozen_objects_waits_for_the_complete_collection(
    pauses: GcPauses,
) -> None:
    first, second = Node(), Node()
    first.other, second.other = second, first
    gone = weakref.ref(first)
    gc.collect()  # both survive it: frozen
    del first, second
    gc.collect()
    assert gone() is not None  # frozen garbage is never looked at by a full collection
    pauses.complete()
    assert gone() is None
    assert pauses.completes == 1
    assert gc.get_freeze_count() > 0  # what is alive is frozen again


def test_the_clock_runs_generation_1_and_now_and_then_a_complete_collection(
    pauses: GcPauses,
) -> None:
    complete = round(COMPLETE_EVERY / YOUNG_EVERY)
    older = pauses.pauses[1].count
    pauses.tick(1)
    pauses.tick(complete - 1)
    assert pauses.pauses[1].count >= older + 2
    assert pauses.completes == 0
    pauses.tick(complete)
    pauses.tick(2 * complete)
    assert pauses.completes == 2


async def test_start_and_stop_on_the_hubs_loop() -> None:
    watcher = GcPauses()
    passed = asyncio.Event()

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "stop" and info["generation"] == 1:
            passed.set()

    gc.collect()
    await watcher.start()
    gc.callbacks.append(seen)
    try:
        assert watcher.collected in gc.callbacks
        await asyncio.wait_for(passed.wait(), timeout=10)  # the clock's, YOUNG_EVERY later
    finally:
        gc.callbacks.remove(seen)
        await watcher.stop()
    assert watcher.collected not in gc.callbacks and gc.get_freeze_count() == 0


def test_uninstall_stops_watching_and_unfreezes() -> None:
    watcher = GcPauses()
    watcher.install()
    assert watcher.collected in gc.callbacks and gc.get_freeze_count() > 0
    watcher.uninstall()
    assert watcher.collected not in gc.callbacks and gc.get_freeze_count() == 0
    count = watcher.pauses[2].count
    gc.collect()
    assert watcher.pauses[2].count == count
