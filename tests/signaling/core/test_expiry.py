"""``Expiry``: deadlines a fixed delay after a stamp, served by one timer for them all."""

from __future__ import annotations

from signaling.core.clock import ManualClock
from signaling.core.expiry import Expiry
from signaling.core.timers import TimerQueue


class Bench:
    """An ``Expiry`` of 10 s on a manual clock, recording what fell due."""

    def __init__(self) -> None:
        self.clock = ManualClock(monotonic=0.0)
        self.timers = TimerQueue()
        self.due: list[str] = []
        self.expiry: Expiry[str] = Expiry(self.timers, self.clock, 10.0, self.due.append)

    def advance(self, seconds: float) -> list[str]:
        self.clock.advance(seconds)
        for timer in self.timers.pop_due(self.clock.monotonic()):
            timer.callback()
        due, self.due[:] = list(self.due), []
        return due


def test_keys_fall_due_in_stamp_order_and_a_touch_postpones_one() -> None:
    b = Bench()
    b.expiry.touch("a", 0.0)
    b.advance(2)
    b.expiry.touch("b", 2.0)
    b.advance(3)
    b.expiry.touch("a", 5.0)  # moves behind b
    assert b.advance(4.9) == []
    assert b.advance(0.1) == []  # a's first deadline (10) has passed: it was touched
    assert b.advance(2) == ["b"]  # 12
    assert b.advance(2.9) == []
    assert b.advance(0.1) == ["a"]  # 15
    assert len(b.expiry) == 0 and b.timers.next_deadline() is None


def test_one_timer_serves_every_key() -> None:
    b = Bench()
    for index in range(40):
        b.expiry.touch(f"k{index}", index / 8)
    assert len(b.expiry) == 40 and len(b.timers) == 1
    assert b.advance(12.5) == [f"k{index}" for index in range(21)]
    assert len(b.timers) == 1 and b.timers.next_deadline() == 10 + 21 / 8


def test_discarding_the_last_key_cancels_the_timer_and_a_new_key_revives_it() -> None:
    b = Bench()
    for index in range(50):  # one login after the other: the queue empties each time
        b.expiry.touch("conn", float(index) / 10)
        b.expiry.discard("conn")
        assert b.timers.next_deadline() is None
    assert b.timers.held <= 1  # not one cancelled entry per login until its deadline
    b.expiry.touch("late", 5.0)
    assert b.advance(14.9) == []  # the revived timer fires early and waits again
    assert b.advance(0.1) == ["late"]
    assert b.timers.held == 0


def test_a_failing_callback_does_not_stop_the_others() -> None:
    b = Bench()
    seen: list[str] = []

    def expired(key: str) -> None:
        seen.append(key)
        if key == "bad":
            raise RuntimeError("boom")

    expiry: Expiry[str] = Expiry(b.timers, b.clock, 1.0, expired)
    for key in ("bad", "good"):
        expiry.touch(key, 0.0)
    expiry.touch("later", 0.5)
    b.advance(1.0)
    assert seen == ["bad", "good"]
    b.advance(0.5)
    assert seen == ["bad", "good", "later"] and len(expiry) == 0


def test_discarding_an_unknown_key_changes_nothing() -> None:
    b = Bench()
    b.expiry.touch("a", 0.0)
    b.expiry.discard("nobody")
    assert "a" in b.expiry and "nobody" not in b.expiry
    assert b.advance(10) == ["a"]
