"""The service's AppWebsocket on the transport (docs/protocol.md 12.40): the edges the wire
rules of ``test_connection`` do not reach. Frames that arrive in one read, frames too big
or not UTF-8, closes from either side, the idle watchdog, and a hub that reads the
service's answers slowly."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Callable
from dataclasses import replace

import pytest
import websockets
from websockets.asyncio.client import connect

from messages_service.connection import Connection
from signaling.appwebsocket import closecodes
from signaling.appwebsocket.client import AppWebsocketClient
from tests.messages_service.support import (
    DOMAIN,
    PASSWORD,
    HubLink,
    JsonObject,
    RunningService,
    chat_post,
    running_service,
    service_config,
)


def _connection(running: RunningService) -> Connection:
    """The service's side of the one hub link of ``running``."""
    (peer,) = running.service.hubs._peers
    assert isinstance(peer, Connection)
    return peer


async def test_frames_of_one_read_are_answered_in_order_behind_a_request(
    sqlite_service: RunningService,
) -> None:
    """Several frames in one write reach the service in one read: the request that waits
    for the database is answered before any frame behind it is."""
    hub = await sqlite_service.hub()
    await hub.client.send_texts(
        [
            json.dumps({"mt": "KeepAlive"}),
            "{not json",
            json.dumps({"mt": "ReadBadge", "src": "b", "domain": DOMAIN, "user": "bob"}),
            json.dumps({"mt": "Frobnicate", "src": "x"}),
            json.dumps({"mt": "KeepAlive"}),
        ]
    )
    answers = [await hub.client.recv() for _ in range(5)]
    assert [answer["mt"] for answer in answers] == [
        "KeepAlive",
        "Error",
        "ReadBadgeResult",
        "Error",
        "KeepAlive",
    ]
    assert answers[1]["code"] == "bad_json" and answers[3]["code"] == "unknown_mt"


async def test_posts_of_one_read_are_all_stored_and_answered(
    sqlite_service: RunningService,
) -> None:
    hub = await sqlite_service.hub()
    frames = [
        json.dumps({"mt": "Post", "src": key, "type": 1, **chat_post("alice", "bob", key)})
        for key in range(1, 51)
    ]
    await hub.client.send_texts(frames)
    answers = [await hub.answer_to(key) for key in range(1, 51)]
    assert all(answer["mt"] == "PostResult" for answer in answers)
    assert len(await hub.user("bob").read("alice", count=100)) == 50


async def test_a_frame_over_max_frame_closes_1009(sqlite_url: str) -> None:
    config = service_config(sqlite_url)
    config = replace(config, limits=replace(config.limits, max_frame=4096))
    async with running_service(config) as running:
        hub = await running.hub()
        await hub.client.send({"mt": "KeepAlive", "pad": "x" * 3000})  # under it: fine
        assert (await hub.client.recv())["mt"] == "KeepAlive"
        await hub.client.send({"mt": "KeepAlive", "pad": "x" * 5000})
        assert (await hub.client.wait_closed())[0] == 1009
        await _until(lambda: len(running.service.hubs) == 0)


async def test_a_text_frame_that_is_not_utf8_closes_1007(sqlite_service: RunningService) -> None:
    async with connect(sqlite_service.url, ping_interval=None) as ws:
        await ws.send('{"mt":"KeepAlive"}')
        assert json.loads(await ws.recv()) == {"mt": "KeepAlive"}
        await ws.send(b'{"mt":"KeepAlive","x":"\xff"}', text=True)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1007


async def test_bad_utf8_behind_a_frame_that_closed_in_the_same_read_is_not_read(
    sqlite_service: RunningService, caplog: pytest.LogCaptureFixture
) -> None:
    """A failed login closes 4001 at once; a frame that is not UTF-8 in the same read is
    not read after it: the peer gets the 4001, and the transport's read ends cleanly (a
    second close would raise out of ``data_received``, which asyncio logs as fatal)."""
    caplog.set_level(logging.ERROR)
    async with connect(sqlite_service.url, ping_interval=None) as ws:
        login = {"mt": "AppLogin", "app": "messages", "sip": "messages", "domain": DOMAIN}
        ws.protocol.send_text(json.dumps(login | {"digest": "0" * 64}).encode())
        ws.protocol.send_text(b'{"mt":"KeepAlive","x":"\xff"}')
        ws.transport.write(b"".join(ws.protocol.data_to_send()))  # one write, one read
        assert json.loads(await ws.recv())["mt"] == "AppLoginResult"
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == closecodes.WS_4001_LOGIN_FAILED
    await _until(lambda: len(sqlite_service.service.hubs) == 0)
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


async def test_a_hub_that_closes_is_gone_at_once(sqlite_service: RunningService) -> None:
    hub = await sqlite_service.hub()
    assert len(sqlite_service.service.hubs) == 1
    await hub.client.close(1000)
    await _until(lambda: len(sqlite_service.service.hubs) == 0)
    again = await sqlite_service.hub()  # and the service takes the next one as before
    await again.sync()
    assert len(sqlite_service.service.hubs) == 1


async def test_a_logged_in_hub_silent_for_idle_timeout_is_closed_4006(sqlite_url: str) -> None:
    """One watchdog per connection: frames keep a hub alive, silence ends it. Answering
    the WebSocket pings (the client's stack does) is not enough on this link: the hub
    sends KeepAlive, as its link does."""
    config = service_config(sqlite_url)
    config = replace(config, limits=replace(config.limits, idle_timeout=1.0))
    async with running_service(config) as running:
        hub = await running.hub()
        for _ in range(8):  # 2 s of KeepAlives, well past idle_timeout
            await asyncio.sleep(0.25)
            await hub.sync()
        closed = await hub.client.wait_closed(timeout=10)
        assert closed[0] == 4006


async def test_a_hub_that_does_not_read_is_no_longer_read_from(sqlite_url: str) -> None:
    """The service's answers back up to the hub (its window is small and full): the
    service stops reading from it instead of queueing without bound or closing the link,
    and once the hub reads, every answer arrives, whole and in order."""
    config = service_config(sqlite_url)
    config = replace(config, limits=replace(config.limits, send_queue=4))
    async with running_service(config) as running:
        hub = await _small_window_hub(running)
        big = "x" * 50_000
        posts = [chat_post("alice", "bob", seq, big, call_id="big") for seq in range(1, 41)]
        for key, fields in enumerate(posts, start=1):
            assert (await hub.post(key, **fields))["mt"] == "PostResult"
        session = {"user": "bob", "domain": DOMAIN, "session": "s-bob"}
        for index in range(8):  # 8 x 40 x 50 kB answers, nothing read meanwhile
            request = {"mt": "ReadChat", "src": f"r{index}", "sip": "alice", "count": 40}
            await hub.client.send({**request, **session})
        connection = _connection(running)
        await _until(lambda: connection.held)
        for index in range(8):
            answers = [await _answer(hub) for _ in range(41)]
            assert [answer["src"] for answer in answers] == [f"r{index}"] * 41
            assert [answer["mt"] for answer in answers] == ["ReadChatInd"] * 40 + ["ReadChatResult"]
            assert all(answer["msg"]["text"] == big for answer in answers[:40])
        await hub.sync()
        assert not connection.held and len(running.service.hubs) == 1


async def test_a_connection_gone_while_its_request_waits_finishes_quietly(
    sqlite_service: RunningService,
) -> None:
    """The request's answer is dropped; ``stop`` still finds the connection finished."""
    hub = await sqlite_service.hub()
    session = {"user": "bob", "domain": DOMAIN, "session": "s-bob"}
    await hub.client.send({"mt": "ReadChats", "src": "r", **session})
    await hub.client.close(1001)
    await _until(lambda: len(sqlite_service.service.hubs) == 0)
    with_nothing_pending = await sqlite_service.hub()
    await with_nothing_pending.sync()


async def _answer(hub: HubLink) -> JsonObject:
    """The next frame that answers a request (a ``Badge`` of the Posts may come first)."""
    while "src" not in (message := await hub.client.recv(timeout=30)):
        hub.notifications.append(message)
    return message


async def _small_window_hub(running: RunningService) -> HubLink:
    """A logged-in hub whose socket takes in little at a time: what it does not read
    soon fills the path back to the service."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", running.port))
    ws = await connect(
        running.url, sock=sock, max_size=None, ping_interval=None, compression=None, max_queue=4
    )
    client = AppWebsocketClient(ws)
    running.links.append(HubLink(client))
    await client.login(app="messages", sip="messages", domain=DOMAIN, password=PASSWORD)
    return running.links[-1]


async def _until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait until ``condition()`` holds (polling the loop, never a fixed sleep)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)
