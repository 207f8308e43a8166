"""The seams of calls across switches (docs 12.28): frames that arrive while a setup
waits for its lookup, late frames around a resume, and what each switch keeps for a
call once it is over.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from signaling.core.nodes.frames import DeviceRecord, Join
from tests.signaling.core.cluster_harness import Cluster
from tests.signaling.core.harness import Harness, im
from tests.signaling.core.test_cluster_support_and_groups import TEAM
from tests.support import make_config

JsonObject = dict[str, Any]

_SETUP = {"type": "setup", "channel": 0, "cd": {"sip": "bob"}, "fty": [{"type": "im_setup"}]}
_GROUP = {**_SETUP, "cd": {"sip": TEAM["sip"]}}


def _bare(frames: list[JsonObject]) -> list[JsonObject]:
    """Frames without the ids each switch makes up (confId, callId)."""
    return [
        {
            **frame,
            "sig": {k: v for k, v in frame["sig"].items() if k not in ("confId", "callId")},
        }
        if "sig" in frame
        else frame
        for frame in frames
    ]


# -- frames on a call number whose setup waits for its lookup --------------------------------


def test_frames_after_a_waiting_setup_run_after_it_as_on_one_switch() -> None:
    one = Harness()
    alice_one, bob_one = one.phone("alice"), one.phone("bob")
    cluster = Cluster()
    alice, bob = cluster.phone("a", "alice"), cluster.phone("b", "bob")
    for sig in (_SETUP, {"type": "rel"}, {"type": "facility", "fty": [im("late", id="x")]}):
        one.signal(alice_one, 1, sig)
        cluster.signal(alice, 1, sig, settle=False)
    assert cluster.take(alice) == [] and len(cluster.bus.pending) == 1  # the Lookup
    cluster.bus.run()
    assert _bare(cluster.take(alice)) == _bare(one.take(alice_one))
    assert [f["sig"]["type"] for f in cluster.take(bob)] == [
        f["sig"]["type"] for f in one.take(bob_one)
    ]
    assert cluster.switch("a").chat.calls == {}
    one.finish()
    cluster.finish()


def test_a_group_setup_released_before_its_home_is_known_makes_no_call() -> None:
    cluster = Cluster()
    alice, bob = cluster.phone("a", "alice"), cluster.phone("b", "bob")
    cluster.groups(TEAM)
    cluster.signal(bob, 1, _GROUP)
    cluster.take(bob)  # b is the group's home
    cluster.signal(alice, 3, _GROUP, settle=False)
    cluster.signal(alice, 3, {"type": "rel"}, settle=False)
    cluster.bus.run()  # the claim is refused: alice's setup joins at b, then leaves it
    frames = cluster.take(alice)
    assert [frame["sig"]["type"] for frame in frames] == ["call_proc", "conn"]
    assert cluster.switch("a").held()["proxy_legs"] == 0
    cluster.signal(bob, 1, {"type": "rel"})
    cluster.finish()


# -- late frames around a resume ---------------------------------------------------------------


def test_a_frame_sent_before_the_home_heard_of_a_resume_is_not_given_to_the_new_connection() -> (
    None
):
    cluster = Cluster(("a", "b"), make_config(grace=30.0))
    alice, bob = cluster.phone("a", "alice"), cluster.phone("b", "bob")
    cluster.setup(alice, 1, "bob")
    conf = cluster.take(alice)[0]["sig"]["confId"]
    cluster.signal(bob, cluster.offered(bob), {"type": "conn"})
    cluster.take(alice)
    cluster.feed("b", cluster.switch("b").closed(bob[1], False), settle=False)
    cluster.say(alice, 1, "in flight", id="m1", settle=False)
    again = cluster.resume(bob, "b", "bob", {conf: 0}, settle=False)
    cluster.bus.run()  # the home's relay reaches b after the resume, then a hears of it all
    setup = cluster.one(again)  # the re-offered call, and nothing on the old call number
    assert setup["sig"]["type"] == "setup" and setup["sig"]["confId"] == conf, setup
    cluster.signal(again, setup["call"], {"type": "conn"})
    relayed = [
        item["data"]
        for frame in cluster.take(again)
        for item in frame["sig"].get("fty", ())
        if item["type"] == "im_message"
    ]
    assert relayed == ["in flight"]
    cluster.finish()


# -- nothing kept once a call is over ------------------------------------------------------------


def test_a_group_home_is_given_back_when_the_device_unregisters_while_it_is_claimed() -> None:
    cluster = Cluster()
    alice = cluster.phone("a", "alice")
    cluster.groups(TEAM)
    cluster.signal(alice, 1, _GROUP, settle=False)  # the Claim waits on the bus
    unregister = {"api": "PbxSignal", "mt": "Unregister"}
    cluster.send(alice, unregister, settle=False)
    cluster.bus.run()
    assert cluster.switch("a").held()["claims"] == 0
    assert cluster.bus.book.claims == {}
    cluster.finish()


def test_the_home_forgets_a_remote_device_once_its_call_is_over() -> None:
    cluster = Cluster()
    alice, bob = cluster.phone("a", "alice"), cluster.phone("b", "bob")
    cluster.setup(alice, 1, "bob")
    cluster.signal(bob, cluster.offered(bob), {"type": "conn"})
    cluster.signal(alice, 1, {"type": "rel"})
    assert cluster.switch("a").held()["remote_devices"] == 0
    cluster.finish()


def test_a_join_that_reaches_a_switch_that_is_no_longer_home_keeps_no_stand_in() -> None:
    cluster = Cluster()
    alice, bob = cluster.phone("a", "alice"), cluster.phone("b", "bob")
    cluster.groups(TEAM)
    cluster.signal(bob, 1, _GROUP)
    cluster.take(bob)  # b is the home
    cluster.signal(alice, 1, _GROUP, settle=False)  # a's claim: refused, b named
    cluster.bus.step()
    cluster.signal(bob, 1, {"type": "rel"}, settle=False)  # b lets the home go...
    cluster.bus.run()  # ...before alice's Join reaches it
    frames = cluster.take(alice)
    assert frames[-1]["sig"] == {"type": "rel", "cau": {"loc": 1, "num": 41}}
    assert cluster.switch("b").held()["remote_devices"] == 0
    cluster.finish()


# -- frames from other switches are checked ------------------------------------------------------


def test_a_join_naming_a_device_of_another_switch_than_its_sender_is_dropped() -> None:
    cluster = Cluster(("a", "b", "c"))
    bob = cluster.phone("b", "bob")
    cluster.groups(TEAM)
    cluster.signal(bob, 1, _GROUP)
    cluster.take(bob)  # b is the group's home
    record = DeviceRecord("a", 99, "example.com", "alice", "x", frozenset({"NO_MEDIA_CALL"}))
    forged = Join(record, 5, _GROUP)  # c speaks for a device of a's
    cluster.feed("b", cluster.switch("b").from_nodes("c", [forged]), settle=False)
    seat = cluster.switch("b").node
    assert seat is not None and seat.remote.get("a", 99) is None
    assert cluster.bus.pending == []  # dropped: nobody is answered
    cluster.signal(bob, 1, {"type": "rel"})
    cluster.finish()


# -- max_calls counts every call of a device, wherever its home is ------------------------------


def _one_call_each() -> Any:
    config = make_config()
    return replace(config, signaling=replace(config.signaling, max_calls=1))


def test_a_device_in_a_call_homed_elsewhere_is_not_offered_more_than_max_calls() -> None:
    cluster = Cluster(("a", "b", "c"), _one_call_each())
    alice, bob, carol = (
        cluster.phone("a", "alice"),
        cluster.phone("b", "bob"),
        cluster.phone("c", "carol"),
    )
    cluster.setup(alice, 1, "bob")
    cluster.take(alice)
    cluster.signal(bob, cluster.offered(bob), {"type": "conn"})
    cluster.take(alice)
    cluster.setup(carol, 1, "bob")  # homed on c; b refuses the offer: bob has his one call
    assert cluster.take(bob) == []
    frames = cluster.take(carol)
    assert frames[-1]["sig"]["type"] == "rel" and frames[-1]["sig"]["cau"]["num"] == 47, frames
    cluster.finish()


def test_a_device_in_a_call_homed_elsewhere_may_not_set_up_more_than_max_calls() -> None:
    cluster = Cluster(("a", "b"), _one_call_each())
    alice, bob, carol = (
        cluster.phone("a", "alice"),
        cluster.phone("b", "bob"),
        cluster.phone("b", "carol"),
    )
    cluster.setup(alice, 1, "bob")
    cluster.take(alice)
    cluster.signal(bob, cluster.offered(bob), {"type": "conn"})
    cluster.setup(bob, 5, "carol")  # carol is on bob's own switch
    assert cluster.one(bob) == {
        "api": "PbxSignal",
        "mt": "Signaling",
        "src": "reg",
        "call": 5,
        "sig": {"type": "rel", "cau": {"loc": 1, "num": 47}},
    }
    assert cluster.take(carol) == []
    cluster.finish()


def test_a_full_device_group_setup_is_refused_where_it_is_before_any_join() -> None:
    cluster = Cluster(("a", "b"), _one_call_each())
    alice, bob = cluster.phone("a", "alice"), cluster.phone("b", "bob")
    carol = cluster.phone("b", "carol")
    cluster.groups(TEAM)
    cluster.signal(alice, 1, _GROUP)
    cluster.take(alice)  # a is the group's home
    cluster.setup(bob, 2, "carol")  # bob's one call, on his own switch
    cluster.take(bob)
    assert cluster.offered(carol) < 0
    cluster.signal(bob, 3, _GROUP, settle=False)
    assert cluster.one(bob)["sig"] == {"type": "rel", "cau": {"loc": 1, "num": 47}}
    assert cluster.bus.pending == []  # not even a claim
    cluster.finish()


def test_a_device_that_drops_again_before_its_re_offers_arrive_gets_them_on_its_next_resume() -> (
    None
):
    cluster = Cluster(("a", "b"), make_config(grace=60.0))
    alice, bob = cluster.phone("a", "alice"), cluster.phone("b", "bob")
    cluster.setup(alice, 1, "bob")
    conf = cluster.take(alice)[0]["sig"]["confId"]
    cluster.signal(bob, cluster.offered(bob), {"type": "conn"})
    cluster.take(alice)
    cluster.feed("b", cluster.switch("b").closed(bob[1], False), settle=False)
    again = cluster.resume(bob, "b", "bob", {conf: 0}, settle=False)  # DeviceBack waits
    cluster.feed("b", cluster.switch("b").closed(again[1], False), settle=False)
    cluster.bus.run()  # the home's re-offer reaches b while bob is away once more
    cluster.say(alice, 1, "while away", id="m1")
    assert [item["state"] for item in _acks(cluster.take(alice))] == ["held"]
    third = cluster.resume(again, "b", "bob", {conf: 0})
    setup = cluster.one(third)  # the home heard of this resume too: the call is offered
    assert setup["sig"]["confId"] == conf and {"type": "resumed"} in setup["sig"]["fty"]
    cluster.signal(third, setup["call"], {"type": "conn"})
    replay = [
        item["data"]
        for frame in cluster.take(third)
        for item in frame["sig"].get("fty", ())
        if item["type"] == "im_message"
    ]
    assert replay == ["while away"]
    assert [item["state"] for item in _acks(cluster.take(alice))] == ["delivered"]
    cluster.finish()


def _acks(frames: list[JsonObject]) -> list[JsonObject]:
    return [item for f in frames for item in f["sig"].get("fty", ()) if item["type"] == "im_ack"]
