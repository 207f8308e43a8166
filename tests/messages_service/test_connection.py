"""The service's AppWebsocket wire rules, the same as the hub's (PROTOCOL §1, §3, §12.10)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from signaling.appwebsocket.errors import LoginFailed
from tests.messages_service.support import (
    DOMAIN,
    PASSWORD,
    RunningService,
    chat_post,
    running_service,
    service_config,
)


async def test_the_hub_logs_in_as_app_object_messages(sqlite_service: RunningService) -> None:
    client = await sqlite_service.connect()
    result = await client.login(app="messages", sip="messages", domain=DOMAIN, password=PASSWORD)
    assert result == {"mt": "AppLoginResult", "ok": True, "domain": DOMAIN, "dn": ""}
    await client.send({"mt": "PbxInfo", "domain": DOMAIN, "pbx": "hub-1"})  # no answer
    await client.send({"mt": "KeepAlive"})
    assert await client.recv() == {"mt": "KeepAlive"}
    assert len(sqlite_service.service.hubs) == 1


async def test_any_other_login_fails_and_closes_4001(sqlite_service: RunningService) -> None:
    for app, sip, password in [
        ("messages", "messages", "wrong"),
        ("messages", "alice", PASSWORD),  # acting for a user: not in this release
        ("other-app", "", PASSWORD),
        ("", "alice", "alice-demo"),  # users never log in here
    ]:
        client = await sqlite_service.connect()
        with pytest.raises(LoginFailed) as failure:
            await client.login(app=app, sip=sip, domain=DOMAIN, password=password)
        assert failure.value.error == 1 and failure.value.text == "login failed"
        assert (await client.wait_closed())[0] == 4001


async def test_before_login_only_the_handshake_and_keepalive(
    sqlite_service: RunningService,
) -> None:
    client = await sqlite_service.connect()
    await client.send({"mt": "KeepAlive"})
    assert await client.recv() == {"mt": "KeepAlive"}
    await client.send({"mt": "ReadBadge", "src": 1, "domain": DOMAIN, "user": "bob"})
    answer = await client.recv()
    assert answer["mt"] == "Error" and answer["code"] == "not_logged_in" and answer["src"] == 1
    await client.send({"mt": "Post", "src": 2})
    assert (await client.recv())["code"] == "not_logged_in"
    await client.login(app="messages", domain=DOMAIN, password=PASSWORD)  # empty sip: itself
    await client.send({"mt": "AppChallenge", "src": 3})
    assert (await client.recv())["code"] == "bad_state"


async def test_a_connection_that_does_not_log_in_in_time_is_closed(sqlite_url: str) -> None:
    async with running_service(service_config(sqlite_url, timeout=0.2)) as service:
        client = await service.connect()
        await client.send({"mt": "AppChallenge"})
        assert (await client.recv())["mt"] == "AppChallengeResult"
        assert (await client.wait_closed(timeout=10))[0] == 4001


async def test_bad_json_is_answered_and_a_logged_in_hub_stays(
    sqlite_service: RunningService,
) -> None:
    """A hub forwards its clients' requests: their mistakes are answered one by one and
    never cut the link that every other user's session rides on."""
    hub = await sqlite_service.hub()
    client = hub.client
    await client.send_text("{not json")
    assert await client.recv() == {"mt": "Error", "code": "bad_json", "text": "not JSON"}
    await client.send({"no": "mt"})
    assert (await client.recv())["code"] == "bad_json"
    await client.send({"mt": "Frobnicate", "src": "x"})
    unknown = await client.recv()
    assert unknown["code"] == "unknown_mt" and unknown["src"] == "x"
    for _ in range(30):
        await client.send({"mt": "ReadChat", "src": "s", "domain": DOMAIN})  # no user
        assert (await client.recv())["code"] == "bad_json"
    await client.send({"mt": "KeepAlive"})
    assert await client.recv() == {"mt": "KeepAlive"}


async def test_ten_bad_frames_in_a_row_before_login_close_4002(
    sqlite_service: RunningService,
) -> None:
    client = await sqlite_service.connect()
    await client.send_text("[]")
    assert (await client.recv())["code"] == "bad_json"
    await client.send({"mt": "KeepAlive"})  # any good frame resets the count
    assert await client.recv() == {"mt": "KeepAlive"}
    for _ in range(10):
        await client.send_text("[]")
    assert (await client.wait_closed())[0] == 4002


async def test_a_binary_frame_closes_4003(sqlite_service: RunningService) -> None:
    hub = await sqlite_service.hub()
    await hub.client.send_text(b"\x00\x01")
    assert (await hub.client.wait_closed())[0] == 4003


async def test_a_post_with_bad_fields_is_refused_alone(sqlite_service: RunningService) -> None:
    hub = await sqlite_service.hub()
    good = {
        "domain": DOMAIN,
        "author": "alice",
        "dn": "Alice",
        "topic": "alice",
        "peer": "bob",
        "peer_dn": "Bob",
        "sides": ["alice", "bob"],
        "text": "fine",
        "callId": "c1",
        "seq": 1,
        "time": 1,
    }
    for key, (field, value) in enumerate(
        [
            ("seq", "1"),
            ("seq", -1),
            ("sides", ["mallory"]),
            ("sides", []),
            ("text", "nul \x00 inside"),
            ("text", "lone \ud800 surrogate"),
            ("topic", "bob"),
            ("callId", None),
        ],
        start=1,
    ):
        answer = await hub.post(key, **{**good, field: value})
        assert answer["mt"] == "Error" and answer["code"] == "bad_json", (field, answer)
    assert (await hub.post(99, **good))["mt"] == "PostResult"
    assert [m["text"] for m in await hub.user("bob").read("alice")] == ["fine"]


async def test_stopping_the_service_closes_hub_links_with_1012(sqlite_url: str) -> None:
    async with running_service(service_config(sqlite_url)) as service:
        hub = await service.hub()
        await service.service.stop()
        assert (await hub.client.wait_closed())[0] == 1012
        client = await service.connect()  # a late connection is turned away the same way
        assert (await client.wait_closed())[0] == 1012


async def test_a_hub_that_reads_slowly_is_slowed_down_not_cut_off(sqlite_url: str) -> None:
    """A batch answers every Post and sends a Badge per receiver: far more frames than
    ``limits.send_queue`` when it is small. The service stops reading from the hub
    until they drain instead of closing the link 4008."""
    config = service_config(sqlite_url)
    config = replace(config, limits=replace(config.limits, send_queue=4))
    async with running_service(config) as running:
        hub = await running.hub()
        posts = [chat_post("alice", "bob", seq, call_id=f"call-{seq}") for seq in range(1, 101)]
        for key, fields in enumerate(posts, start=1):  # all at once, nothing read yet
            await hub.client.send({"mt": "Post", "src": key, "type": 1, **fields})
        await asyncio.sleep(0.2)
        answers = [await hub.answer_to(key) for key in range(1, 101)]
        assert all(answer["mt"] == "PostResult" for answer in answers)
        badges = await hub.take("Badge")
        assert badges and badges[-1]["count"] == 100
        (chat,) = (await hub.user("bob").chats()).values()
        assert chat["unread"] == 100
