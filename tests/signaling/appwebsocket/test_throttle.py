"""``LoginThrottle``: N failures within the window block a key (PROTOCOL §3.6, docs §12.6)."""

from __future__ import annotations

from signaling.appwebsocket.throttle import LoginThrottle

ADDR = "addr:192.0.2.1"
ACCT = "acct:example.com/alice"


def test_a_key_is_blocked_after_n_failures_within_the_window() -> None:
    throttle = LoginThrottle(3, 60.0)
    for second in range(3):
        assert not throttle.blocked([ACCT], float(second))
        throttle.failed([ACCT], float(second))
    assert throttle.blocked([ACCT], 2.0)
    assert throttle.blocked([ACCT], 59.9)


def test_fewer_than_n_failures_never_block() -> None:
    throttle = LoginThrottle(3, 60.0)
    throttle.failed([ACCT], 0.0)
    throttle.failed([ACCT], 0.0)
    assert not throttle.blocked([ACCT], 0.0)


def test_keys_are_counted_separately() -> None:
    throttle = LoginThrottle(2, 60.0)
    throttle.failed([ACCT], 0.0)
    throttle.failed(["acct:example.com/bob"], 0.0)
    assert not throttle.blocked([ACCT], 0.0)
    assert not throttle.blocked(["acct:example.com/bob"], 0.0)
    throttle.failed([ACCT], 1.0)
    assert throttle.blocked([ACCT], 1.0)
    assert not throttle.blocked(["acct:example.com/bob"], 1.0)
    assert not throttle.blocked(["acct:never-seen"], 1.0)


def test_a_key_is_free_again_after_the_window() -> None:
    throttle = LoginThrottle(3, 60.0)
    for _ in range(3):
        throttle.failed([ACCT], 10.0)
    assert throttle.blocked([ACCT], 69.999)
    assert not throttle.blocked([ACCT], 70.0)
    assert not throttle.blocked([ACCT], 1_000.0)


def test_the_window_slides_failures_age_out_one_by_one() -> None:
    """N failures "in 60 s": the block lifts as soon as fewer than N remain in the window."""
    throttle = LoginThrottle(3, 60.0)
    for second in (0.0, 20.0, 40.0):
        throttle.failed([ACCT], second)
    assert throttle.blocked([ACCT], 59.0)
    assert not throttle.blocked([ACCT], 60.0)  # the failure at 0 left the window
    throttle.failed([ACCT], 61.0)  # 20, 40, 61 are within the window again
    assert throttle.blocked([ACCT], 61.0)
    assert not throttle.blocked([ACCT], 80.0)


def test_blocked_checks_do_not_count_as_failures() -> None:
    throttle = LoginThrottle(2, 60.0)
    throttle.failed([ACCT], 0.0)
    throttle.failed([ACCT], 0.0)
    for second in range(59):
        assert throttle.blocked([ACCT], float(second))
    assert not throttle.blocked([ACCT], 60.0)


def test_any_blocked_key_blocks_the_attempt() -> None:
    throttle = LoginThrottle(2, 60.0)
    throttle.failed([ADDR], 0.0)
    throttle.failed([ADDR], 0.0)
    assert throttle.blocked([ADDR, ACCT], 0.0)
    assert throttle.blocked([ACCT, ADDR], 0.0)
    assert throttle.blocked((key for key in (ACCT, ADDR)), 0.0)
    assert not throttle.blocked([ACCT], 0.0)
    assert not throttle.blocked(["addr:192.0.2.2", ACCT], 0.0)


def test_one_failure_counts_for_every_key_given() -> None:
    throttle = LoginThrottle(2, 60.0)
    throttle.failed([ADDR, ACCT], 0.0)
    throttle.failed([ADDR, ACCT], 1.0)
    assert throttle.blocked([ADDR], 1.0)
    assert throttle.blocked([ACCT], 1.0)


def test_max_keys_bounds_memory_by_forgetting_the_oldest_key() -> None:
    throttle = LoginThrottle(1, 60.0, max_keys=2)
    throttle.failed(["a"], 0.0)
    throttle.failed(["b"], 1.0)
    assert throttle.blocked(["a"], 1.0) and throttle.blocked(["b"], 1.0)
    throttle.failed(["c"], 2.0)
    assert not throttle.blocked(["a"], 2.0)  # forgotten
    assert throttle.blocked(["b"], 2.0) and throttle.blocked(["c"], 2.0)


def test_a_new_failure_makes_a_key_the_newest() -> None:
    throttle = LoginThrottle(2, 60.0, max_keys=2)
    throttle.failed(["a"], 0.0)
    throttle.failed(["b"], 1.0)
    throttle.failed(["a"], 2.0)  # "a" failed again: "b" is now the oldest
    throttle.failed(["c"], 3.0)
    assert throttle.blocked(["a"], 3.0)
    throttle.failed(["b"], 4.0)  # "b" was forgotten: this is its first failure again
    assert not throttle.blocked(["b"], 4.0)


def test_max_keys_holds_with_several_keys_per_failure() -> None:
    throttle = LoginThrottle(1, 60.0, max_keys=3)
    for n in range(10):
        throttle.failed([f"addr:{n}", f"acct:{n}"], float(n))
    remembered = [n for n in range(10) if throttle.blocked([f"acct:{n}"], 10.0)]
    assert remembered == [8, 9]
    assert throttle.blocked(["addr:9"], 10.0)
    assert not throttle.blocked(["addr:8"], 10.0)
