"""Calls across hub nodes that are separate ``switchboard serve`` processes on a private
Redis (issue 17's tests; SCALE.md "Testing on one 2-core machine"): a long chat sends
the frames one node sends, and a fork to one user's devices on three nodes, all
answering at once, has one winner every time."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.integration.cluster_processes import ClusterNodes, cluster
from tests.signaling.core.cluster_harness import without_ids
from tests.support import Phone

JsonObject = dict[str, Any]

HALF = 500
"""Messages each side writes in the long chat."""


async def frames(phone: Phone, count: int) -> list[JsonObject]:
    return [await phone.next() for _ in range(count)]


async def long_chat(alice: Phone, bob: Phone) -> tuple[list[JsonObject], list[JsonObject]]:
    """Alice calls Bob with an early message; Bob rings and answers; Alice writes
    ``HALF`` messages with ids, then Bob as many; Alice types; Bob hangs up. Every frame
    each of them got, in order (each side writes in one burst, so the order of what each
    gets does not depend on timing)."""
    got: tuple[list[JsonObject], list[JsonObject]] = ([], [])
    early = {"mime": "text/plain", "data": "early", "id": "e0"}
    await alice.setup(1, "bob", early)
    got[0].extend(await frames(alice, 2))  # call_proc, held
    (offer,) = await frames(bob, 1)
    got[1].append(offer)
    number = offer["call"]
    await bob.signal(number, {"type": "alert"})
    got[0].extend(await frames(alice, 1))
    await bob.signal(number, {"type": "conn"})
    got[0].extend(await frames(alice, 2))  # conn, delivered
    got[1].extend(await frames(bob, 1))
    for writer, call, reader, mine, theirs in ((alice, 1, bob, 0, 1), (bob, number, alice, 1, 0)):
        for n in range(HALF):
            await writer.say(call, f"{writer.sip} {n} <b>bold</b>", id=f"{writer.sip}{n}")
        got[theirs].extend(await frames(reader, HALF))
        got[mine].extend(await frames(writer, HALF))
    for typing in (True, False):
        await alice.signal(
            1, {"type": "facility", "fty": [{"type": "im_message", "typing": typing}]}
        )
    got[1].extend(await frames(bob, 2))
    await bob.signal(number, {"type": "rel"})
    got[0].extend(await frames(alice, 1))
    await alice.sync()
    await bob.sync()
    return got


def items(frames: list[JsonObject], kind: str) -> list[JsonObject]:
    return [
        item
        for frame in frames
        if frame.get("mt") == "Signaling"
        for item in frame["sig"].get("fty", ())
        if item["type"] == kind and "typing" not in item
    ]


async def test_a_thousand_messages_across_nodes_are_the_frames_of_one_node(tmp_path: Path) -> None:
    solo = ClusterNodes(tmp_path / "solo", None, "", ("solo",))
    try:
        await solo.start()
        alone = await long_chat(await solo.phone("solo", "alice"), await solo.phone("solo", "bob"))
    except BaseException:
        print(solo.logs())
        raise
    finally:
        solo.stop()
    async with cluster(tmp_path / "cluster", "a", "b") as (_, nodes):
        spread = await long_chat(await nodes.phone("a", "alice"), await nodes.phone("b", "bob"))
    relayed = items(spread[0], "im_message") + items(spread[1], "im_message")
    assert sorted(message["seq"] for message in relayed) == list(range(1, 2 * HALF + 2))
    acks = items(spread[0], "im_ack") + items(spread[1], "im_ack")
    delivered = sorted(ack["id"] for ack in acks if ack["state"] == "delivered")
    assert delivered == sorted(
        ["e0", *(f"{sip}{n}" for sip in ("alice", "bob") for n in range(HALF))]
    )
    assert without_ids(list(spread), dropped=("time",)) == without_ids(
        list(alone), dropped=("time",)
    )


async def fork(alice: Phone, devices: list[Phone], number: int) -> Phone:
    """Alice calls Bob, whose devices all answer at once: the one that won. A loser's
    ``conn`` came after the winner's: ``bad_state``, as on one node."""
    await alice.setup(number, "bob")
    await alice.sig(number, "call_proc")
    offers = {device: (await device.offered())[0] for device in devices}
    return await one_winner(alice, number, offers, "bad_state")


async def one_winner(caller: Phone, number: int, offers: dict[Phone, int], late: str) -> Phone:
    """Every offered device answers at once; the caller hears one ``conn`` and hangs up.
    The winner hears cause 16; each other device 26, then the ``late`` error for its
    ``conn`` (told on its own node, or at the call's home if it crossed the ``rel``)."""
    await asyncio.gather(
        *(device.signal(offer, {"type": "conn"}) for device, offer in offers.items())
    )
    await caller.sig(number, "conn")
    await caller.signal(number, {"type": "rel"})
    winners = []
    for device, offer in offers.items():
        cause = (await device.sig(offer, "rel"))["sig"]["cau"]
        if cause["num"] == 16:
            winners.append(device)
            continue
        assert cause == {"loc": 1, "num": 26}
        refused = await device.next()
        assert (refused["mt"], refused["code"], refused["call"]) == ("Error", late, offer), refused
    (winner,) = winners
    return winner


async def test_a_fork_to_devices_on_three_nodes_all_answering_has_one_winner(
    tmp_path: Path,
) -> None:
    async with cluster(tmp_path, "a", "b", "c") as (_, nodes):
        alice = await nodes.phone("a", "alice")
        devices = [await nodes.phone(name, "bob") for name in ("a", "b", "c")]
        winners = [await fork(alice, devices, number) for number in range(1, 201)]
        for phone in (alice, *devices):
            await phone.sync()
    assert len(winners) == 200
