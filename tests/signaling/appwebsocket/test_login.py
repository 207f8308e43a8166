"""``LoginServer`` alone, with a fake ``Accounts`` (PROTOCOL §3.1-§3.4, §3.6; docs §12.6)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from signaling.appwebsocket.digest import NO_INFO, login_digest, session_key
from signaling.appwebsocket.login import (
    Account,
    LoginOutcome,
    LoginRequest,
    LoginServer,
    LoginState,
    Principal,
)
from signaling.appwebsocket.throttle import LoginThrottle, ThrottlePolicy

JsonObject = dict[str, Any]

TTL = 30.0
ALICE = Principal(domain="example.com", sip="alice", dn="Alice Example")
BOT = Principal(domain="example.com", sip="", dn="Bot", app="bot", apis=("PbxSignal",))
PASSWORDS = {"alice": "alice-secret-pw", "bot": "bot-secret-pw"}


class FakeAccounts:
    """Accounts by ``sip``; remembers every request it was asked about."""

    def __init__(self) -> None:
        self.asked: list[LoginRequest] = []
        self._accounts = {
            "alice": Account(PASSWORDS["alice"], ALICE),
            "bot": Account(PASSWORDS["bot"], BOT),
        }

    def throttle_key(self, request: LoginRequest) -> str:
        return f"{request.domain}/{request.sip}"

    def find(self, request: LoginRequest) -> Account | None:
        self.asked.append(request)
        return self._accounts.get(request.sip)


def counting_challenges() -> Callable[[], str]:
    numbers: Iterator[int] = itertools.count(1)
    return lambda: f"{next(numbers):016d}"


def make_server(
    *,
    accounts: FakeAccounts | None = None,
    throttle: LoginThrottle | None = None,
    address: str = "192.0.2.1",
    make_challenge: Callable[[], str] | None = None,
) -> LoginServer:
    extra: dict[str, Any] = {}
    if make_challenge is not None:
        extra["make_challenge"] = make_challenge
    return LoginServer(
        accounts or FakeAccounts(),
        throttle or LoginThrottle(),
        address=address,
        challenge_ttl=TTL,
        **extra,
    )


def app_login(
    challenge: str,
    password: str,
    *,
    sip: str = "alice",
    app: str = "chat",
    domain: str = "example.com",
    guid: str = "",
    dn: str = "",
    info: object = NO_INFO,
    **extra: Any,
) -> JsonObject:
    """An ``AppLogin`` as a client builds it for ``challenge``."""
    fields = {"app": app, "domain": domain, "sip": sip, "guid": guid, "dn": dn}
    message: JsonObject = {
        "mt": "AppLogin",
        **fields,
        "digest": login_digest(**fields, info=info, challenge=challenge, password=password),
        **extra,
    }
    if info is not NO_INFO:
        message["info"] = info
    return message


def challenged(server: LoginServer, now: float = 0.0) -> str:
    reply = server.challenge(now)
    assert reply["mt"] == "AppChallengeResult"
    challenge: str = reply["challenge"]
    return challenge


def failure(outcome: LoginOutcome) -> tuple[int, str]:
    assert not outcome.ok and outcome.principal is None and outcome.session_key is None
    reply = outcome.reply
    assert reply["mt"] == "AppLoginResult" and "ok" not in reply, reply
    return reply["error"], reply["errorText"]


# -- challenges --------------------------------------------------------------------------------


def test_default_challenge_is_16_fresh_digits() -> None:
    server = make_server()
    assert server.state is LoginState.NEW
    replies = [server.challenge(0.0) for _ in range(20)]
    for reply in replies:
        assert set(reply) == {"mt", "challenge"} and reply["mt"] == "AppChallengeResult"
        challenge = reply["challenge"]
        assert isinstance(challenge, str) and len(challenge) == 16 and challenge.isdigit()
        assert challenge.isascii()
    assert len({reply["challenge"] for reply in replies}) == 20
    assert server.state is LoginState.CHALLENGED


def test_login_with_the_challenge_succeeds() -> None:
    server = make_server()
    challenge = challenged(server)
    outcome = server.login(app_login(challenge, PASSWORDS["alice"]), 1.0)
    assert outcome.ok and outcome.principal == ALICE
    assert outcome.reply == {
        "mt": "AppLoginResult",
        "ok": True,
        "domain": "example.com",
        "dn": "Alice Example",  # whom the session acts as (docs 12.42)
    }
    assert server.state is LoginState.LOGGED_IN


def test_session_key_is_derived_from_challenge_and_password() -> None:
    server = make_server(make_challenge=lambda: "0123456789abcdef")
    outcome = server.login(app_login(challenged(server), PASSWORDS["alice"]), 0.0)
    assert outcome.session_key == session_key("0123456789abcdef", PASSWORDS["alice"])
    assert outcome.session_key is not None and len(outcome.session_key) == 64
    assert outcome.session_key not in str(outcome.reply)


def test_login_with_info_hashes_it_and_pbx_obj_is_not_hashed() -> None:
    server = make_server()
    challenge = challenged(server)
    info = {"cn": "Alice", "apps": [{"name": "chat/é"}]}
    message = app_login(challenge, PASSWORDS["alice"], info=info, pbxObj="whatever")
    assert server.login(message, 0.0).ok
    # the same digest without the info property does not match
    server = make_server(make_challenge=lambda: challenge)
    message = app_login(challenged(server), PASSWORDS["alice"], info={})
    del message["info"]
    assert failure(server.login(message, 0.0)) == (1, "login failed")


def test_missing_fields_count_as_empty_strings() -> None:
    """The documented short form: only ``sip`` and ``digest``."""
    server = make_server()
    challenge = challenged(server)
    digest = login_digest(
        app="",
        domain="",
        sip="alice",
        guid="",
        dn="",
        challenge=challenge,
        password="alice-secret-pw",
    )
    outcome = server.login({"mt": "AppLogin", "sip": "alice", "digest": digest}, 0.0)
    assert outcome.ok


def test_uppercase_hex_digest_is_accepted() -> None:
    server = make_server()
    message = app_login(challenged(server), PASSWORDS["alice"])
    message["digest"] = message["digest"].upper()
    assert server.login(message, 0.0).ok


# -- single use, replacement, expiry -----------------------------------------------------------


def test_a_challenge_is_good_for_one_login_only() -> None:
    server = make_server()
    message = app_login(challenged(server), PASSWORDS["alice"])
    assert server.login(message, 0.0).ok
    assert failure(server.login(message, 0.0)) == (3, "no valid challenge")


def test_a_failed_login_uses_the_challenge_up_too() -> None:
    server = make_server()
    challenge = challenged(server)
    assert failure(server.login(app_login(challenge, "wrong"), 0.0)) == (1, "login failed")
    assert server.state is LoginState.FAILED
    outcome = server.login(app_login(challenge, PASSWORDS["alice"]), 0.0)
    assert failure(outcome) == (3, "no valid challenge")


def test_login_without_any_challenge_fails() -> None:
    server = make_server()
    outcome = server.login(app_login("0000000000000000", PASSWORDS["alice"]), 0.0)
    assert failure(outcome) == (3, "no valid challenge")
    assert server.state is LoginState.FAILED


def test_a_new_challenge_replaces_the_old_one() -> None:
    server = make_server(make_challenge=counting_challenges())
    old = challenged(server, 0.0)
    new = challenged(server, 0.0)
    assert old != new
    assert failure(server.login(app_login(old, PASSWORDS["alice"]), 0.0)) == (1, "login failed")
    server = make_server(make_challenge=counting_challenges())
    challenged(server, 0.0)
    new = challenged(server, 0.0)
    assert server.login(app_login(new, PASSWORDS["alice"]), 0.0).ok


def test_a_challenge_expires_after_challenge_ttl() -> None:
    server = make_server()
    challenge = challenged(server, 100.0)
    assert server.login(app_login(challenge, PASSWORDS["alice"]), 100.0 + TTL).ok
    server = make_server()
    challenge = challenged(server, 100.0)
    outcome = server.login(app_login(challenge, PASSWORDS["alice"]), 100.0 + TTL + 0.001)
    assert failure(outcome) == (3, "no valid challenge")


def test_the_replacing_challenge_gets_its_own_ttl() -> None:
    server = make_server(make_challenge=counting_challenges())
    challenged(server, 0.0)
    challenge = challenged(server, TTL - 1)
    assert server.login(app_login(challenge, PASSWORDS["alice"]), 2 * TTL - 2).ok


# -- failures look alike -----------------------------------------------------------------------


def test_unknown_account_fails_exactly_like_a_wrong_password() -> None:
    accounts = FakeAccounts()
    server = make_server(accounts=accounts, make_challenge=lambda: "1111222233334444")
    wrong = server.login(app_login(challenged(server), "wrong", src="s"), 0.0)
    server = make_server(accounts=accounts, make_challenge=lambda: "1111222233334444")
    unknown = server.login(app_login(challenged(server), "wrong", sip="mallory", src="s"), 0.0)
    assert wrong == unknown
    assert wrong.reply == {
        "mt": "AppLoginResult",
        "error": 1,
        "errorText": "login failed",
        "src": "s",
    }
    assert [request.sip for request in accounts.asked] == ["alice", "mallory"]


@pytest.mark.parametrize("digest", [None, 123, ["x"], {"d": 1}, True, ""])
def test_a_digest_that_is_no_hex_string_fails(digest: object) -> None:
    server = make_server()
    message = app_login(challenged(server), PASSWORDS["alice"])
    message["digest"] = digest
    assert failure(server.login(message, 0.0)) == (1, "login failed")


def test_a_missing_digest_fails() -> None:
    server = make_server()
    message = app_login(challenged(server), PASSWORDS["alice"])
    del message["digest"]
    assert failure(server.login(message, 0.0)) == (1, "login failed")


@pytest.mark.parametrize("field", ["app", "domain", "sip", "guid", "dn"])
@pytest.mark.parametrize("value", [5, True, ["alice"], {"a": 1}])
def test_a_non_string_field_fails_even_with_a_matching_str_digest(
    field: str, value: object
) -> None:
    server = make_server()
    challenge = challenged(server)
    message = app_login(challenge, PASSWORDS["alice"], **{field: str(value)})
    message[field] = value  # the client hashed str(value), but sent something else
    assert failure(server.login(message, 0.0)) == (1, "login failed")


def test_login_request_normalizes_missing_and_non_string_fields() -> None:
    request = LoginRequest.from_message({"mt": "AppLogin", "sip": "alice", "dn": None, "app": 7})
    assert (request.domain, request.guid, request.dn, request.pbx_obj) == ("", "", "", "")
    assert request.sip == "alice" and request.app not in ("", "7")
    assert request.info is NO_INFO and request.digest is None
    assert LoginRequest.from_message({"info": None}).info is None


# -- src echo ----------------------------------------------------------------------------------


@pytest.mark.parametrize("src", ["s1", 0, "", {"n": [1]}, False])
def test_both_results_echo_src(src: object) -> None:
    server = make_server()
    ok = server.login(app_login(challenged(server), PASSWORDS["alice"], src=src), 0.0)
    assert ok.reply == {
        "mt": "AppLoginResult",
        "ok": True,
        "domain": "example.com",
        "dn": "Alice Example",
        "src": src,
    }
    server = make_server()
    bad = server.login(app_login(challenged(server), "wrong", src=src), 0.0)
    assert bad.reply["src"] == src
    server = make_server()
    none = server.login(app_login("0" * 16, PASSWORDS["alice"], src=src), 0.0)
    assert none.reply["src"] == src


def test_no_src_no_echo() -> None:
    server = make_server()
    ok = server.login(app_login(challenged(server), PASSWORDS["alice"]), 0.0)
    assert "src" not in ok.reply
    server = make_server()
    assert "src" not in server.login(app_login(challenged(server), "x"), 0.0).reply


# -- throttling (PROTOCOL §3.6, docs §12.22) ---------------------------------------------------

A = "192.0.2.1"
B = "198.51.100.7"


def attempt(
    throttle: LoginThrottle,
    password: str,
    now: float,
    *,
    address: str = A,
    sip: str = "alice",
    accounts: FakeAccounts | None = None,
) -> LoginOutcome:
    server = make_server(throttle=throttle, address=address, accounts=accounts)
    return server.login(app_login(challenged(server, now), password, sip=sip, src="t"), now)


def test_a_locked_pair_is_refused_even_with_the_right_password() -> None:
    throttle = LoginThrottle()
    for _ in range(5):
        assert failure(attempt(throttle, "guess", 0.0)) == (1, "login failed")
    accounts = FakeAccounts()
    outcome = attempt(throttle, PASSWORDS["alice"], 0.25, accounts=accounts)
    assert outcome.reply == {
        "mt": "AppLoginResult",
        "error": 2,
        "errorText": "throttled",
        "retry_after_ms": 750,
        "src": "t",
    }
    assert accounts.asked == []  # the digest was not even looked at
    assert attempt(throttle, PASSWORDS["alice"], 1.0).ok  # the pair's first lock is 1 s


def test_two_hundred_guesses_lock_neither_colleagues_nor_the_owner_elsewhere() -> None:
    throttle = LoginThrottle()
    results = [failure(attempt(throttle, "guess", n / 1000))[1] for n in range(200)]
    assert results == ["login failed"] * 5 + ["throttled"] * 195
    assert attempt(throttle, PASSWORDS["bot"], 0.2, sip="bot").ok  # same address
    assert attempt(throttle, PASSWORDS["alice"], 0.2, address=B).ok  # alice elsewhere
    assert failure(attempt(throttle, PASSWORDS["alice"], 0.2)) == (2, "throttled")
    assert attempt(throttle, PASSWORDS["alice"], 1.004).ok  # 1 s after the fifth failure


def test_over_the_account_budget_wrong_passwords_are_throttled_right_ones_pass() -> None:
    throttle = LoginThrottle(ThrottlePolicy(account_failures=3))
    for n in range(3):
        outcome = attempt(throttle, "guess", 0.0, address=f"203.0.113.{n}")
        assert failure(outcome) == (1, "login failed")
    outcome = attempt(throttle, "guess", 0.0, address="203.0.113.3")
    assert failure(outcome) == (2, "throttled")
    assert outcome.reply["retry_after_ms"] == 30_000
    assert attempt(throttle, PASSWORDS["alice"], 0.0, address=B).ok  # the owner
    assert failure(attempt(throttle, PASSWORDS["alice"], 0.0, address="203.0.113.3"))[0] == 2


def test_an_unknown_account_counts_like_a_wrong_password() -> None:
    throttle = LoginThrottle()
    for _ in range(5):
        assert failure(attempt(throttle, "guess", 0.0, sip="mallory")) == (1, "login failed")
    assert failure(attempt(throttle, "guess", 0.0, sip="mallory")) == (2, "throttled")
    assert throttle.failures == 5


def test_a_login_without_a_valid_challenge_is_not_counted() -> None:
    """Nothing about the password can be learnt from it, so there is nothing to slow."""
    throttle = LoginThrottle()
    for _ in range(10):
        server = make_server(throttle=throttle)
        assert failure(server.login(app_login("0" * 16, "x"), 0.0))[0] == 3
    assert throttle.failures == 0
    assert attempt(throttle, PASSWORDS["alice"], 0.0).ok


def test_a_correct_password_forgives_earlier_typos() -> None:
    throttle = LoginThrottle()
    for _ in range(4):
        attempt(throttle, "typo", 0.0)
    assert attempt(throttle, PASSWORDS["alice"], 0.0).ok
    for _ in range(4):
        assert failure(attempt(throttle, "typo", 1.0)) == (1, "login failed")
    assert attempt(throttle, PASSWORDS["alice"], 1.0).ok


# -- secrets never show ------------------------------------------------------------------------


def test_repr_of_outcome_and_account_never_shows_password_or_session_key() -> None:
    server = make_server()
    outcome = server.login(app_login(challenged(server), PASSWORDS["alice"]), 0.0)
    assert outcome.session_key
    for text in (repr(outcome), str(outcome)):
        assert PASSWORDS["alice"] not in text and outcome.session_key not in text
        assert "alice" in text  # the principal is shown
    account = Account(PASSWORDS["alice"], ALICE)
    assert PASSWORDS["alice"] not in repr(account) and PASSWORDS["alice"] not in str(account)
    server = make_server()
    failed = server.login(app_login(challenged(server), PASSWORDS["alice"] + "x"), 0.0)
    assert PASSWORDS["alice"] not in repr(failed)
