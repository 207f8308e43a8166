"""Resume across switches (PROTOCOL §4.9, docs 12.28): a device on switch b in a call
homed on switch a loses its link and resumes on b within the grace; the home holds what
it could not deliver and replays it after the re-offered call's ``conn``: every message
once, in seq order, and each writer hears what became of its messages once.
"""

from __future__ import annotations

from typing import Any

from tests.signaling.core.cluster_harness import Client, Cluster
from tests.support import make_config

JsonObject = dict[str, Any]


def _connected(cluster: Cluster) -> tuple[Client, Client, str]:
    """alice (on a) calls bob (on b), bob answers: the call is homed on a."""
    alice, bob = cluster.phone("a", "alice"), cluster.phone("b", "bob")
    cluster.setup(alice, 1, "bob")
    conf = cluster.take(alice)[0]["sig"]["confId"]
    number = cluster.offered(bob)
    cluster.signal(bob, number, {"type": "conn"})
    cluster.take(alice)
    return alice, bob, conf


def _items(frames: list[JsonObject], kind: str) -> list[JsonObject]:
    return [
        item for frame in frames for item in frame["sig"].get("fty", ()) if item["type"] == kind
    ]


def _resumed(
    cluster: Cluster, bob: Client, conf: str, seen: int
) -> tuple[Client, list[JsonObject]]:
    """bob's new connection on b takes the registration over, answers the re-offered
    call and gets the replay: the new client and the messages it got."""
    again = cluster.resume(bob, "b", "bob", {conf: seen})
    setup = cluster.one(again)
    assert setup["sig"]["type"] == "setup" and setup["sig"]["confId"] == conf, setup
    assert {"type": "resumed"} in setup["sig"]["fty"]
    cluster.signal(again, setup["call"], {"type": "conn"})
    return again, _items(cluster.take(again), "im_message")


def test_a_device_resuming_on_its_switch_gets_what_it_missed_once_and_in_order() -> None:
    cluster = Cluster(("a", "b"), make_config(grace=30.0))
    alice, bob, conf = _connected(cluster)
    cluster.say(alice, 1, "one", id="m1")
    assert [item["seq"] for item in _items(cluster.take(bob), "im_message")] == [1]
    cluster.take(alice)
    cluster.close(bob, clean=False)  # b tells a: the device is away
    for index in (2, 3):
        cluster.say(alice, 1, f"while away {index}", id=f"m{index}")
    held = _items(cluster.take(alice), "im_ack")
    assert [(ack["id"], ack["state"]) for ack in held] == [("m2", "held"), ("m3", "held")]
    cluster.advance(29.0)  # within the grace
    again, replay = _resumed(cluster, bob, conf, seen=1)
    assert [(item["seq"], item["data"]) for item in replay] == [
        (2, "while away 2"),
        (3, "while away 3"),
    ]
    delivered = _items(cluster.take(alice), "im_ack")
    assert [(ack["id"], ack["state"]) for ack in delivered] == [
        ("m2", "delivered"),
        ("m3", "delivered"),
    ]
    cluster.say(alice, 1, "back", id="m4")
    assert [item["seq"] for item in _items(cluster.take(again), "im_message")] == [4]
    cluster.advance(60.0)  # the old grace is over: nothing ends
    assert [frame["sig"]["type"] for frame in cluster.take(alice)] == ["facility"]
    cluster.finish()


def test_messages_the_home_sent_before_it_heard_the_device_was_away_are_replayed() -> None:
    cluster = Cluster(("a", "b"), make_config(grace=30.0))
    alice, bob, conf = _connected(cluster)
    cluster.feed("b", cluster.switch("b").closed(bob[1], False), settle=False)
    assert len(cluster.bus.pending) == 1  # DeviceAway, not yet at a
    cluster.say(alice, 1, "in flight", id="m1", settle=False)
    cluster.bus.run()  # a relayed it to b while b's device was already away: lost there
    again, replay = _resumed(cluster, bob, conf, seen=0)
    assert [(item["seq"], item["data"]) for item in replay] == [(1, "in flight")]
    acks = _items(cluster.take(alice), "im_ack")  # never delivered before b reported it
    assert [(ack["id"], ack["state"]) for ack in acks] == [("m1", "held"), ("m1", "delivered")]
    cluster.signal(again, _number(cluster, again), {"type": "rel"})
    assert [frame["sig"]["type"] for frame in cluster.take(alice)] == ["rel"]
    cluster.finish()


def test_a_device_that_does_not_resume_in_time_ends_the_call_on_the_home_with_41() -> None:
    cluster = Cluster(("a", "b"), make_config(grace=30.0))
    alice, bob, _ = _connected(cluster)
    cluster.close(bob, clean=False)
    cluster.advance(30.0)
    frames = cluster.take(alice)
    assert [frame["sig"] for frame in frames] == [{"type": "rel", "cau": {"loc": 1, "num": 41}}]
    cluster.finish()


def _number(cluster: Cluster, client: Client) -> int:
    node, conn = client
    registration = cluster.switch(node).connections[conn].registration
    assert registration is not None and cluster.switch(node).node is not None
    proxies = cluster.switch(node).node.proxies.of_device(registration)
    assert len(proxies) == 1
    return proxies[0].number
