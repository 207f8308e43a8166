"""Connections from accept to login (PROTOCOL §3): the challenge, ``AppLogin``, the
login timeout and the failed-login throttle's sweeping.

A connection is born here (``open``) and is handed on once its login succeeds: then its
``LoginServer`` is dropped and its deadline cancelled, so a logged-in connection keeps
nothing of this phase. The ``Switch`` asks ``step`` about every frame of a connection
that has not logged in yet, and tells ``ended`` when a connection goes.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from config import Config
from signaling.appwebsocket import closecodes
from signaling.appwebsocket.housekeeping import build_number, check_build, pbx_info
from signaling.appwebsocket.login import Accounts, LoginServer, Principal
from signaling.appwebsocket.throttle import LoginThrottle, ThrottlePolicy

from .clock import Clock
from .errors import BadJson, NotLoggedIn
from .expiry import Expiry
from .messages import Inbound
from .outbox import Outbox
from .registry import Registration
from .timers import Timer, TimerQueue

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
    ) -> None:
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
        self._sweep: Timer | None = None
        self._due: Expiry[int] = Expiry(timers, clock, config.login.timeout, self._timeout)
        """Connections not logged in yet, by id: closed 4001 when ``login.timeout`` is up."""
        self._ids = itertools.count(1)
        self.browser_trace = False
        """The ``browser`` trace flag, told to clients at login and when it changes."""

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
        if inbound.api is None and inbound.mt == "AppChallenge":
            return reply(self._out, conn.id, inbound, login.challenge(now))
        if inbound.api is None and inbound.mt == "AppLogin":
            outcome = login.login(inbound.body, now)
            self._sweep_later()
            self._out.send(conn.id, outcome.reply)
            if outcome.principal is None:
                return self._close(conn, closecodes.WS_4001_LOGIN_FAILED, "login failed")
            return self._logged_in(conn, outcome.principal)
        raise NotLoggedIn(f"{inbound.mt[:40]} before login")

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
        return {"login_deadlines": len(self._due), "throttle_keys": self.throttle.held()}

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
