"""Live support and group calls across switches (docs 12.28): an agent's ``max_chats``
counts the chats of every switch through claims in the shared state, and a group has
one home, where every member's device joins its one live call.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from signaling.core.actions import Claim
from tests.signaling.core.cluster_harness import Client, Cluster, claims, kinds, support_config
from tests.support import make_config

JsonObject = dict[str, Any]


# -- live support: max_chats through Claim ------------------------------------------------------


def test_an_agent_full_with_a_chat_of_one_switch_is_not_offered_a_chat_of_another() -> None:
    cluster = Cluster(("a", "b", "c"), support_config(max_chats=1))
    carol, dave = cluster.phone("a", "carol"), cluster.phone("b", "dave")
    alice, bob = cluster.phone("c", "alice"), cluster.phone("c", "bob")
    cluster.setup(carol, 1, "support")  # homed on a: both agents claimed there, then offered
    assert kinds(cluster.take(carol)) == ["call_proc"]
    numbers = {alice: cluster.offered(alice), bob: cluster.offered(bob)}
    assert claims(cluster) == {"alice": 1, "bob": 1}
    cluster.setup(dave, 1, "support")  # homed on b, which counts none of a's chats itself
    assert kinds(cluster.take(dave)) == ["call_proc"]
    cluster.quiet(alice, bob)  # both claims refused: each agent is full with carol's chat
    cluster.signal(alice, numbers[alice], {"type": "conn"})
    assert kinds(cluster.take(carol)) == ["conn"]
    assert cluster.one(bob)["sig"] == {"type": "rel", "cau": {"loc": 1, "num": 26}}
    assert claims(cluster) == {"alice": 1}  # bob's offer ended: his room is back
    cluster.signal(dave, 1, {"type": "rel"})
    cluster.setup(dave, 2, "support")
    assert kinds(cluster.take(dave)) == ["call_proc"]
    cluster.quiet(alice)  # alice has carol's chat: refused again
    number = cluster.offered(bob)  # bob has room: offered, once
    cluster.signal(bob, number, {"type": "conn"})
    assert kinds(cluster.take(dave)) == ["conn"]
    cluster.say(dave, 2, "hello", id="d1")
    assert cluster.one(bob)["sig"]["fty"][0]["data"] == "hello"
    assert cluster.one(dave)["sig"]["fty"][0]["state"] == "delivered"
    assert claims(cluster) == {"alice": 1, "bob": 1}
    cluster.signal(carol, 1, {"type": "rel"})
    assert claims(cluster) == {"bob": 1}  # a closed chat gives its agent's room back
    cluster.finish()  # and no claim is left at all


def test_an_agent_with_room_for_two_takes_chats_homed_on_two_switches() -> None:
    cluster = Cluster(("a", "b", "c"), support_config(max_chats=2))
    carol, dave, alice = (
        cluster.phone("a", "carol"),
        cluster.phone("b", "dave"),
        cluster.phone("c", "alice"),
    )
    for visitor in (carol, dave):
        cluster.setup(visitor, 1, "support")
        cluster.take(visitor)
        cluster.signal(alice, cluster.offered(alice), {"type": "conn"})
        assert kinds(cluster.take(visitor)) == ["conn"]
    assert claims(cluster) == {"alice": 2}
    cluster.finish()


def _conf(frames: list[JsonObject]) -> str:
    (proceeding,) = frames
    conf: str = proceeding["sig"]["confId"]
    return conf


def _take(cluster: Cluster, agent: Client, conf: str) -> JsonObject:
    """The agent's ``Take`` of chat ``conf``, and its answer once everything settled."""
    cluster.send(agent, {"api": "Queue", "mt": "Take", "src": "q", "confId": conf})
    (answer,) = [frame for frame in cluster.take(agent) if frame.get("src") == "q"]
    return answer


def test_a_full_agent_s_take_of_a_chat_not_offered_elsewhere_is_refused_by_the_claim() -> None:
    """Alice has a chat homed on a; a chat homed on b, whose own count of her chats is
    none, is not hers to take: the claim in her shared set refuses it."""
    cluster = Cluster(("a", "b", "c"), support_config(max_chats=1))
    carol, dave = cluster.phone("a", "carol"), cluster.phone("b", "dave")
    alice, bob = cluster.phone("c", "alice"), cluster.phone("c", "bob")
    cluster.setup(carol, 1, "support")
    cluster.take(carol)
    cluster.signal(alice, cluster.offered(alice), {"type": "conn"})
    assert kinds(cluster.take(carol)) == ["conn"]
    cluster.take(bob)  # carol's chat no longer rings for him
    cluster.setup(dave, 1, "support")
    conf = _conf(cluster.take(dave))
    cluster.offered(bob)
    refused = _take(cluster, alice, conf)
    assert (refused["mt"], refused["code"]) == ("Error", "unavailable"), refused
    assert "max_chats" in refused["text"]
    assert claims(cluster) == {"alice": 1, "bob": 1}  # carol's chat, and bob's offer
    cluster.quiet(alice, dave)
    for visitor in (carol, dave):
        cluster.signal(visitor, 1, {"type": "rel"})
    cluster.finish()


def test_a_take_of_a_chat_not_offered_counts_under_max_chats_on_every_switch() -> None:
    """Alice declined the chat homed on a and takes it after all: her shared set counts
    it, so a chat homed on b is not offered to her until it is closed."""
    cluster = Cluster(("a", "b", "c"), support_config(max_chats=1))
    carol, dave = cluster.phone("a", "carol"), cluster.phone("b", "dave")
    alice = cluster.phone("c", "alice")
    cluster.setup(carol, 1, "support")
    conf = _conf(cluster.take(carol))
    cluster.signal(alice, cluster.offered(alice), {"type": "rel"})  # declined
    assert claims(cluster) == {}
    taken = _take(cluster, alice, conf)
    assert (taken["mt"], taken["confId"]) == ("TakeResult", conf), taken
    assert kinds(cluster.take(carol)) == ["conn"]
    assert claims(cluster) == {"alice": 1}
    cluster.setup(dave, 1, "support")
    cluster.take(dave)
    cluster.quiet(alice)  # full with carol's chat, on every switch
    cluster.signal(carol, 1, {"type": "rel"})
    frames = cluster.take(alice)  # her room is back: dave's chat rings now
    assert kinds(frames) == ["rel", "setup"], frames
    cluster.signal(dave, 1, {"type": "rel"})
    cluster.finish()


def test_a_take_whose_claim_an_offer_overtook_is_answered_and_leaves_nothing() -> None:
    """Alice's Take of a chat she declined waits for its claim; meanwhile bob takes the
    chat and hands it back to the queue, which offers it to her and claims it anew. The
    Take's own claim answers late: it is answered (the offer is hers to answer), and its
    home lets go of her device's stand-in."""
    cluster = Cluster(("a", "b"), support_config(max_chats=2))
    carol = cluster.phone("a", "carol")
    alice, bob = cluster.phone("b", "alice"), cluster.phone("b", "bob")
    cluster.setup(carol, 1, "support")
    conf = _conf(cluster.take(carol))
    cluster.signal(alice, cluster.offered(alice), {"type": "rel"})  # declined
    take = {"api": "Queue", "mt": "Take", "src": "q", "confId": conf}
    cluster.send(alice, take, settle=False)
    cluster.bus.step(0)  # a has the Take: its claim is asked
    (asked,) = [d for d in cluster.bus.pending if isinstance(d.question, Claim)]
    cluster.bus.pending.remove(asked)  # its answer comes last
    cluster.signal(bob, cluster.offered(bob), {"type": "conn"})
    assert kinds(cluster.take(carol)) == ["conn"]
    back = {"api": "Queue", "mt": "Transfer", "src": "t", "confId": conf, "to": "support"}
    cluster.send(bob, back)  # her claim was let go with bob's take, and is asked anew
    cluster.bus.pending.append(asked)
    cluster.bus.run()
    frames = cluster.take(alice)
    (answer,) = [frame for frame in frames if frame.get("src") == "q"]
    assert (answer["mt"], answer["code"]) == ("Error", "unavailable"), answer
    offered = [frame["call"] for frame in frames if frame.get("sig", {}).get("type") == "setup"]
    assert len(offered) == 1 and claims(cluster) == {"alice": 1}
    cluster.signal(alice, offered[0], {"type": "conn"})
    assert kinds(cluster.take(carol)) == ["facility"]  # her new agent's name
    cluster.quiet(alice)
    cluster.take(bob)
    cluster.signal(carol, 1, {"type": "rel"})
    cluster.finish()


def test_a_take_claimed_for_a_device_gone_meanwhile_leaves_the_chat_waiting() -> None:
    """Alice's Take from b waits for its claim at a; meanwhile she signs off on b and a
    lookup at a no longer finds her device, so her stand-in goes. Granted then, the
    claim finds the stand-in reaching nothing: the chat is not answered by a device
    that is gone, and her claim is given back."""
    cluster = Cluster(("a", "b"), support_config(max_chats=2))
    carol, dave = cluster.phone("a", "carol"), cluster.phone("a", "dave")
    alice = cluster.phone("b", "alice")
    cluster.setup(carol, 1, "support")
    conf = _conf(cluster.take(carol))
    cluster.signal(alice, cluster.offered(alice), {"type": "rel"})  # declined
    cluster.send(alice, {"api": "Queue", "mt": "Take", "src": "q", "confId": conf}, settle=False)
    cluster.bus.step(0)  # a has the Take: its claim is asked
    (asked,) = [d for d in cluster.bus.pending if isinstance(d.question, Claim)]
    cluster.bus.pending.remove(asked)  # its answer comes last
    cluster.close(alice)
    cluster.setup(dave, 1, "support")  # a looks the agents up: her device is not found
    assert kinds(cluster.take(dave)) == ["call_proc"]
    a = cluster.switch("a")
    assert a.node is not None and a.node.remote.held() == 0
    cluster.bus.pending.append(asked)
    cluster.bus.run()
    cluster.quiet(carol)  # still waiting: nobody answered
    assert claims(cluster) == {}
    for visitor in (carol, dave):
        cluster.signal(visitor, 1, {"type": "rel"})
    cluster.finish()


def _take_waiting_for_its_claim(cluster: Cluster) -> tuple[Client, Client, str, Any]:
    """Carol's chat homed on a; alice, on a too, declines it, then takes it: her Take waits
    for its claim, whose delivery on the bus is held back and returned, for the test to
    hand on when it chooses."""
    carol, alice = cluster.phone("a", "carol"), cluster.phone("a", "alice")
    cluster.setup(carol, 1, "support")
    conf = _conf(cluster.take(carol))
    cluster.signal(alice, cluster.offered(alice), {"type": "rel"})  # declined
    cluster.send(alice, {"api": "Queue", "mt": "Take", "src": "q", "confId": conf}, settle=False)
    (asked,) = [d for d in cluster.bus.pending if isinstance(d.question, Claim)]
    cluster.bus.pending.remove(asked)  # its answer comes last
    return carol, alice, conf, asked


def test_a_take_claimed_for_a_registration_ended_meanwhile_leaves_the_chat_waiting() -> None:
    """Alice's Take on the chat's home waits for its claim; meanwhile she unregisters.
    Granted then, the claim does not make her ended registration take the chat: the
    chat waits on, her connection hears nothing of it, and her claim is given back."""
    cluster = Cluster(("a", "b"), support_config(max_chats=2))
    carol, alice, _, asked = _take_waiting_for_its_claim(cluster)
    cluster.send(alice, {"api": "PbxSignal", "mt": "Unregister", "src": "u"})
    assert [frame["mt"] for frame in cluster.take(alice)] == ["UnregisterResult"]
    cluster.bus.pending.append(asked)
    cluster.bus.run()
    (answer,) = cluster.take(alice)
    assert (answer["src"], answer["mt"], answer["code"]) == ("q", "Error", "unavailable")
    cluster.quiet(carol)  # still waiting: nobody answered
    assert claims(cluster) == {}
    cluster.signal(carol, 1, {"type": "rel"})
    cluster.finish()


def test_a_take_claimed_while_its_device_resumed_is_answered_on_the_new_connection() -> None:
    """Alice's Take on the chat's home waits for its claim; meanwhile her link drops and
    she resumes on the same switch: the TakeResult reaches her new connection."""
    config = support_config(max_chats=2)
    signaling = replace(config.signaling, resume_grace=30.0)
    cluster = Cluster(("a", "b"), replace(config, signaling=signaling))
    carol, alice, conf, asked = _take_waiting_for_its_claim(cluster)
    node, conn = alice
    cluster.feed(node, cluster.switch(node).closed(conn, False), settle=False)
    again = cluster.resume(alice, "a", "alice", {}, settle=False)
    cluster.bus.pending.append(asked)
    cluster.bus.run()
    (answer,) = [frame for frame in cluster.take(again) if frame.get("src") == "q"]
    assert (answer["mt"], answer["confId"]) == ("TakeResult", conf), answer
    assert kinds(cluster.take(carol)) == ["conn"]
    cluster.signal(carol, 1, {"type": "rel"})
    cluster.finish()


def test_a_lost_home_takes_its_claims_with_it() -> None:
    cluster = Cluster(("a", "b", "c"), support_config(max_chats=1))
    carol, dave, alice = (
        cluster.phone("a", "carol"),
        cluster.phone("b", "dave"),
        cluster.phone("c", "alice"),
    )
    cluster.setup(carol, 1, "support")
    cluster.offered(alice)
    cluster.bus.lose("a")
    assert cluster.one(alice)["sig"]["cau"]["num"] == 41
    assert claims(cluster) == {}
    cluster.setup(dave, 1, "support")
    cluster.take(dave)
    assert cluster.offered(alice) < 0  # alice has room again
    cluster.finish()


# -- a group call with members on two switches --------------------------------------------------

TEAM = {
    "domain": "example.com",
    "id": 1,
    "sip": "group-1",
    "dn": "Team",
    "members": [{"sip": "alice", "admin": True}, {"sip": "bob", "admin": False}],
}


def _join(cluster: Cluster, client: Client, number: int) -> str:
    """The member's setup to the group: answered at once, wherever the home is."""
    sig = {"type": "setup", "channel": 0, "cd": {"sip": "group-1"}, "fty": [{"type": "im_setup"}]}
    cluster.signal(client, number, sig)
    frames = cluster.take(client)
    assert kinds(frames) == ["call_proc", "conn"], frames
    assert {frame["call"] for frame in frames} == {number}
    conf: str = frames[0]["sig"]["confId"]
    return conf


def _seqs(frames: list[JsonObject]) -> list[int]:
    return [
        item["seq"] for frame in frames for item in frame["sig"].get("fty", ()) if "seq" in item
    ]


def test_a_group_call_with_members_on_two_switches_has_one_home_and_one_seq() -> None:
    cluster = Cluster(("a", "b"), make_config(rate=1e6, burst=10_000))
    alice, bob, alice_b = (
        cluster.phone("a", "alice"),
        cluster.phone("b", "bob"),
        cluster.phone("b", "alice"),
    )
    cluster.groups(TEAM)
    conf = _join(cluster, alice, 1)  # a claims the group's home
    assert _join(cluster, bob, 7) == conf  # b's claim is refused: bob joins a's call
    assert cluster.bus.switches["b"].chat.calls == {}
    for index in range(20):
        writer, number = (alice, 1) if index % 2 == 0 else (bob, 7)
        cluster.say(writer, number, f"m{index}", id=f"id{index}")
    seen = {alice: cluster.take(alice), bob: cluster.take(bob)}
    for client, frames in seen.items():  # each hears the other's ten, and acks for its own
        relayed = [f for f in frames if f["sig"]["fty"][0]["type"] == "im_message"]
        acks = [f for f in frames if f["sig"]["fty"][0]["type"] == "im_ack"]
        assert len(relayed) == len(acks) == 10, client
        assert {f["sig"]["fty"][0]["state"] for f in acks} == {"delivered"}
    assert sorted(_seqs(seen[alice]) + _seqs(seen[bob])) == sorted([*range(1, 21)] * 2)
    number = cluster.offered(alice_b)  # alice's device on b is offered the group's call
    cluster.signal(alice_b, number, {"type": "conn"})
    assert _seqs(cluster.take(alice_b)) == list(range(1, 21))  # what it missed, in order
    cluster.say(alice_b, number, "from b", id="last")
    assert _seqs(cluster.take(alice)) == _seqs(cluster.take(bob)) == [21]
    for client, call in ((alice, 1), (bob, 7), (alice_b, number)):
        cluster.signal(client, call, {"type": "rel"})
    assert cluster.bus.book.claims == {}  # the call ended: the home is free
    conf_b = _join(cluster, bob, 8)  # now b is first: b is the home
    assert _join(cluster, alice, 2) == conf_b != conf
    assert cluster.bus.switches["a"].chat.calls == {}
    cluster.say(alice, 2, "again", id="again")
    assert _seqs(cluster.take(bob)) == [1]
    cluster.finish()


def test_group_setups_on_two_switches_in_the_same_step_make_one_call() -> None:
    cluster = Cluster(("a", "b"))
    alice, bob = cluster.phone("a", "alice"), cluster.phone("b", "bob")
    cluster.groups(TEAM)
    sig = {"type": "setup", "channel": 0, "cd": {"sip": "group-1"}, "fty": [{"type": "im_setup"}]}
    cluster.signal(alice, 1, sig, settle=False)
    cluster.signal(bob, 1, sig, settle=False)
    cluster.bus.step(1)  # b's claim first: b is the home, a's device joins there
    cluster.bus.run()
    frames = {client: cluster.take(client) for client in (alice, bob)}
    assert all(kinds(got) == ["call_proc", "conn"] for got in frames.values()), frames
    assert frames[alice][0]["sig"]["confId"] == frames[bob][0]["sig"]["confId"]
    assert cluster.bus.switches["a"].chat.calls == {}
    cluster.say(alice, 1, "one call", id="x")
    assert cluster.one(bob)["sig"]["fty"][0]["data"] == "one call"
    cluster.finish()


def test_a_join_that_comes_before_the_home_s_own_claim_answer_waits_for_it() -> None:
    """a's claim runs in Redis first, but its answer reaches a after b's refusal sent
    Bob's ``Join`` there (they travel on different connections): the Join waits for
    the answer instead of being told the call is gone (``rel`` 41)."""
    cluster = Cluster(("a", "b"))
    alice, bob = cluster.phone("a", "alice"), cluster.phone("b", "bob")
    cluster.groups(TEAM)
    sig = {"type": "setup", "channel": 0, "cd": {"sip": "group-1"}, "fty": [{"type": "im_setup"}]}
    cluster.signal(alice, 1, sig, settle=False)
    cluster.signal(bob, 1, sig, settle=False)
    cluster.bus.decide(0)  # a holds the home; the answer has not reached a yet
    cluster.bus.step(1)  # b is refused: Bob's Join goes to a
    join = next(i for i, d in enumerate(cluster.bus.pending) if (d.sender, d.target) == ("b", "a"))
    cluster.bus.step(join)  # before a's answer
    cluster.bus.run()
    frames = {client: cluster.take(client) for client in (alice, bob)}
    assert all(kinds(got) == ["call_proc", "conn"] for got in frames.values()), frames
    assert frames[alice][0]["sig"]["confId"] == frames[bob][0]["sig"]["confId"]
    cluster.say(bob, 1, "one call", id="x")
    assert cluster.one(alice)["sig"]["fty"][0]["data"] == "one call"
    cluster.finish()


def test_a_non_member_is_refused_where_the_home_is_and_a_home_no_call_needs_is_let_go() -> None:
    cluster = Cluster(("a", "b"))
    carol = cluster.phone("b", "carol")
    cluster.groups(TEAM)
    sig = {"type": "setup", "channel": 0, "cd": {"sip": "group-1"}, "fty": [{"type": "im_setup"}]}
    cluster.signal(carol, 1, sig)  # b became the home for it, and let it go again
    assert cluster.one(carol)["sig"] == {"type": "rel", "cau": {"loc": 1, "num": 21}}
    assert cluster.bus.book.claims == {}
    alice = cluster.phone("a", "alice")
    _join(cluster, alice, 1)  # a is the home now
    cluster.signal(carol, 2, sig)  # refused at a, heard on b
    frame = cluster.one(carol)
    assert (frame["call"], frame["sig"]) == (2, {"type": "rel", "cau": {"loc": 1, "num": 21}})
    cluster.signal(carol, 2, {"type": "facility", "fty": [{"type": "im_message", "data": "x"}]})
    assert cluster.one(carol)["mt"] == "Error"
    assert cluster.bus.switches["b"].held()["proxy_legs"] == 0
    cluster.finish()
