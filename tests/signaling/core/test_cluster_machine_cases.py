"""Cases the cluster machine (``test_cluster_machine.py``) found, kept as plain tests with
the harness, and where the machine's model was wrong, the machine itself driven along the
same steps, so that each stays proven without Hypothesis.
"""

from __future__ import annotations

from typing import Any, cast

from hypothesis import strategies as st

from tests.signaling.core.cluster_harness import Client, Cluster
from tests.signaling.core.test_cluster_machine import CallsAcrossSwitches
from tests.signaling.core.test_cluster_support_and_groups import TEAM
from tests.support import make_config

JsonObject = dict[str, Any]

GROUP_SETUP = {
    "type": "setup",
    "channel": 0,
    "cd": {"sip": TEAM["sip"]},
    "fty": [{"type": "im_setup"}],
}


def _seqs(frames: list[JsonObject]) -> list[int]:
    return [
        item["seq"]
        for frame in frames
        for item in frame.get("sig", {}).get("fty", ())
        if item["type"] == "im_message"
    ]


def _drop(cluster: Cluster, client: Client) -> None:
    """The client's link is lost (not a clean close); what its switch tells others waits."""
    node, conn = client
    cluster.feed(node, cluster.switch(node).closed(conn, False), settle=False)


# -- a group's message that only its Post heard of ----------------------------------------------


def test_a_group_message_written_to_nobody_is_heard_of_by_its_post_alone() -> None:
    """bob on c writes twice in the group's call homed on a, hangs up and loses his link
    before a hears any of it; alice left the call and is away. Message 1 reaches no
    device (nobody is in the call, and alice is not online to be offered it) and its
    ``stored`` goes to a connection that is gone: the Post is its only trace. Alice,
    back, is offered the call by message 2 and gets it from there on (the rest is the
    group's history)."""
    cluster = Cluster(("a", "c"), make_config(rate=1e6, burst=10_000, grace=60.0))
    alice, bob = cluster.phone("a", "alice"), cluster.phone("c", "bob")
    cluster.groups(TEAM)
    cluster.signal(alice, 1, GROUP_SETUP)  # a is the home
    conf = cluster.take(alice)[0]["sig"]["confId"]
    cluster.signal(bob, 2, GROUP_SETUP)  # bob's setup joins a's call
    assert cluster.take(bob)[0]["sig"]["confId"] == conf
    cluster.signal(alice, 1, {"type": "rel"})
    _drop(cluster, alice)
    for data in ("one", "two"):
        cluster.say(bob, 2, data, id=data, settle=False)
    cluster.signal(bob, 2, {"type": "rel"}, settle=False)
    _drop(cluster, bob)
    cluster.bus.step()  # "one": seq 1, to nobody; alice is away, so not offered the call
    cluster.disk()  # its "stored" leaves for bob's old connection
    again = cluster.resume(alice, "a", "alice", {}, settle=False)
    cluster.bus.step()  # "two": seq 2, and alice (online again) is offered the call
    offer = cluster.one(again)
    assert offer["sig"]["type"] == "setup" and offer["sig"]["confId"] == conf
    cluster.signal(again, offer["call"], {"type": "conn"})
    assert _seqs(cluster.take(again)) == [2]
    cluster.bus.run()
    cluster.disk()
    cluster.bus.run()
    assert cluster.take(bob) == []  # no ack on a connection that is gone
    posts = [
        (store.post["id"], store.post["seq"], store.post["callId"]) for store in cluster.stores
    ]
    assert posts == [("one", 1, conf), ("two", 2, conf)]
    cluster.finish()


class _Drawn:
    """The values a rule of the machine draws, fixed, in order (the last one again)."""

    def __init__(self, *values: object) -> None:
        self.values = list(values)

    def draw(self, strategy: object) -> object:
        return self.values.pop(0) if len(self.values) > 1 else self.values[0]


def _draw(*values: object) -> st.DataObject:
    return cast(st.DataObject, _Drawn(*values))


def test_the_machine_counts_a_seq_only_a_post_heard_of() -> None:
    """The steps above as the machine took them (shrunk from 50 steps, seed 72): its
    check that a call's seqs are contiguous must count what the Posts carry, else seq 1
    looks skipped."""
    machine = CallsAcrossSwitches()
    client = machine.client
    machine.join_group(_draw("a:alice"))
    alice = (client["a:alice"], 1)
    machine.join_group(_draw("c:bob"))
    bob = (client["c:bob"], 2)
    machine.hang_up(_draw(alice))
    machine.drop(_draw("a:alice"))
    machine.write(_draw(bob))
    machine.write(_draw(bob))
    machine.hang_up(_draw(bob))
    machine.drop(_draw("c:bob"))
    machine.deliver(_draw(0))
    machine.resume(_draw("a:alice", "a"))  # on its own switch
    machine.deliver(_draw(0))
    offered = [leg for leg in machine._ringing() if leg[0] == client["a:alice"]]
    assert len(offered) == 1
    machine.answer(_draw(offered[0]))
    machine.teardown()


# -- a call that ended at its home before the home was lost ----------------------------------------


def test_a_message_crossing_its_calls_end_is_answered_by_rel_41_when_the_home_is_lost() -> None:
    """alice on a calls bob; bob's device on a answers first, so a releases bob's device
    on c (26), whose ``conn`` crosses that ``rel``; alice hangs up, so the call is over
    at a; bob on c, still connected as far as c knows, writes. Then a is lost with all
    it sent: c's device hears ``rel`` 41, which answers its message, as for any call
    homed on a lost switch."""
    cluster = Cluster(("a", "c"), make_config(rate=1e6, burst=10_000, grace=60.0))
    alice, bob_a, bob_c = (
        cluster.phone("a", "alice"),
        cluster.phone("a", "bob"),
        cluster.phone("c", "bob"),
    )
    cluster.setup(alice, 1, "bob")
    cluster.take(alice)
    number_a, number_c = cluster.offered(bob_a), cluster.offered(bob_c)
    cluster.signal(bob_a, number_a, {"type": "conn"}, settle=False)  # wins: c's rel 26 waits
    cluster.signal(bob_c, number_c, {"type": "conn"}, settle=False)
    cluster.signal(alice, 1, {"type": "rel"}, settle=False)
    assert cluster.switch("a").chat.calls == {}  # the call is over at its home
    cluster.say(bob_c, number_c, "late", id="m1", settle=False)
    cluster.bus.lose("a")
    frames = cluster.take(bob_c)
    lost = {"type": "rel", "cau": {"loc": 1, "num": 41}}
    assert [(frame["call"], frame["sig"]) for frame in frames] == [(number_c, lost)]
    cluster.finish()


def test_the_machine_knows_a_calls_home_after_the_call_ended_there() -> None:
    """The steps above as the machine took them (shrunk from 50 steps, seed 17): the
    call had ended at a when a was lost, yet c's device had not heard it; its message is
    answered by ``rel`` 41 only if the machine still counts the call as a's."""
    machine = CallsAcrossSwitches()
    client = machine.client
    machine.place(_draw("a:alice"))
    ringing = {machine.name[leg[0]]: leg for leg in machine._ringing()}
    machine.answer(_draw(ringing["a:bob"]))
    machine.answer(_draw(ringing["c:bob"]))
    machine.hang_up(_draw((client["a:alice"], 1)))
    machine.write(_draw(ringing["c:bob"]))
    machine.lose("a")
    machine.teardown()
