"""A service result reaches the client only once the hub routes by it (PROTOCOL §7.6,
docs/protocol.md 12.23).

A client written from the protocol calls a group the moment ``WriteGroupResult`` or
``WriteMemberResult`` arrives. Each round here does exactly that, with no pause between
the result and the ``setup``, and counts the setups the hub refused for not knowing the
change yet; and, the other way round, the setups it still let in right after the
``WriteMemberResult`` of a removal.

On loopback the service's frames usually reach the hub in one read, which hides a wrong
order; so the hub's link runs through a pacer that hands the hub one frame at a time
(``link_pacer``), as a network does. Runs with the service embedded, as its own uvicorn
app, and shared by two hubs.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import uvicorn

from config import Config
from messages_service.app import create_messages_app
from signaling.app import MESSAGES_WEBSOCKET_PATH
from signaling.server import bound_socket, uvicorn_config
from tests.integration.link_pacer import paced
from tests.integration.test_messages import ask, session
from tests.support import Phone, make_config, running_server

ROUNDS = 200
GAP = 0.001
"""Seconds between two frames of the service on the paced link: several times what a
client on loopback takes to answer the hub (about 0.2 ms here)."""
SECRET = "causal-link-secret"


@dataclass
class Tally:
    """What went wrong: (round, cause) of each refusal after a result that allowed the
    setup, and the rounds whose setup was let in after the removal's result."""

    create: list[tuple[int, object]] = field(default_factory=list)
    add: list[tuple[int, object]] = field(default_factory=list)
    remove: list[int] = field(default_factory=list)


async def call_group(phone: Phone, number: int, sip: str) -> object:
    """``setup`` to the group at once; None when joined (then left again), else the
    cause of the refusal."""
    await phone.setup(number, sip)
    first = await phone.sig(number)
    kind = first["sig"]["type"]
    if kind == "rel":
        return first["sig"].get("cau", {}).get("num")
    assert kind == "call_proc", first
    await phone.sig(number, "conn")
    await phone.signal(number, {"type": "rel"})
    await settled(phone)
    return None


async def settled(phone: Phone) -> None:
    """Wait until the hub has taken our ``rel``: a ``rel`` of its own that crossed ours
    (a member removed while joining) is read and dropped."""
    await phone.client.send({"mt": "KeepAlive"})
    while (message := await phone.next()) != {"mt": "KeepAlive"}:
        assert message.get("mt") == "Signaling" and message["sig"]["type"] == "rel", message


async def rounds(alice: Phone, bob: Phone, *, bob_asks: bool = False) -> Tally:
    """``ROUNDS`` times: alice creates a group and calls it at once; adds bob, who calls
    it at once; removes bob, who calls it at once again. With ``bob_asks`` bob, on
    another hub, learns each change from his own ``ReadGroups`` before calling."""
    tally = Tally()
    numbers = itertools.count(1)
    for n in range(ROUNDS):
        (created,) = await ask(alice, "WriteGroup", dn=f"Team {n}")
        assert created["mt"] == "WriteGroupResult", created
        group_id, sip = created["id"], created["sip"]
        refused = await call_group(alice, next(numbers), sip)
        if refused is not None:
            tally.create.append((n, refused))

        (added,) = await ask(alice, "WriteMember", grp=group_id, member="bob", admin=False)
        assert added["mt"] == "WriteMemberResult", added
        if bob_asks:
            assert sip in await groups_of(bob)
        refused = await call_group(bob, next(numbers), sip)
        if refused is not None:
            tally.add.append((n, refused))

        (removed,) = await ask(alice, "WriteMember", grp=group_id, member="bob", remove=True)
        assert removed["mt"] == "WriteMemberResult", removed
        if bob_asks:
            assert sip not in await groups_of(bob)
        if await call_group(bob, next(numbers), sip) is None:
            tally.remove.append(n)
    await alice.sync()
    await bob.sync()
    return tally


async def groups_of(phone: Phone) -> set[str]:
    *inds, result = await ask(phone, "ReadGroups")
    assert result["mt"] == "ReadGroupsResult", result
    return {ind["sip"] for ind in inds}


def check(tally: Tally) -> None:
    wrong: dict[str, list[Any]] = {
        "refused after WriteGroupResult": tally.create,
        "refused after WriteMemberResult": tally.add,
        "let in after a removal's WriteMemberResult": tally.remove,
    }
    counts = {what: len(which) for what, which in wrong.items()}
    assert counts == dict.fromkeys(wrong, 0), (counts, {w: r[:5] for w, r in wrong.items()})


def fast(config: Config) -> Config:
    """No rate limit in the way of a few thousand frames a second."""
    return replace(config, limits=replace(config.limits, rate=100_000.0, burst=100_000))


async def test_embedded_results_reach_the_client_after_the_hub_knows() -> None:
    link = functools.partial(paced, gap=GAP)
    async with running_server(fast(make_config()), service_link=link) as server:
        alice, bob = await server.phone("alice"), await server.phone("bob")
        await session(alice)
        check(await rounds(alice, bob))


async def test_split_results_reach_the_client_after_the_hub_knows(tmp_path: Path) -> None:
    """The service as its own uvicorn app (``--role messages``), frames paced."""
    async with (
        serving_service(service_config(tmp_path)) as url,
        paced(url, GAP) as link,
        running_server(hub_config(link), data_dir=tmp_path / "hub") as server,
    ):
        await server.service_ready()
        alice, bob = await server.phone("alice"), await server.phone("bob")
        await session(alice)
        check(await rounds(alice, bob))


async def test_every_hub_sharing_the_service_routes_by_what_its_clients_were_told(
    tmp_path: Path,
) -> None:
    """Two hubs share one service: alice, on the first, changes the group; bob, on the
    second, reads his groups there and calls at once. The service tells every hub, and
    tells each one before it answers anything read after the change."""
    async with (
        serving_service(service_config(tmp_path)) as url,
        paced(url, GAP) as first_link,
        paced(url, GAP) as second_link,
        running_server(hub_config(first_link), data_dir=tmp_path / "hub1") as first,
        running_server(hub_config(second_link), data_dir=tmp_path / "hub2") as second,
    ):
        await first.service_ready()
        await second.service_ready()
        alice, bob = await first.phone("alice"), await second.phone("bob")
        await session(alice)
        await session(bob)
        check(await rounds(alice, bob, bob_asks=True))


@contextlib.asynccontextmanager
async def serving_service(config: Config) -> AsyncIterator[str]:
    """The messages service alone (``--role messages``) as its own uvicorn app on a free
    port; yields the url the hub connects to."""
    sock = bound_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    app = create_messages_app(config)
    server = uvicorn.Server(uvicorn_config(app, config, log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.005)
        yield f"ws://127.0.0.1:{port}{MESSAGES_WEBSOCKET_PATH}"
    finally:
        server.should_exit = True
        await task
        sock.close()


def service_config(tmp_path: Path) -> Config:
    base = fast(make_config())
    return replace(
        base,
        messages=replace(base.messages, password=SECRET),
        server=replace(base.server, data_dir=tmp_path / "service"),
    )


def hub_config(url: str) -> Config:
    base = fast(make_config())
    return replace(base, messages=replace(base.messages, url=url, password=SECRET))
