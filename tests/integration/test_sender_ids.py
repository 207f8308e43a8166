"""A stored message's id is its sender's key across calls, devices and restarts, end to
end (PROTOCOL §4.6 revised, docs/protocol.md 12.21). The kill -9 runs are in
``test_faults``; these are the quiet paths, over a real server and database."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import httpx

from tests.integration.test_health_metrics import sample
from tests.integration.test_messages import (
    call_offline,
    forget_acknowledgements,
    read_chat,
    say_stored,
    session,
)
from tests.support import RunningServer, drained, make_config, running_server


async def metrics(server: RunningServer) -> str:
    async with httpx.AsyncClient(base_url=server.http, timeout=10) as http:
        return (await http.get("/metrics")).text


async def test_a_resend_from_another_device_on_a_new_call_is_stored_once(tmp_path: Path) -> None:
    async with running_server(data_dir=tmp_path) as server:
        phone = await server.phone("alice")
        await call_offline(phone, "bob")
        original = await say_stored(phone, 1, "only once", "k1")
        laptop = await server.phone("alice")
        await call_offline(laptop, "bob")
        assert await say_stored(laptop, 1, "only once", "k1") == original
        assert (await say_stored(laptop, 1, "next", "k2"))["seq"] == 1  # this call's own
        await drained(server)
        bob = await server.phone("bob")
        await session(bob)
        history = await read_chat(bob, "alice")
        assert [m["text"] for m in history] == ["next", "only once"]
        text = await metrics(server)
        assert sample(text, 'switchboard_resends_total{by="hub"}') == 1
        assert sample(text, 'switchboard_resends_total{by="service"}') == 0
        assert sample(text, "switchboard_sender_ids") == 2


async def test_a_restarted_hub_answers_journaled_ids_with_the_original(tmp_path: Path) -> None:
    """The hub dies after its journal has the Post but before the client saw the ack:
    after the restart the client resends on a new call and hears the original."""
    async with running_server(data_dir=tmp_path) as server:
        alice = await server.phone("alice")
        await call_offline(alice, "bob")
        original = await say_stored(alice, 1, "before the crash", "j1")
        await drained(server)
    forget_acknowledgements(tmp_path)  # as if the service's answer never got written
    async with running_server(data_dir=tmp_path) as server:
        alice = await server.phone("alice")
        await call_offline(alice, "bob")
        assert await say_stored(alice, 1, "before the crash", "j1") == original
        await drained(server)
        await session(alice)
        assert [m["text"] for m in await read_chat(alice, "bob")] == ["before the crash"]


async def test_an_id_the_hub_forgot_is_corrected_by_the_service(tmp_path: Path) -> None:
    """With the hub's memory off, the service still stores nothing twice, and the
    writer's ack is corrected to the original's seq and time."""
    base = make_config()
    config = replace(base, signaling=replace(base.signaling, sender_ids=0))
    async with running_server(config, data_dir=tmp_path) as server:
        alice = await server.phone("alice")
        await call_offline(alice, "bob")
        await say_stored(alice, 1, "first", "f0")
        original = await say_stored(alice, 1, "twice?", "f1")
        await call_offline(alice, "bob", number=2)
        await say_stored(alice, 2, "fresh", "f2")
        first_answer = await say_stored(alice, 2, "twice?", "f1")
        assert first_answer["seq"] == 2  # this call's number, until the service says
        corrected = await alice.fty(2)
        assert corrected == original
        await drained(server)
        await session(alice)
        history = await read_chat(alice, "bob")
        assert [m["text"] for m in history] == ["fresh", "twice?", "first"]
        text = await metrics(server)
        assert sample(text, 'switchboard_resends_total{by="service"}') == 1
        assert sample(text, "switchboard_sender_ids") == 0  # the memory is off
