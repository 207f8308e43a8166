"""The throttle of one login on a node of a cluster (docs/protocol.md 12.44): the
cluster's verdict, asked for before the attempt was looked at, joined with the node's own
counts, which the node keeps as it would alone.

Theory of operation: the cluster's count (in Redis, by ``LoginThrottle.gate``'s rules) is
what stops a guesser who spreads attempts over the nodes; the node's own
``LoginThrottle`` counts what reached this node, always. An attempt is refused when either
says its pair is locked, and a wrong password is ``throttled`` when either says a budget is
spent. The node's own count never exceeds the cluster's, which saw the same attempts and
more, except after Redis lost its throttle windows: then it still holds what this node
saw. Without a verdict (Redis did not answer in time, or the node is cut off from it) the
node's own count decides alone, so throttling goes on at one node's limits; a right
password then still ends its pair's history in Redis, where a late question may have
counted it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from .throttle import LoginThrottle, Verdict

__all__ = ["AttemptThrottle", "ClusterThrottle"]


class ClusterThrottle(Protocol):
    """The cluster's count of the logins of one ``scope`` (``signaling.bus.logins``)."""

    async def check(
        self, scope: str, address: str, account: str, *, charge: bool
    ) -> Verdict | None:
        """``LoginThrottle.gate`` for one attempt; None when Redis did not answer."""
        ...

    def forgive(self, scope: str, address: str, account: str, taken: tuple[str, ...]) -> None:
        """The attempt ``check`` counted had the right password: the budgets ``taken``
        get their tokens back (``LoginThrottle.forgive``)."""
        ...


class AttemptThrottle:
    """The ``Throttle`` of one attempt; ``forgive`` (told the budgets to refund) takes
    back the cluster's count of it when its password was right."""

    __slots__ = ("_forgive", "_local", "_verdict")

    def __init__(
        self,
        local: LoginThrottle,
        verdict: Verdict | None,
        forgive: Callable[[tuple[str, ...]], None],
    ) -> None:
        self._local = local
        self._verdict = verdict
        self._forgive = forgive

    def locked(self, address: str, account: str, now: float) -> float:
        wait = self._local.locked(address, account, now)
        verdict = self._verdict
        if verdict is None or verdict.wait <= wait:
            return wait
        if not wait:  # counted once, as the node alone counts a refused attempt
            self._local.throttled["pair"] += 1
        return verdict.wait

    def failed(self, address: str, account: str, now: float) -> float | None:
        wait = self._local.failed(address, account, now)
        over = self._verdict.over if self._verdict is not None else None
        if wait is not None or over is None:
            return wait
        self._local.throttled[over] += 1
        return self._local.policy.max_delay

    def succeeded(self, address: str, account: str, now: float) -> None:
        self._local.succeeded(address, account, now)
        verdict = self._verdict
        if verdict is None:
            # The question may have reached Redis and been counted there, its answer
            # lost: a right password ends the pair's history all the same (12.22), so the
            # pair goes, lest its count lock out the next right password; the budgets
            # keep what they may have lost, as nobody knows whether they gave a token.
            self._forgive(())
        elif verdict.counted:
            self._forgive(verdict.taken)
