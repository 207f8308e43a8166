"""The shared form of the throttle (``LoginThrottle.gate``/``forgive``) and the throttle of
one login on a node of a cluster (``AttemptThrottle``, docs/protocol.md 12.44), with
times passed in."""

from __future__ import annotations

from signaling.appwebsocket.attempt_throttle import AttemptThrottle
from signaling.appwebsocket.throttle import LoginThrottle, ThrottlePolicy, Verdict

A = "192.0.2.1"
B = "198.51.100.7"
ALICE = "example.com/alice"
BOB = "example.com/bob"


def test_gate_counts_an_attempt_before_it_is_checked_as_failed_would() -> None:
    shared, alone = LoginThrottle(), LoginThrottle()
    for _ in range(5):
        verdict = shared.gate(A, ALICE, 0.0)
        assert verdict == Verdict(0.0, None, counted=True, taken=("account", "address"))
        alone.failed(A, ALICE, 0.0)
    # the fifth locked the pair, as five failures do: the sixth is refused, not counted
    assert shared.gate(A, ALICE, 0.5) == Verdict(0.5) == Verdict(alone.locked(A, ALICE, 0.5))
    assert shared.tracked(0.5) == alone.tracked(0.5)


def test_a_gate_without_charge_counts_nothing() -> None:
    shared = LoginThrottle()
    for _ in range(10):
        assert shared.gate(A, ALICE, 0.0, charge=False) == Verdict(0.0)
    assert shared.held() == 0


def test_forgive_takes_the_count_back_whole() -> None:
    policy = ThrottlePolicy(failures=2, account_failures=3, address_failures=3)
    shared = LoginThrottle(policy)
    for _ in range(10):  # many right passwords, each counted at its gate, then forgiven
        verdict = shared.gate(A, ALICE, 0.0)
        assert verdict.counted and verdict.taken == ("account", "address")
        shared.forgive(A, ALICE, 0.0, verdict.taken)
    # nothing of them is left: a pair's two typos and the budgets' three are all there
    assert [shared.gate(A, ALICE, 0.0).over for _ in range(2)] == [None, None]
    assert shared.gate(A, ALICE, 0.0).wait > 0  # the second typo locked the pair
    assert shared.gate(B, ALICE, 0.0).over is None  # the account's third
    assert shared.gate(B, ALICE, 0.0).over == "account"


def test_a_spent_budget_is_told_as_the_verdict_s_over() -> None:
    shared = LoginThrottle(ThrottlePolicy(failures=100, account_failures=2))
    assert shared.gate(A, ALICE, 0.0).over is None
    assert shared.gate(B, ALICE, 0.0).over is None
    verdict = shared.gate("203.0.113.9", ALICE, 0.0)
    assert verdict.over == "account" and verdict.counted


def test_a_spent_budget_is_not_refilled_by_a_right_password() -> None:
    """A guesser with an account of its own (a visitor account is free) logs in with it
    between guesses: the address's spent budget gave those logins no token, so their
    forgiveness gives none back, and no further guess is checked."""
    shared = LoginThrottle(ThrottlePolicy(failures=100, address_failures=3))
    for n in range(3):
        assert shared.gate(A, f"example.com/victim{n}", 0.0).over is None
    for n in range(10):
        mine = shared.gate(A, "example.com/mine", 0.0)
        assert mine.over == "address" and mine.taken == ("account",)
        shared.forgive(A, "example.com/mine", 0.0, mine.taken)
        assert shared.gate(A, f"example.com/other{n}", 0.0).over == "address"


def forgiven() -> tuple[list[tuple[str, ...]], AttemptThrottle]:
    calls: list[tuple[str, ...]] = []
    verdict = Verdict(0.0, None, counted=True, taken=("account", "address"))
    return calls, AttemptThrottle(LoginThrottle(), verdict, calls.append)


def test_a_right_password_forgives_what_the_cluster_counted() -> None:
    calls, attempt = forgiven()
    assert attempt.locked(A, ALICE, 0.0) == 0.0
    attempt.succeeded(A, ALICE, 0.0)
    assert calls == [("account", "address")]


def test_a_wrong_password_is_counted_here_too_and_not_forgiven() -> None:
    calls, attempt = forgiven()
    assert attempt.failed(A, ALICE, 0.0) is None
    assert calls == []


def test_the_cluster_s_lock_refuses_what_this_node_would_let_through() -> None:
    local = LoginThrottle()
    attempt = AttemptThrottle(local, Verdict(3.0), lambda: None)
    assert attempt.locked(A, ALICE, 0.0) == 3.0
    assert local.throttled == {"pair": 1} and local.failures == 0


def test_this_node_s_lock_holds_when_the_cluster_forgot() -> None:
    """Redis lost its throttle windows: the node still holds what it saw."""
    local = LoginThrottle()
    for _ in range(5):
        local.failed(A, ALICE, 0.0)
    attempt = AttemptThrottle(local, Verdict(0.0, None, counted=False), lambda: None)
    assert attempt.locked(A, ALICE, 0.0) == 1.0
    assert local.throttled == {"pair": 1}


def test_a_budget_the_cluster_saw_spent_makes_a_wrong_password_throttled() -> None:
    local = LoginThrottle()
    attempt = AttemptThrottle(local, Verdict(0.0, "account", counted=True), lambda: None)
    assert attempt.failed(A, ALICE, 0.0) == local.policy.max_delay
    assert local.throttled == {"account": 1} and local.failures == 1
    assert local.locked(A, ALICE, 0.0) == 0.0  # this node's own pair is not locked for it


def test_without_a_verdict_a_right_password_still_ends_its_pair_in_the_cluster() -> None:
    """The question may have been counted in Redis, its answer lost: the pair goes there
    too, and no budget gets a token it may not have given."""
    calls: list[tuple[str, ...]] = []
    attempt = AttemptThrottle(LoginThrottle(), None, calls.append)
    attempt.succeeded(A, ALICE, 0.0)
    assert calls == [()]


def test_without_a_verdict_this_node_decides_alone() -> None:
    local = LoginThrottle()
    for _ in range(5):
        attempt = AttemptThrottle(local, None, lambda: None)
        assert attempt.locked(A, ALICE, 0.0) == 0.0
        assert attempt.failed(A, ALICE, 0.0) is None
    attempt = AttemptThrottle(local, None, lambda: None)
    assert attempt.locked(A, ALICE, 0.0) == 1.0
    assert attempt.locked(B, BOB, 0.0) == 0.0  # a neighbour is not held by it
