"""The hub's link writes the Posts of one turn to the messages service in one go, each
still a frame of its own (PROTOCOL §7, docs/protocol.md 12.40)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from signaling.appwebsocket.client import AppWebsocketClient
from tests.integration.test_messages import call_offline, read_chat, session
from tests.support import RunningServer, drained


async def test_messages_sent_in_one_read_reach_the_service_in_one_write(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Alice sends 30 messages in one write to Bob, who is offline: the hub makes 30
    Posts in one turn, the outbox makes them durable together, and the link writes them
    together; Bob finds all 30, in order."""
    writes: list[list[str]] = []
    send_texts = AppWebsocketClient.send_texts

    async def recorded(client: AppWebsocketClient, texts: Sequence[str]) -> None:
        writes.append(list(texts))
        await send_texts(client, texts)

    monkeypatch.setattr(AppWebsocketClient, "send_texts", recorded)
    alice = await server.phone("alice")
    await call_offline(alice, "bob")
    frames = [
        json.dumps(
            {
                "api": "PbxSignal",
                "mt": "Signaling",
                "call": 1,
                "sig": {
                    "type": "facility",
                    "fty": [
                        {"type": "im_message", "mime": "text/plain", "data": f"m{n}", "id": f"i{n}"}
                    ],
                },
            }
        )
        for n in range(30)
    ]
    await alice.client.send_texts(frames)
    acks = [await alice.fty(1) for _ in range(30)]
    assert [(ack["id"], ack["state"]) for ack in acks] == [(f"i{n}", "stored") for n in range(30)]
    await drained(server)
    posts = [[text for text in write if '"mt":"Post"' in text] for write in writes]
    assert sum(map(len, posts)) == 30
    assert max(map(len, posts)) > 1  # together, not one write per Post
    bob = await server.phone("bob")
    await session(bob)
    texts = [message["text"] for message in await read_chat(bob, "alice", count=50)]
    assert texts == [f"m{n}" for n in reversed(range(30))]
