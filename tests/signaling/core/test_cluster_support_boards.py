"""Live support's boards and Queue requests across switches (docs 12.46), on the in-memory
bus: a board on any switch lists and follows the chats homed on the others, a Take,
Transfer or Close made on a switch that is not the chat's home goes there and is answered
as the home's own, and writing into a ringing chat takes it from any switch."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from config import Config
from tests.signaling.core.cluster_harness import Client, Cluster
from tests.support import make_config

JsonObject = dict[str, Any]

TAKEN = {"type": "rel", "cau": {"loc": 1, "num": 26}}


def _desk(*, take_on_write: bool = False) -> Config:
    """The demo tenant's queue ``support`` (agents alice and bob)."""
    config = make_config(messages=False)
    demo = config.tenants[0]
    queues = tuple(replace(queue, take_on_write=take_on_write) for queue in demo.queues)
    return replace(config, tenants=(replace(demo, queues=queues), *config.tenants[1:]))


def _board(cluster: Cluster, node: str, sip: str) -> Client:
    """A registered connection of ``sip`` on ``node`` that watches the queue's board."""
    board = cluster.phone(node, sip)
    cluster.send(board, {"api": "Queue", "mt": "Subscribe", "src": "b", "queue": "support"})
    return board


def _updates(frames: list[JsonObject]) -> list[tuple[str, str]]:
    return [(f["mt"], f["chat"]["confId"]) for f in frames if f.get("src") == "b" and "chat" in f]


def _kinds(frames: list[JsonObject]) -> list[str]:
    return [frame["sig"]["type"] for frame in frames if frame.get("mt") == "Signaling"]


def _ask(cluster: Cluster, client: Client, mt: str, conf: str, **fields: Any) -> None:
    cluster.send(client, {"api": "Queue", "mt": mt, "src": "q", "confId": conf, **fields})


def _answer(frames: list[JsonObject]) -> JsonObject:
    (answer,) = [frame for frame in frames if frame.get("src") == "q"]
    return answer


def _waiting(cluster: Cluster, visitor: Client) -> str:
    """The visitor calls the queue: the chat's ``confId``."""
    cluster.setup(visitor, 1, "support")
    (proceeding,) = cluster.take(visitor)
    conf: str = proceeding["sig"]["confId"]
    return conf


def _offer(frames: list[JsonObject]) -> int:
    (number,) = [f["call"] for f in frames if f.get("mt") == "Signaling"]
    return int(number)


def test_a_board_on_another_switch_lists_and_follows_a_chat_homed_elsewhere() -> None:
    cluster = Cluster(("a", "b"), _desk())
    carol = cluster.phone("a", "carol")
    alice = _board(cluster, "b", "alice")  # before the chat came
    assert [frame["mt"] for frame in cluster.take(alice)] == ["SubscribeResult"]
    conf = _waiting(cluster, carol)
    frames = cluster.take(alice)
    assert _updates(frames) == [("ChatWaiting", conf)]
    number = _offer(frames)  # and alice's device rings
    bob = _board(cluster, "b", "bob")  # after: the board lists it
    listed = cluster.take(bob)
    assert _updates(listed) == [("QueueInd", conf)] and listed[-1]["mt"] == "SubscribeResult"
    cluster.signal(alice, number, {"type": "conn"})
    assert _kinds(cluster.take(carol)) == ["conn"]
    for board in (alice, bob):
        assert _updates(cluster.take(board)) == [("ChatTaken", conf)]
    cluster.signal(carol, 1, {"type": "rel"})
    assert _updates(cluster.take(bob)) == [("ChatClosed", conf)]
    frames = cluster.take(alice)
    assert _kinds(frames) == ["rel"] and _updates(frames) == [("ChatClosed", conf)]
    cluster.finish()


def test_take_on_another_switch_of_a_chat_not_ringing_there_offers_then_connects() -> None:
    cluster = Cluster(("a", "b"), _desk())
    carol = cluster.phone("a", "carol")
    conf = _waiting(cluster, carol)
    alice = _board(cluster, "b", "alice")  # registered after the chat came: offered,
    cluster.signal(alice, _offer(cluster.take(alice)), {"type": "rel"})  # and declined
    _ask(cluster, alice, "Take", conf)
    frames = cluster.take(alice)
    number = _offer(frames)  # the setup the client must not answer: it is connected
    taken = _answer(frames)
    assert (taken["api"], taken["mt"], taken["confId"], taken["call"]) == (
        "Queue",
        "TakeResult",
        conf,
        number,
    )
    assert _updates(frames) == [("ChatTaken", conf)]
    assert _kinds(cluster.take(carol)) == ["conn"]
    cluster.say(carol, 1, "hello", id="h1")
    assert cluster.one(alice)["sig"]["fty"][0]["data"] == "hello"
    assert cluster.one(carol)["sig"]["fty"][0]["state"] == "delivered"
    cluster.say(alice, number, "how can I help", id="a1")  # its leg is connected there
    assert cluster.one(carol)["sig"]["fty"][0]["data"] == "how can I help"
    assert cluster.one(alice)["sig"]["fty"][0]["state"] == "delivered"
    cluster.finish()


def test_take_on_another_switch_of_a_ringing_chat_answers_that_offer() -> None:
    cluster = Cluster(("a", "b", "c"), _desk())
    carol, alice = cluster.phone("a", "carol"), cluster.phone("b", "alice")
    bob = cluster.phone("c", "bob")
    conf = _waiting(cluster, carol)
    number = cluster.offered(alice)
    other = cluster.offered(bob)
    _ask(cluster, alice, "Take", conf)
    assert _answer(cluster.take(alice))["call"] == number
    assert _kinds(cluster.take(carol)) == ["conn"]
    assert cluster.one(bob)["sig"] == TAKEN
    cluster.signal(bob, other, {"type": "conn"})  # too late, told on its own switch
    late = cluster.one(bob)
    assert (late["mt"], late["code"], late["call"]) == ("Error", "already_taken", other)
    _ask(cluster, bob, "Take", conf)  # and so is a Take from there
    refused = _answer(cluster.take(bob))
    assert (refused["api"], refused["mt"], refused["code"]) == ("Queue", "Error", "already_taken")
    cluster.finish()


def test_writing_into_a_ringing_chat_on_another_switch_takes_it() -> None:
    cluster = Cluster(("a", "b", "c"), _desk(take_on_write=True))
    carol, alice = cluster.phone("a", "carol"), cluster.phone("b", "alice")
    bob = cluster.phone("c", "bob")
    _waiting(cluster, carol)
    number = cluster.offered(alice)
    cluster.offered(bob)
    cluster.signal(
        alice, number, {"type": "facility", "fty": [{"type": "im_message", "typing": True}]}
    )
    refused = cluster.one(alice)  # typing alone does not take it: refused at the home
    assert (refused["mt"], refused["code"], refused["call"]) == ("Error", "bad_state", number)
    cluster.say(alice, number, "I am here", id="w1")
    frames = cluster.take(carol)
    assert _kinds(frames) == ["conn", "facility"]
    assert frames[1]["sig"]["fty"][0]["data"] == "I am here"
    assert cluster.one(alice)["sig"]["fty"][0]["state"] == "delivered"
    assert cluster.one(bob)["sig"] == TAKEN
    cluster.say(carol, 1, "thanks", id="c1")
    assert cluster.one(alice)["sig"]["fty"][0]["data"] == "thanks"
    cluster.finish()


def test_transfer_and_close_on_other_switches_run_at_the_home() -> None:
    cluster = Cluster(("a", "b", "c"), _desk())
    carol, alice = cluster.phone("a", "carol"), cluster.phone("b", "alice")
    bob = cluster.phone("c", "bob")
    conf = _waiting(cluster, carol)
    number = cluster.offered(alice)
    cluster.signal(bob, cluster.offered(bob), {"type": "rel"})  # bob declines
    cluster.signal(alice, number, {"type": "conn"})
    cluster.take(carol)
    _ask(cluster, bob, "Close", conf)  # not bob's chat
    assert _answer(cluster.take(bob))["code"] == "forbidden"
    _ask(cluster, alice, "Transfer", conf, to="bob")
    frames = cluster.take(alice)
    moved = _answer(frames)
    assert (moved["mt"], moved["to"]) == ("TransferResult", "bob")
    assert _kinds(frames) == ["rel"]  # alice's call is handed back
    again = cluster.offered(bob)  # offered to bob alone
    cluster.signal(bob, again, {"type": "conn"})
    assert _kinds(cluster.take(carol)) == ["facility"]  # bob's name
    _ask(cluster, bob, "Close", conf)
    frames = cluster.take(bob)
    assert _answer(frames)["mt"] == "CloseResult" and _kinds(frames) == ["rel"]
    assert cluster.one(carol)["sig"]["cau"]["num"] == 16
    cluster.finish()


def test_a_lost_home_takes_its_chats_off_the_boards_and_answers_what_was_asked() -> None:
    cluster = Cluster(("a", "b"), _desk())
    carol = cluster.phone("a", "carol")
    conf = _waiting(cluster, carol)
    alice = _board(cluster, "b", "alice")
    cluster.take(alice)
    cluster.send(alice, {"api": "Queue", "mt": "Take", "src": "q", "confId": conf}, settle=False)
    cluster.bus.lose("a")
    frames = cluster.take(alice)
    assert _answer(frames)["code"] == "unavailable"
    closed = [frame for frame in frames if frame.get("mt") == "ChatClosed"]
    assert [(f["chat"]["confId"], f["by"], f["cause"]) for f in closed] == [(conf, "system", 41)]
    cluster.finish()


def test_a_late_answer_that_crosses_its_rel_26_and_the_chat_s_end_is_already_taken() -> None:
    """Bob's ``conn`` reaches the home after alice won and carol left: the home, whose
    call is over, refuses it; bob's switch, which had his offer end with 26, says
    ``already_taken``, as one switch would."""
    cluster = Cluster(("a", "b", "c"), _desk())
    carol, alice = cluster.phone("a", "carol"), cluster.phone("b", "alice")
    bob = cluster.phone("c", "bob")
    _waiting(cluster, carol)
    number, other = cluster.offered(alice), cluster.offered(bob)
    cluster.signal(alice, number, {"type": "conn"}, settle=False)
    cluster.signal(bob, other, {"type": "conn"}, settle=False)
    cluster.bus.step(0)  # alice's answer reaches the home first
    assert _kinds(cluster.take(carol)) == ["conn"]
    cluster.signal(carol, 1, {"type": "rel"}, settle=False)
    cluster.bus.run()
    frames = cluster.take(bob)
    assert frames[0]["sig"] == TAKEN
    assert (frames[1]["mt"], frames[1]["code"], frames[1]["call"]) == (
        "Error",
        "already_taken",
        other,
    )
    assert len(frames) == 2
    cluster.finish()


def test_support_events_are_told_once_each_by_the_switch_they_belong_to() -> None:
    """A chat's events come from its home; an agent's status from the switch that holds
    the agent's devices: the home says nothing of an agent of another switch when a chat
    the agent had closes (it never told that agent ``open``)."""
    cluster = Cluster(("a", "b", "c"), _desk())
    carol, alice = cluster.phone("a", "carol"), cluster.phone("b", "alice")
    bob = cluster.phone("c", "bob")
    _waiting(cluster, carol)
    number = cluster.offered(alice)
    cluster.offered(bob)
    cluster.signal(alice, number, {"type": "conn"})
    cluster.signal(carol, 1, {"type": "rel"})
    cluster.close(alice)
    told = [
        (note.event, note.data.get("agent") or note.data.get("by"), note.data.get("status"))
        for note in cluster.notified
    ]
    assert told == [
        ("agent.status", "alice", "open"),
        ("agent.status", "bob", "open"),
        ("chat.waiting", None, None),
        ("chat.taken", "alice", None),
        ("chat.closed", "carol", None),
        ("agent.status", "alice", "closed"),
    ]
    cluster.finish()
