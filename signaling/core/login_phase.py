"""Connections from accept to login (PROTOCOL §3): the challenge, ``AppLogin``, the
login timeout and the failed-login throttle's sweeping.

A connection is born here (``open``) and is handed on once its login succeeds: then its
``LoginServer`` is dropped and its deadline cancelled, so a logged-in connection keeps
nothing of this phase. The ``Switch`` asks ``step`` about every frame of a connection
that has not logged in yet, and tells ``ended`` when a connection goes. In a cluster
(``shared``) an ``AppLogin`` waits for the cluster's throttle (``login_checks``) before it
is answered; other frames of that connection meanwhile are answered ``bad_state``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from config import Config
from signaling.appwebsocket import closecodes
from signaling.appwebsocket.housekeeping import build_number, check_build, pbx_info
from signaling.appwebsocket.login import (
    Accounts,
    LoginOutcome,
    LoginServer,
    LoginState,
    Principal,
)
from signaling.appwebsocket.throttle import LoginThrottle, ThrottlePolicy
from signaling.directory import Directory

from .actions import LoginChecked
from .clock import Clock
from .errors import BadJson, BadState, NotLoggedIn
from .expiry import Expiry
from .login_checks import LoginChecks
from .messages import Inbound
from .outbox import Outbox
from .registry import Registration
from .timers import Timer, TimerQueue
from .visitor_accounts import VisitorAccounts

__all__ = ["BUILD", "VERSION", "Connection", "LoginPhase", "reply"]

VERSION = "0.1.0"
BUILD = build_number(VERSION)
"""The build ``CheckBuild`` compares with and ``PbxInfo.build`` names (docs 12.24)."""
JsonObject = dict[str, Any]


class Connection:
    """The core's view of one WebSocket.

    Kept small, since there is one per open connection: its deadlines live in the
    switch's ``Expiry`` queues (no timer of its own), and the login state goes once the
    login is over."""

    __slots__ = (
        "bad",
        "closing",
        "counted",
        "id",
        "limited",
        "login",
        "principal",
        "registration",
        "tokens",
    )

    def __init__(self, conn_id: int, login: LoginServer):
        self.id = conn_id
        self.login: LoginServer | None = login
        """Until the login ends; then None (nothing of it is needed any more)."""
        self.tokens = 0.0
        self.counted = 0.0
        """Its level of the rate limit's token bucket (``limits.Level``)."""
        self.principal: Principal | None = None
        self.registration: Registration | None = None
        self.bad = 0
        self.limited = 0
        self.closing = False


Close = Callable[[Connection, int, str], None]
"""How the phase closes a connection: the switch's close, which also tears it down."""


def reply(out: Outbox, conn_id: int, inbound: Inbound, body: JsonObject) -> None:
    """Answer a request: ``api`` and ``src`` are echoed (PROTOCOL §1.2)."""
    message: JsonObject = {}
    if inbound.api is not None:
        message["api"] = inbound.api
    message.update(body)
    if inbound.src is not None:
        message["src"] = inbound.src
    out.send(conn_id, message)


class LoginPhase:
    def __init__(
        self,
        config: Config,
        clock: Clock,
        *,
        timers: TimerQueue,
        outbox: Outbox,
        accounts: Accounts,
        make_challenge: Callable[[], str],
        close: Close,
        browser_trace: bool = False,
        shared: tuple[Directory, VisitorAccounts] | None = None,
    ) -> None:
        """``shared``: in a cluster, logins are counted, and visitor accounts found, in
        the cluster's shared state (docs 12.44); the directory and the visitor accounts
        the logins learn them into."""
        self._config = config
        self._clock = clock
        self._timers = timers
        self._out = outbox
        self._accounts = accounts
        self._make_challenge = make_challenge
        self._close = close
        self.connections: dict[int, Connection] = {}
        self.throttle = LoginThrottle(ThrottlePolicy.from_config(config.login))
        """Failed logins (§3.6); its counts feed ``/metrics``."""
        self._checks = self._login_checks(*shared) if shared is not None else None
        """In a cluster: the logins waiting for the cluster's throttle."""
        self._sweep: Timer | None = None
        self._due: Expiry[int] = Expiry(timers, clock, config.login.timeout, self._timeout)
        """Connections not logged in yet, by id: closed 4001 when ``login.timeout`` is up."""
        self._ids = itertools.count(1)
        self.browser_trace = browser_trace
        """The ``browser`` trace flag, told to clients at login and when it changes."""

    def _login_checks(self, directory: Directory, visitors: VisitorAccounts) -> LoginChecks:
        return LoginChecks(
            outbox=self._out,
            clock=self._clock,
            throttle=self.throttle,
            directory=directory,
            visitors=visitors,
            answer=self.answer,
        )

    def open(self, address: str, now: float) -> Connection:
        """A WebSocket was accepted: a new connection, with ``login.timeout`` to log in."""
        login = LoginServer(
            self._accounts,
            self.throttle,
            address=address,
            challenge_ttl=self._config.login.challenge_ttl,
            make_challenge=self._make_challenge,
        )
        conn = Connection(next(self._ids), login)
        self._due.touch(conn.id, now)
        self.connections[conn.id] = conn
        return conn

    def step(self, conn: Connection, inbound: Inbound) -> None:
        """A frame of a connection that has not logged in yet."""
        now = self._clock.monotonic()
        login = conn.login
        assert login is not None  # there until the login ends, and then principal is set
        if login.state is LoginState.CHECKING:
            raise BadState(f"{inbound.mt[:40]} while the login is checked")
        if inbound.api is None and inbound.mt == "AppChallenge":
            return reply(self._out, conn.id, inbound, login.challenge(now))
        if inbound.api is None and inbound.mt == "AppLogin":
            attempt = login.start(inbound.body, now)
            if self._checks is not None:
                return self._checks.ask(conn.id, login, attempt)
            return self.answer(conn.id, login.finish(attempt, now))
        raise NotLoggedIn(f"{inbound.mt[:40]} before login")

    def checked(self, answer: LoginChecked) -> None:
        """The cluster's throttle answered about a login (``shared``)."""
        if self._checks is not None:
            self._checks.checked(answer)

    def answer(self, conn_id: int, outcome: LoginOutcome) -> None:
        """Send a login's outcome: logged in, or closed 4001 after the reply."""
        self._sweep_later()
        conn = self.connections.get(conn_id)
        if conn is None or conn.closing:
            return
        self._out.send(conn.id, outcome.reply)
        if outcome.principal is None:
            return self._close(conn, closecodes.WS_4001_LOGIN_FAILED, "login failed")
        return self._logged_in(conn, outcome.principal)

    def check_build(self, conn: Connection, inbound: Inbound) -> None:
        """``CheckBuild``, answered before the login too (docs 12.24)."""
        url = inbound.body.get("url")
        if not isinstance(url, str):
            raise BadJson("CheckBuild needs a string url")
        try:
            answer = check_build(url, BUILD)
        except ValueError as exc:  # e.g. an unclosed "[" in the host: no URL to rewrite
            raise BadJson("CheckBuild url is no URL") from exc
        reply(self._out, conn.id, inbound, answer)

    def set_browser_trace(self, on: bool) -> None:
        """The ``browser`` flag changed: every logged-in connection hears it."""
        if on != self.browser_trace:
            self.browser_trace = on
            for conn in self.connections.values():
                if conn.principal is not None and not conn.closing:
                    self._out.send(conn.id, {"mt": "TraceFlags", "browser": on})

    def ended(self, conn: Connection) -> None:
        """The connection is closing: whatever is left of its login goes."""
        conn.login = None
        self._due.discard(conn.id)

    def held(self) -> dict[str, int]:
        return {
            "login_deadlines": len(self._due),
            "login_checks": self._checks.held() if self._checks is not None else 0,
            "throttle_keys": self.throttle.held(),
        }

    def _logged_in(self, conn: Connection, principal: Principal) -> None:
        conn.principal = principal
        self.ended(conn)
        if self.browser_trace:  # §12.14 (extension): the web client logs to its console
            self._out.send(conn.id, {"mt": "TraceFlags", "browser": True})
        if principal.app is not None and principal.apis:
            server = self._config.server
            info = pbx_info(
                domain=principal.domain,
                pbx=server.node,
                pbx_dns=server.dns,
                apis=principal.apis,
                version=VERSION,
                build=BUILD,
            )
            self._out.send(conn.id, info)

    def _sweep_later(self) -> None:
        """Arm one timer for the throttle's oldest entry, so that no entry outlives its
        window even when no login comes to sweep it."""
        if self._sweep is None:
            expiry = self.throttle.next_expiry()
            if expiry is not None:
                self._sweep = self._timers.arm(expiry, self._swept)

    def _swept(self) -> None:
        self._sweep = None
        self.throttle.sweep(self._clock.monotonic())
        self._sweep_later()

    def _timeout(self, conn_id: int) -> None:
        conn = self.connections.get(conn_id)
        if conn is not None and conn.principal is None and not conn.closing:
            self._close(conn, closecodes.WS_4001_LOGIN_FAILED, "login timeout")
