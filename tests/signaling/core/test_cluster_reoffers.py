"""A waiting support chat offered again when one of its agents may take it on another
switch (docs 12.46), on the in-memory bus: the agent's chat elsewhere ends, or the agent
comes online elsewhere; the chat's home offers it as to an agent of its own, once per
agent, claimed in the agent's shared set first (``max_chats`` over every switch), and the
first answer wins there.
"""

from __future__ import annotations

from typing import Any

from signaling.core.actions import Claim, Lookup
from tests.signaling.core.cluster_harness import Client, Cluster, claims, kinds, support_config

JsonObject = dict[str, Any]

TAKEN = {"type": "rel", "cau": {"loc": 1, "num": 26}}


def _waits(cluster: Cluster, visitor: Client) -> None:
    """The visitor calls the queue and hears ``call_proc`` only: the chat waits."""
    cluster.setup(visitor, 1, "support")
    assert kinds(cluster.take(visitor)) == ["call_proc"]


def _taken(cluster: Cluster, visitor: Client, agent: Client) -> None:
    """The visitor's chat rings for ``agent`` (alone) and the agent takes it."""
    cluster.setup(visitor, 1, "support")
    assert kinds(cluster.take(visitor)) == ["call_proc"]
    cluster.signal(agent, cluster.offered(agent), {"type": "conn"})
    assert kinds(cluster.take(visitor)) == ["conn"]


def test_an_agent_freed_by_a_chat_ending_on_a_third_switch_is_offered_a_waiting_chat_once() -> None:
    cluster = Cluster(("a", "b", "c"), support_config())
    alice, dave = cluster.phone("b", "alice"), cluster.phone("c", "dave")
    _taken(cluster, dave, alice)  # homed on c: alice is full
    carol = cluster.phone("a", "carol")
    _waits(cluster, carol)  # homed on a: alice's claim is refused
    cluster.quiet(alice)
    assert claims(cluster) == {"alice": 1}
    cluster.signal(dave, 1, {"type": "rel"})  # ends on c, which a's board news named
    frames = cluster.take(alice)
    assert kinds(frames) == ["rel", "setup"]  # dave's chat is over, carol's rings, once
    assert frames[1]["sig"]["cg"]["sip"] == "carol"
    assert claims(cluster) == {"alice": 1}
    cluster.signal(alice, frames[1]["call"], {"type": "conn"})
    assert kinds(cluster.take(carol)) == ["conn"]
    cluster.say(carol, 1, "hello", id="c1")
    assert cluster.one(alice)["sig"]["fty"][0]["data"] == "hello"
    assert cluster.one(carol)["sig"]["fty"][0]["state"] == "delivered"
    cluster.finish()


def test_an_agent_freed_by_a_chat_ending_on_their_own_switch_is_offered_the_chat_elsewhere() -> (
    None
):
    cluster = Cluster(("a", "b"), support_config())
    alice, dave = cluster.phone("b", "alice"), cluster.phone("b", "dave")
    _taken(cluster, dave, alice)
    carol = cluster.phone("a", "carol")
    _waits(cluster, carol)
    cluster.quiet(alice)
    cluster.signal(alice, -1, {"type": "rel"})  # alice closes dave's chat herself
    frames = cluster.take(alice)
    assert kinds(frames) == ["setup"] and frames[0]["sig"]["cg"]["sip"] == "carol"
    cluster.signal(alice, frames[0]["call"], {"type": "conn"})
    assert kinds(cluster.take(carol)) == ["conn"]
    cluster.finish()


def test_an_agent_coming_online_on_another_switch_is_offered_a_waiting_chat() -> None:
    cluster = Cluster(("a", "b", "c"), support_config())
    carol = cluster.phone("a", "carol")
    _waits(cluster, carol)  # no agent anywhere yet
    alice = cluster.phone("b", "alice")  # a looks her up: her device rings
    number = cluster.offered(alice)
    assert claims(cluster) == {"alice": 1}
    second = cluster.phone("c", "alice")  # ringing already: not offered again (as on one)
    cluster.quiet(second)
    cluster.signal(alice, number, {"type": "conn"})
    assert kinds(cluster.take(carol)) == ["conn"]
    cluster.quiet(alice, second)
    cluster.finish()


def test_an_agent_registered_before_their_switch_hears_of_a_new_chat_is_offered_it() -> None:
    """The chat's home looked its agents up before alice registered on b, and b hears of
    the chat only after she did: then b tells the home of the queue's agents online
    there."""
    cluster = Cluster(("a", "b"), support_config())
    carol, alice = cluster.phone("a", "carol"), cluster.login("b", "alice")
    setup = {"type": "setup", "channel": 0, "cd": {"sip": "support"}, "fty": [{"type": "im_setup"}]}
    cluster.signal(carol, 1, setup, settle=False)
    (lookup,) = [i for i, d in enumerate(cluster.bus.pending) if isinstance(d.question, Lookup)]
    cluster.bus.step(lookup)  # no agent anywhere: the chat waits, its news for b too
    assert kinds(cluster.take(carol)) == ["call_proc"]
    register = {"api": "PbxSignal", "mt": "Register", "src": "reg", "flags": "NO_MEDIA_CALL"}
    cluster.send(alice, register, settle=False)  # b knows of no chat yet
    cluster.bus.run()
    frames = cluster.take(alice)
    assert [frame["mt"] for frame in frames] == ["RegisterResult", "Signaling"]
    assert frames[1]["sig"]["type"] == "setup" and frames[1]["sig"]["cg"]["sip"] == "carol"
    cluster.signal(alice, frames[1]["call"], {"type": "conn"})
    assert kinds(cluster.take(carol)) == ["conn"]
    cluster.finish()


def test_a_claim_refused_as_the_agent_frees_up_at_the_home_is_asked_again() -> None:
    """Alice (room for two) has a chat homed on c and one on a. c claims her for carol's
    new chat; Redis refuses (two already), but before the answer comes her chat on c
    ends: c's count says she has room, so the out-of-date refusal is asked once more."""
    cluster = Cluster(("a", "b", "c"), support_config(max_chats=2))
    alice, dave = cluster.phone("b", "alice"), cluster.phone("c", "dave")
    _taken(cluster, dave, alice)  # homed on c
    _taken(cluster, cluster.phone("a", "carol"), alice)  # homed on a
    carol = cluster.phone("c", "carol")
    setup = {"type": "setup", "channel": 0, "cd": {"sip": "support"}, "fty": [{"type": "im_setup"}]}
    cluster.signal(carol, 1, setup, settle=False)
    (lookup,) = [i for i, d in enumerate(cluster.bus.pending) if isinstance(d.question, Lookup)]
    cluster.bus.step(lookup)  # alice is found, and claimed
    (claim,) = [i for i, d in enumerate(cluster.bus.pending) if isinstance(d.question, Claim)]
    cluster.bus.decide(claim)  # refused: her set holds two chats
    cluster.signal(dave, 1, {"type": "rel"}, settle=False)  # then one of them ends
    cluster.bus.run()  # and the refusal arrives
    assert kinds(cluster.take(carol)) == ["call_proc"]
    frames = cluster.take(alice)
    assert kinds(frames) == ["rel", "setup"] and frames[1]["sig"]["cg"]["sip"] == "carol"
    assert claims(cluster) == {"alice": 2}
    cluster.finish()


def test_two_agents_freed_at_once_on_two_switches_the_chat_is_picked_once() -> None:
    cluster = Cluster(("a", "b", "c"), support_config())
    alice, bob = cluster.phone("b", "alice"), cluster.phone("c", "bob")
    on_b, on_c = cluster.phone("b", "carol"), cluster.phone("c", "carol")
    cluster.setup(on_b, 1, "support")  # homed on b, rings for both: alice takes it
    cluster.take(on_b)
    cluster.offered(bob)
    cluster.signal(alice, cluster.offered(alice), {"type": "conn"})
    assert cluster.one(bob)["sig"] == TAKEN
    _taken(cluster, on_c, bob)  # homed on c: alice is full, bob takes it
    dave = cluster.phone("a", "dave")
    _waits(cluster, dave)  # homed on a: both are full
    cluster.quiet(alice, bob)
    cluster.signal(on_b, 1, {"type": "rel"}, settle=False)  # both chats end at once
    cluster.signal(on_c, 1, {"type": "rel"}, settle=False)
    cluster.bus.run()
    numbers = {}
    for agent in (alice, bob):
        frames = cluster.take(agent)
        assert kinds(frames) == ["rel", "setup"] and frames[1]["sig"]["cg"]["sip"] == "dave"
        numbers[agent] = frames[1]["call"]
    assert claims(cluster) == {"alice": 1, "bob": 1}
    for agent in (alice, bob):  # both answer at once
        cluster.signal(agent, numbers[agent], {"type": "conn"}, settle=False)
    cluster.bus.run()
    assert kinds(cluster.take(dave)) == ["conn"]  # one winner
    late = [cluster.take(agent) for agent in (alice, bob)]
    assert sorted(len(frames) for frames in late) == [0, 2]  # the loser: rel 26, then
    (loser,) = [frames for frames in late if frames]  # already_taken for its conn
    assert loser[0]["sig"] == TAKEN and loser[1]["code"] == "already_taken"
    assert sum(claims(cluster).values()) == 1
    cluster.finish()


def test_an_agent_freed_with_chats_waiting_on_two_switches_gets_one_then_the_other() -> None:
    """Both homes hear alice may take chats again and claim her at once: her shared set
    grants one claim, so she rings for one chat. When that chat ends, its home tells the
    other, whose refused claim is asked again."""
    cluster = Cluster(("a", "b", "c", "d"), support_config())
    alice, dave = cluster.phone("b", "alice"), cluster.phone("d", "dave")
    _taken(cluster, dave, alice)
    on_a, on_c = cluster.phone("a", "carol"), cluster.phone("c", "carol")
    _waits(cluster, on_a)
    _waits(cluster, on_c)
    cluster.quiet(alice)
    cluster.signal(dave, 1, {"type": "rel"})  # d tells a and c: both claim alice
    frames = cluster.take(alice)
    assert kinds(frames) == ["rel", "setup"]  # one chat rings: max_chats is 1
    assert claims(cluster) == {"alice": 1}
    first = frames[1]["call"]
    cluster.signal(alice, first, {"type": "conn"})
    visitors = [cluster.take(visitor) for visitor in (on_a, on_c)]
    assert sorted(kinds(frames) for frames in visitors) == [[], ["conn"]]
    answered, other = (on_a, on_c) if visitors[0] else (on_c, on_a)
    cluster.signal(answered, 1, {"type": "rel"})  # alice is free again: the other rings
    frames = cluster.take(alice)
    assert kinds(frames) == ["rel", "setup"]
    cluster.signal(alice, frames[1]["call"], {"type": "conn"})
    assert kinds(cluster.take(other)) == ["conn"]
    assert claims(cluster) == {"alice": 1}
    cluster.finish()
