"""Connections that leave nothing behind (docs/benchmarks.md, bench/idle.py): over a real
server, counts of what the hub keeps (``Hub.held``, ``switchboard_held`` on ``/metrics``)
while connections are idle and once they have gone. Counts, never bytes or timings."""

from __future__ import annotations

import asyncio
import re

import httpx

from tests.support import Phone, RunningServer, make_config, running_server

GRACE = 60.0
USERS = ("alice", "bob", "carol", "dave")


async def _settled(server: RunningServer, timeout: float = 10.0) -> dict[str, int]:
    """What the hub holds once it has seen every close (real I/O: bounded wait)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    held = server.hub.held()
    while any(held.values()) and loop.time() < deadline:
        await asyncio.sleep(0.02)
        held = server.hub.held()
    return held


async def _sent(server: RunningServer, timeout: float = 10.0) -> dict[str, int]:
    """What the hub holds once every frame is sent (real I/O: bounded wait)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    held = server.hub.held()
    while held["send_queues"] and loop.time() < deadline:
        await asyncio.sleep(0.02)
        held = server.hub.held()
    return held


async def test_idle_connections_hold_no_queue_and_closed_ones_leave_nothing() -> None:
    async with running_server(make_config(grace=GRACE)) as server:
        await server.service_ready()
        phones = [await server.phone(sip) for sip in USERS * 5]
        await phones[0].setup(1, "bob")  # a chat, so calls and queues come and go too
        await phones[0].sig(1, "call_proc")
        number, _ = await phones[1].offered()
        await phones[1].signal(number, {"type": "conn"})
        await phones[0].sig(1, "conn")
        await phones[0].say(1, "hello")
        await phones[1].fty(number)
        held = await _sent(server)
        assert held["sockets"] == held["connections"] == held["registrations"] == 20
        assert held["send_queues"] == 0  # idle: no queue and no writer task
        assert held["login_deadlines"] == 0 and held["throttle_keys"] == 0
        assert held["timers"] <= 3  # the idle check, the resume grace, the call's ring

        for index, phone in enumerate(phones):
            if index % 2:
                await phone.client.close()
            else:
                _abort(phone)
        await server.advance(GRACE)
        assert await _settled(server) == dict.fromkeys(held, 0)
        async with httpx.AsyncClient(base_url=server.http, timeout=10) as http:
            metrics = (await http.get("/metrics")).text
        shown = dict(re.findall(r'^switchboard_held\{what="(\w+)"\} (\d+)$', metrics, re.M))
        assert shown == dict.fromkeys(held, "0")


def _abort(phone: Phone) -> None:
    """Cut the TCP connection under the WebSocket: no close frame, a lost link."""
    phone.client._ws.transport.abort()
