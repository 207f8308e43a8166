"""``SlidingWindow``: N events within the window fill a key (visitor accounts per hour,
PROTOCOL §9.1); expired keys are dropped."""

from __future__ import annotations

from signaling.core.window import SlidingWindow

KEY = "192.0.2.1"


def test_a_key_is_full_after_n_events_within_the_window() -> None:
    window = SlidingWindow(3, 60.0)
    for second in range(3):
        assert not window.full(KEY, float(second))
        window.add(KEY, float(second))
    assert window.full(KEY, 2.0)
    assert window.full(KEY, 59.9)


def test_fewer_than_n_events_never_fill() -> None:
    window = SlidingWindow(3, 60.0)
    window.add(KEY, 0.0)
    window.add(KEY, 0.0)
    assert not window.full(KEY, 0.0)


def test_keys_are_counted_separately() -> None:
    window = SlidingWindow(2, 60.0)
    window.add(KEY, 0.0)
    window.add("192.0.2.2", 0.0)
    assert not window.full(KEY, 0.0) and not window.full("192.0.2.2", 0.0)
    window.add(KEY, 1.0)
    assert window.full(KEY, 1.0)
    assert not window.full("192.0.2.2", 1.0)
    assert not window.full("never-seen", 1.0)


def test_the_window_slides_events_age_out_one_by_one() -> None:
    window = SlidingWindow(3, 60.0)
    for second in (0.0, 20.0, 40.0):
        window.add(KEY, second)
    assert window.full(KEY, 59.0)
    assert not window.full(KEY, 60.0)  # the event at 0 left the window
    window.add(KEY, 61.0)  # 20, 40, 61 are within the window again
    assert window.full(KEY, 61.0)
    assert not window.full(KEY, 80.0)


def test_a_key_is_dropped_once_its_newest_event_left_the_window() -> None:
    window = SlidingWindow(3, 60.0)
    window.add("a", 0.0)
    window.add("b", 30.0)
    assert len(window) == 2
    assert not window.full("c", 60.0)
    assert len(window) == 1  # "a" went at 60 s, without being asked about
    window.add("c", 89.0)
    assert len(window) == 2
    window.add("c", 90.0)
    assert len(window) == 1  # "b" went at 90 s


def test_max_keys_bounds_memory_by_forgetting_the_oldest_key() -> None:
    window = SlidingWindow(1, 60.0, max_keys=2)
    window.add("a", 0.0)
    window.add("b", 1.0)
    assert window.full("a", 1.0) and window.full("b", 1.0)
    window.add("c", 2.0)
    assert not window.full("a", 2.0)  # forgotten
    assert window.full("b", 2.0) and window.full("c", 2.0)
    assert len(window) == 2


def test_a_new_event_makes_a_key_the_newest() -> None:
    window = SlidingWindow(2, 60.0, max_keys=2)
    window.add("a", 0.0)
    window.add("b", 1.0)
    window.add("a", 2.0)  # "b" is now the oldest
    window.add("c", 3.0)
    assert window.full("a", 3.0)
    window.add("b", 4.0)  # "b" was forgotten: this is its first event again
    assert not window.full("b", 4.0)
