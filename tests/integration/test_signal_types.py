"""Signal message types beyond setup/answer/facility/rel, and content of other mimes,
end to end over a real server (PROTOCOL §4.6, §4.7; docs/protocol.md 12.25)."""

from __future__ import annotations

from tests.support import PASSWORDS, Phone, RunningServer, connected_pair


async def test_info_user_info_and_channels_reach_the_connected_peer(server: RunningServer) -> None:
    alice, bob, call = await connected_pair(server)
    await alice.signal(1, {"type": "info", "dsp": "charge 0,12", "cg": {"sip": "mallory"}})
    assert (await bob.sig(call, "info"))["sig"] == {"type": "info", "dsp": "charge 0,12"}
    await bob.signal(call, {"type": "user_info", "uui": "order 4711"})
    assert (await alice.sig(1, "user_info"))["sig"] == {"type": "user_info", "uui": "order 4711"}
    channels = {"type": "channels", "channels_cmd": "CLOSE", "channels": {"ch": []}}
    await bob.signal(call, channels)
    assert (await alice.sig(1, "channels"))["sig"] == channels
    await alice.signal(1, {"type": "user_info", "uui": "x" * 129})
    assert (await alice.next())["code"] == "bad_json"
    await alice.sync(), await bob.sync()


async def test_progress_while_ringing_and_bad_state_around_it(server: RunningServer) -> None:
    alice, bob = await server.phone("alice"), await server.phone("bob")
    await alice.signal(
        1, {"type": "setup", "channel": 0, "cd": {"sip": "bob"}, "fty": [{"type": "im_setup"}]}
    )
    await alice.sig(1, "call_proc")
    number, _ = await bob.offered()
    await alice.signal(1, {"type": "info", "dsp": "too early"})
    error = await alice.next()
    assert (error["code"], error["call"]) == ("bad_state", 1)
    await bob.signal(number, {"type": "progress", "inband_info": True})
    assert (await alice.sig(1, "progress"))["sig"] == {"type": "progress", "inband_info": True}
    await alice.signal(1, {"type": "progress"})  # the caller has no progress to report
    assert (await alice.next())["code"] == "bad_state"
    await bob.signal(number, {"type": "conn"})
    await alice.sig(1, "conn")
    await bob.signal(number, {"type": "disc", "cau": {"loc": 0, "num": 16}, "dsp": "bye"})
    disc = await alice.sig(1, "disc")
    assert disc["sig"] == {"type": "disc", "cau": {"loc": 0, "num": 16}, "dsp": "bye"}
    assert (await alice.sig(1, "rel"))["sig"]["cau"] == {"loc": 0, "num": 16}
    assert (await bob.sig(number, "rel"))["sig"]["cau"] == {"loc": 0, "num": 16}
    await alice.sync(), await bob.sync()


async def test_application_data_travels_only_to_a_device_that_takes_it(
    server: RunningServer,
) -> None:
    alice = await server.phone("alice")
    bob_client = await server.connect()
    await bob_client.login(password=PASSWORDS["bob"], sip="bob")
    bob = Phone(bob_client, "bob")
    assert (await bob.register(flags="NO_MEDIA_CALL|APP_DATA"))["mt"] == "RegisterResult"
    await alice.signal(
        1, {"type": "setup", "channel": 0, "cd": {"sip": "bob"}, "fty": [{"type": "im_setup"}]}
    )
    await alice.sig(1, "call_proc")
    number, _ = await bob.offered()
    await bob.signal(number, {"type": "conn"})
    await alice.sig(1, "conn")
    card = '{"title":"<b>x</b>"}'
    await alice.say(1, card, mime="application/json", id="c1")
    got = await bob.fty(number)
    assert (got["mime"], got["data"], got["seq"]) == ("application/json", card, 1)
    assert (await alice.fty(1))["state"] == "delivered"
    await bob.say(number, card, mime="application/json")  # alice renders: refused
    assert (await bob.next())["code"] == "bad_mime"
    await alice.sync(), await bob.sync()
