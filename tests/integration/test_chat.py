"""Volatile chat end to end over a real server (PROTOCOL §4.4-§4.8)."""

from __future__ import annotations

from tests.support import RunningServer, connected_pair, make_config, running_server


async def test_two_users_chat_both_ways(server: RunningServer) -> None:
    alice, bob, call = await connected_pair(server)

    await alice.say(1, "hello bob", id="a1")
    ack = await alice.fty(1)
    assert ack == {
        "type": "im_ack",
        "id": "a1",
        "seq": 1,
        "time": ack["time"],
        "state": "delivered",
    }
    got = await bob.fty(call)
    assert got["data"] == "hello bob"
    assert (got["sender"], got["sender_dn"], got["seq"]) == ("alice", "Alice Example", 1)
    assert got["time"] == int(server.clock.wall()) and got["mime"] == "text/html"

    await bob.say(call, "hi alice 😀", id="b1")
    assert (await bob.fty(call))["seq"] == 2
    got = await alice.fty(1)
    assert (got["data"], got["sender"], got["seq"]) == ("hi alice 😀", "bob", 2)


async def test_sender_fields_are_set_by_the_hub(server: RunningServer) -> None:
    alice, bob, call = await connected_pair(server)
    await alice.say(1, "it's me", sender="bob", sender_dn="Bob Example", time=1, seq=99)
    got = await bob.fty(call)
    assert (got["sender"], got["sender_dn"], got["seq"]) == ("alice", "Alice Example", 1)
    assert got["time"] != 1


async def test_offer_carries_caller_identity_and_call_id(server: RunningServer) -> None:
    alice, bob = await server.phone("alice"), await server.phone("bob")
    await alice.setup(1, "bob")
    proc = (await alice.sig(1, "call_proc"))["sig"]
    number, setup = await bob.offered()
    assert number == -1
    assert setup["cg"] == {"sip": "alice", "num": "101"}
    assert setup["cd"] == {"sip": "bob", "num": "102"}
    assert setup["fty"] == [
        {"type": "im_setup"},
        {"type": "name_identification", "name": "Alice Example"},
    ]
    # one conversation (confId), a callId per leg (§4.5 revised)
    assert setup["confId"] == proc["confId"] and len(proc["confId"]) == 32
    assert len({setup["callId"], proc["callId"], proc["confId"]}) == 3
    assert len(setup["callId"]) == len(proc["callId"]) == 32
    await bob.signal(number, {"type": "alert"})
    await alice.sig(1, "alert")
    await bob.signal(number, {"type": "conn"})
    conn = await alice.sig(1, "conn")
    assert conn["sig"]["fty"] == [{"type": "name_identification", "name": "Bob Example"}]


async def test_calling_by_number(server: RunningServer) -> None:
    alice, bob = await server.phone("alice"), await server.phone("bob")
    await alice.signal(1, {"type": "setup", "cd": {"num": "102"}, "fty": [{"type": "im_setup"}]})
    await alice.sig(1, "call_proc")
    await bob.offered()


async def test_both_devices_are_offered_and_the_loser_gets_cause_26(server: RunningServer) -> None:
    alice = await server.phone("alice")
    desk = await server.phone("bob", hw="desk")
    mobile = await server.phone("bob", hw="mobile")
    await alice.setup(1, "bob")
    await alice.sig(1, "call_proc")
    desk_call, _ = await desk.offered()
    mobile_call, _ = await mobile.offered()
    await mobile.signal(mobile_call, {"type": "conn"})
    await alice.sig(1, "conn")
    rel = await desk.sig(desk_call, "rel")
    assert rel["sig"]["cau"] == {"loc": 1, "num": 26}
    await alice.say(1, "only the mobile", id="x")
    await alice.fty(1)
    assert (await mobile.fty(mobile_call))["data"] == "only the mobile"
    await desk.sync()
    # the loser's late conn finds no call any more
    await desk.signal(desk_call, {"type": "conn"})
    error = await desk.next()
    assert (error["mt"], error["code"], error["call"]) == ("Error", "bad_state", desk_call)


async def test_offline_unlicensed_user_gets_cause_18_at_once(server: RunningServer) -> None:
    carol = await server.phone("carol")
    await carol.setup(1, "dave", {"data": "are you there?", "id": "c1"})
    ack = await carol.fty(1)
    assert ack == {"type": "im_ack", "id": "c1", "state": "not_delivered"}
    rel = await carol.sig(1, "rel")
    assert rel["sig"]["cau"] == {"loc": 1, "num": 18}


async def test_unknown_user_gets_cause_1_and_other_tenant_21(server: RunningServer) -> None:
    alice = await server.phone("alice")
    await alice.setup(1, "nobody")
    assert (await alice.sig(1, "rel"))["sig"]["cau"]["num"] == 1
    await server.phone("erin", domain="other.org", password="erin-pw")
    await alice.setup(2, "erin@other.org")
    assert (await alice.sig(2, "rel"))["sig"]["cau"]["num"] == 21
    await alice.setup(3, "dave@example.com")  # dave holds no licence: volatile, offline
    assert (await alice.sig(3, "rel"))["sig"]["cau"]["num"] == 18


async def test_same_sip_in_two_tenants_never_meets() -> None:
    # Without the messages service alice's offline demo account cannot be answered for.
    async with running_server(make_config(messages=False)) as server:
        other_alice = await server.phone("alice", domain="other.org", password="other-alice-pw")
        carol = await server.phone("carol")
        await carol.setup(1, "alice")
        assert (await carol.sig(1, "rel"))["sig"]["cau"]["num"] == 18
        await other_alice.sync()


async def test_messages_before_conn_are_held_and_delivered_in_order(server: RunningServer) -> None:
    alice, bob = await server.phone("alice"), await server.phone("bob")
    await alice.setup(1, "bob", {"data": "first", "id": "m1"})
    await alice.sig(1, "call_proc")
    assert (await alice.fty(1))["state"] == "held"
    await alice.say(1, "second", id="m2")
    assert (await alice.fty(1)) | {"time": 0} == {
        "type": "im_ack",
        "id": "m2",
        "seq": 2,
        "time": 0,
        "state": "held",
    }
    await alice.say(1, None, typing=True)  # typing before conn is dropped, never held
    number, _ = await bob.offered()
    await bob.signal(number, {"type": "conn"})
    assert [(await bob.fty(number))["data"] for _ in range(2)] == ["first", "second"]
    await alice.sig(1, "conn")
    acks = [await alice.fty(1) for _ in range(2)]
    assert [(a["id"], a["seq"], a["state"]) for a in acks] == [
        ("m1", 1, "delivered"),
        ("m2", 2, "delivered"),
    ]
    await bob.sync()


async def test_held_messages_are_reported_when_the_call_is_not_answered(
    server: RunningServer,
) -> None:
    alice, bob = await server.phone("alice"), await server.phone("bob")
    await alice.setup(1, "bob", {"data": "ring ring", "id": "h1"})
    await alice.sig(1, "call_proc")
    await alice.fty(1)
    number, _ = await bob.offered()
    await server.advance(server.config.signaling.ring_timeout + 1)
    ack = await alice.fty(1)
    assert (ack["id"], ack["seq"], ack["state"]) == ("h1", 1, "not_delivered")
    assert (await alice.sig(1, "rel"))["sig"]["cau"] == {"loc": 1, "num": 19}
    assert (await bob.sig(number, "rel"))["sig"]["cau"]["num"] == 19


async def test_decline_on_one_device_ends_the_call(server: RunningServer) -> None:
    alice = await server.phone("alice")
    desk, mobile = await server.phone("bob"), await server.phone("bob")
    await alice.setup(1, "bob")
    await alice.sig(1, "call_proc")
    desk_call, _ = await desk.offered()
    mobile_call, _ = await mobile.offered()
    await desk.signal(desk_call, {"type": "rel", "cau": {"loc": 0, "num": 17}})
    assert (await alice.sig(1, "rel"))["sig"]["cau"] == {"loc": 0, "num": 17}
    assert (await mobile.sig(mobile_call, "rel"))["sig"]["cau"]["num"] == 26


async def test_release_from_either_side(server: RunningServer) -> None:
    alice, bob, call = await connected_pair(server)
    await bob.signal(call, {"type": "rel"})
    assert (await alice.sig(1, "rel"))["sig"]["cau"] == {"loc": 1, "num": 16}
    await bob.sync()
    # the call number is free again
    await alice.setup(1, "bob")
    await alice.sig(1, "call_proc")
    number, _ = await bob.offered()
    await alice.signal(1, {"type": "disc"})
    assert (await alice.sig(1, "rel"))["sig"]["cau"]["num"] == 16  # disc is answered rel
    assert (await bob.sig(number, "disc"))["sig"]["cau"]["num"] == 16  # relayed as disc
    assert (await bob.sig(number, "rel"))["sig"]["cau"]["num"] == 16


async def test_peer_dropping_releases_the_call(server: RunningServer) -> None:
    alice, bob, call = await connected_pair(server)
    await bob.say(call, None, typing=True)
    assert (await alice.fty(1))["typing"] is True
    await bob.client.close()
    stop = await alice.fty(1)
    assert (stop["typing"], stop["sender"]) == (False, "bob")
    assert (await alice.sig(1, "rel"))["sig"]["cau"]["num"] == 16


async def test_typing_is_relayed_and_expires(server: RunningServer) -> None:
    alice, bob, call = await connected_pair(server)
    await alice.say(1, None, typing=True)
    assert await bob.fty(call) == {
        "type": "im_message",
        "typing": True,
        "sender": "alice",
        "sender_dn": "Alice Example",
    }
    await server.advance(server.config.signaling.typing_ttl - 1)
    await bob.sync()
    await alice.say(1, None, typing=True)  # renewed
    assert (await bob.fty(call))["typing"] is True
    await server.advance(server.config.signaling.typing_ttl - 1)
    await bob.sync()
    await server.advance(2)
    assert (await bob.fty(call))["typing"] is False
    # a typing:false with no typing going on is not relayed
    await alice.say(1, None, typing=False)
    await alice.sync()
    await bob.sync()


async def test_a_message_ends_typing(server: RunningServer) -> None:
    alice, bob, call = await connected_pair(server)
    await alice.say(1, None, typing=True)
    await bob.fty(call)
    await alice.say(1, "done typing")
    assert (await bob.fty(call))["data"] == "done typing"
    assert (await bob.fty(call))["typing"] is False
    await server.advance(60)
    await bob.sync()


async def test_fragmented_message_is_joined(server: RunningServer) -> None:
    alice, bob, call = await connected_pair(server)
    await alice.say(1, "<p>one ", mime="text/html", more=True, id="f")
    await alice.say(1, "two ", mime="text/html", more=True)
    await alice.say(1, "three</p>", mime="text/html", more=False)
    got = await bob.fty(call)
    assert (got["data"], got["seq"]) == ("<p>one two three</p>", 1)
    ack = await alice.fty(1)
    assert (ack["id"], ack["seq"], ack["state"]) == ("f", 1, "delivered")


async def test_a_retried_id_is_acknowledged_again_but_not_relayed(server: RunningServer) -> None:
    alice, bob, call = await connected_pair(server)
    await alice.say(1, "once", id="retry-me")
    first = await alice.fty(1)
    await bob.fty(call)
    await alice.say(1, "once", id="retry-me")
    again = await alice.fty(1)
    assert again == first
    await alice.say(1, "next", id="n")
    assert (await bob.fty(call))["data"] == "next"
    assert (await alice.fty(1))["seq"] == 2


async def test_unknown_facilities_travel_untouched(server: RunningServer) -> None:
    alice, bob, call = await connected_pair(server)
    item = {"type": "x_vendor", "payload": {"k": [1, 2]}}
    await alice.signal(1, {"type": "facility", "fty": [item]})
    assert (await bob.sig(call, "facility"))["sig"]["fty"] == [item]


async def test_calling_yourself_rings_your_other_devices(server: RunningServer) -> None:
    desk, mobile = await server.phone("alice"), await server.phone("alice")
    await desk.setup(1, "alice")
    await desk.sig(1, "call_proc")
    _, setup = await mobile.offered()
    assert setup["cg"]["sip"] == "alice"
    await desk.sync()
