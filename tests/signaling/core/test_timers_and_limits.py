"""Timer queue and token bucket: pure, driven by explicit times."""

from __future__ import annotations

from dataclasses import dataclass

from signaling.core.limits import TokenBucket
from signaling.core.timers import TimerQueue


@dataclass
class Level:
    tokens: float = 0.0
    counted: float = 0.0


def test_timers_fire_in_deadline_order_and_cancelled_ones_never() -> None:
    fired: list[str] = []
    queue = TimerQueue()
    queue.arm(5.0, lambda: fired.append("b"))
    queue.arm(1.0, lambda: fired.append("a"))
    dropped = queue.arm(3.0, lambda: fired.append("never"))
    dropped.cancel()
    assert queue.next_deadline() == 1.0
    for timer in queue.pop_due(4.0):
        timer.callback()
    assert fired == ["a"]
    assert queue.next_deadline() == 5.0
    for timer in queue.pop_due(5.0):
        timer.callback()
    assert fired == ["a", "b"] and queue.next_deadline() is None and len(queue) == 0


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    bucket = TokenBucket(rate=10.0, burst=3)
    level, other = Level(), Level()
    bucket.fill(level, 0.0)
    bucket.fill(other, 0.0)
    assert [bucket.take(level, 0.0) for _ in range(3)] == [0, 0, 0]
    assert bucket.take(level, 0.0) == 100
    assert bucket.take(other, 0.0) == 0  # each connection has its own level
    assert bucket.take(level, 0.05) == 50
    assert bucket.take(level, 0.1) == 0
    assert bucket.take(level, 10.0) == 0  # refill is capped at the burst
    assert [bucket.take(level, 10.0) for _ in range(3)] == [0, 0, 100]


def test_a_cancelled_timer_lets_go_of_its_callback() -> None:
    queue = TimerQueue()
    held = bytearray(10)
    timer = queue.arm(100.0, lambda: held.clear())
    timer.cancel()
    assert timer.callback.__closure__ is None  # the closure (and what it holds) is released
    assert queue.pop_due(200.0) == []


def test_a_cancelled_timer_can_be_revived_while_the_heap_still_holds_it() -> None:
    queue = TimerQueue()
    fired: list[str] = []
    timer = queue.arm(5.0, lambda: fired.append("old"))
    timer.cancel()
    assert queue.revive(timer, lambda: fired.append("revived"))
    assert queue.next_deadline() == 5.0 and queue.held == 1
    for due in queue.pop_due(5.0):
        due.callback()
    assert fired == ["revived"]
    assert not queue.revive(timer, lambda: None)  # fired and gone from the heap


def test_a_cancelled_timer_dropped_from_the_heap_is_not_revived() -> None:
    queue = TimerQueue()
    timer = queue.arm(5.0, lambda: None)
    timer.cancel()
    assert queue.next_deadline() is None  # drops the cancelled entry at the top
    assert queue.held == 0
    assert not queue.revive(timer, lambda: None)
