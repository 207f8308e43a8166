"""``message.offline`` webhooks from a real server (PROTOCOL §9.6): a message nobody could
receive nor store is posted, signed, to the operator's receiver (mocked with respx)."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import replace

import httpx
import respx

from config import Config
from tests.support import make_config, posted, running_server

URL = "https://hooks.example.test/in"
SECRET = "integration-hook-secret"


def hooked_config() -> Config:
    config = make_config()
    hooks = replace(config.webhooks, url=URL, secret=SECRET)
    return replace(config, webhooks=hooks)


async def test_a_message_to_an_offline_volatile_user_is_posted() -> None:
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(URL).mock(return_value=httpx.Response(200))
        async with running_server(hooked_config()) as server:
            dave = await server.phone("dave")
            await dave.setup(1, "carol", {"mime": "text/plain", "data": "call me <now>"})
            await dave.sig(1, "rel")
            (request,) = await posted(route, 1)
            body = json.loads(request.content)
            assert body["event"] == "message.offline"
            assert body["data"] == {
                "domain": "example.com",
                "from": "dave",
                "from_dn": "Dave Example",
                "to": "carol",
                "text": "call me &lt;now&gt;",
                "mime": "text/html",
                "reason": "unreachable",
            }
            signature = hmac.new(SECRET.encode(), request.content, hashlib.sha256).hexdigest()
            assert request.headers["x-switchboard-signature"] == f"sha256={signature}"


async def test_messages_held_for_a_chat_nobody_answers_are_posted() -> None:
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(URL).mock(return_value=httpx.Response(200))
        async with running_server(hooked_config()) as server:
            dave, carol = await server.phone("dave"), await server.phone("carol")
            await dave.setup(1, "carol")
            await dave.sig(1, "call_proc")
            await carol.offered()
            await dave.say(1, "are you there?", id="m1")
            assert (await dave.fty(1))["state"] == "held"  # waits for a conn that never comes
            await server.advance(server.hub.switch.config.signaling.ring_timeout + 1)
            (request,) = await posted(route, 1)
            data = json.loads(request.content)["data"]
            assert (data["text"], data["reason"], data["to"]) == (
                "are you there?",
                "unanswered",
                "carol",
            )
