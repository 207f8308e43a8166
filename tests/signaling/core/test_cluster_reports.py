"""Delivery reports across switches (docs 12.39): a message to a device on another
switch is acknowledged ``delivered`` only once that switch reports it in the device's
connection's queue, as one switch says ``delivered`` when it is in the queue. Reports
are cumulative, one frame per batch of the home's frames; what no report covers waits
as a held message does, and is never ``delivered``.
"""

from __future__ import annotations

import random
from typing import Any

from signaling.core.nodes.frames import Reached, ToLeg
from tests.signaling.core.cluster_harness import Client, Cluster
from tests.signaling.core.harness import im
from tests.signaling.core.test_cluster_support_and_groups import TEAM, _join
from tests.support import make_config

JsonObject = dict[str, Any]


def _connected(cluster: Cluster, caller: Client, callee: Client, to: str) -> int:
    """``caller`` calls ``to``, whose device ``callee`` answers: its call number."""
    cluster.setup(caller, 1, to)
    cluster.take(caller)
    number = cluster.offered(callee)
    cluster.signal(callee, number, {"type": "conn"})
    assert cluster.take(caller)[0]["sig"]["type"] == "conn"
    return number


def _acks(frames: list[JsonObject]) -> list[tuple[str, int | None, str]]:
    """(id, seq, state) of every ``im_ack`` in ``frames``, a cumulative one as its ids."""
    found = []
    for frame in frames:
        for item in frame.get("sig", {}).get("fty", ()):
            if item["type"] == "im_ack":
                for message_id in item.get("ids") or [item["id"]]:
                    found.append((message_id, item.get("seq"), item["state"]))
    return found


def _messages(frames: list[JsonObject]) -> list[int]:
    return [
        item["seq"]
        for frame in frames
        for item in frame.get("sig", {}).get("fty", ())
        if item["type"] == "im_message" and "seq" in item
    ]


def _reports(cluster: Cluster) -> list[Reached]:
    return [frame for way in cluster.bus.pending for frame in way.frames if type(frame) is Reached]


# -- delivered means reported ------------------------------------------------------------------


def test_the_writer_hears_delivered_only_once_the_device_switch_reported_the_message() -> None:
    cluster = Cluster()
    alice, bob = cluster.phone("a", "alice"), cluster.phone("b", "bob")
    number = _connected(cluster, alice, bob, "bob")
    cluster.say(alice, 1, "hello", id="m1", settle=False)
    assert cluster.take(alice) == []  # forwarded to b: nothing to tell yet
    (way,) = cluster.bus.pending
    assert [type(frame) for frame in way.frames] == [ToLeg] and way.frames[0].seq == 1
    cluster.bus.step()  # b pushes it to bob's connection and reports it
    assert _messages(cluster.take(bob)) == [1]
    assert cluster.take(alice) == []
    (report,) = _reports(cluster)
    assert [(seq, leg < 0) for _, leg, seq in report.legs] == [(1, True)]
    cluster.bus.step()
    assert _acks(cluster.take(alice)) == [("m1", 1, "delivered")]
    cluster.say(bob, number, "back", id="r1")  # the home's own device: at once, as ever
    assert _acks(cluster.take(bob)) == [("r1", 2, "delivered")]
    cluster.finish()


def test_one_report_per_batch_acknowledges_the_whole_batch_in_one_cumulative_ack() -> None:
    cluster = Cluster()
    alice = cluster.login("a", "alice")
    register = {"api": "PbxSignal", "mt": "Register", "src": "reg"}
    cluster.send(alice, {**register, "flags": "NO_MEDIA_CALL|CUMULATIVE_ACK"})
    assert cluster.one(alice)["mt"] == "RegisterResult"
    bob = cluster.phone("b", "bob")
    _connected(cluster, alice, bob, "bob")
    batch = [im(f"m{n}", id=f"m{n}") for n in range(1, 6)]
    cluster.signal(alice, 1, {"type": "facility", "fty": batch}, settle=False)
    (way,) = cluster.bus.pending
    assert [frame.seq for frame in way.frames if type(frame) is ToLeg] == [1, 2, 3, 4, 5]
    cluster.bus.step()
    assert _messages(cluster.take(bob)) == [1, 2, 3, 4, 5]
    (report,) = _reports(cluster)  # one frame for the batch, the highest seq only
    assert [seq for _, _, seq in report.legs] == [5]
    cluster.bus.step()
    acks = cluster.joinable.pop(alice)  # in one batch: the hub joins them (docs 12.31)
    assert [(ack.message_id, ack.seq, ack.state) for ack in acks] == [
        (f"m{n}", n, "delivered") for n in range(1, 6)
    ]
    assert len({(ack.number, ack.time) for ack in acks}) == 1
    cluster.finish()


def test_a_thousand_messages_each_acked_once_with_its_seq_whatever_the_order() -> None:
    config = make_config(rate=1e6, burst=10_000)
    cluster = Cluster(config=config)
    alice, bob = cluster.phone("a", "alice"), cluster.phone("b", "bob")
    number = _connected(cluster, alice, bob, "bob")
    order = random.Random(17)
    written: list[tuple[Client, str]] = []
    for index in range(1000):
        writer, call = (alice, 1) if order.random() < 0.7 else (bob, number)
        written.append((writer, f"m{index}"))
        cluster.say(writer, call, f"message {index}", id=f"m{index}", settle=False)
        while cluster.bus.pending and order.random() < 0.5:  # the ways overtake each other
            cluster.bus.step(order.randrange(len(cluster.bus.pending)))
    cluster.bus.run()
    frames = {alice: cluster.take(alice), bob: cluster.take(bob)}
    relayed = {client: _messages(frames[client]) for client in frames}
    for writer, other in ((alice, bob), (bob, alice)):
        acks = _acks(frames[writer])
        ids = [message_id for who, message_id in written if who is writer]
        assert [message_id for message_id, _, _ in acks] == ids  # each once, in order
        assert {state for _, _, state in acks} == {"delivered"}
        assert sorted(seq for _, seq, _ in acks) == sorted(relayed[other])  # the seqs it got
    assert sorted(relayed[alice] + relayed[bob]) == list(range(1, 1001))
    cluster.finish()


def test_a_local_call_on_a_cluster_switch_sends_nothing_to_the_bus() -> None:
    cluster = Cluster()
    alice, bob = cluster.phone("a", "alice"), cluster.phone("a", "bob")
    _connected(cluster, alice, bob, "bob")
    for index in range(20):
        cluster.say(alice, 1, f"local {index}", id=f"l{index}", settle=False)
        assert cluster.bus.pending == []
    assert _acks(cluster.take(alice)) == [(f"l{n}", n + 1, "delivered") for n in range(20)]
    cluster.finish()


# -- no report, no delivered ---------------------------------------------------------------------


def test_a_device_whose_switch_is_lost_before_it_reported_is_never_delivered() -> None:
    cluster = Cluster(("a", "b"), make_config(grace=30.0))
    carol, dave = cluster.phone("a", "carol"), cluster.phone("b", "dave")
    _connected(cluster, carol, dave, "dave")
    cluster.say(carol, 1, "one", id="m1", settle=False)
    cluster.bus.step()  # on dave's connection, its report on the bus
    assert _messages(cluster.take(dave)) == [1] and _reports(cluster)
    cluster.bus.lose("b")  # the report is lost with b
    assert _acks(cluster.take(carol)) == [("m1", 1, "held")]
    cluster.advance(30.0)  # the resume grace: nobody took dave's registration over
    frames = cluster.take(carol)
    assert _acks(frames) == [("m1", 1, "not_delivered")]
    assert frames[-1]["sig"] == {"type": "rel", "cau": {"loc": 1, "num": 41}}
    cluster.finish()


def test_a_device_gone_before_the_message_reached_it_makes_it_held_then_not_delivered() -> None:
    cluster = Cluster(("a", "b"), make_config(grace=30.0))
    carol, dave = cluster.phone("a", "carol"), cluster.phone("b", "dave")
    _connected(cluster, carol, dave, "dave")
    cluster.feed("b", cluster.switch("b").closed(dave[1], False), settle=False)
    cluster.say(carol, 1, "too late", id="m1", settle=False)
    cluster.bus.run()  # b's device was away: b pushes nothing and reports nothing
    assert _acks(cluster.take(carol)) == [("m1", 1, "held")]
    cluster.advance(30.0)
    assert _acks(cluster.take(carol)) == [("m1", 1, "not_delivered")]
    cluster.finish()


def test_a_reader_not_keeping_up_on_its_switch_is_cut_off_and_nothing_is_reported() -> None:
    """As on one switch (§4.6): a message for a connection whose queue is full is not
    pushed but the reader is closed 4008; its calls wait for its resume."""
    cluster = Cluster(("a", "b"), make_config(grace=30.0))
    carol, dave = cluster.phone("a", "carol"), cluster.phone("b", "dave")
    _connected(cluster, carol, dave, "dave")
    cluster.say(carol, 1, "fits", id="m1")
    assert _acks(cluster.take(carol)) == [("m1", 1, "delivered")]
    cluster.congested["b"] = lambda conn, pending: conn == dave[1]  # the hub says so
    cluster.say(carol, 1, "too much", id="m2")
    assert cluster.closed_with[dave].code == 4008
    assert _messages(cluster.take(dave)) == [1]
    assert _acks(cluster.take(carol)) == [("m2", 2, "held")]
    cluster.advance(30.0)
    assert _acks(cluster.take(carol)) == [("m2", 2, "not_delivered")]
    cluster.finish()


def test_what_reached_the_device_before_it_was_cut_off_is_still_delivered() -> None:
    """The report of a batch goes before the ``DeviceAway`` its last message caused."""
    cluster = Cluster(("a", "b"), make_config(grace=30.0))
    carol, dave = cluster.phone("a", "carol"), cluster.phone("b", "dave")
    _connected(cluster, carol, dave, "dave")
    cluster.congested["b"] = lambda conn, pending: pending >= 2  # room for two
    batch = [im(f"m{n}", id=f"m{n}") for n in range(1, 5)]
    cluster.signal(carol, 1, {"type": "facility", "fty": batch})
    assert _messages(cluster.take(dave)) == [1, 2] and cluster.closed_with[dave].code == 4008
    assert _acks(cluster.take(carol)) == [
        ("m1", 1, "delivered"),
        ("m2", 2, "delivered"),
        ("m3", 3, "held"),
        ("m4", 4, "held"),
    ]
    cluster.advance(30.0)
    assert _acks(cluster.take(carol)) == [("m3", 3, "not_delivered"), ("m4", 4, "not_delivered")]
    cluster.finish()


def test_a_message_crossing_the_receiver_s_rel_is_held_then_not_delivered() -> None:
    cluster = Cluster()
    carol, dave = cluster.phone("a", "carol"), cluster.phone("b", "dave")
    number = _connected(cluster, carol, dave, "dave")
    cluster.say(carol, 1, "crossing", id="m1", settle=False)
    cluster.signal(dave, number, {"type": "rel"}, settle=False)
    ways = [(way.sender, way.target) for way in cluster.bus.pending]
    cluster.bus.step(ways.index(("b", "a")))  # a hears dave's rel before b gets the message
    frames = cluster.take(carol)
    assert _acks(frames) == [("m1", 1, "held"), ("m1", 1, "not_delivered")]
    assert frames[-1]["sig"]["type"] == "rel"
    cluster.bus.run()  # b pushes it on the ended leg, as a socket's queue would: no report
    assert _messages(cluster.take(dave)) == [1] and cluster.take(carol) == []
    cluster.finish()


def test_a_writer_that_hangs_up_before_the_report_hears_held() -> None:
    cluster = Cluster()
    alice, bob = cluster.phone("a", "alice"), cluster.phone("b", "bob")
    _connected(cluster, alice, bob, "bob")
    cluster.say(alice, 1, "bye", id="m1", settle=False)
    cluster.signal(alice, 1, {"type": "rel"}, settle=False)
    assert _acks(cluster.take(alice)) == [("m1", 1, "held")]  # its own rel ends it
    cluster.bus.run()  # the message and the rel reach b; its late report changes nothing
    assert [frame["sig"]["type"] for frame in cluster.take(bob)] == ["facility", "rel"]
    assert cluster.take(alice) == []
    cluster.finish()


# -- held messages and resumes ---------------------------------------------------------------------


def test_messages_held_until_conn_are_delivered_when_the_callee_switch_reports_them() -> None:
    cluster = Cluster()
    alice, bob = cluster.phone("a", "alice"), cluster.phone("b", "bob")
    cluster.setup(alice, 1, "bob", im("early", id="e0"))
    assert _acks(cluster.take(alice)) == [("e0", 1, "held")]
    number = cluster.offered(bob)
    cluster.signal(bob, number, {"type": "conn"}, settle=False)
    cluster.bus.step()  # a: conn, and the held message goes to b
    assert [frame["sig"]["type"] for frame in cluster.take(alice)] == ["conn"]
    cluster.bus.run()
    assert _messages(cluster.take(bob)) == [1]
    assert _acks(cluster.take(alice)) == [("e0", 1, "delivered")]
    cluster.finish()


def test_a_replay_after_a_resume_is_delivered_on_its_report_and_held_is_told_once() -> None:
    cluster = Cluster(("a", "b"), make_config(grace=30.0))
    alice, bob = cluster.phone("a", "alice"), cluster.phone("b", "bob")
    cluster.setup(alice, 1, "bob")
    conf = cluster.take(alice)[0]["sig"]["confId"]
    cluster.signal(bob, cluster.offered(bob), {"type": "conn"})
    cluster.take(alice)
    cluster.close(bob, clean=False)
    cluster.say(alice, 1, "while away", id="m1")
    assert _acks(cluster.take(alice)) == [("m1", 1, "held")]
    for attempt in range(2):
        bob = cluster.resume(bob, "b", "bob", {conf: 0})
        number = cluster.offered(bob)
        cluster.signal(bob, number, {"type": "conn"}, settle=False)
        cluster.bus.step()  # a replays m1 to b: sent, until b reports it
        if attempt == 0:  # bob drops again before b gets it: no report, held again
            cluster.feed("b", cluster.switch("b").closed(bob[1], False), settle=False)
        cluster.bus.run()
    assert _messages(cluster.take(bob)) == [1]
    assert _acks(cluster.take(alice)) == [("m1", 1, "delivered")]  # held was told once
    cluster.finish()


# -- groups ----------------------------------------------------------------------------------


def test_a_group_s_messages_ask_no_report() -> None:
    """A group's messages are acknowledged as on one switch (its chat is stored)."""
    cluster = Cluster(("a", "b"))
    alice, bob = cluster.phone("a", "alice"), cluster.phone("b", "bob")
    cluster.groups(TEAM)
    _join(cluster, alice, 1)
    _join(cluster, bob, 7)
    cluster.say(alice, 1, "to the team", id="g1", settle=False)
    assert _acks(cluster.take(alice)) == [("g1", 1, "delivered")]
    (way,) = cluster.bus.pending
    assert [frame.seq for frame in way.frames if type(frame) is ToLeg] == [0]
    cluster.bus.step()
    assert _messages(cluster.take(bob)) == [1] and cluster.bus.pending == []
    for client, number in ((alice, 1), (bob, 7)):
        cluster.signal(client, number, {"type": "rel"})
    cluster.finish()
