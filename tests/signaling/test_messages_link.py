"""The hub's link to the messages service watches the service's silence with one timer
(PROTOCOL §7.1): frames keep it up, three KeepAlive periods of nothing end it.

The service here is a real WebSocket server on loopback that plays the login and then
either answers every KeepAlive or answers nothing at all."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from websockets.asyncio.server import ServerConnection, serve

from config import MessagesConfig
from signaling.messages_link import ServiceLink
from signaling.post_outbox import PostOutbox

KEEPALIVE = 0.2


@contextlib.asynccontextmanager
async def fake_service(answers_keepalive: bool) -> AsyncIterator[str]:
    """A service that logs every hub in, then answers its KeepAlives, or goes silent."""

    async def handler(ws: ServerConnection) -> None:
        async for text in ws:
            mt = json.loads(text)["mt"]
            if mt == "AppChallenge":
                await ws.send(json.dumps({"mt": "AppChallengeResult", "challenge": "c"}))
            elif mt == "AppLogin":
                await ws.send(json.dumps({"mt": "AppLoginResult", "ok": True}))
            elif mt == "KeepAlive" and answers_keepalive:
                await ws.send(json.dumps({"mt": "KeepAlive"}))

    async with serve(handler, "127.0.0.1", 0, ping_interval=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/messages/websocket"


@contextlib.asynccontextmanager
async def running_link(url: str, tmp_path: Path, events: list[str]) -> AsyncIterator[ServiceLink]:
    wake = asyncio.Event()
    outbox = PostOutbox(tmp_path / "outbox.jsonl", on_durable=lambda acks: None, on_ready=wake.set)
    await outbox.open()
    config = MessagesConfig(keepalive=KEEPALIVE, reconnect_min=0.05, reconnect_max=0.05)
    link = ServiceLink(
        url,
        password="secret",
        domain="example.com",
        node="n1",
        config=config,
        outbox=outbox,
        wake=wake,
        on_up=lambda: events.append("up"),
        on_down=lambda: events.append("down"),
        on_message=lambda message: None,
    )
    link.start()
    try:
        yield link
    finally:
        await link.stop()
        await outbox.close()


async def _until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def test_a_service_that_answers_keeps_the_link_up(tmp_path: Path) -> None:
    events: list[str] = []
    async with (
        fake_service(answers_keepalive=True) as url,
        running_link(url, tmp_path, events) as link,
    ):
        await _until(lambda: link.up)
        await asyncio.sleep(KEEPALIVE * 6)  # six periods, each answered
        assert link.up and link.connects == 1 and events == ["up"]


async def test_a_silent_service_is_a_dead_link_and_the_hub_reconnects(tmp_path: Path) -> None:
    events: list[str] = []
    async with (
        fake_service(answers_keepalive=False) as url,
        running_link(url, tmp_path, events) as link,
    ):
        await _until(lambda: link.connects >= 2)
        assert events[:3] == ["up", "down", "up"]


async def test_the_hub_asks_for_post_results_and_reads_them(tmp_path: Path) -> None:
    """docs/protocol.md 12.48: the link's PbxInfo asks for ``PostResults``; one frame
    acknowledges several Posts, and a malformed one is passed over, the link kept."""
    infos: list[dict[str, object]] = []

    async def handler(ws: ServerConnection) -> None:
        async for text in ws:
            message = json.loads(text)
            mt = message["mt"]
            if mt == "AppChallenge":
                await ws.send(json.dumps({"mt": "AppChallengeResult", "challenge": "c"}))
            elif mt == "AppLogin":
                await ws.send(json.dumps({"mt": "AppLoginResult", "ok": True}))
            elif mt == "PbxInfo":
                infos.append(message)
            elif mt == "Post" and message["src"] == 3:  # the last of three
                for bad in ({"mt": "PostResults"}, {"mt": "PostResults", "ids": [[], ["1"], 7]}):
                    await ws.send(json.dumps(bad))
                await ws.send(json.dumps({"mt": "PostResults", "ids": [[1, 11], [2, 12], [3, 13]]}))

    events: list[str] = []
    async with serve(handler, "127.0.0.1", 0, ping_interval=None) as server:
        url = f"ws://127.0.0.1:{next(iter(server.sockets)).getsockname()[1]}/messages/websocket"
        async with running_link(url, tmp_path, events) as link:
            await _until(lambda: link.up)
            outbox = link._outbox
            for seq in (1, 2, 3):
                outbox.add({"mt": "Post", "seq": seq}, None)
            await _until(lambda: outbox.acknowledged == 3)
            assert outbox.pending == {} and link.up and events == ["up"]
    assert [info.get("batchedResults") for info in infos] == [True]
