"""The service's WebSocket as an ASGI route, for servers other than ``switchboard serve``
(``messages_service.asgi_socket``): the same connection, the same wire rules."""

from __future__ import annotations

import contextlib
from dataclasses import replace

import pytest

from config import Config
from signaling.appwebsocket.errors import LoginFailed
from tests.messages_service.support import (
    DOMAIN,
    RunningService,
    chat_post,
    running_service,
    service_config,
)


def asgi_service(config: Config) -> contextlib.AbstractAsyncContextManager[RunningService]:
    """The service under uvicorn's own WebSocket protocol: every path through ASGI."""
    return running_service(config, ws="websockets-sansio")


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
