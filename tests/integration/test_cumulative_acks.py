"""Cumulative acks end to end (docs/protocol.md 12.31): a device that registers with
``CUMULATIVE_ACK`` hears one ``im_ack`` for a run of its messages handled in one batch."""

from __future__ import annotations

import json
from typing import Any

from signaling.core.actions import Ack
from signaling.hub import _AckRun
from tests.support import PASSWORDS, Phone, RunningServer

JsonObject = dict[str, Any]

CUMULATIVE = "NO_MEDIA_CALL|CUMULATIVE_ACK"


async def phone(server: RunningServer, sip: str, flags: str = CUMULATIVE) -> Phone:
    client = await server.connect()
    await client.login(password=PASSWORDS[sip], sip=sip)
    device = Phone(client, sip)
    server.phones.append(device)
    result = await device.register(flags=flags)
    assert result == {"api": "PbxSignal", "mt": "RegisterResult", "src": "reg"}
    return device


async def pair(server: RunningServer, flags: str = CUMULATIVE) -> tuple[Phone, Phone, int]:
    alice, bob = await phone(server, "alice", flags), await phone(server, "bob")
    await alice.setup(1, "bob")
    await alice.sig(1, "call_proc")
    number, _ = await bob.offered()
    await bob.signal(number, {"type": "conn"})
    await alice.sig(1, "conn")
    return alice, bob, number


def messages(*ids: str) -> JsonObject:
    fty = [{"type": "im_message", "mime": "text/plain", "data": f"text {i}", "id": i} for i in ids]
    return {"type": "facility", "fty": fty}


async def burst(device: Phone, call: int, *sigs: JsonObject) -> None:
    """Several frames in one write, so that the hub reads them as one batch."""
    ws = device.client._ws
    for sig in sigs:
        message = {"api": "PbxSignal", "mt": "Signaling", "call": call, "sig": sig}
        ws.protocol.send_text(json.dumps(message).encode())
    ws.transport.write(b"".join(ws.protocol.data_to_send()))


async def relayed_seqs(device: Phone, call: int, count: int) -> list[int]:
    return [(await device.fty(call))["seq"] for _ in range(count)]


async def test_messages_of_one_frame_get_one_ack(server: RunningServer) -> None:
    alice, bob, call = await pair(server)
    await alice.signal(1, messages("a1", "a2", "a3"))
    ack = await alice.fty(1)
    assert ack == {
        "type": "im_ack",
        "ids": ["a1", "a2", "a3"],
        "seq": 3,
        "time": int(server.clock.wall()),
        "state": "delivered",
    }
    assert await relayed_seqs(bob, call, 3) == [1, 2, 3]
    await alice.sync()


async def test_messages_of_one_read_get_one_ack(server: RunningServer) -> None:
    alice, bob, call = await pair(server)
    await alice.say(1, "first", id="m0")
    assert await alice.fty(1) == {
        "type": "im_ack",
        "id": "m0",
        "seq": 1,
        "time": int(server.clock.wall()),
        "state": "delivered",
    }
    await burst(alice, 1, messages("m1"), messages("m2"), messages("m3", "m4"))
    ack = await alice.fty(1)
    assert (ack["ids"], ack["seq"], ack["state"]) == (["m1", "m2", "m3", "m4"], 5, "delivered")
    assert "id" not in ack
    assert await relayed_seqs(bob, call, 5) == [1, 2, 3, 4, 5]
    await alice.sync()


async def test_without_the_flag_every_message_gets_its_own_ack(server: RunningServer) -> None:
    alice, bob, call = await pair(server, flags="NO_MEDIA_CALL")
    await burst(alice, 1, messages("a1", "a2"), messages("a3"))
    acks = [await alice.fty(1) for _ in range(3)]
    assert [(ack["id"], ack["seq"], ack["state"]) for ack in acks] == [
        ("a1", 1, "delivered"),
        ("a2", 2, "delivered"),
        ("a3", 3, "delivered"),
    ]
    assert all(set(ack) == {"type", "id", "seq", "time", "state"} for ack in acks)
    assert await relayed_seqs(bob, call, 3) == [1, 2, 3]
    await alice.sync()


async def test_resent_ids_are_answered_with_their_own_seqs(server: RunningServer) -> None:
    alice, bob, call = await pair(server)
    await alice.signal(1, messages("a1", "a2", "a3"))
    assert (await alice.fty(1))["ids"] == ["a1", "a2", "a3"]
    assert await relayed_seqs(bob, call, 3) == [1, 2, 3]
    # a lone resend: the single form, with the original seq
    await alice.signal(1, messages("a2"))
    ack = await alice.fty(1)
    assert (ack["id"], ack["seq"], ack["state"]) == ("a2", 2, "delivered")
    # two resends whose seqs do not follow each other: two acks
    await alice.signal(1, messages("a1", "a3"))
    first, second = await alice.fty(1), await alice.fty(1)
    assert (first["id"], first["seq"]) == ("a1", 1)
    assert (second["id"], second["seq"]) == ("a3", 3)
    # a resend followed by the next new message: their seqs follow, one ack covers both
    await alice.signal(1, messages("a3", "a4"))
    ack = await alice.fty(1)
    assert (ack["ids"], ack["seq"]) == (["a3", "a4"], 4)
    assert await relayed_seqs(bob, call, 1) == [4]  # nothing relayed twice
    await alice.sync()
    await bob.sync()


async def test_held_and_delivered_are_never_in_one_ack(server: RunningServer) -> None:
    alice, bob = await phone(server, "alice"), await phone(server, "bob")
    # held until conn: one ack says held for both
    await alice.setup(1, "bob", *messages("h1", "h2")["fty"])
    await alice.sig(1, "call_proc")
    held = await alice.fty(1)
    assert (held["ids"], held["seq"], held["state"]) == (["h1", "h2"], 2, "held")
    number, _ = await bob.offered()
    await alice.signal(1, messages("h3"))
    assert (await alice.fty(1))["id"] == "h3"  # held too, but a batch of its own
    await bob.signal(number, {"type": "conn"})
    # at conn: the held messages are delivered, told in one ack of their own
    conn = await alice.sig(1, "conn")
    assert conn["sig"]["type"] == "conn"
    delivered = await alice.fty(1)
    assert (delivered["ids"], delivered["seq"], delivered["state"]) == (
        ["h1", "h2", "h3"],
        3,
        "delivered",
    )
    await alice.signal(1, messages("d1"))
    ack = await alice.fty(1)
    assert (ack["id"], ack["seq"], ack["state"]) == ("d1", 4, "delivered")
    await alice.sync()


async def test_stored_acks_cover_every_id_in_order(server: RunningServer) -> None:
    alice = await phone(server, "alice")
    await alice.setup(1, "bob")  # bob is offline and licensed: the hub answers (§7.5)
    await alice.sig(1, "call_proc")
    await alice.sig(1, "conn")
    await alice.signal(1, messages("s1", "s2", "s3"))
    told: list[tuple[str, int]] = []
    while len(told) < 3:
        ack = await alice.fty(1)
        assert ack["state"] == "stored", ack
        ids = ack["ids"] if "ids" in ack else [ack["id"]]
        told += [(i, ack["seq"] - len(ids) + 1 + n) for n, i in enumerate(ids)]
    assert told == [("s1", 1), ("s2", 2), ("s3", 3)]
    await alice.sync()


def test_a_run_takes_only_the_next_seq_of_its_call_state_and_time() -> None:
    def ack(seq: int, state: str = "delivered", number: int = 1, time: int = 100) -> Ack:
        return Ack(7, "reg", number, f"m{seq}", seq, time, state)

    run = _AckRun(ack(1))
    assert run.take(ack(2))
    assert not run.take(ack(2))  # not the next seq
    assert not run.take(ack(3, state="held"))
    assert not run.take(ack(3, state="stored"))
    assert not run.take(ack(3, number=2))
    assert not run.take(ack(3, time=101))
    assert run.take(ack(3))
    assert run.ids == ["m1", "m2", "m3"]
    assert run.text() == (
        '{"api":"PbxSignal","mt":"Signaling","src":"reg","call":1,"sig":{"type":"facility",'
        '"fty":[{"type":"im_ack","ids":["m1","m2","m3"],"seq":3,"time":100,'
        '"state":"delivered"}]}}'
    )
    assert _AckRun(ack(5)).text() == (
        '{"api":"PbxSignal","mt":"Signaling","src":"reg","call":1,"sig":{"type":"facility",'
        '"fty":[{"type":"im_ack","id":"m5","seq":5,"time":100,"state":"delivered"}]}}'
    )
