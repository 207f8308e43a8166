"""AppWebsocket login against a real server (PROTOCOL §3)."""

from __future__ import annotations

import httpx
import pytest

from signaling.appwebsocket.client import AppWebsocketClient
from signaling.appwebsocket.digest import login_digest
from signaling.appwebsocket.errors import LoginFailed
from tests.support import RunningServer


async def _challenge(client: AppWebsocketClient) -> str:
    await client.send({"mt": "AppChallenge", "user": "ignored extra"})
    reply = await client.recv()
    assert reply["mt"] == "AppChallengeResult"
    challenge = reply["challenge"]
    assert isinstance(challenge, str) and len(challenge) == 16 and challenge.isdigit()
    return challenge


def _login(challenge: str, password: str, **fields: str) -> dict[str, object]:
    values = {key: fields.get(key, "") for key in ("app", "domain", "sip", "guid", "dn")}
    digest = login_digest(**values, challenge=challenge, password=password)
    return {"mt": "AppLogin", **values, "digest": digest}


async def _expect_failure(client: AppWebsocketClient, text: str = "login failed") -> None:
    reply = await client.recv()
    assert reply["mt"] == "AppLoginResult" and "ok" not in reply, reply
    assert reply["errorText"] == text and isinstance(reply["error"], int)
    assert (await client.wait_closed())[0] == 4001


async def test_user_login(server: RunningServer) -> None:
    client = await server.connect()
    challenge = await _challenge(client)
    message = _login(
        challenge,
        "alice-demo",
        app="chat",
        domain="example.com",
        sip="alice",
        guid="00" * 16,
        dn="Alice",
    )
    await client.send({**message, "src": "s1"})
    assert await client.recv() == {
        "mt": "AppLoginResult",
        "ok": True,
        "domain": "example.com",
        "dn": "Alice Example",  # the directory's name, not the one sent (docs 12.42)
        "src": "s1",
    }
    await client.close()


async def test_short_form_login_uses_the_default_domain(server: RunningServer) -> None:
    client = await server.connect()
    challenge = await _challenge(client)
    await client.send(
        {
            "mt": "AppLogin",
            "sip": "bob",
            "digest": login_digest(
                app="",
                domain="",
                sip="bob",
                guid="",
                dn="",
                challenge=challenge,
                password="bob-demo",
            ),
        }
    )
    assert (await client.recv())["domain"] == "example.com"
    await client.close()


async def test_login_with_info_object(server: RunningServer) -> None:
    client = await server.connect()
    result = await client.login(
        password="dave-demo",
        sip="dave",
        domain="example.com",
        info={"cn": "Dave", "apps": [{"name": "chat/é"}]},
    )
    assert result["ok"] is True
    await client.close()


async def test_wrong_password_fails_and_closes_4001(server: RunningServer) -> None:
    client = await server.connect()
    challenge = await _challenge(client)
    await client.send(_login(challenge, "not-the-password", sip="alice", domain="example.com"))
    await _expect_failure(client)


async def test_unknown_user_fails_like_a_wrong_password(server: RunningServer) -> None:
    client = await server.connect()
    challenge = await _challenge(client)
    await client.send(_login(challenge, "whatever", sip="mallory", domain="example.com"))
    await _expect_failure(client)


async def test_replayed_challenge_fails(server: RunningServer) -> None:
    first = await server.connect()
    challenge = await _challenge(first)
    message = _login(challenge, "alice-demo", sip="alice", domain="example.com")
    await first.send(message)
    assert (await first.recv())["ok"] is True
    # the same AppLogin on another connection: that connection's challenge differs
    second = await server.connect()
    await _challenge(second)
    await second.send(message)
    await _expect_failure(second)
    # and without asking for a challenge at all
    third = await server.connect()
    await third.send(message)
    await _expect_failure(third, "no valid challenge")
    await first.close()


async def test_a_challenge_is_good_for_one_attempt_only(server: RunningServer) -> None:
    client = await server.connect()
    challenge = await _challenge(client)
    await client.send(_login(challenge, "wrong", sip="alice", domain="example.com"))
    reply = await client.recv()
    assert reply["errorText"] == "login failed"
    # the server closes; even a quick retry with the right password cannot reuse it
    code, _ = await client.wait_closed()
    assert code == 4001


async def test_expired_challenge_fails(server: RunningServer) -> None:
    client = await server.connect()
    challenge = await _challenge(client)
    server.clock.advance(server.config.login.challenge_ttl + 1)
    await client.send(_login(challenge, "alice-demo", sip="alice", domain="example.com"))
    await _expect_failure(client, "no valid challenge")


async def test_digest_for_another_tenant_fails(server: RunningServer) -> None:
    client = await server.connect()
    challenge = await _challenge(client)
    # example.com's alice password, presented to other.org (which has its own alice)
    await client.send(_login(challenge, "alice-demo", sip="alice", domain="other.org"))
    await _expect_failure(client)
    other = await server.connect()
    result = await other.login(password="other-alice-pw", sip="alice", domain="other.org")
    assert result["domain"] == "other.org"
    await other.close()


async def test_unknown_domain_fails(server: RunningServer) -> None:
    with pytest.raises(LoginFailed):
        client = await server.connect()
        await client.login(password="alice-demo", sip="alice", domain="nowhere.test")


async def test_nothing_but_login_before_login(server: RunningServer) -> None:
    client = await server.connect()
    await client.send({"mt": "KeepAlive"})
    assert await client.recv() == {"mt": "KeepAlive"}
    await client.send({"api": "PbxSignal", "mt": "Register", "src": "r"})
    reply = await client.recv()
    assert (reply["mt"], reply["code"], reply["src"], reply["api"]) == (
        "Error",
        "not_logged_in",
        "r",
        "PbxSignal",
    )
    await client.login(password="carol-demo", sip="carol")
    await client.close()


async def test_login_timeout_closes_4001(server: RunningServer) -> None:
    client = await server.connect()
    await _challenge(client)
    await server.advance(server.config.login.timeout + 1)
    assert (await client.wait_closed())[0] == 4001


# -- the failed-login throttle (PROTOCOL §3.6, docs §12.22) ----------------------------------
# The server sees 127.0.0.1 for ``server.connect()``; ``source=`` connects from another
# loopback address, which the server sees as another client address.

ELSEWHERE = "127.0.0.2"


async def _try(
    server: RunningServer, sip: str, password: str, *, source: str | None = None
) -> dict[str, object]:
    """One login on its own connection; a refusal is followed by close 4001."""
    client = await server.connect(source=source)
    challenge = await _challenge(client)
    await client.send(_login(challenge, password, sip=sip, domain="example.com"))
    reply = await client.recv()
    assert reply["mt"] == "AppLoginResult"
    if reply.get("ok") is True:
        await client.close()
    else:
        assert (await client.wait_closed())[0] == 4001
    return reply


async def test_guessing_slows_the_guesser_and_locks_out_nobody_else(
    server: RunningServer,
) -> None:
    texts = [(await _try(server, "alice", "guess"))["errorText"] for _ in range(200)]
    assert texts == ["login failed"] * 5 + ["throttled"] * 195
    # bob behind the same address, and alice from another one, get in at once
    assert (await _try(server, "bob", "bob-demo"))["ok"] is True
    assert (await _try(server, "alice", "alice-demo", source=ELSEWHERE))["ok"] is True
    # alice from the guessing address waits out the pair's lock: one second
    refused = await _try(server, "alice", "alice-demo")
    assert (refused["error"], refused["errorText"], refused["retry_after_ms"]) == (
        2,
        "throttled",
        1000,
    )
    server.clock.advance(server.config.login.throttle_delay)
    assert (await _try(server, "alice", "alice-demo"))["ok"] is True


async def test_a_guesser_gets_ten_tries_in_the_first_minute(server: RunningServer) -> None:
    checked = []  # when a guess got as far as the password check
    for second in range(60):  # every second, guesses until one is throttled
        while (await _try(server, "carol", "guess"))["errorText"] == "login failed":
            checked.append(second)
        server.clock.advance(1.0)
    assert checked == [0, 0, 0, 0, 0, 1, 3, 7, 15, 31]  # docs §12.22
    async with httpx.AsyncClient(base_url=server.http) as http:
        text = (await http.get("/metrics")).text
    assert "switchboard_login_failures_total 10\n" in text
    assert 'switchboard_login_throttled_total{budget="pair"} 60\n' in text
    assert 'switchboard_login_throttle_keys{kind="pair"} 1\n' in text


async def test_a_distributed_attack_never_refuses_the_owners_password(
    server: RunningServer,
) -> None:
    budget = server.config.login.throttle_account_failures
    guessers = [f"127.0.0.{n}" for n in range(2, 2 + budget)]
    for source in guessers:
        assert (await _try(server, "dave", "guess", source=source))["errorText"] == "login failed"
    # the account's budget is spent: the next wrong password is throttled, whoever sends it
    late = await _try(server, "dave", "guess", source=f"127.0.0.{2 + budget}")
    assert (late["errorText"], late["retry_after_ms"]) == ("throttled", 30_000)
    # ...but dave's own password goes through at once, from an address that has not guessed
    assert (await _try(server, "dave", "dave-demo"))["ok"] is True
    async with httpx.AsyncClient(base_url=server.http) as http:
        text = (await http.get("/metrics")).text
    assert 'switchboard_login_throttled_total{budget="account"} 1\n' in text
    assert f'switchboard_login_throttle_keys{{kind="pair"}} {budget + 1}\n' in text
    # a window after the last failure the hub's own timer has dropped every entry
    await server.advance(server.config.login.throttle_window)
    assert server.hub.switch.throttle.next_expiry() is None


async def test_app_object_logs_in_as_itself_and_gets_pbx_info(server: RunningServer) -> None:
    client = await server.connect()
    result = await client.login(
        password="bot-secret",
        app="helpdesk-bot",
        domain="example.com",
        sip="helpdesk-bot",
        guid="0" * 32,
        dn="Admin",
        pbx_obj="helpdesk-bot",
    )
    assert result["ok"] is True
    info = await client.recv()
    assert info["mt"] == "PbxInfo" and info["apis"] == ["PbxSignal"]
    assert info["domain"] == "example.com" and info["pbx"] == "switchboard"
    # with PbxSignal enabled it registers as a device of its own (docs 12.24)
    await client.send({"api": "PbxSignal", "mt": "Register", "src": "r"})
    result = await client.recv()
    assert isinstance(result.pop("resume"), str)
    assert result == {"api": "PbxSignal", "mt": "RegisterResult", "src": "r"}
    await client.close()


async def test_app_object_acts_for_a_user_it_may_act_for(server: RunningServer) -> None:
    client = await server.connect()
    await client.login(password="bot-secret", app="helpdesk-bot", sip="carol")
    assert (await client.recv())["mt"] == "PbxInfo"
    await client.send({"api": "PbxSignal", "mt": "Register", "src": "r", "flags": "NO_MEDIA_CALL"})
    result = await client.recv()
    assert isinstance(result.pop("resume"), str)
    assert result == {"api": "PbxSignal", "mt": "RegisterResult", "src": "r"}
    await client.close()
    other = await server.connect()
    with pytest.raises(LoginFailed):
        await other.login(password="bot-secret", app="helpdesk-bot", sip="alice")


async def test_keepalive_after_login(server: RunningServer) -> None:
    phone = await server.phone("alice")
    await phone.sync()
