"""Resume on another switch (PROTOCOL §4.9, docs 12.43): a client whose link dropped
reconnects to any switch of the cluster with its token; that switch takes the snapshot
of the registration from the book, builds it, tells the switch it left (which closes a
connection still holding it, 4005) and the homes of its calls, which offer them again
there and replay after the client's seqs: every message once, in order, while the peer
keeps writing. A home whose own device moves away keeps the call, with a stand-in for
the device where it is now; a device that comes back to the home is its own again.
"""

from __future__ import annotations

from typing import Any

from signaling.core.actions import Recall
from signaling.core.nodes.snapshots import token_key
from tests.signaling.core.cluster_harness import Client, Cluster
from tests.support import make_config

JsonObject = dict[str, Any]


def _cluster(*nodes: str) -> Cluster:
    return Cluster(nodes, make_config(grace=30.0))


def _call(cluster: Cluster, caller: Client, callee: Client) -> tuple[str, int]:
    """``caller`` calls ``callee`` on call 1, which answers: the confId, the callee's number."""
    cluster.setup(caller, 1, "bob")
    conf = cluster.take(caller)[0]["sig"]["confId"]
    number = cluster.offered(callee)
    cluster.signal(callee, number, {"type": "conn"})
    assert [frame["sig"]["type"] for frame in cluster.take(caller)] == ["conn"]
    return conf, number


def _items(frames: list[JsonObject], kind: str) -> list[JsonObject]:
    return [
        item for frame in frames for item in frame["sig"].get("fty", ()) if item["type"] == kind
    ]


def _seqs(frames: list[JsonObject]) -> list[int]:
    return [item["seq"] for item in _items(frames, "im_message")]


def _acks(frames: list[JsonObject]) -> list[tuple[str, str]]:
    return [(ack["id"], ack["state"]) for ack in _items(frames, "im_ack")]


def _answer_resumed(cluster: Cluster, client: Client, conf: str) -> int:
    """The client answers its call offered again after the resume; its new number."""
    setup = cluster.one(client)
    assert setup["sig"]["type"] == "setup" and setup["sig"]["confId"] == conf, setup
    assert {"type": "resumed"} in setup["sig"]["fty"]
    cluster.signal(client, setup["call"], {"type": "conn"})
    number: int = setup["call"]
    return number


def test_a_device_resuming_on_another_switch_misses_nothing_while_the_peer_writes() -> None:
    cluster = _cluster("a", "b", "c")
    alice, bob = cluster.phone("a", "alice"), cluster.phone("b", "bob")
    conf, number = _call(cluster, alice, bob)
    cluster.say(alice, 1, "one", id="m1")
    assert _seqs(cluster.take(bob)) == [1]
    assert _acks(cluster.take(alice)) == [("m1", "delivered")]
    cluster.close(bob, clean=False)  # b tells the home: away
    cluster.say(alice, 1, "two", id="m2")
    again = cluster.resume(bob, "c", "bob", {conf: 1}, settle=False)
    cluster.say(alice, 1, "three", id="m3", settle=False)  # the peer writes meanwhile
    cluster.bus.run()
    cluster.say(alice, 1, "four", id="m4")  # the home re-offered: held until conn
    number = _answer_resumed(cluster, again, conf)
    assert _seqs(cluster.take(again)) == [2, 3, 4]
    cluster.say(alice, 1, "five", id="m5")
    assert _seqs(cluster.take(again)) == [5]
    acks = _acks(cluster.take(alice))
    assert [state for message_id, state in acks if message_id != "m5"] == [
        "held",
        "held",
        "held",
        "delivered",
        "delivered",
        "delivered",
    ]
    assert acks[-1] == ("m5", "delivered")
    cluster.say(again, number, "back from c", id="r1")
    assert _seqs(cluster.take(alice)) == [6]
    assert _acks(cluster.take(again)) == [("r1", "delivered")]
    b = cluster.switch("b")
    assert len(b.registry) == 0 and b.held()["proxy_legs"] == 0
    cluster.advance(31.0)  # the old registration's grace is long over: nothing ends
    cluster.quiet(alice, again)
    cluster.finish()


def test_the_home_s_own_device_moving_away_keeps_its_call_as_a_remote_leg() -> None:
    cluster = _cluster("a", "b")
    alice, bob = cluster.phone("a", "alice"), cluster.phone("a", "bob")
    conf, _ = _call(cluster, alice, bob)
    cluster.say(alice, 1, "one", id="m1")
    assert _seqs(cluster.take(bob)) == [1]
    cluster.close(bob, clean=False)
    cluster.say(alice, 1, "two", id="m2")
    again = cluster.resume(bob, "b", "bob", {conf: 1})
    a = cluster.switch("a")
    assert [reg.user.sip for reg in a.registry.of("example.com", "bob")] == []
    assert a.node is not None and a.node.remote.held() == 1  # bob's stand-in there
    number = _answer_resumed(cluster, again, conf)
    assert _seqs(cluster.take(again)) == [2]
    cluster.say(alice, 1, "three", id="m3")
    assert _seqs(cluster.take(again)) == [3]
    assert _acks(cluster.take(alice)) == [
        ("m1", "delivered"),
        ("m2", "held"),
        ("m2", "delivered"),
        ("m3", "delivered"),
    ]
    cluster.say(again, number, "from b now", id="r1")
    assert _seqs(cluster.take(alice)) == [4]
    assert _acks(cluster.take(again)) == [("r1", "delivered")]
    cluster.signal(alice, 1, {"type": "rel"})
    assert [frame["sig"]["type"] for frame in cluster.take(again)] == ["rel"]
    assert a.node.remote.held() == 0  # the stand-in went with its last leg
    cluster.finish()


def test_a_device_resuming_back_on_the_home_is_its_own_again() -> None:
    cluster = _cluster("a", "b")
    alice, bob = cluster.phone("a", "alice"), cluster.phone("b", "bob")
    conf, _ = _call(cluster, alice, bob)
    cluster.close(bob, clean=False)
    cluster.say(alice, 1, "while away", id="m1")
    again = cluster.resume(bob, "a", "bob", {conf: 0})
    a, b = cluster.switch("a"), cluster.switch("b")
    assert a.node is not None and a.node.remote.held() == 0  # no stand-in: a local device
    assert len(b.registry) == 0 and b.held()["proxy_legs"] == 0
    number = _answer_resumed(cluster, again, conf)
    assert _seqs(cluster.take(again)) == [1]
    cluster.say(alice, 1, "local again", id="m2")
    assert _seqs(cluster.take(again)) == [2]
    assert _acks(cluster.take(alice)) == [("m1", "held"), ("m1", "delivered"), ("m2", "delivered")]
    pending = len(cluster.bus.pending)
    cluster.say(again, number, "and back", id="r1")
    assert len(cluster.bus.pending) == pending  # a local call: nothing for the bus
    assert _seqs(cluster.take(alice)) == [3]
    cluster.finish()


def test_a_connection_still_holding_the_registration_is_closed_4005() -> None:
    cluster = _cluster("a", "b", "c")
    alice, bob = cluster.phone("a", "alice"), cluster.phone("b", "bob")
    conf, _ = _call(cluster, alice, bob)
    cluster.say(alice, 1, "one", id="m1")
    assert _seqs(cluster.take(bob)) == [1]
    again = cluster.resume(bob, "c", "bob", {conf: 1})  # the old link looked alive
    assert cluster.closed_with[bob].code == 4005
    number = _answer_resumed(cluster, again, conf)
    assert _seqs(cluster.take(again)) == []
    cluster.say(alice, 1, "two", id="m2")
    assert _seqs(cluster.take(again)) == [2]
    cluster.say(again, number, "hi", id="r1")
    assert _seqs(cluster.take(alice)) == [3]
    cluster.finish()


def test_a_token_works_once_and_only_for_its_user() -> None:
    cluster = _cluster("a", "b", "c")
    alice, bob = cluster.phone("a", "alice"), cluster.phone("b", "bob")
    cluster.close(bob, clean=False)
    token = cluster.tokens[bob]
    key = token_key(token)
    assert key in cluster.bus.book.snapshots and token not in str(cluster.bus.book.snapshots)
    cluster.tokens[alice] = token  # alice tries bob's token: a new registration
    carol = cluster.login("c", "alice")
    register = {"api": "PbxSignal", "mt": "Register", "src": "reg", "resume": token}
    cluster.send(carol, register)
    assert cluster.one(carol)["resumed"] is False
    assert key in cluster.bus.book.snapshots  # bob's is left alone
    again = cluster.resume(bob, "c", "bob", {})
    assert key not in cluster.bus.book.snapshots
    late = cluster.login("a", "bob")
    cluster.send(late, register)
    result = cluster.one(late)
    assert result["resumed"] is False and result["resume"] != cluster.tokens[again]
    cluster.finish()


def _away(cluster: Cluster) -> tuple[Client, Client, str]:
    """alice on a calls bob on b, whose link drops; she writes m1 meanwhile."""
    alice, bob = cluster.phone("a", "alice"), cluster.phone("b", "bob")
    conf, _ = _call(cluster, alice, bob)
    cluster.close(bob, clean=False)
    cluster.say(alice, 1, "while away", id="m1")
    return alice, bob, conf


def _try(cluster: Cluster, client: Client, token: str, conf: str) -> None:
    """bob's new connection ``client`` registers with ``token``; what its switch sends
    other switches waits on the bus."""
    register = {"api": "PbxSignal", "mt": "Register", "src": "reg", "resume": token}
    cluster.send(client, {**register, "seqs": {conf: 0}}, settle=False)


def _recalls(cluster: Cluster) -> list[int]:
    return [i for i, d in enumerate(cluster.bus.pending) if isinstance(d.question, Recall)]


def _resumed(cluster: Cluster, client: Client) -> bool:
    """Whether the client's RegisterResult says resumed; what came after it stays."""
    frames = cluster.take(client)
    assert frames[0]["mt"] == "RegisterResult", frames
    cluster.inbox[client] = frames[1:] + cluster.inbox[client]
    resumed: bool = frames[0]["resumed"]
    return resumed


def _gets_m1_once(cluster: Cluster, alice: Client, client: Client, conf: str) -> None:
    _answer_resumed(cluster, client, conf)
    assert _seqs(cluster.take(client)) == [1]
    assert _acks(cluster.take(alice)) == [("m1", "held"), ("m1", "delivered")]


def test_a_client_gone_while_its_register_waited_can_still_resume() -> None:
    """bob's first try, on c, closes before the book answered: c gives the snapshot
    back, so his next try resumes the registration and its call as if the first had
    never been made; and so does a try on d that d closes itself meanwhile."""
    cluster = _cluster("a", "b", "c", "d")
    alice, bob, conf = _away(cluster)
    token = cluster.tokens[bob]
    for node, closing in (("c", True), ("d", False)):
        first = cluster.login(node, "bob")
        _try(cluster, first, token, conf)
        if closing:  # the socket is gone before the answer
            cluster.feed(node, cluster.switch(node).closed(first[1], False), settle=False)
        else:  # the switch closes it (a client over its limits)
            cluster.feed(node, cluster.switch(node).kick(first[1], 4008, "slow"), settle=False)
        cluster.bus.run()
        assert cluster.take(first) == [] and token_key(token) in cluster.bus.book.snapshots
    _gets_m1_once(cluster, alice, cluster.resume(bob, "d", "bob", {conf: 0}), conf)
    cluster.finish()


def test_two_tries_of_one_token_at_once_on_two_switches_make_one_registration() -> None:
    """bob's token reaches c and d at the same instant: the book gives it to the first
    question it answers; the other gets a registration of its own (``resumed:false``),
    and the call goes on with the first, every message once."""
    cluster = _cluster("a", "b", "c", "d")
    alice, bob, conf = _away(cluster)
    on_c, on_d = cluster.login("c", "bob"), cluster.login("d", "bob")
    for client in (on_c, on_d):
        _try(cluster, client, cluster.tokens[bob], conf)
    cluster.bus.step(_recalls(cluster)[-1])  # d's question first
    cluster.bus.run()
    assert not _resumed(cluster, on_c) and _resumed(cluster, on_d)
    _gets_m1_once(cluster, alice, on_d, conf)
    cluster.say(alice, 1, "again", id="m2")
    assert _seqs(cluster.take(on_d)) == [2] and cluster.take(on_c) == []
    cluster.finish()


def test_a_token_tried_at_once_on_its_switch_and_another_ends_with_one_registration() -> None:
    """c takes bob's token from the book an instant before bob's other connection tries
    it on b, which holds the registration and resumes it without asking: both hear
    ``resumed:true``; b lets the registration go to c when c's TakeOver comes, closing
    its connection 4005, and the call goes on with c alone, every message once."""
    cluster = _cluster("a", "b", "c")
    alice, bob, conf = _away(cluster)
    on_c, on_b = cluster.login("c", "bob"), cluster.login("b", "bob")
    _try(cluster, on_c, cluster.tokens[bob], conf)
    cluster.bus.step(_recalls(cluster)[0])  # c has the snapshot; its TakeOver waits
    _try(cluster, on_b, cluster.tokens[bob], conf)
    cluster.bus.run()
    assert cluster.closed_with[on_b].code == 4005
    assert _resumed(cluster, on_b) and _resumed(cluster, on_c)
    _gets_m1_once(cluster, alice, on_c, conf)
    b = cluster.switch("b")
    assert len(b.registry) == 0 and b.held()["proxy_legs"] == 0
    cluster.finish()


def test_frames_sent_behind_the_register_wait_for_the_snapshot() -> None:
    cluster = _cluster("a", "b", "c")
    alice, bob = cluster.phone("a", "alice"), cluster.phone("b", "bob")
    conf, _ = _call(cluster, alice, bob)
    cluster.close(bob, clean=False)
    again = cluster.login("c", "bob")
    register = {"api": "PbxSignal", "mt": "Register", "src": "reg", "resume": cluster.tokens[bob]}
    cluster.send(again, {**register, "seqs": {conf: 0}}, settle=False)
    cluster.setup(again, 7, "alice")  # a new call, sent before the answer came
    frames = cluster.take(again)
    assert frames[0]["mt"] == "RegisterResult" and frames[0]["resumed"] is True
    kinds = [(frame["call"], frame["sig"]["type"]) for frame in frames[1:]]
    assert (7, "call_proc") in kinds
    assert [kind for number, kind in kinds if number < 0] == ["setup"]  # the old call
    cluster.finish()


def test_a_device_of_a_lost_switch_resumes_elsewhere_and_its_calls_go_on() -> None:
    cluster = _cluster("a", "b", "c")
    alice, bob = cluster.phone("a", "alice"), cluster.phone("b", "bob")
    conf, _ = _call(cluster, alice, bob)
    cluster.say(alice, 1, "one", id="m1")
    assert _seqs(cluster.take(bob)) == [1]
    cluster.bus.lose("b")  # kill -9: bob's link dies with it
    cluster.say(alice, 1, "two", id="m2")
    cluster.advance(20.0)  # within the grace
    again = cluster.resume(bob, "c", "bob", {conf: 1})
    number = _answer_resumed(cluster, again, conf)
    assert _seqs(cluster.take(again)) == [2]
    cluster.advance(20.0)  # past the grace the home gave the lost device: nothing ends
    cluster.say(alice, 1, "three", id="m3")
    assert _seqs(cluster.take(again)) == [3]
    assert _acks(cluster.take(alice)) == [
        ("m1", "delivered"),
        ("m2", "held"),
        ("m2", "delivered"),
        ("m3", "delivered"),
    ]
    cluster.say(again, number, "still here", id="r1")
    assert _seqs(cluster.take(alice)) == [4]
    cluster.finish()


def test_a_home_that_hears_of_two_moves_out_of_order_finds_the_device() -> None:
    cluster = _cluster("a", "b", "c", "d")
    alice, bob = cluster.phone("a", "alice"), cluster.phone("b", "bob")
    conf, _ = _call(cluster, alice, bob)
    cluster.close(bob, clean=False)
    cluster.say(alice, 1, "one", id="m1")
    on_c = cluster.resume(bob, "c", "bob", {conf: 0}, settle=False)
    on_d = cluster.resume(on_c, "d", "bob", {conf: 0}, settle=False)
    moves = [i for i, d in enumerate(cluster.bus.pending) if d.sender == "d" and d.target == "a"]
    cluster.bus.step(moves[0])  # a hears of the second move first: nothing it knows
    cluster.bus.run()
    assert cluster.closed_with[on_c].code == 4005
    _answer_resumed(cluster, on_d, conf)
    assert _seqs(cluster.take(on_d)) == [1]
    assert _acks(cluster.take(alice)) == [("m1", "held"), ("m1", "delivered")]
    cluster.finish()


def test_a_message_the_old_connection_got_is_delivered_by_the_client_s_seqs() -> None:
    """Node b pushed the message to bob and died before its report left: the home held
    it; bob, resuming on c, says he has it, so alice hears ``delivered`` and bob gets no
    copy."""
    cluster = _cluster("a", "b", "c")
    alice, bob = cluster.phone("a", "alice"), cluster.phone("b", "bob")
    conf, _ = _call(cluster, alice, bob)
    cluster.say(alice, 1, "one", id="m1", settle=False)
    cluster.bus.step()  # to b, which pushes it: its report waits on the bus
    assert _seqs(cluster.take(bob)) == [1]
    cluster.bus.lose("b")
    assert _acks(cluster.take(alice)) == [("m1", "held")]
    again = cluster.resume(bob, "c", "bob", {conf: 1})
    _answer_resumed(cluster, again, conf)
    assert _seqs(cluster.take(again)) == []
    assert _acks(cluster.take(alice)) == [("m1", "delivered")]
    cluster.finish()


def test_a_device_back_on_its_switch_before_that_switch_heard_it_left() -> None:
    """bob's call is homed on b, his switch. He resumes on a, drops again and resumes on
    b before b has heard that he left: b lets his old registration go to a and offers
    the call there, a says he is back on b, and b gives the call to his registration
    there (as the machine found)."""
    cluster = _cluster("a", "b")
    bob, alice = cluster.phone("b", "bob"), cluster.phone("a", "alice")
    cluster.setup(bob, 1, "alice")
    conf = cluster.take(bob)[0]["sig"]["confId"]
    cluster.signal(alice, cluster.offered(alice), {"type": "conn"})
    assert [frame["sig"]["type"] for frame in cluster.take(bob)] == ["conn"]
    cluster.close(bob, clean=False)
    on_a = cluster.resume(bob, "a", "bob", {conf: 0}, settle=False)
    cluster.feed("a", cluster.switch("a").closed(on_a[1], False), settle=False)
    back = cluster.resume(on_a, "b", "bob", {conf: 0}, settle=False)
    cluster.bus.run()
    b = cluster.switch("b")
    assert b.node is not None and b.node.remote.of("example.com", "bob") == ()  # his own
    number = _answer_resumed(cluster, back, conf)
    cluster.say(back, number, "hello again", id="r1")
    assert _seqs(cluster.take(alice)) == [1]
    assert _acks(cluster.take(back)) == [("r1", "delivered")]
    cluster.finish()


def test_a_device_back_on_the_home_before_its_switch_said_it_was_away() -> None:
    """bob resumes on a, his call's home, while his old link on b looked alive: b never
    had the message a sent his stand-in, nor said he was away. What the stand-in was
    sent and b never reported is held, then delivered by the replay, and alice hears
    both, as when b had said he was away."""
    cluster = _cluster("a", "b")
    alice, bob = cluster.phone("a", "alice"), cluster.phone("b", "bob")
    conf, _ = _call(cluster, alice, bob)
    cluster.say(alice, 1, "one", id="m1", settle=False)
    (lost,) = cluster.bus.pending  # a's frame for bob's leg on b
    assert (lost.sender, lost.target) == ("a", "b")
    cluster.bus.pending.clear()  # b never has it
    again = cluster.resume(bob, "a", "bob", {conf: 0})
    a = cluster.switch("a")
    assert a.node is not None and a.node.remote.held() == 0  # no stand-in: a local device
    number = _answer_resumed(cluster, again, conf)
    assert _seqs(cluster.take(again)) == [1]
    assert _acks(cluster.take(alice)) == [("m1", "held"), ("m1", "delivered")]
    cluster.say(again, number, "and back", id="r1")
    assert _seqs(cluster.take(alice)) == [2]
    assert _acks(cluster.take(again)) == [("r1", "delivered")]
    cluster.finish()
