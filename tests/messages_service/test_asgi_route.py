"""The service's WebSocket as an ASGI route, for servers other than ``switchboard serve``
(``messages_service.asgi_socket``): the same connection, the same wire rules."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
import uvicorn

from config import Config
from messages_service import create_messages_app
from signaling.appwebsocket.errors import LoginFailed
from signaling.server import bound_socket, uvicorn_config
from tests.messages_service.support import (
    DOMAIN,
    RunningService,
    chat_post,
    service_config,
)


@contextlib.asynccontextmanager
async def asgi_service(config: Config) -> AsyncIterator[RunningService]:
    """The service under uvicorn's own WebSocket protocol: every path through ASGI."""
    app = create_messages_app(config)
    sock = bound_socket("127.0.0.1", 0)
    options = uvicorn_config(app, config, log_level="warning", ws="websockets-sansio")
    server = uvicorn.Server(options)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.005)
        running = RunningService(app.state.messages_service, sock.getsockname()[1], config)
        try:
            yield running
        finally:
            for link in running.links:
                with contextlib.suppress(Exception):
                    await link.client.close()
    finally:
        server.should_exit = True
        await task
        sock.close()


async def test_a_hub_logs_in_posts_and_reads_over_the_asgi_route(sqlite_url: str) -> None:
    async with asgi_service(service_config(sqlite_url)) as running:
        hub = await running.hub()
        await hub.client.send_text("{not json")
        assert (await hub.client.recv())["code"] == "bad_json"
        for key in range(1, 21):
            assert (await hub.post(key, **chat_post("alice", "bob", key)))["mt"] == "PostResult"
        assert len(await hub.user("bob").read("alice")) == 20
        await hub.client.send_text(b"\x00")
        assert (await hub.client.wait_closed())[0] == 4003


async def test_a_failed_login_closes_4001_and_a_silent_hub_4006(sqlite_url: str) -> None:
    config = service_config(sqlite_url)
    config = replace(config, limits=replace(config.limits, idle_timeout=0.4))
    async with asgi_service(config) as running:
        client = await running.connect()
        with pytest.raises(LoginFailed):
            await client.login(app="messages", sip="messages", domain=DOMAIN, password="wrong")
        assert (await client.wait_closed())[0] == 4001
        hub = await running.hub()
        await hub.sync()
        assert (await hub.client.wait_closed(timeout=10))[0] == 4006
        assert len(running.service.hubs) == 0


async def test_stopping_the_service_closes_asgi_links_1012(sqlite_url: str) -> None:
    async with asgi_service(service_config(sqlite_url)) as running:
        hub = await running.hub()
        await running.service.stop()
        assert (await hub.client.wait_closed())[0] == 1012
