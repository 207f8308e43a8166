"""``AppLogin`` on a switch in a cluster (docs/protocol.md 12.44): from the frame to the
cluster throttle's answer.

Theory of operation: a switch alone answers an ``AppLogin`` at once (``LoginPhase``). A
switch in a cluster first asks the cluster's throttle (``CheckLogin``), so that attempts
spread over the nodes are counted together: the login waits here, by connection, until
``checked`` brings the answer (the bus answers within ``cluster.answer_wait``, without a
verdict when Redis did not), and ``LoginServer.finish`` then answers it with the verdict
joined to the switch's own counts (``AttemptThrottle``). A pair this switch holds locked
is refused at once, without asking. A visitor account this switch does not know is read
with the same question and learnt only when the attempt's digest was made with its
password (a wrong one must not make this switch hold it, and keep it alive in the
cluster, for whoever knows a visitor's name); the attempt then goes on as any other. When
Redis did not answer, such a login is answered ``unavailable``, since its password is
nowhere here. An attempt whose connection closed meanwhile is finished all the same, so
that a right password is forgiven.
"""

from __future__ import annotations

from collections.abc import Callable

from signaling.appwebsocket.attempt_throttle import AttemptThrottle
from signaling.appwebsocket.login import LoginAttempt, LoginOutcome, LoginRequest, LoginServer
from signaling.appwebsocket.throttle import LoginThrottle, Verdict
from signaling.directory import Directory

from .actions import CheckLogin, ForgiveLogin, LoginChecked
from .clock import Clock
from .outbox import Outbox
from .visitor_accounts import VisitorAccounts, is_visitor

__all__ = ["LoginChecks"]

Answer = Callable[[int, LoginOutcome], None]
"""Sends a connection its login's outcome (``LoginPhase.answer``)."""


class LoginChecks:
    def __init__(
        self,
        *,
        outbox: Outbox,
        clock: Clock,
        throttle: LoginThrottle,
        directory: Directory,
        visitors: VisitorAccounts,
        answer: Answer,
    ) -> None:
        self._out = outbox
        self._clock = clock
        self._throttle = throttle
        self._directory = directory
        self._visitors = visitors
        self._answer = answer
        self._waiting: dict[int, tuple[LoginServer, LoginAttempt, bool]] = {}
        """Logins waiting for the answer, by connection: the connection's login server,
        the attempt, and whether a visitor account was asked for."""

    def ask(self, conn_id: int, login: LoginServer, attempt: LoginAttempt) -> None:
        """Ask the cluster about ``attempt``; ``checked`` answers it. A pair this switch
        holds locked is refused at once: asked, the cluster would count the attempt as a
        wrong password that nothing takes back (its own lock may have run out already,
        or Redis lost it), though a refused attempt is not counted (12.22)."""
        now = self._clock.monotonic()
        if self._throttle.lock_left(login.address, attempt.account, now) > 0:
            return self._answer(conn_id, login.finish(attempt, now, self._throttle))
        visitor = self._unknown_visitor(attempt.request)
        self._waiting[conn_id] = (login, attempt, visitor is not None)
        charge = attempt.challenge is not None  # without one nothing is counted (12.22)
        self._out.shared(CheckLogin(conn_id, login.address, attempt.account, charge, visitor))

    def checked(self, answer: LoginChecked) -> None:
        waiting = self._waiting.pop(answer.conn, None)
        if waiting is None:
            return
        login, attempt, asked = waiting
        if answer.visitor is not None:
            if login.proves(attempt, answer.visitor.password):  # else it fails as unknown
                self._visitors.learned(answer.visitor)
        elif asked and answer.verdict is None:
            return self._answer(answer.conn, login.unavailable(attempt))
        throttle = self._attempt_throttle(login.address, attempt.account, answer.verdict)
        outcome = login.finish(attempt, self._clock.monotonic(), throttle)
        principal = outcome.principal
        if principal is not None and principal.sip:
            self._visitors.logged_in(principal.domain, principal.sip)
        return self._answer(answer.conn, outcome)

    def held(self) -> int:
        return len(self._waiting)

    def _attempt_throttle(
        self, address: str, account: str, verdict: Verdict | None
    ) -> AttemptThrottle:
        """The cluster's verdict joined to this switch's counts; a right password's
        forgiveness goes to the cluster."""

        def forgive(taken: tuple[str, ...]) -> None:
            self._out.shared(ForgiveLogin(address, account, taken))

        return AttemptThrottle(self._throttle, verdict, forgive)

    def _unknown_visitor(self, request: LoginRequest) -> tuple[str, str] | None:
        """The visitor account a user login names, when this switch does not know it."""
        if request.app or not is_visitor(request.sip):
            return None
        tenant = self._directory.tenant(request.domain)
        if tenant is None or tenant.user(request.sip) is not None:
            return None
        return tenant.domain, request.sip
