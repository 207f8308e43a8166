"""The server side of the AppWebsocket login, sans I/O (PROTOCOL §3).

Theory of operation: each connection owns one ``LoginServer``. ``challenge(now)`` answers
``AppChallenge`` with a fresh challenge that is good for exactly one ``AppLogin`` and for
``challenge_ttl`` seconds; a new ``AppChallenge`` replaces the old one. ``login(body, now)``
consumes the challenge, asks the ``Accounts`` provider which password the message names,
and checks the digest in constant time. The provider decides *who* a login may act as
(user, App object, App object for a user); this module only knows the wire rules, so the
messages service can reuse it with its own accounts.

States (``LoginState``): ``NEW -> CHALLENGED -> LOGGED_IN`` or ``-> FAILED``. A failed
login is final: the caller closes the connection with 4001 after sending the reply.

A hub node of a cluster asks the cluster's throttle before it answers (docs 12.44), so
there ``login`` runs in two steps: ``start`` uses the challenge up and says what the
attempt names (the connection is ``CHECKING`` meanwhile), ``finish`` answers it once the
throttle's verdict is known.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

from .digest import NO_INFO, login_digest, new_challenge, session_key, verify_digest
from .throttle import Throttle

__all__ = [
    "Account",
    "Accounts",
    "LoginAttempt",
    "LoginFailure",
    "LoginOutcome",
    "LoginRequest",
    "LoginServer",
    "LoginState",
    "Principal",
]

JsonObject = dict[str, Any]


class LoginState(Enum):
    NEW = "new"
    CHALLENGED = "challenged"
    CHECKING = "checking"
    LOGGED_IN = "logged_in"
    FAILED = "failed"


class LoginFailure(Enum):
    """``error`` numbers of a failed ``AppLoginResult`` with their ``errorText``."""

    FAILED = (1, "login failed")
    THROTTLED = (2, "throttled")
    NO_CHALLENGE = (3, "no valid challenge")
    UNAVAILABLE = (4, "unavailable")
    """(extension, docs 12.44) the account could not be looked up: try again later."""

    @property
    def number(self) -> int:
        return self.value[0]

    @property
    def text(self) -> str:
        return self.value[1]


@dataclass(frozen=True, slots=True)
class LoginRequest:
    """The fields of ``AppLogin`` that take part in the digest, plus ``pbxObj``."""

    app: str
    domain: str
    sip: str
    guid: str
    dn: str
    info: object
    digest: object
    pbx_obj: str

    @classmethod
    def from_message(cls, body: JsonObject) -> LoginRequest:
        return cls(
            app=_field(body, "app"),
            domain=_field(body, "domain"),
            sip=_field(body, "sip"),
            guid=_field(body, "guid"),
            dn=_field(body, "dn"),
            info=body.get("info", NO_INFO),
            digest=body.get("digest"),
            pbx_obj=_field(body, "pbxObj"),
        )


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a logged-in session acts as: exactly one user or App object of one tenant."""

    domain: str
    sip: str
    """The user acted for; empty when an App object acts as itself."""
    dn: str
    app: str | None = None
    """The App object's name for App-object logins."""
    apis: tuple[str, ...] = ()
    """PBX APIs enabled on the App object (PROTOCOL §3.7)."""

    @property
    def is_user(self) -> bool:
        return bool(self.sip)


@dataclass(frozen=True, slots=True)
class Account:
    """What a login message names: the password to check and who it then acts as."""

    password: str = field(repr=False)
    principal: Principal


class Accounts(Protocol):
    def throttle_key(self, request: LoginRequest) -> str:
        """A stable name of the account the request targets, known or not."""
        ...

    def find(self, request: LoginRequest) -> Account | None:
        """The account whose password must match, or None if the login cannot succeed."""
        ...


@dataclass(frozen=True, slots=True)
class LoginOutcome:
    reply: JsonObject
    principal: Principal | None = None
    session_key: str | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.principal is not None


@dataclass(frozen=True, slots=True)
class LoginAttempt:
    """One ``AppLogin`` between ``start`` and ``finish``."""

    body: JsonObject
    request: LoginRequest
    account: str
    """The throttle's name of the account (``Accounts.throttle_key``)."""
    challenge: str | None
    """The challenge it used up, None when there was no valid one."""


_DUMMY_PASSWORD = "\x00no-such-account"


class LoginServer:
    def __init__(
        self,
        accounts: Accounts,
        throttle: Throttle,
        *,
        address: str,
        challenge_ttl: float,
        make_challenge: Callable[[], str] = new_challenge,
    ) -> None:
        self._accounts = accounts
        self._throttle = throttle
        self._address = address
        self._ttl = challenge_ttl
        self._make_challenge = make_challenge
        self._challenge: str | None = None
        self._issued = 0.0
        self.state = LoginState.NEW

    def challenge(self, now: float) -> JsonObject:
        """Answer ``AppChallenge``: a fresh challenge that replaces any earlier one."""
        self._challenge = self._make_challenge()
        self._issued = now
        self.state = LoginState.CHALLENGED
        return {"mt": "AppChallengeResult", "challenge": self._challenge}

    @property
    def address(self) -> str:
        """The client's address, as the throttle counts it."""
        return self._address

    def login(self, body: JsonObject, now: float) -> LoginOutcome:
        """Check one ``AppLogin``; the challenge is used up whatever the result."""
        return self.finish(self.start(body, now), now)

    def start(self, body: JsonObject, now: float) -> LoginAttempt:
        """The first step of ``login``: the challenge is used up; ``finish`` answers."""
        challenge, self._challenge = self._challenge, None
        if challenge is not None and now - self._issued > self._ttl:
            challenge = None
        request = LoginRequest.from_message(body)
        self.state = LoginState.CHECKING
        return LoginAttempt(body, request, self._accounts.throttle_key(request), challenge)

    def finish(
        self, attempt: LoginAttempt, now: float, throttle: Throttle | None = None
    ) -> LoginOutcome:
        """Answer ``attempt`` (by default with the server's own throttle).

        The throttle (§3.6) is asked twice: before the digest, whether this (address,
        account) pair is locked (that alone may refuse a correct password); after a wrong
        digest, whether the answer is ``throttled``. Nothing else can refuse a right one."""
        throttle = throttle or self._throttle
        body, request, account = attempt.body, attempt.request, attempt.account
        wait = throttle.locked(self._address, account, now)
        if wait > 0:
            return self._throttled(body, wait)
        challenge = attempt.challenge
        if challenge is None:
            # Not counted: without a challenge nothing about the password was learnt.
            return self._fail(body, LoginFailure.NO_CHALLENGE)
        found = self._accounts.find(request)
        password = found.password if found else _DUMMY_PASSWORD
        expected = _digest(request, challenge, password)
        # Compare even for unknown accounts so that timing does not reveal which exist.
        if not verify_digest(expected, request.digest) or found is None:
            wait_after = throttle.failed(self._address, account, now)
            if wait_after is not None:
                return self._throttled(body, wait_after)
            return self._fail(body, LoginFailure.FAILED)
        throttle.succeeded(self._address, account, now)
        self.state = LoginState.LOGGED_IN
        principal = found.principal
        # dn (extension, docs/protocol.md 12.42): whom the session acts as, by name
        reply = _echo(
            body,
            {"mt": "AppLoginResult", "ok": True, "domain": principal.domain, "dn": principal.dn},
        )
        return LoginOutcome(reply, principal, session_key(challenge, found.password))

    def proves(self, attempt: LoginAttempt, password: str) -> bool:
        """Whether ``attempt``'s digest was made with ``password`` (and a valid challenge):
        a look at an account not known here yet, before it is learnt. Nothing is counted;
        ``finish`` still answers the attempt."""
        challenge = attempt.challenge
        if challenge is None:
            return False
        return verify_digest(_digest(attempt.request, challenge, password), attempt.request.digest)

    def unavailable(self, attempt: LoginAttempt) -> LoginOutcome:
        """Answer ``attempt`` without looking at it: its account could not be looked up
        (docs 12.44). Nothing about the password was learnt, so nothing is counted."""
        return self._fail(attempt.body, LoginFailure.UNAVAILABLE)

    def _throttled(self, body: JsonObject, wait: float) -> LoginOutcome:
        # (extension, docs §12.22) when this pair may try again, as rate_limited says it
        return self._fail(body, LoginFailure.THROTTLED, max(1, math.ceil(wait * 1000.0)))

    def _fail(
        self, body: JsonObject, failure: LoginFailure, retry_after_ms: int | None = None
    ) -> LoginOutcome:
        self.state = LoginState.FAILED
        reply: JsonObject = {
            "mt": "AppLoginResult",
            "error": failure.number,
            "errorText": failure.text,
        }
        if retry_after_ms is not None:
            reply["retry_after_ms"] = retry_after_ms
        return LoginOutcome(_echo(body, reply))


def _echo(request: JsonObject, reply: JsonObject) -> JsonObject:
    src = request.get("src")
    if src is not None:
        reply["src"] = src
    return reply


def _field(body: JsonObject, key: str) -> str:
    value = body.get(key)
    # A non-string field cannot have been hashed as the documented string: let it fail.
    return value if type(value) is str else ("" if value is None else "\x00invalid")


def _digest(request: LoginRequest, challenge: str, password: str) -> str:
    """The digest a client that knows ``password`` sends with ``request`` (§3.2)."""
    return login_digest(
        app=request.app,
        domain=request.domain,
        sip=request.sip,
        guid=request.guid,
        dn=request.dn,
        info=request.info,
        challenge=challenge,
        password=password,
    )
