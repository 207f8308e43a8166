"""Live support on the call model (PROTOCOL §9.2-§9.6): offers to available agents, the
first answer wins once, the board, transfer, close, inactivity and wait timeouts."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

from config import Config, QueueConfig
from tests.signaling.core.harness import Harness, sig_of
from tests.support import make_config

JsonObject = dict[str, Any]
AGENTS = ("alice", "bob", "dave")


def _config(*, messages: bool = False, max_chats: int = 3, **support: Any) -> Config:
    config = make_config(messages=messages, idle_timeout=3600.0)
    demo = config.tenants[0]
    users = tuple(
        replace(user, max_chats=max_chats) if user.sip in AGENTS else user for user in demo.users
    )
    queues = (
        QueueConfig("desk", "Help desk", AGENTS),
        QueueConfig("sales", "Sales", ("bob",)),
    )
    tenants = (replace(demo, users=users, queues=queues), *config.tenants[1:])
    return replace(config, tenants=tenants, support=replace(config.support, **support))


def _visit(h: Harness, visitor: int, to: str = "desk", **context: str) -> None:
    fty: list[JsonObject] = [{"type": "im_setup"}]
    if context:
        fty.append({"type": "context", **context})
    h.signal(visitor, 1, {"type": "setup", "channel": 0, "cd": {"sip": to}, "fty": fty})
    proc = sig_of(h.one(visitor), 1, "call_proc")
    assert proc["callId"] and proc["confId"] and proc["callId"] != proc["confId"]


def _agents(h: Harness, *sips: str) -> dict[str, int]:
    return {sip: h.phone(sip) for sip in sips}


def _taken_by_alice(h: Harness, agents: dict[str, int]) -> tuple[int, dict[str, int]]:
    """A visitor (carol) calls the desk, alice answers; the offers' numbers by agent."""
    visitor = h.phone("carol")
    _visit(h, visitor)
    numbers = {sip: h.offered(conn)[0] for sip, conn in agents.items()}
    h.signal(agents["alice"], numbers["alice"], {"type": "conn"})
    h.take(visitor)
    for sip, conn in agents.items():
        if sip != "alice":
            h.take(conn)
    return visitor, numbers


def _board(h: Harness, conn: int, queue: str = "desk") -> list[JsonObject]:
    h.send(conn, {"api": "Queue", "mt": "Subscribe", "src": "board", "queue": queue})
    return h.take(conn)


def _queue_msgs(h: Harness, conn: int) -> list[JsonObject]:
    return [m for m in h.take(conn) if m.get("api") == "Queue"]


def test_a_visitor_call_is_offered_to_every_available_agent_and_shown_on_the_board() -> None:
    h = Harness(_config())
    agents = _agents(h, *AGENTS)
    board = h.login("alice")
    assert _board(h, board) == [
        {
            "api": "Queue",
            "mt": "SubscribeResult",
            "src": "board",
            "queue": "desk",
            "role": "agent",
            "take_on_write": False,
        }
    ]
    visitor = h.phone("carol")
    _visit(h, visitor, product="Kettle 3000", url="https://shop.example/kettle")
    for conn in agents.values():
        _, sig = h.offered(conn)
        assert sig["cg"]["sip"] == "carol" and sig["cd"] == {"sip": "desk"}
        assert {"type": "queue", "sip": "desk", "dn": "Help desk"} in sig["fty"]
        assert {
            "type": "context",
            "product": "Kettle 3000",
            "url": "https://shop.example/kettle",
        } in sig["fty"]
    (waiting,) = _queue_msgs(h, board)
    assert waiting["mt"] == "ChatWaiting" and waiting["src"] == "board"
    chat = waiting["chat"]
    assert chat["visitor"] == {"sip": "carol", "dn": "Carol Example"}
    assert chat["queue"] == "desk" and "agent" not in chat
    assert [n.event for n in h.notified if n.event.startswith("chat.")] == ["chat.waiting"]
    h.finish()


def _race(h: Harness, order: list[str], agents: dict[str, int], numbers: dict[str, int]) -> str:
    for sip in order:
        h.signal(agents[sip], numbers[sip], {"type": "conn"})
    return order[0]


def test_three_agents_answering_at_once_one_wins_the_others_hear_26_and_already_taken() -> None:
    rng = random.Random(7)
    for _ in range(60):
        h = Harness(_config())
        agents = _agents(h, *AGENTS)
        visitor = h.phone("carol")
        _visit(h, visitor)
        numbers = {sip: h.offered(conn)[0] for sip, conn in agents.items()}
        order = list(AGENTS)
        rng.shuffle(order)
        winner = _race(h, order, agents, numbers)
        conn = sig_of(h.one(visitor), 1, "conn")
        assert conn["fty"][0]["name"] == f"{winner.title()} Example"
        for sip in order[1:]:
            rel, error = h.take(agents[sip])
            assert sig_of(rel, numbers[sip], "rel")["cau"] == {"loc": 1, "num": 26}
            assert error["code"] == "already_taken" and error["call"] == numbers[sip]
            h.say(agents[sip], numbers[sip], "me too")
            assert h.one(agents[sip])["code"] == "already_taken"
        h.quiet(agents[winner])
        taken = [n for n in h.notified if n.event == "chat.taken"]
        assert [n.data["agent"] for n in taken] == [winner]
        h.say(visitor, 1, "hello")
        assert sig_of(h.one(agents[winner]), numbers[winner])["fty"][0]["data"] == "hello"
        h.finish()


def test_busy_away_offline_and_full_agents_are_not_offered_until_they_are_available() -> None:
    h = Harness(_config(max_chats=1))
    agents = _agents(h, "alice", "bob", "dave")

    def publish(sip: str, activity: str) -> None:
        h.signal(
            agents[sip],
            50,
            {"type": "setup", "cd": {"sip": sip}, "fty": [{"type": "presence_subscribe"}]},
        )
        h.signal(
            agents[sip],
            50,
            {"type": "facility", "fty": [{"type": "presence_publish", "activity": activity}]},
        )
        h.signal(agents[sip], 50, {"type": "rel"})
        h.inbox[agents[sip]] = [m for m in h.take(agents[sip]) if m.get("call") != 50]

    publish("alice", "busy")
    publish("bob", "away")
    visitor = h.phone("carol")
    _visit(h, visitor)
    number, _ = h.offered(agents["dave"])
    h.quiet(agents["alice"], agents["bob"])
    h.signal(agents["dave"], number, {"type": "conn"})
    h.take(visitor)
    # dave is at max_chats (1): a second visitor is offered to nobody and waits
    other = h.phone("carol")
    _visit(h, other)
    h.quiet(agents["alice"], agents["bob"], agents["dave"])
    publish("bob", "available")  # bob becomes available: the waiting chat is offered
    number, sig = h.offered(agents["bob"])
    assert sig["cg"]["sip"] == "carol"
    statuses = [
        (n.data["agent"], n.data["activity"]) for n in h.notified if n.event == "agent.status"
    ]
    assert ("alice", "busy") in statuses and ("bob", "away") in statuses
    assert statuses[-1] == ("bob", "available")
    h.finish()


def test_an_agent_declining_leaves_the_others_ringing_and_the_chat_waiting() -> None:
    h = Harness(_config())
    agents = _agents(h, "alice", "bob")
    visitor = h.phone("carol")
    _visit(h, visitor)
    numbers = {sip: h.offered(conn)[0] for sip, conn in agents.items()}
    h.signal(agents["alice"], numbers["alice"], {"type": "rel"})
    h.quiet(visitor, agents["bob"], agents["alice"])
    h.signal(agents["bob"], numbers["bob"], {"type": "conn"})
    sig_of(h.one(visitor), 1, "conn")
    h.finish()


def test_take_from_the_board_and_close_by_the_agent() -> None:
    h = Harness(_config())
    alice = h.phone("alice")
    _board(h, alice)
    visitor = h.phone("carol")
    h.signal(
        visitor,
        1,
        {
            "type": "setup",
            "cd": {"sip": "desk"},
            "fty": [{"type": "im_setup"}, {"type": "im_message", "data": "hi", "id": "v1"}],
        },
    )
    call_proc, held = h.take(visitor)
    assert sig_of(held, 1)["fty"][0]["state"] == "held"
    call_id = sig_of(call_proc, 1)["confId"]
    offered = [m for m in h.take(alice) if m.get("api") == "PbxSignal"]
    number = offered[0]["call"]
    leg_id = sig_of(offered[0], kind="setup")["callId"]
    assert leg_id != call_id
    h.send(alice, {"api": "Queue", "mt": "Take", "src": "t", "confId": leg_id})
    assert h.one(alice)["code"] == "not_found"  # a confId names the conversation only
    # the callId its offered setup carried names the chat too (a client off the board)
    h.send(alice, {"api": "Queue", "mt": "Take", "src": "t", "callId": leg_id})
    messages = h.take(alice)
    relayed = [m for m in messages if m.get("api") == "PbxSignal"]
    assert sig_of(relayed[0], number)["fty"][0]["data"] == "hi"  # held until the take
    taken = [m for m in messages if m.get("mt") == "ChatTaken"]
    assert taken[0]["chat"]["agent"] == {"sip": "alice", "dn": "Alice Example"}
    assert (taken[0]["chat"]["confId"], taken[0]["chat"]["callId"]) == (call_id, call_id)
    assert messages[-1] == {
        "api": "Queue",
        "mt": "TakeResult",
        "src": "t",
        "confId": call_id,
        "callId": call_id,
        "call": number,
    }
    conn, delivered = h.take(visitor)
    assert sig_of(conn, 1, "conn") and sig_of(delivered, 1)["fty"][0]["state"] == "delivered"
    h.send(alice, {"api": "Queue", "mt": "Take", "src": "t2", "callId": call_id})
    assert h.one(alice)["code"] == "already_taken"
    h.send(alice, {"api": "Queue", "mt": "Close", "src": "c", "confId": call_id})
    rel_agent, closed, result = h.take(alice)  # the call ends, then the board says so
    assert sig_of(rel_agent, number, "rel")["cau"]["num"] == 16
    assert closed["mt"] == "ChatClosed" and closed["by"] == "alice" and closed["cause"] == 16
    assert result["mt"] == "CloseResult"
    assert sig_of(h.one(visitor), 1, "rel")["cau"]["num"] == 16
    events = [n.event for n in h.notified if n.event.startswith("chat.")]
    assert events == ["chat.waiting", "chat.taken", "chat.closed"]
    h.finish()


def test_transfer_to_an_agent_replays_the_transcript_and_the_visitor_keeps_talking() -> None:
    h = Harness(_config())
    agents = _agents(h, "alice", "bob")
    board = h.login("dave")
    _board(h, board)
    visitor, numbers = _taken_by_alice(h, agents)
    h.say(visitor, 1, "my kettle leaks")
    h.say(agents["alice"], numbers["alice"], "let me get bob")
    h.take(visitor), h.take(agents["alice"])
    (chat,) = h.switch.chat.support.chats.values()
    call_id = chat.call.call_id
    h.send(
        agents["alice"],
        {"api": "Queue", "mt": "Transfer", "src": "x", "callId": call_id, "to": "bob"},
    )
    rel, result = h.take(agents["alice"])
    assert sig_of(rel, numbers["alice"], "rel")["cau"]["num"] == 16
    assert result["mt"] == "TransferResult"
    number, sig = h.offered(agents["bob"])
    assert sig["confId"] == call_id and sig["callId"] != call_id  # bob's own leg
    h.say(visitor, 1, "still there?")
    h.quiet(visitor)  # held for the next agent: no ack without an id
    h.signal(agents["bob"], number, {"type": "conn"})
    replay = [sig_of(m, number)["fty"][0] for m in h.take(agents["bob"])]
    assert [(m["seq"], m["sender"], m["data"]) for m in replay] == [
        (1, "carol", "my kettle leaks"),
        (2, "alice", "let me get bob"),
        (3, "carol", "still there?"),
    ]
    name = [sig_of(m, 1)["fty"][0] for m in h.take(visitor)]
    assert {"type": "name_identification", "name": "Bob Example"} in name
    kinds = [m["mt"] for m in _queue_msgs(h, board)]
    assert kinds == ["ChatWaiting", "ChatTaken", "ChatTransferred", "ChatWaiting", "ChatTaken"]
    h.say(agents["bob"], number, "hello, bob here")
    assert sig_of(h.one(visitor), 1)["fty"][0]["sender"] == "bob"
    h.finish()


def test_transfer_to_another_queue_and_who_may_transfer() -> None:
    h = Harness(_config())
    agents = _agents(h, "alice", "bob")
    _taken_by_alice(h, agents)
    (chat,) = h.switch.chat.support.chats.values()
    call_id = chat.call.call_id
    transfer = {"api": "Queue", "mt": "Transfer", "callId": call_id, "to": "sales"}
    h.send(agents["bob"], transfer)
    assert h.one(agents["bob"])["code"] == "forbidden"  # bob does not have the chat
    h.send(agents["alice"], {**transfer, "to": "nobody"})
    assert h.one(agents["alice"])["code"] == "not_found"
    h.send(agents["alice"], transfer)
    h.take(agents["alice"])
    _, sig = h.offered(agents["bob"])  # sales has only bob
    assert {"type": "queue", "sip": "sales", "dn": "Sales"} in sig["fty"]
    h.finish()


def test_inactivity_warns_then_releases_with_cause_102_on_the_injected_clock() -> None:
    h = Harness(_config(idle_warn=90.0, idle_close=120.0))
    alice = h.phone("alice")
    visitor = h.phone("carol")
    _visit(h, visitor)
    number, _ = h.offered(alice)
    h.signal(alice, number, {"type": "conn"})
    h.take(visitor)
    h.advance(60)
    h.say(visitor, 1, "hm")  # activity: the clock starts again
    h.take(alice)
    h.advance(89)
    h.quiet(alice, visitor)
    h.advance(1)
    for conn, call in ((visitor, 1), (alice, number)):
        warning = sig_of(h.one(conn), call)["fty"][0]
        assert warning["system"] is True and warning["sender"] == "desk" and "seq" not in warning
    h.advance(29)
    h.quiet(alice, visitor)
    h.advance(1)
    assert sig_of(h.one(visitor), 1, "rel")["cau"] == {"loc": 1, "num": 102}
    assert sig_of(h.one(alice), number, "rel")["cau"] == {"loc": 1, "num": 102}
    closed = [n for n in h.notified if n.event == "chat.closed"]
    assert closed[0].data["by"] == "system" and closed[0].data["cause"] == 102
    h.finish()


def test_a_chat_nobody_takes_ends_with_cause_19_and_goes_to_the_offline_webhook() -> None:
    h = Harness(_config(wait_timeout=300.0))
    visitor = h.phone("carol")
    _visit(h, visitor)  # no agent online at all: the chat waits
    h.say(visitor, 1, "anyone?", id="q")
    assert sig_of(h.one(visitor), 1)["fty"][0]["state"] == "held"
    for _ in range(3):
        h.advance(99.5)
        h.send(visitor, {"mt": "KeepAlive"})  # the visitor's connection stays, idle or not
        assert h.one(visitor) == {"mt": "KeepAlive"}
    h.advance(1)
    h.quiet(visitor)
    h.advance(0.5)
    ack, rel = h.take(visitor)
    assert sig_of(ack, 1)["fty"][0]["state"] == "not_delivered"
    assert sig_of(rel, 1, "rel")["cau"]["num"] == 19
    offline = [n.data for n in h.notified if n.event == "message.offline"]
    assert offline == [
        {
            "domain": "example.com",
            "from": "carol",
            "from_dn": "Carol Example",
            "to": "desk",
            "text": "anyone?",
            "mime": "text/html",
            "reason": "unanswered",
        }
    ]
    h.finish()


def test_an_agent_coming_online_is_offered_the_waiting_chat() -> None:
    h = Harness(_config())
    visitor = h.phone("carol")
    _visit(h, visitor)
    alice = h.login("alice")
    h.send(alice, {"api": "PbxSignal", "mt": "Register", "src": "reg", "flags": "NO_MEDIA_CALL"})
    result, offer = h.take(alice)
    assert result["mt"] == "RegisterResult"  # first the result, then the offer
    assert sig_of(offer, kind="setup")["cd"] == {"sip": "desk"}
    h.finish()


def test_a_seller_context_routes_to_the_seller_or_their_queue() -> None:
    h = Harness(_config())
    agents = _agents(h, "alice", "bob")
    visitor = h.phone("carol")
    _visit(h, visitor, seller="alice", product="Lamp")
    _, sig = h.offered(agents["alice"])
    assert {"type": "context", "seller": "alice", "product": "Lamp"} in sig["fty"]
    h.quiet(agents["bob"])
    h.signal(visitor, 1, {"type": "rel"})
    h.take(agents["alice"])
    _visit(h, visitor, seller="sales")
    _, sig = h.offered(agents["bob"])
    assert {"type": "queue", "sip": "sales", "dn": "Sales"} in sig["fty"]
    h.quiet(agents["alice"])
    h.finish()


def test_the_board_is_for_the_queues_agents_and_lists_chats_on_subscribe() -> None:
    h = Harness(_config())
    carol = h.login("carol")
    assert _board(h, carol)[0]["code"] == "forbidden"
    alice = h.login("alice")
    assert _board(h, alice, "nope")[0]["code"] == "not_found"
    h.send(alice, {"api": "Queue", "mt": "Subscribe"})
    assert h.one(alice)["code"] == "bad_json"
    h.send(alice, {"api": "Queue", "mt": "Nonsense"})
    assert h.one(alice)["code"] == "unknown_mt"
    visitor = h.phone("carol")
    _visit(h, visitor)
    listed = _board(h, alice)
    assert [m["mt"] for m in listed] == ["QueueInd", "SubscribeResult"]
    assert listed[0]["chat"]["visitor"]["sip"] == "carol"
    h.send(alice, {"api": "Queue", "mt": "Take", "confId": listed[0]["chat"]["confId"]})
    assert h.one(alice)["code"] == "bad_state"  # Take needs a registered device
    h.finish()


def test_an_unlicensed_visitors_chat_is_never_stored() -> None:
    h = Harness(_config(messages=True))
    alice = h.phone("alice")
    visitor = h.phone("carol")
    _visit(h, visitor)
    number, _ = h.offered(alice)
    h.signal(alice, number, {"type": "conn"})
    h.say(visitor, 1, "secret")
    h.say(alice, number, "answer")
    assert h.stores == []
    h.finish()


def test_a_licensed_customer_gets_a_stored_chat_with_the_queue() -> None:
    h = Harness(_config(messages=True))
    bob = h.phone("bob")
    customer = h.phone("alice")  # alice holds the licence and calls sales as a customer
    _visit(h, customer, to="sales")
    number, _ = h.offered(bob)
    h.signal(bob, number, {"type": "conn"})
    h.say(customer, 1, "order 42?")
    (store,) = h.stores
    assert store.post["topic"] == "alice" and store.post["peer"] == "sales"
    assert store.post["sides"] == ["alice"]
    h.finish()


def _resumable(**support: Any) -> Config:
    config = _config(**support)
    return replace(config, signaling=replace(config.signaling, resume_grace=60.0))


def _take_over(h: Harness, sip: str, token: str, seqs: JsonObject | None = None) -> int:
    conn = h.login(sip)
    register = {"api": "PbxSignal", "mt": "Register", "src": "reg", "flags": "NO_MEDIA_CALL"}
    h.send(conn, {**register, "resume": token, "seqs": seqs or {}})
    return conn


def test_a_message_held_for_a_dropped_visitor_is_acked_to_its_writer_not_the_next_agent() -> None:
    h = Harness(_resumable())
    agents = _agents(h, "alice", "bob")
    visitor, numbers = _taken_by_alice(h, agents)
    (call_id,) = h.switch.chat.support.chats
    token = h.tokens[visitor]
    h.close(visitor, clean=False)
    h.say(agents["alice"], numbers["alice"], "are you there?", id="a1")
    assert sig_of(h.one(agents["alice"]))["fty"][0]["state"] == "held"
    transfer = {"api": "Queue", "mt": "Transfer", "callId": call_id, "to": "bob"}
    h.send(agents["alice"], transfer)
    h.take(agents["alice"])
    number, _ = h.offered(agents["bob"])
    h.signal(agents["bob"], number, {"type": "conn"})
    assert [sig_of(m)["fty"][0]["data"] for m in h.take(agents["bob"])] == ["are you there?"]
    again = _take_over(h, "carol", token, {call_id: 0})
    result, setup = h.take(again)
    assert result["resumed"] is True
    h.signal(again, setup["call"], {"type": "conn"})
    assert [sig_of(m)["fty"][0]["data"] for m in h.take(again)] == ["are you there?"]
    h.quiet(agents["bob"])  # bob never wrote a1: no ack for him
    h.finish()


def test_an_agent_resuming_in_time_is_offered_the_chat_that_came_meanwhile() -> None:
    h = Harness(_resumable())
    bob = h.phone("bob")
    token = h.tokens[bob]
    h.close(bob, clean=False)
    visitor = h.phone("carol")
    _visit(h, visitor, to="sales")  # sales has only bob, who is away for a moment
    again = _take_over(h, "bob", token)
    result, offer = h.take(again)
    assert result["resumed"] is True
    assert sig_of(offer, kind="setup")["cd"] == {"sip": "sales"}
    h.finish()


def test_taking_over_a_live_connection_withdraws_its_offers_and_rings_the_new_one() -> None:
    h = Harness(_resumable())
    alice, bob = h.phone("alice"), h.phone("bob")
    visitor = h.phone("carol")
    _visit(h, visitor)
    h.offered(alice), h.offered(bob)
    again = _take_over(h, "alice", h.tokens[alice])
    result, offer = h.take(again)  # no resumed setup for an offer: a fresh one
    assert result["resumed"] is True and h.closed_with[alice].code == 4005
    sig = sig_of(offer, kind="setup")
    assert {"type": "resumed"} not in sig["fty"]
    h.signal(again, offer["call"], {"type": "conn"})
    assert sig_of(h.one(visitor), 1, "conn")["fty"][0]["name"] == "Alice Example"
    assert sig_of(h.one(bob), kind="rel")["cau"]["num"] == 26
    h.finish()


def test_a_visitor_resuming_while_an_agent_answers_hears_nothing_before_its_conn() -> None:
    h = Harness(_resumable())
    alice = h.phone("alice")
    visitor = h.phone("carol")
    _visit(h, visitor)
    number, _ = h.offered(alice)
    token = h.tokens[visitor]
    h.close(visitor, clean=False)
    again = _take_over(h, "carol", token)
    result, setup = h.take(again)
    assert result["resumed"] is True
    h.signal(alice, number, {"type": "conn"})
    h.say(alice, number, "hello")
    h.quiet(again)
    h.signal(again, setup["call"], {"type": "conn"})
    assert [sig_of(m)["fty"][0]["data"] for m in h.take(again)] == ["hello"]
    h.finish()


def test_max_chats_counts_offers_too_and_a_full_agent_stops_ringing() -> None:
    h = Harness(_config(max_chats=2))
    bob = h.phone("bob")
    visitors = [h.phone("carol") for _ in range(3)]
    for visitor in visitors:
        _visit(h, visitor, to="sales")
    offers = h.take(bob)
    assert len(offers) == 2  # the third chat waits: bob has two ringing
    h.signal(bob, offers[0]["call"], {"type": "conn"})
    h.quiet(bob)  # one taken, one ringing: still full
    h.signal(bob, offers[1]["call"], {"type": "conn"})
    h.quiet(bob)  # two taken: full, the third chat still waits
    (chat,) = [c for c in h.switch.chat.support.chats.values() if c.agent is None]
    h.send(bob, {"api": "Queue", "mt": "Take", "callId": chat.call.call_id})
    assert h.one(bob)["code"] == "unavailable"
    h.signal(visitors[0], 1, {"type": "rel"})  # one chat closes: the waiting one rings
    rel, offer = h.take(bob)
    assert sig_of(rel, kind="rel") and sig_of(offer, kind="setup")["confId"] == chat.call.call_id
    h.finish()


def test_queue_requests_name_the_chat_by_confid_or_by_callid_and_both_must_agree() -> None:
    h = Harness(_config())
    alice = h.phone("alice")
    visitor = h.phone("carol")
    _visit(h, visitor)
    h.offered(alice)
    (call_id,) = h.switch.chat.support.chats
    take = {"api": "Queue", "mt": "Take", "src": "t"}
    for bad in ({}, {"confId": 7}, {"callId": None}, {"confId": call_id, "callId": "other"}):
        h.send(alice, {**take, **bad})
        assert h.one(alice)["code"] == "bad_json", bad
    assert h.switch.chat.support.chats[call_id].agent is None  # nothing happened
    h.send(alice, {**take, "confId": call_id, "callId": call_id})
    messages = h.take(alice)
    assert messages[-1]["mt"] == "TakeResult" and messages[-1]["confId"] == call_id
    h.finish()


def test_a_chat_cannot_be_transferred_to_its_visitor() -> None:
    h = Harness(_config())
    alice = h.phone("alice")
    visitor = h.phone("carol")
    _visit(h, visitor)
    number, _ = h.offered(alice)
    h.signal(alice, number, {"type": "conn"})
    (call_id,) = h.switch.chat.support.chats
    h.send(alice, {"api": "Queue", "mt": "Transfer", "callId": call_id, "to": "carol"})
    assert h.one(alice)["code"] == "unavailable"
    h.finish()


def test_an_agent_calling_its_own_queue_cannot_take_its_own_chat() -> None:
    h = Harness(_config())
    alice, bob = h.phone("alice"), h.phone("bob")
    _visit(h, alice)  # alice calls the desk as a customer: only the others are offered it
    h.offered(bob)
    (call_id,) = h.switch.chat.support.chats
    h.send(alice, {"api": "Queue", "mt": "Take", "callId": call_id})
    assert h.one(alice)["code"] == "forbidden"
    h.finish()


def test_a_chat_transferred_to_its_own_queue_goes_to_someone_else() -> None:
    h = Harness(_config())
    agents = _agents(h, "alice", "bob")
    _taken_by_alice(h, agents)
    (call_id,) = h.switch.chat.support.chats
    h.send(agents["alice"], {"api": "Queue", "mt": "Transfer", "confId": call_id, "to": "desk"})
    assert [m.get("mt") for m in h.take(agents["alice"])] == ["Signaling", "TransferResult"]
    _, sig = h.offered(agents["bob"])
    assert sig["confId"] == call_id
    h.finish()
