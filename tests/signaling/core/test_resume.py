"""Resume after reconnect (PROTOCOL §4.9): a dropped connection's registration and calls
live on for the grace; a new connection with the token takes them over and gets every
message it missed, once."""

from __future__ import annotations

from typing import Any

from tests.signaling.core.harness import Harness, sig_of
from tests.support import make_config

JsonObject = dict[str, Any]


def _harness(*, messages: bool = False, grace: float = 60.0) -> Harness:
    return Harness(make_config(messages=messages, grace=grace))


def _resume(h: Harness, sip: str, token: str, seqs: JsonObject | None = None) -> int:
    conn = h.login(sip)
    register: JsonObject = {
        "api": "PbxSignal",
        "mt": "Register",
        "src": "reg",
        "flags": "NO_MEDIA_CALL",
        "resume": token,
    }
    if seqs is not None:
        register["seqs"] = seqs
    h.send(conn, register)
    return conn


def _result(h: Harness, conn: int) -> JsonObject:
    messages = h.take(conn)
    assert messages[0]["mt"] == "RegisterResult", messages
    h.inbox[conn] = messages[1:] + h.inbox[conn]
    return messages[0]


def _call_id(h: Harness, alice: int) -> str:
    return str(h.switch.connections[alice].registration.legs[1].call.call_id)  # type: ignore[union-attr]


def _leg_id(h: Harness, conn: int, number: int) -> str:
    return str(h.switch.connections[conn].registration.legs[number].call_id)  # type: ignore[union-attr]


def _offer_ids(h: Harness, caller: int, callee: int) -> tuple[int, dict[str, str]]:
    """``caller`` calls ``callee``, who answers: its call number, and the callIds of both
    legs and the confId."""
    h.setup(caller, 1, "bob")
    proc = sig_of(h.one(caller), 1, "call_proc")
    number, offer = h.offered(callee)
    h.signal(callee, number, {"type": "conn"})
    sig_of(h.one(caller), 1, "conn")
    assert offer["confId"] == proc["confId"]
    ids = {"leg": offer["callId"], "conf": offer["confId"], "caller": proc["callId"]}
    return number, ids


def _resume_with(h: Harness, seqs: dict[str, int]) -> list[JsonObject]:
    """alice writes three messages to bob, whose device drops after the first and
    resumes with ``seqs``: what its re-offered call carries and gets after ``conn``."""
    alice, bob = h.phone("alice"), h.phone("bob")
    _, ids = _offer_ids(h, alice, bob)
    for text in ("one", "two", "three"):
        h.say(alice, 1, text)
        if text == "one":
            h.take(bob)
            token = h.tokens[bob]
            h.close(bob, clean=False)
    again = _resume(h, "bob", token, {ids[key]: seq for key, seq in seqs.items()})
    _result(h, again)
    setup = h.one(again)
    sig = sig_of(setup, kind="setup")
    assert (sig["callId"], sig["confId"]) == (ids["leg"], ids["conf"])  # both kept
    h.signal(again, setup["call"], {"type": "conn"})
    return [sig_of(m, setup["call"])["fty"][0] for m in h.take(again)]


def test_resume_seqs_may_name_the_call_by_its_confid() -> None:
    h = _harness()
    assert [m["data"] for m in _resume_with(h, {"conf": 1})] == ["two", "three"]
    h.finish()


def test_resume_seqs_may_name_the_call_by_the_legs_old_callid() -> None:
    h = _harness()
    assert [m["data"] for m in _resume_with(h, {"leg": 2})] == ["three"]
    h.finish()


def test_resume_seqs_prefer_the_confid_when_both_name_the_call() -> None:
    h = _harness()
    assert [m["data"] for m in _resume_with(h, {"conf": 1, "leg": 2})] == ["two", "three"]
    h.finish()


def test_resume_seqs_naming_the_other_legs_callid_count_for_nothing() -> None:
    h = _harness()
    replayed = _resume_with(h, {"caller": 2})
    assert [m["data"] for m in replayed] == ["one", "two", "three"]
    h.finish()


def test_a_dropped_callee_resumes_and_gets_exactly_what_it_missed() -> None:
    h = _harness()
    alice, bob = h.phone("alice"), h.phone("bob")
    number = h.call(alice, bob)
    call_id = _call_id(h, alice)
    bob_leg = _leg_id(h, bob, number)
    h.say(alice, 1, "one", id="a1")
    assert sig_of(h.take(bob)[0], number)["fty"][0]["seq"] == 1
    h.take(alice)
    token = h.tokens[bob]
    h.close(bob, clean=False)
    h.quiet(alice)  # the call lives on: no rel for alice
    h.say(alice, 1, "two", id="a2")
    h.say(alice, 1, "three", id="a3")
    acks = [sig_of(m, 1)["fty"][0] for m in h.take(alice)]
    assert [(a["id"], a["seq"], a["state"]) for a in acks] == [("a2", 2, "held"), ("a3", 3, "held")]
    again = _resume(h, "bob", token, {call_id: 1})
    result = _result(h, again)
    assert result["resumed"] is True and result["resume"] != token
    setup = h.one(again)
    resumed_number = setup["call"]
    sig = sig_of(setup, kind="setup")
    # the same conversation (confId) and the same leg (callId), on a new call number
    assert resumed_number < 0 and sig["confId"] == call_id and sig["callId"] == bob_leg
    assert {"type": "resumed"} in sig["fty"] and sig["cg"]["sip"] == "alice"
    h.signal(again, resumed_number, {"type": "conn"})
    replayed = [sig_of(m, resumed_number)["fty"][0] for m in h.take(again)]
    assert [(m["seq"], m["data"]) for m in replayed] == [(2, "two"), (3, "three")]
    delivered = [sig_of(m, 1)["fty"][0] for m in h.take(alice)]
    assert [(a["id"], a["state"]) for a in delivered] == [("a2", "delivered"), ("a3", "delivered")]
    # the call goes on both ways on the new call number
    h.say(again, resumed_number, "back")
    assert sig_of(h.one(alice), 1)["fty"][0]["seq"] == 4
    h.say(alice, 1, "welcome")
    assert sig_of(h.one(again), resumed_number)["fty"][0]["data"] == "welcome"
    h.finish()


def test_a_held_message_the_client_says_it_has_is_delivered_not_replayed() -> None:
    """The client's seqs are its word on what it received (docs 12.43: across nodes a
    message may reach the old connection while its report is lost): a held message at
    or below them is ``delivered`` to its writer at the ``conn``, and not sent again."""
    h = _harness()
    alice, bob = h.phone("alice"), h.phone("bob")
    h.call(alice, bob)
    call_id = _call_id(h, alice)
    token = h.tokens[bob]
    h.close(bob, clean=False)
    h.say(alice, 1, "one", id="a1")
    h.say(alice, 1, "two", id="a2")
    acks = [sig_of(m, 1)["fty"][0] for m in h.take(alice)]
    assert [(a["id"], a["state"]) for a in acks] == [("a1", "held"), ("a2", "held")]
    again = _resume(h, "bob", token, {call_id: 1})
    _result(h, again)
    setup = h.one(again)
    h.signal(again, setup["call"], {"type": "conn"})
    replayed = [sig_of(m, setup["call"])["fty"][0] for m in h.take(again)]
    assert [m["seq"] for m in replayed] == [2]
    delivered = [sig_of(m, 1)["fty"][0] for m in h.take(alice)]
    assert [(a["id"], a["state"]) for a in delivered] == [("a1", "delivered"), ("a2", "delivered")]
    h.finish()


def test_replay_includes_own_messages_with_their_ids_after_the_seq_given() -> None:
    h = _harness()
    alice, bob = h.phone("alice"), h.phone("bob")
    number = h.call(alice, bob)
    h.say(bob, number, "from bob", id="b1")
    h.say(alice, 1, "from alice")
    h.take(alice), h.take(bob)
    token = h.tokens[bob]
    h.close(bob, clean=False)
    again = _resume(h, "bob", token)  # no seqs: everything kept is replayed
    _result(h, again)
    resumed_number = h.one(again)["call"]
    h.signal(again, resumed_number, {"type": "conn"})
    replayed = [sig_of(m, resumed_number)["fty"][0] for m in h.take(again)]
    assert [(m["type"], m["seq"], m.get("sender"), m.get("id")) for m in replayed] == [
        ("im_message", 1, "bob", "b1"),
        ("im_ack", 1, None, "b1"),  # its own message, then what became of it
        ("im_message", 2, "alice", None),
    ]
    assert replayed[1]["state"] == "delivered"
    h.finish()


def test_the_grace_runs_out_and_the_call_ends_with_the_right_cause() -> None:
    h = _harness()
    alice, bob = h.phone("alice"), h.phone("bob")
    h.call(alice, bob)
    h.close(bob, clean=False)
    h.say(alice, 1, "lost", id="x")
    assert sig_of(h.one(alice), 1)["fty"][0]["state"] == "held"
    h.advance(59)
    h.quiet(alice)
    h.advance(1)
    ack, rel = h.take(alice)
    assert sig_of(ack, 1)["fty"][0] == {
        "type": "im_ack",
        "id": "x",
        "seq": 1,
        "time": sig_of(ack, 1)["fty"][0]["time"],
        "state": "not_delivered",
    }
    assert sig_of(rel, 1, "rel")["cau"] == {"loc": 1, "num": 41}
    assert len(h.switch.registry) == 1
    h.finish()


def test_a_clean_close_that_is_not_resumed_ends_with_cause_16() -> None:
    h = _harness()
    alice, bob = h.phone("alice"), h.phone("bob")
    h.call(alice, bob)
    h.close(bob, clean=True)
    h.advance(60)
    assert sig_of(h.one(alice), 1, "rel")["cau"] == {"loc": 1, "num": 16}
    h.finish()


def test_an_old_connection_still_holding_the_token_is_closed_4005() -> None:
    h = _harness()
    alice, bob = h.phone("alice"), h.phone("bob")
    h.call(alice, bob)
    again = _resume(h, "bob", h.tokens[bob])
    assert _result(h, again)["resumed"] is True
    assert h.closed_with[bob].code == 4005
    h.quiet(alice)
    assert len(h.switch.registry) == 2
    h.close(bob)  # the old socket finally goes: nothing changes for the registration
    resumed_number = h.one(again)["call"]
    h.signal(again, resumed_number, {"type": "conn"})
    h.say(alice, 1, "still here")
    assert sig_of(h.one(again), resumed_number)["fty"][0]["data"] == "still here"
    h.finish()


def test_a_token_works_once_and_only_for_its_own_user() -> None:
    h = _harness()
    bob = h.phone("bob")
    token = h.tokens[bob]
    h.close(bob, clean=False)
    thief = _resume(h, "alice", token)
    result = _result(h, thief)
    assert result["resumed"] is False and result["resume"] != token
    again = _resume(h, "bob", token)
    assert _result(h, again)["resumed"] is True
    h.close(again, clean=False)
    late = _resume(h, "bob", token)  # the first token was replaced at the resume
    assert _result(h, late)["resumed"] is False
    h.close(late)
    h.advance(60)
    h.finish()


def test_a_detached_device_is_not_offered_new_calls_and_presence_stays_open() -> None:
    h = _harness()
    watcher, bob = h.phone("alice"), h.phone("bob")
    h.signal(
        watcher,
        7,
        {"type": "setup", "cd": {"sip": "bob"}, "fty": [{"type": "presence_subscribe"}]},
    )
    notify = h.take(watcher)[-1]
    assert sig_of(notify, 7)["fty"][0]["status"] == "open"
    h.close(bob, clean=False)
    h.quiet(watcher)
    carol = h.phone("carol")
    h.setup(carol, 1, "bob")
    assert sig_of(h.one(carol), 1, "rel")["cau"] == {"loc": 1, "num": 18}
    h.advance(60)
    assert sig_of(h.one(watcher), 7)["fty"][0]["status"] == "closed"
    h.finish()


def test_a_resumed_presence_subscription_tells_the_state_at_conn() -> None:
    h = _harness()
    alice = h.phone("alice")
    h.signal(
        alice, 3, {"type": "setup", "cd": {"sip": "bob"}, "fty": [{"type": "presence_subscribe"}]}
    )
    h.take(alice)
    token = h.tokens[alice]
    h.close(alice, clean=False)
    h.phone("bob")
    again = _resume(h, "alice", token)
    _result(h, again)
    setup = h.one(again)
    assert {"type": "presence_subscribe"} in sig_of(setup, kind="setup")["fty"]
    h.signal(again, setup["call"], {"type": "conn"})
    assert sig_of(h.one(again), setup["call"])["fty"][0]["status"] == "open"
    h.finish()


def test_facility_before_answering_the_resumed_call_is_bad_state() -> None:
    h = _harness()
    alice, bob = h.phone("alice"), h.phone("bob")
    h.call(alice, bob)
    h.close(bob, clean=False)
    again = _resume(h, "bob", h.tokens[bob])
    _result(h, again)
    number = h.one(again)["call"]
    h.say(again, number, "too early")
    error = h.one(again)
    assert error["code"] == "bad_state" and error["call"] == number
    h.signal(again, number, {"type": "rel"})
    assert sig_of(h.one(alice), 1, "rel")["cau"] == {"loc": 1, "num": 16}
    h.finish()


def test_abuse_closes_end_the_registration_at_once() -> None:
    h = _harness()
    alice, bob = h.phone("alice"), h.phone("bob")
    h.call(alice, bob)
    for _ in range(10):
        h.text(bob, "{not json")
    assert h.closed_with[bob].code == 4002
    assert sig_of(h.one(alice), 1, "rel")["cau"] == {"loc": 1, "num": 41}
    h.finish()


def test_a_licensed_chat_to_a_detached_peer_is_stored_and_said_so_if_never_resumed() -> None:
    h = _harness(messages=True)
    alice, bob = h.phone("alice"), h.phone("bob")
    h.call(alice, bob)
    h.close(bob, clean=False)
    h.say(alice, 1, "kept", id="k")
    assert sig_of(h.one(alice), 1)["fty"][0]["state"] == "held"
    assert [store.post["text"] for store in h.stores] == ["kept"]
    h.advance(60)
    ack, rel = h.take(alice)
    assert sig_of(ack, 1)["fty"][0]["state"] == "stored"
    assert sig_of(rel, 1, "rel")["cau"]["num"] == 41
    h.finish()


def test_seqs_that_are_not_a_map_of_integers_are_bad_json() -> None:
    h = _harness()
    conn = h.login("bob")
    for seqs in ([1], {"x": "1"}, {"x": -1}):
        h.send(conn, {"api": "PbxSignal", "mt": "Register", "resume": "t", "seqs": seqs})
        assert h.one(conn)["code"] == "bad_json"
    h.finish()


def test_presence_publish_on_a_chat_call_to_oneself_sets_the_activity() -> None:
    h = _harness(grace=0)
    watcher = h.phone("alice")
    h.signal(
        watcher, 7, {"type": "setup", "cd": {"sip": "bob"}, "fty": [{"type": "presence_subscribe"}]}
    )
    h.take(watcher)
    bob, other_bob = h.phone("bob"), h.phone("bob")
    h.setup(bob, 1, "bob")
    h.take(bob), h.take(other_bob), h.take(watcher)
    publish = {"type": "presence_publish", "activity": "dnd", "note": "focus"}
    h.signal(bob, 1, {"type": "facility", "fty": [publish]})
    notify = sig_of(h.one(watcher), 7)["fty"][0]
    assert (notify["activity"], notify["note"]) == ("dnd", "focus")
    h.finish()


def test_a_stored_ack_due_to_the_old_connection_reaches_the_resumed_one() -> None:
    h = _harness(messages=True)
    alice = h.phone("alice")
    h.setup(alice, 1, "bob")  # bob (licensed) has no device: the hub answers and stores
    h.take(alice)
    h.say(alice, 1, "for later", id="m1")
    h.quiet(alice)  # pending until the Post is on disk
    store = h.stores[-1]
    assert store.ack is not None
    token = h.tokens[alice]
    h.close(alice, clean=False)
    again = _resume(h, "alice", token, {store.post["callId"]: 1})
    _result(h, again)
    number = h.one(again)["call"]
    h.signal(again, number, {"type": "conn"})
    h.quiet(again)  # nothing above seq 1, and m1 is still pending
    h.record(h.switch.stored([store.ack]))
    assert sig_of(h.one(again), number)["fty"][0]["state"] == "stored"
    h.say(again, number, "for later", id="m1")  # a retry is answered again
    assert sig_of(h.one(again), number)["fty"][0]["state"] == "stored"
    h.finish()
