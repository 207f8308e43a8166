"""Calls between switches, driven through the in-memory bus (SCALE.md "Home node and
remote legs"): what clients see is what they see on one switch, whatever the order in
which the switches hear each other.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from tests.signaling.core.cluster_harness import Client, Cluster, without_ids
from tests.signaling.core.harness import Harness, im
from tests.support import make_config

JsonObject = dict[str, Any]


# -- the same frames as on one switch -------------------------------------------------------


def _chat(env: Any, phone: Callable[[str, str], Any], messages: int) -> list[list[JsonObject]]:
    """Alice calls Bob with an early message, Bob answers, they write ``messages``
    messages with ids in turn, type, and Bob hangs up; every frame each one got."""
    alice, bob = phone("a", "alice"), phone("b", "bob")
    env.setup(alice, 1, "bob", im("early", id="e0"))
    number = env.take(bob)[0]["call"]
    env.signal(bob, number, {"type": "alert"})
    env.signal(bob, number, {"type": "conn"})
    for index in range(messages):
        writer, call = (alice, 1) if index % 2 == 0 else (bob, number)
        env.say(writer, call, f"message {index} <b>bold</b>", id=f"m{index}")
    env.signal(alice, 1, {"type": "facility", "fty": [{"type": "im_message", "typing": True}]})
    env.signal(alice, 1, {"type": "facility", "fty": [{"type": "im_message", "typing": False}]})
    env.signal(bob, number, {"type": "rel"})
    return [env.take(alice), env.take(bob)]


def test_a_call_between_two_switches_sends_the_frames_of_a_one_switch_call() -> None:
    config = make_config(rate=1e6, burst=10_000)  # the rate limit is not what this is about
    one = Harness(config)
    alone = _chat(one, lambda node, sip: one.phone(sip), 1000)
    one.finish()
    cluster = Cluster(config=config)
    spread = _chat(cluster, cluster.phone, 1000)
    assert len(alone[0]) > 1000 and len(alone[1]) > 1000
    assert without_ids(spread) == without_ids(alone)
    cluster.finish()


def test_a_device_on_the_callee_switch_gets_the_offer_only_after_the_lookup() -> None:
    cluster = Cluster()
    alice, bob = cluster.phone("a", "alice"), cluster.phone("b", "bob")
    cluster.signal(
        alice,
        1,
        {"type": "setup", "channel": 0, "cd": {"sip": "bob"}, "fty": [{"type": "im_setup"}]},
        settle=False,
    )
    assert cluster.take(alice) == [] and cluster.take(bob) == []
    assert type(cluster.bus.pending[0].question).__name__ == "Lookup"
    cluster.bus.step()  # the answer: Bob is on b; the offer goes there
    assert cluster.take(alice)[0]["sig"]["type"] == "call_proc"
    assert cluster.take(bob) == []
    cluster.bus.step()
    assert cluster.offered(bob) == -1
    cluster.finish()


# -- first conn wins across switches --------------------------------------------------------


def _race(cluster: Cluster, caller: Client, devices: list[Client], call: int, seed: int) -> None:
    """Every device answers in the same step; the home hears them in an order of the
    seed's choosing; exactly one wins."""
    cluster.setup(caller, call, "bob")
    assert cluster.take(caller)[0]["sig"]["type"] == "call_proc"
    numbers = {device: cluster.offered(device) for device in devices}
    remote = [device for device in devices if device[0] != caller[0]]
    for device in remote:  # answered where the device is; the frames wait on the bus
        cluster.signal(device, numbers[device], {"type": "conn"}, settle=False)
    order = list(devices)
    random.Random(seed).shuffle(order)
    for device in order:
        if device in remote:
            waiting = [d.sender for d in cluster.bus.pending]
            cluster.bus.step(waiting.index(device[0]))
        else:
            cluster.signal(device, numbers[device], {"type": "conn"}, settle=False)
    cluster.bus.run()
    conns = [frame for frame in cluster.take(caller) if frame["sig"]["type"] == "conn"]
    assert len(conns) == 1
    winners = []
    for device in devices:
        frames = [frame for frame in cluster.take(device) if "sig" in frame]
        released = [frame for frame in frames if frame["sig"]["type"] == "rel"]
        if not released:
            winners.append(device)
        else:
            assert [frame["sig"]["cau"]["num"] for frame in released] == [26]
    assert len(winners) == 1
    cluster.signal(caller, call, {"type": "rel"})
    winner = winners[0]
    assert [frame["sig"]["type"] for frame in cluster.take(winner)] == ["rel"]


def test_a_fork_to_devices_on_three_switches_has_exactly_one_winner_500_times() -> None:
    cluster = Cluster(("a", "b", "c"), make_config(rate=1e6, burst=10_000))
    caller = cluster.phone("a", "alice")
    devices = [cluster.phone(node, "bob") for node in ("a", "b", "c")]
    for round_ in range(500):
        _race(cluster, caller, devices, round_ + 1, seed=round_)
    for switch in cluster.bus.switches.values():
        assert switch.chat.calls == {}
    cluster.finish()


# -- a lost switch ----------------------------------------------------------------------------


def _connected(cluster: Cluster, caller: Client, callee: Client, to: str) -> int:
    cluster.setup(caller, 1, to)
    cluster.take(caller)
    number = cluster.offered(callee)
    cluster.signal(callee, number, {"type": "conn"})
    assert cluster.take(caller)[0]["sig"]["type"] == "conn"
    return number


def test_the_callee_switch_lost_mid_call_ends_the_call_with_41_after_the_grace() -> None:
    cluster = Cluster(("a", "b"), make_config(grace=30.0))
    carol, dave = cluster.phone("a", "carol"), cluster.phone("b", "dave")
    _connected(cluster, carol, dave, "dave")
    cluster.bus.lose("b")
    cluster.say(carol, 1, "anyone?", id="q1")
    (ack,) = [frame["sig"]["fty"][0] for frame in cluster.take(carol)]
    assert (ack["type"], ack["state"]) == ("im_ack", "held")
    cluster.advance(29.0)
    assert cluster.take(carol) == []
    cluster.advance(1.0)
    frames = cluster.take(carol)
    assert [frame["sig"]["type"] for frame in frames] == ["facility", "rel"]
    assert frames[0]["sig"]["fty"][0]["state"] == "not_delivered"
    assert frames[1]["sig"]["cau"] == {"loc": 1, "num": 41}
    cluster.finish()


def test_the_home_switch_lost_ends_the_remote_device_leg_with_41_at_once() -> None:
    cluster = Cluster(("a", "b"))
    carol, dave = cluster.phone("a", "carol"), cluster.phone("b", "dave")
    number = _connected(cluster, carol, dave, "dave")
    cluster.bus.lose("a")
    frame = cluster.one(dave)
    assert (frame["call"], frame["sig"]) == (number, {"type": "rel", "cau": {"loc": 1, "num": 41}})
    cluster.signal(dave, number, {"type": "facility", "fty": [im("late")]})
    assert cluster.one(dave)["code"] == "bad_state"
    cluster.finish()


# -- checks where the device is ---------------------------------------------------------------


def test_the_device_switch_refuses_what_its_state_does_not_allow_without_asking_the_home() -> None:
    cluster = Cluster()
    alice, bob = cluster.phone("a", "alice"), cluster.phone("b", "bob")
    cluster.setup(alice, 1, "bob")
    cluster.take(alice)
    number = cluster.offered(bob)
    cluster.signal(bob, number, {"type": "facility", "fty": [im("too soon")]}, settle=False)
    assert cluster.bus.pending == []
    error = cluster.one(bob)
    assert (error["code"], error["call"]) == ("bad_state", number)
    cluster.signal(bob, number, {"type": "conn"})
    big = "x" * (cluster.config.limits.max_message + 1)
    cluster.signal(bob, number, {"type": "facility", "fty": [im(big)]}, settle=False)
    assert cluster.bus.pending == []
    assert cluster.one(bob)["code"] == "message_too_big"
    cluster.finish()


def test_a_frame_the_home_refuses_comes_back_as_an_error_on_the_device_call_number() -> None:
    cluster = Cluster()
    alice, bob = cluster.phone("a", "alice"), cluster.phone("b", "bob")
    number = _connected(cluster, alice, bob, "bob")
    cluster.signal(bob, number, {"type": "facility", "fty": [im("x", mime="application/x")]})
    error = cluster.one(bob)
    assert (error["mt"], error["code"], error["call"]) == ("Error", "bad_mime", number)
    cluster.finish()


def test_a_support_chat_with_agents_on_two_other_switches_is_picked_once() -> None:
    cluster = Cluster(("a", "b", "c"))
    carol, alice, bob = (
        cluster.phone("a", "carol"),
        cluster.phone("b", "alice"),
        cluster.phone("c", "bob"),
    )
    cluster.setup(carol, 1, "support")
    assert [frame["sig"]["type"] for frame in cluster.take(carol)] == ["call_proc"]
    numbers = {alice: cluster.offered(alice), bob: cluster.offered(bob)}
    for agent in (bob, alice):  # both answer in the same step; Bob's reaches the home first
        cluster.signal(agent, numbers[agent], {"type": "conn"}, settle=False)
    cluster.bus.run()
    assert [frame["sig"]["type"] for frame in cluster.take(carol)] == ["conn"]
    lost = cluster.take(alice)
    assert lost[0]["sig"] == {"type": "rel", "cau": {"loc": 1, "num": 26}}
    assert (lost[1]["code"], lost[1]["call"]) == ("already_taken", numbers[alice])
    cluster.say(carol, 1, "help", id="h1")
    assert cluster.one(bob)["sig"]["fty"][0]["data"] == "help"
    assert cluster.one(carol)["sig"]["fty"][0]["state"] == "delivered"
    cluster.finish()
