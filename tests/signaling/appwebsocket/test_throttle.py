"""``LoginThrottle`` alone, with times passed in (PROTOCOL §3.6, docs/protocol.md §12.22)."""

from __future__ import annotations

import pytest

from signaling.appwebsocket.throttle import LoginThrottle, ThrottlePolicy, address_key

A = "192.0.2.1"
B = "198.51.100.7"
ALICE = "example.com/alice"
BOB = "example.com/bob"
POLICY = ThrottlePolicy()  # the documented defaults: 5, 1 s doubling to 30 s, 20, 100, 10 min


def fail(throttle: LoginThrottle, times: int, now: float = 0.0, address: str = A) -> None:
    for _ in range(times):
        assert throttle.locked(address, ALICE, now) == 0.0
        throttle.failed(address, ALICE, now)


def test_the_defaults_are_the_documented_numbers() -> None:
    assert (POLICY.failures, POLICY.delay, POLICY.max_delay) == (5, 1.0, 30.0)
    assert (POLICY.account_failures, POLICY.address_failures) == (20, 100)
    assert (POLICY.window, POLICY.max_keys) == (600.0, 100_000)
    assert [POLICY.backoff(n) for n in range(8)] == [1, 2, 4, 8, 16, 30, 30, 30]
    assert POLICY.backoff(10_000) == 30.0  # no overflow however long the siege


def test_a_pair_may_make_four_typos_and_the_fifth_starts_the_back_off() -> None:
    throttle = LoginThrottle()
    for _ in range(4):
        assert throttle.failed(A, ALICE, 0.0) is None
        assert throttle.locked(A, ALICE, 0.0) == 0.0
    assert throttle.failed(A, ALICE, 0.0) is None  # a plain failure, but the pair now waits
    assert throttle.locked(A, ALICE, 0.0) == 1.0
    assert throttle.locked(A, ALICE, 0.5) == 0.5
    assert throttle.locked(A, ALICE, 1.0) == 0.0


def test_each_further_failure_doubles_the_lock_up_to_the_cap() -> None:
    throttle = LoginThrottle()
    fail(throttle, 4)
    now, locks = 0.0, []
    for _ in range(8):
        assert throttle.locked(A, ALICE, now) == 0.0
        throttle.failed(A, ALICE, now)
        lock = throttle.locked(A, ALICE, now)
        locks.append(lock)
        now += lock
    assert locks == [1, 2, 4, 8, 16, 30, 30, 30]


def test_refused_attempts_neither_count_nor_extend_the_lock() -> None:
    throttle = LoginThrottle()
    fail(throttle, 5)
    for step in range(195):  # 200 tries in all, as fast as they come
        assert throttle.locked(A, ALICE, step / 1000) > 0
    assert throttle.failures == 5
    assert throttle.throttled == {"pair": 195}
    assert throttle.locked(A, ALICE, 1.0) == 0.0  # the first lock, not a longer one


def test_another_account_behind_the_address_and_the_account_elsewhere_are_free() -> None:
    throttle = LoginThrottle()
    fail(throttle, 5)
    assert throttle.locked(A, ALICE, 0.0) > 0
    assert throttle.locked(A, BOB, 0.0) == 0.0  # a colleague behind the same NAT
    assert throttle.locked(B, ALICE, 0.0) == 0.0  # alice at home
    throttle.failed(A, BOB, 0.0)  # bob's own typo is his first
    assert throttle.locked(A, BOB, 0.0) == 0.0


def test_a_correct_password_forgives_the_pairs_typos() -> None:
    throttle = LoginThrottle()
    fail(throttle, 4)
    throttle.succeeded(A, ALICE, 1.0)
    assert throttle.tracked(1.0)["pair"] == 0
    fail(throttle, 4, now=2.0)
    assert throttle.locked(A, ALICE, 2.0) == 0.0  # four new typos are free again


def test_a_guesser_gets_at_most_ten_tries_in_a_minute_and_two_a_minute_after() -> None:
    """The documented ceiling: whoever tries as often as allowed, from one address."""
    throttle = LoginThrottle()
    tries: list[float] = []
    for tick in range(20 * 60 * 10):  # every 0.1 s for 20 minutes
        now = tick / 10
        while throttle.locked(A, ALICE, now) == 0.0:
            throttle.failed(A, ALICE, now)
            tries.append(now)
    most = max(sum(1 for t in tries if start <= t < start + 60) for start in tries)
    assert most == 10
    assert tries[:10] == [0, 0, 0, 0, 0, 1, 3, 7, 15, 31]
    later = [t for t in tries if t >= 60]
    assert later == [float(t) for t in range(61, 20 * 60, 30)]  # two a minute


def test_a_guesser_who_waits_for_the_window_gains_nothing_over_the_ceiling() -> None:
    throttle = LoginThrottle()
    fail(throttle, 5)
    assert throttle.tracked(599.9)["pair"] == 1
    assert throttle.tracked(600.0)["pair"] == 0  # forgotten ten minutes on
    fail(throttle, 5, now=600.0)
    assert throttle.locked(A, ALICE, 600.0) == 1.0


def test_over_the_account_budget_wrong_passwords_are_throttled_right_ones_are_not() -> None:
    """A distributed attack: one wrong password from each of many addresses."""
    throttle = LoginThrottle()
    for n in range(20):
        assert throttle.failed(f"203.0.113.{n}", ALICE, 0.0) is None
    assert throttle.failed("203.0.113.20", ALICE, 0.0) == 30.0  # answered "throttled"
    assert throttle.locked("203.0.113.20", ALICE, 0.0) == 30.0  # that pair waits the cap
    assert throttle.throttled["account"] == 1
    # the owner from an address that has not guessed: the correct password is checked
    assert throttle.locked(B, ALICE, 0.0) == 0.0
    throttle.succeeded(B, ALICE, 0.0)
    # other accounts are not touched
    assert throttle.failed("203.0.113.21", BOB, 0.0) is None


def test_the_account_budget_refills_twenty_per_window() -> None:
    throttle = LoginThrottle()
    for n in range(20):
        throttle.failed(f"203.0.113.{n}", ALICE, 0.0)
    assert throttle.failed("203.0.113.100", ALICE, 29.0) == 30.0  # 0.97 of a try back
    assert throttle.failed("203.0.113.101", ALICE, 60.0) is None  # one back per 30 s
    assert throttle.failed("203.0.113.102", ALICE, 60.0) is None
    assert throttle.failed("203.0.113.103", ALICE, 60.0) == 30.0


def test_over_the_address_budget_wrong_passwords_are_throttled_colleagues_pass() -> None:
    """Credential stuffing: one address, many accounts."""
    throttle = LoginThrottle()
    for n in range(100):
        assert throttle.failed(A, f"example.com/user{n}", 0.0) is None
    assert throttle.failed(A, "example.com/user100", 0.0) == 30.0
    assert throttle.throttled["address"] == 1
    assert throttle.locked(A, "example.com/user100", 0.0) == 30.0
    assert throttle.locked(A, BOB, 0.0) == 0.0  # bob's right password is still checked


def test_the_account_budget_is_named_first_when_both_are_spent() -> None:
    policy = ThrottlePolicy(account_failures=1, address_failures=1)
    throttle = LoginThrottle(policy)
    throttle.failed(A, ALICE, 0.0)
    assert throttle.failed(A, ALICE, 0.0) == 30.0
    assert throttle.throttled == {"account": 1}


def test_entries_are_dropped_a_window_after_their_last_change() -> None:
    throttle = LoginThrottle()
    throttle.failed(A, ALICE, 0.0)
    throttle.failed(B, BOB, 100.0)
    assert throttle.tracked(100.0) == {"pair": 2, "account": 2, "address": 2}
    assert throttle.next_expiry() == 600.0
    assert throttle.tracked(600.0) == {"pair": 1, "account": 1, "address": 1}
    assert throttle.next_expiry() == 700.0
    throttle.sweep(700.0)
    assert throttle.tracked(700.0) == {"pair": 0, "account": 0, "address": 0}
    assert throttle.next_expiry() is None


def test_a_one_off_failure_is_forgotten_even_if_nothing_else_happens() -> None:
    throttle = LoginThrottle(ThrottlePolicy(window=60.0))
    throttle.failed(A, ALICE, 5.0)
    expiry = throttle.next_expiry()
    assert expiry == 65.0
    throttle.sweep(expiry)
    assert throttle.tracked(expiry) == {"pair": 0, "account": 0, "address": 0}


def test_max_keys_bounds_each_kind_by_forgetting_the_oldest() -> None:
    throttle = LoginThrottle(ThrottlePolicy(failures=1, max_keys=3))
    for n in range(10):
        throttle.failed(f"203.0.113.{n}", f"example.com/user{n}", float(n))
    assert throttle.tracked(10.0) == {"pair": 3, "account": 3, "address": 3}
    assert throttle.locked("203.0.113.9", "example.com/user9", 9.5) > 0
    assert throttle.locked("203.0.113.6", "example.com/user6", 6.5) == 0.0  # forgotten


def test_a_long_account_name_costs_no_more_memory() -> None:
    throttle = LoginThrottle()
    throttle.failed(A, "x" * 200_000, 0.0)
    throttle.failed(A, "\ud800 lone surrogate", 0.0)  # JSON allows it; no error
    assert throttle.tracked(0.0)["account"] == 2


def test_ipv6_addresses_count_by_their_64() -> None:
    assert address_key("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:2:bbbb::99") == "2001:db8:1:2::/64"
    assert address_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert address_key("192.0.2.1") == "192.0.2.1"
    assert address_key("testclient") == "testclient"
    throttle = LoginThrottle()
    fail(throttle, 5, address="2001:db8:1:2::1")
    assert throttle.locked("2001:db8:1:2:ffff::", ALICE, 0.0) > 0  # same /64: same pair
    assert throttle.locked("2001:db8:1:3::1", ALICE, 0.0) == 0.0


@pytest.mark.parametrize(
    "numbers",
    [
        {"delay": 0.0},
        {"delay": 5.0, "max_delay": 4.0},
        {"max_delay": 601.0},
        {"failures": 0},
        {"account_failures": 0},
        {"max_keys": 0},
    ],
)
def test_a_policy_that_cannot_work_is_refused(numbers: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        ThrottlePolicy(**numbers)  # type: ignore[arg-type]
