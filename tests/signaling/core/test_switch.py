"""The sans-I/O ``Switch`` driven directly: no sockets, no event loop (PROTOCOL §1, §3-§5, §11).

Every test drives one ``Switch`` with a ``ManualClock`` and a fixed challenge, reads the
``Send``/``Close`` actions it returns per connection, and ends with ``Harness.finish()``:
every connection closed, no call, no registration and no timer may be left behind.
"""

from __future__ import annotations

import json

import pytest

from signaling.core.actions import Close, Send
from signaling.core.codec import encode
from signaling.core.switch import BUILD, VERSION
from tests.signaling.core.harness import (
    CHALLENGE,
    T0,
    Harness,
    closes,
    fty_of,
    im,
    login_message,
    sig_of,
    with_signaling,
)
from tests.support import make_config

# -- login (PROTOCOL §3) -----------------------------------------------------------------------


def test_login_ok_answers_with_the_tenant_and_echoes_src() -> None:
    h = Harness()
    conn = h.open()
    h.send(conn, {"mt": "AppChallenge", "extra": "ignored"})
    assert h.one(conn) == {"mt": "AppChallengeResult", "challenge": CHALLENGE}
    actions = h.send(conn, login_message("alice", "alice-demo", src="s1"))
    assert closes(actions) == []
    assert h.one(conn) == {
        "mt": "AppLoginResult",
        "ok": True,
        "domain": "example.com",
        "dn": "Alice Example",
        "src": "s1",
    }
    principal = h.switch.connections[conn].principal
    assert principal is not None and (principal.domain, principal.sip) == ("example.com", "alice")
    h.finish()


def test_login_failure_sends_the_result_then_closes_4001_in_that_order() -> None:
    h = Harness()
    conn = h.open()
    h.send(conn, {"mt": "AppChallenge"})
    h.take(conn)
    actions = h.send(conn, login_message("alice", "wrong", src="s2"))
    assert len(actions) == 2
    result, close = actions
    assert isinstance(result, Send) and isinstance(close, Close)
    assert json.loads(result.text) == {
        "mt": "AppLoginResult",
        "error": 1,
        "errorText": "login failed",
        "src": "s2",
    }
    assert (close.conn, close.code) == (conn, 4001)
    assert h.switch.connections[conn].principal is None
    h.finish()


def test_unknown_user_fails_exactly_like_a_wrong_password() -> None:
    h = Harness()
    replies = []
    for sip, address in (("mallory", "192.0.2.1"), ("alice", "192.0.2.2")):
        conn = h.open(address)
        h.send(conn, {"mt": "AppChallenge"})
        h.take(conn)
        h.send(conn, login_message(sip, "guess"))
        replies.append(h.one(conn))
        assert h.closed_with[conn].code == 4001
    assert (
        replies[0]
        == replies[1]
        == {"mt": "AppLoginResult", "error": 1, "errorText": "login failed"}
    )
    h.finish()


def test_login_without_a_challenge_fails_with_no_valid_challenge() -> None:
    h = Harness()
    conn = h.open()
    h.send(conn, login_message("alice", "alice-demo"))
    reply = h.one(conn)
    assert (reply["error"], reply["errorText"]) == (3, "no valid challenge")
    assert "ok" not in reply and h.closed_with[conn].code == 4001
    h.finish()


def test_guessing_locks_only_the_guessing_pair() -> None:
    h = Harness()
    for _ in range(h.config.login.throttle_failures):
        conn = h.open()
        h.send(conn, {"mt": "AppChallenge"})
        h.take(conn)
        h.send(conn, login_message("bob", "guess"))
        assert h.one(conn)["errorText"] == "login failed"
    conn = h.open()
    h.send(conn, {"mt": "AppChallenge"})
    h.take(conn)
    actions = h.send(conn, login_message("bob", "bob-demo"))
    assert h.one(conn) == {
        "mt": "AppLoginResult",
        "error": 2,
        "errorText": "throttled",
        "retry_after_ms": 1000,
    }
    assert [close.code for close in closes(actions)] == [4001]
    h.login("alice")  # a colleague behind the same address
    h.login("bob", address="198.51.100.7")  # bob elsewhere
    h.clock.advance(h.config.login.throttle_delay)
    h.login("bob")
    h.finish()


def test_the_throttle_forgets_failures_on_its_own_timer() -> None:
    h = Harness()
    conn = h.open()
    h.send(conn, {"mt": "AppChallenge"})
    h.take(conn)
    h.send(conn, login_message("bob", "guess"))
    h.close(conn)
    expiry = h.clock.monotonic() + h.config.login.throttle_window
    assert h.switch.next_deadline() == expiry
    assert h.switch.throttle.tracked(h.clock.monotonic())["pair"] == 1
    h.advance(h.config.login.throttle_window)
    assert h.switch.throttle.next_expiry() is None
    assert h.switch.next_deadline() is None
    h.finish()


def test_nothing_but_login_and_keepalive_before_login() -> None:
    h = Harness()
    conn = h.open()
    h.send(conn, {"api": "PbxSignal", "mt": "Register", "src": "r", "flags": "NO_MEDIA_CALL"})
    reply = h.one(conn)
    assert (reply["mt"], reply["code"], reply["api"], reply["src"]) == (
        "Error",
        "not_logged_in",
        "PbxSignal",
        "r",
    )
    h.signal(conn, 1, {"type": "setup", "cd": {"sip": "bob"}, "fty": [{"type": "im_setup"}]})
    assert h.one(conn)["code"] == "not_logged_in"
    h.send(conn, {"mt": "Whatever"})
    assert h.one(conn)["code"] == "not_logged_in"
    h.send(conn, {"api": "PbxMessages", "mt": "Session", "src": 9})
    assert h.one(conn)["code"] == "not_logged_in"
    assert conn not in h.closed_with  # refused, but the connection stays open
    assert h.switch.connections[conn].principal is None
    h.send(conn, {"mt": "KeepAlive"})
    assert h.one(conn) == {"mt": "KeepAlive"}
    h.finish()


def test_keepalive_is_answered_before_and_after_login() -> None:
    h = Harness()
    conn = h.open()
    h.send(conn, {"mt": "KeepAlive"})
    assert h.one(conn) == {"mt": "KeepAlive"}
    h.send(conn, {"mt": "AppChallenge"})
    h.take(conn)
    h.send(conn, login_message("carol", "carol-demo"))
    h.take(conn)
    h.send(conn, {"mt": "KeepAlive"})
    assert h.one(conn) == {"mt": "KeepAlive"}
    h.send(conn, {"mt": "KeepAlive", "src": "k"})  # the answer echoes src (§1.2)
    assert h.one(conn) == {"mt": "KeepAlive", "src": "k"}
    h.finish()


def test_challenge_and_login_again_after_login_are_bad_state() -> None:
    h = Harness()
    conn = h.login("alice")
    h.send(conn, {"mt": "AppChallenge", "src": 1})
    reply = h.one(conn)
    assert (reply["code"], reply["src"]) == ("bad_state", 1)
    h.send(conn, login_message("bob", "bob-demo"))
    assert h.one(conn)["code"] == "bad_state"
    assert h.switch.connections[conn].principal.sip == "alice"  # type: ignore[union-attr]
    assert conn not in h.closed_with
    h.finish()


def test_login_timeout_closes_4001_and_spares_logged_in_connections() -> None:
    h = Harness()
    waiting = h.open()
    h.send(waiting, {"mt": "AppChallenge"})
    h.take(waiting)
    done = h.login("alice")
    timeout = h.config.login.timeout
    assert h.advance(timeout - 1) == []
    actions = h.advance(1)
    assert actions == [Close(waiting, 4001, "login timeout")]
    assert h.send(waiting, {"mt": "KeepAlive"}) == []
    h.send(done, {"mt": "KeepAlive"})
    assert h.one(done) == {"mt": "KeepAlive"}
    h.finish()


def test_the_hub_never_closes_a_logged_in_connection_for_silence() -> None:
    """Liveness is the transport's (PROTOCOL §3.5 revised, docs 12.26): a listening client
    stays however long the hub's clock runs; KeepAlive is still answered."""
    h = Harness()
    conn = h.login("alice")
    assert h.advance(h.config.limits.idle_timeout * 100) == []
    assert conn not in h.closed_with
    h.send(conn, {"mt": "KeepAlive"})
    assert h.take(conn) == [{"mt": "KeepAlive"}]
    assert h.switch.next_deadline() is None  # no timer per connection either
    h.finish()


def test_a_login_timeout_leaves_nothing_due() -> None:
    h = Harness()
    conn = h.open()
    h.advance(h.config.login.timeout)
    assert h.closed_with[conn].code == 4001
    # nothing else is due for this connection
    h.close(conn)
    assert h.switch.next_deadline() is None
    h.finish()


def test_app_object_gets_pbx_info_with_the_documented_fields() -> None:
    h = Harness()
    conn = h.open()
    h.send(conn, {"mt": "AppChallenge"})
    h.take(conn)
    h.send(conn, login_message("", "bot-secret", app="helpdesk-bot"))
    result, info = h.take(conn)
    assert result == {
        "mt": "AppLoginResult",
        "ok": True,
        "domain": "example.com",
        "dn": "Helpdesk bot",
    }
    assert info == {
        "mt": "PbxInfo",
        "domain": "example.com",
        "pbx": "switchboard",
        "pbxDns": "",
        "apis": ["PbxSignal"],
        "version": VERSION,  # version and build: extensions (docs 12.24)
        "build": BUILD,
    }
    h.finish()


def test_app_object_acting_for_a_user_chats_as_that_user() -> None:
    h = Harness()
    bot = h.phone("carol", password="bot-secret", app="helpdesk-bot")
    dave = h.phone("dave")
    h.setup(bot, 1, "dave")
    h.take(bot)
    _, setup = h.offered(dave)
    assert setup["cg"] == {"sip": "carol", "num": "103"}
    h.finish()


# -- a chat from setup to rel (PROTOCOL §4.4-§4.7) ---------------------------------------------


def test_full_chat_setup_offer_alert_conn_messages_and_rel() -> None:
    h = Harness()
    alice, bob = h.phone("alice"), h.phone("bob")

    h.setup(alice, 1, "bob")
    proc = sig_of(h.one(alice), 1, "call_proc")
    conf_id, caller_leg = proc["confId"], proc["callId"]
    for value in (conf_id, caller_leg):
        assert isinstance(value, str) and len(value) == 32 and int(value, 16) >= 0
    assert caller_leg != conf_id
    number, setup = h.offered(bob)
    assert number == -1
    callee_leg = setup["callId"]
    assert isinstance(callee_leg, str) and len(callee_leg) == 32 and int(callee_leg, 16) >= 0
    assert callee_leg not in (caller_leg, conf_id)
    assert setup == {
        "type": "setup",
        "channel": 0,
        "cg": {"sip": "alice", "num": "101"},
        "cd": {"sip": "bob", "num": "102"},
        "fty": [{"type": "im_setup"}, {"type": "name_identification", "name": "Alice Example"}],
        "callId": callee_leg,
        "confId": conf_id,
    }

    h.signal(bob, number, {"type": "alert"})
    assert sig_of(h.one(alice), 1, "alert") == {"type": "alert"}
    h.quiet(bob)
    h.signal(bob, number, {"type": "conn"})
    conn = sig_of(h.one(alice), 1, "conn")
    assert conn["fty"] == [{"type": "name_identification", "name": "Bob Example"}]
    h.quiet(bob)

    now = int(h.clock.wall())
    h.say(alice, 1, "hello bob", id="a1", sender="mallory", sender_dn="M", time=1, seq=99)
    assert fty_of(h.one(alice), 1) == {
        "type": "im_ack",
        "id": "a1",
        "seq": 1,
        "time": now,
        "state": "delivered",
    }
    assert fty_of(h.one(bob), number) == {
        "type": "im_message",
        "sender": "alice",
        "sender_dn": "Alice Example",
        "time": now,
        "seq": 1,
        "mime": "text/html",
        "data": "hello bob",
    }

    h.clock.advance(2.7)
    later = int(h.clock.wall())
    assert later == T0 + 2
    h.say(bob, number, "hi <alice> 😀", id="b1")
    ack = fty_of(h.one(bob), number)
    assert (ack["id"], ack["seq"], ack["time"], ack["state"]) == ("b1", 2, later, "delivered")
    got = fty_of(h.one(alice), 1)
    assert (got["data"], got["sender"], got["sender_dn"], got["seq"], got["time"]) == (
        "hi &lt;alice&gt; 😀",
        "bob",
        "Bob Example",
        2,
        later,
    )
    assert "id" not in got

    h.say(alice, 1, "no id this time")
    assert h.take(alice) == []  # no id, no ack
    assert fty_of(h.one(bob), number)["seq"] == 3

    h.signal(bob, number, {"type": "rel"})
    assert sig_of(h.one(alice), 1, "rel")["cau"] == {"loc": 1, "num": 16}
    h.quiet(bob)
    assert h.switch.chat.calls == {}
    h.finish()


def test_a_retried_id_is_acknowledged_again_and_not_relayed() -> None:
    h = Harness()
    alice, bob = h.phone("alice"), h.phone("bob")
    number = h.call(alice, bob)
    h.say(alice, 1, "once", id="retry-me")
    first = fty_of(h.one(alice), 1)
    h.take(bob)
    h.clock.advance(5)
    h.say(alice, 1, "once", id="retry-me")
    assert fty_of(h.one(alice), 1) == first
    h.quiet(bob)
    h.say(alice, 1, "next", id="n")
    assert fty_of(h.one(alice), 1)["seq"] == 2
    assert fty_of(h.one(bob), number)["data"] == "next"
    h.finish()


def test_the_peer_may_use_the_same_message_id_as_the_other_side() -> None:
    """Ids are each client's own (§4.6): the peer's id "1" is not a retry of ours."""
    h = Harness()
    alice, bob = h.phone("alice"), h.phone("bob")
    number = h.call(alice, bob)
    h.say(alice, 1, "from alice", id="1")
    assert fty_of(h.one(alice), 1)["seq"] == 1
    assert fty_of(h.one(bob), number)["data"] == "from alice"
    h.say(bob, number, "from bob", id="1")
    ack = fty_of(h.one(bob), number)
    assert (ack["id"], ack["seq"], ack["state"]) == ("1", 2, "delivered")
    relayed = h.take(alice)
    assert [fty_of(message, 1)["data"] for message in relayed] == ["from bob"]
    h.finish()


def test_unknown_facilities_travel_untouched_and_client_ids_are_not_relayed() -> None:
    h = Harness()
    alice, bob = h.phone("alice"), h.phone("bob")
    number = h.call(alice, bob)
    item = {"type": "x_vendor", "payload": {"k": [1, 2]}}
    h.signal(alice, 1, {"type": "facility", "fty": [item]})
    assert sig_of(h.one(bob), number, "facility")["fty"] == [item]
    h.quiet(alice)
    h.finish()


def test_calling_by_number_and_user_at_own_domain() -> None:
    h = Harness()
    alice, bob = h.phone("alice"), h.phone("bob")
    h.signal(alice, 1, {"type": "setup", "cd": {"num": "102"}, "fty": [{"type": "im_setup"}]})
    sig_of(h.one(alice), 1, "call_proc")
    assert h.offered(bob)[0] == -1
    h.setup(alice, 2, "bob@EXAMPLE.com")
    sig_of(h.one(alice), 2, "call_proc")
    assert h.offered(bob)[0] == -2  # call numbers are per registration, counting down
    h.finish()


# -- forking (PROTOCOL §4.5) -------------------------------------------------------------------


def test_alert_reaches_the_caller_once_when_two_devices_alert() -> None:
    h = Harness()
    alice = h.phone("alice")
    desk, mobile = h.phone("bob", hw="desk"), h.phone("bob", hw="mobile")
    h.setup(alice, 1, "bob")
    proc = sig_of(h.one(alice), 1, "call_proc")
    desk_call, desk_setup = h.offered(desk)
    mobile_call, mobile_setup = h.offered(mobile)
    # one conversation (confId), one callId per leg (Signal page, PROTOCOL §4.5 revised)
    assert desk_setup["confId"] == mobile_setup["confId"] == proc["confId"]
    legs = {desk_setup.pop("callId"), mobile_setup.pop("callId"), proc["callId"]}
    assert len(legs) == 3 and proc["confId"] not in legs
    assert desk_setup == mobile_setup
    h.signal(desk, desk_call, {"type": "alert"})
    assert sig_of(h.one(alice), 1, "alert")["type"] == "alert"
    h.signal(mobile, mobile_call, {"type": "alert"})
    h.signal(desk, desk_call, {"type": "alert"})
    h.quiet(alice, desk, mobile)
    h.finish()


def test_first_conn_wins_the_loser_gets_cause_26_and_its_late_conn_is_bad_state() -> None:
    h = Harness()
    alice = h.phone("alice")
    desk, mobile = h.phone("bob", hw="desk"), h.phone("bob", hw="mobile")
    h.setup(alice, 1, "bob")
    h.take(alice)
    desk_call, _ = h.offered(desk)
    mobile_call, _ = h.offered(mobile)
    h.signal(mobile, mobile_call, {"type": "conn"})
    sig_of(h.one(alice), 1, "conn")
    assert sig_of(h.one(desk), desk_call, "rel")["cau"] == {"loc": 1, "num": 26}
    h.quiet(mobile)

    h.say(alice, 1, "only the mobile", id="x")
    h.take(alice)
    assert fty_of(h.one(mobile), mobile_call)["data"] == "only the mobile"
    h.quiet(desk)

    h.signal(desk, desk_call, {"type": "conn"}, src="late")
    error = h.one(desk)
    assert (error["api"], error["mt"], error["code"], error["call"], error["src"]) == (
        "PbxSignal",
        "Error",
        "bad_state",
        desk_call,
        "late",
    )
    assert "conn" in error["text"] and "idle" in error["text"]
    h.quiet(alice, mobile)
    h.finish()


def test_decline_on_one_device_ends_the_call_with_its_cause() -> None:
    h = Harness()
    alice = h.phone("alice")
    desk, mobile = h.phone("bob"), h.phone("bob")
    h.setup(alice, 1, "bob", im("ring", id="h"))
    h.take(alice)
    desk_call, _ = h.offered(desk)
    mobile_call, _ = h.offered(mobile)
    h.signal(desk, desk_call, {"type": "rel", "cau": {"loc": 0, "num": 17}})
    report, rel = h.take(alice)
    assert fty_of(report, 1) == {"type": "im_ack", "seq": 1, "id": "h", "state": "not_delivered"}
    assert sig_of(rel, 1, "rel")["cau"] == {"loc": 0, "num": 17}
    assert sig_of(h.one(mobile), mobile_call, "rel")["cau"] == {"loc": 1, "num": 26}
    h.quiet(desk)
    assert h.switch.chat.calls == {}
    h.finish()


def test_caller_hanging_up_before_conn_stops_every_device() -> None:
    h = Harness()
    alice = h.phone("alice")
    desk, mobile = h.phone("bob"), h.phone("bob")
    h.setup(alice, 1, "bob", im("never mind", id="h"))
    h.take(alice)
    desk_call, _ = h.offered(desk)
    mobile_call, _ = h.offered(mobile)
    h.signal(alice, 1, {"type": "disc"})
    # disc is answered rel; every device hears disc, then rel (docs 12.25)
    assert sig_of(h.one(alice), 1, "rel")["cau"] == {"loc": 1, "num": 16}
    for device, number in ((desk, desk_call), (mobile, mobile_call)):
        disc, rel = h.take(device)
        assert sig_of(disc, number, "disc") == {"type": "disc", "cau": {"loc": 1, "num": 16}}
        assert sig_of(rel, number, "rel")["cau"] == {"loc": 1, "num": 16}
    assert h.switch.chat.calls == {}
    # a crossed rel on a call that is gone is ignored
    assert h.signal(alice, 1, {"type": "rel"}) == []
    h.finish()


# -- refusals (PROTOCOL §4.8) ------------------------------------------------------------------


def test_offline_callee_gets_cause_18_at_once_with_not_delivered_acks() -> None:
    h = Harness()
    carol = h.phone("carol")
    h.setup(carol, 1, "dave", im("are you there?", id="c1"), im("no id"))
    ack, rel = h.take(carol)
    assert fty_of(ack, 1) == {"type": "im_ack", "id": "c1", "state": "not_delivered"}
    assert sig_of(rel, 1, "rel")["cau"] == {"loc": 1, "num": 18}
    assert h.switch.chat.calls == {}
    h.finish()


def test_a_callee_registered_without_no_media_call_is_not_offered() -> None:
    h = Harness()
    carol = h.phone("carol")
    dave = h.login("dave")
    h.send(dave, {"api": "PbxSignal", "mt": "Register", "src": "r"})
    h.take(dave)
    h.setup(carol, 1, "dave")
    assert sig_of(h.one(carol), 1, "rel")["cau"]["num"] == 18
    h.quiet(dave)
    h.finish()


def test_unknown_user_is_cause_1_and_another_tenant_is_cause_21() -> None:
    h = Harness()
    alice = h.phone("alice")
    erin = h.phone("erin", domain="other.org", password="erin-pw")
    h.setup(alice, 1, "nobody")
    assert sig_of(h.one(alice), 1, "rel")["cau"] == {"loc": 1, "num": 1}
    h.setup(alice, 2, "erin@other.org")
    assert sig_of(h.one(alice), 2, "rel")["cau"] == {"loc": 1, "num": 21}
    h.setup(alice, 3, "x@other.org")
    assert sig_of(h.one(alice), 3, "rel")["cau"] == {"loc": 1, "num": 21}
    h.signal(alice, 4, {"type": "setup", "fty": [{"type": "im_setup"}]})  # no cd at all
    assert sig_of(h.one(alice), 4, "rel")["cau"] == {"loc": 1, "num": 1}
    h.signal(alice, 5, {"type": "setup", "cd": {"sip": "bob"}})  # no im_setup
    assert sig_of(h.one(alice), 5, "rel")["cau"] == {"loc": 1, "num": 111}
    h.quiet(erin)
    assert h.switch.chat.calls == {}
    h.finish()


def test_same_sip_in_another_tenant_is_never_reached() -> None:
    h = Harness(make_config(messages=False))  # else this tenant's alice gets it stored
    other_alice = h.phone("alice", domain="other.org", password="other-alice-pw")
    carol = h.phone("carol")
    h.setup(carol, 1, "alice")
    assert sig_of(h.one(carol), 1, "rel")["cau"]["num"] == 18
    h.quiet(other_alice)
    h.finish()


# -- held messages and ring timeout (PROTOCOL §4.5, §4.6) --------------------------------------


def test_messages_before_conn_are_held_in_order_then_delivered_at_conn() -> None:
    h = Harness()
    alice, bob = h.phone("alice"), h.phone("bob")
    h.setup(alice, 1, "bob", im("first", id="m1"))
    proc, held = h.take(alice)
    sig_of(proc, 1, "call_proc")
    assert fty_of(held, 1) == {
        "type": "im_ack",
        "id": "m1",
        "seq": 1,
        "time": T0,
        "state": "held",
    }
    number, _ = h.offered(bob)
    h.say(alice, 1, "second", id="m2")
    assert fty_of(h.one(alice), 1) | {"time": 0} == {
        "type": "im_ack",
        "id": "m2",
        "seq": 2,
        "time": 0,
        "state": "held",
    }
    h.say(alice, 1, "third, no id")
    h.say(alice, 1, None, typing=True)  # typing before conn is dropped, never held
    h.quiet(alice, bob)

    h.signal(bob, number, {"type": "conn"})
    delivered = [fty_of(message, number) for message in h.take(bob)]
    assert [(m["data"], m["seq"]) for m in delivered] == [
        ("first", 1),
        ("second", 2),
        ("third, no id", 3),
    ]
    conn, *acks = h.take(alice)
    sig_of(conn, 1, "conn")
    assert [(a["id"], a["seq"], a["state"]) for a in map(fty_of, acks)] == [
        ("m1", 1, "delivered"),
        ("m2", 2, "delivered"),
    ]
    # a retry of a held id now reports its current state
    h.say(alice, 1, "second", id="m2")
    assert fty_of(h.one(alice), 1)["state"] == "delivered"
    h.quiet(bob)
    h.finish()


def test_hold_limit_refuses_the_overflow_with_not_delivered() -> None:
    config = with_signaling(make_config(), hold_messages=2)
    h = Harness(config)
    alice, bob = h.phone("alice"), h.phone("bob")
    h.setup(alice, 1, "bob", im("one", id="1"), im("two", id="2"), im("three", id="3"))
    proc, *acks = h.take(alice)
    sig_of(proc, 1, "call_proc")
    states = [fty_of(ack, 1) for ack in acks]
    assert [(a["id"], a.get("seq"), a["state"]) for a in states] == [
        ("1", 1, "held"),
        ("2", 2, "held"),
        ("3", None, "not_delivered"),
    ]
    assert states[2] == {"type": "im_ack", "id": "3", "state": "not_delivered"}
    number, _ = h.offered(bob)
    h.signal(bob, number, {"type": "conn"})
    assert [fty_of(m, number)["data"] for m in h.take(bob)] == ["one", "two"]
    h.take(alice)
    h.say(alice, 1, "four", id="4")
    assert fty_of(h.one(alice), 1)["seq"] == 3  # the refused one took no seq
    h.finish()


def test_hold_bytes_limit_refuses_the_overflow() -> None:
    config = with_signaling(make_config(), hold_bytes=10)
    h = Harness(config)
    alice, bob = h.phone("alice"), h.phone("bob")
    h.setup(alice, 1, "bob", im("12345", id="a"), im("678901", id="b"), im("67890", id="c"))
    _, *acks = h.take(alice)
    assert [fty_of(a, 1)["state"] for a in acks] == ["held", "not_delivered", "held"]
    h.take(bob)
    h.finish()


def test_ring_timeout_reports_held_messages_and_releases_everyone_with_19() -> None:
    h = Harness()
    alice = h.phone("alice")
    desk, mobile = h.phone("bob"), h.phone("bob")
    h.setup(alice, 1, "bob", im("ring ring", id="h1"), im("anyone?"))
    h.take(alice)
    desk_call, _ = h.offered(desk)
    mobile_call, _ = h.offered(mobile)
    h.signal(desk, desk_call, {"type": "alert"})
    h.take(alice)
    ring = h.config.signaling.ring_timeout
    assert h.advance(ring - 1) == []
    h.advance(1)
    first, second, rel = h.take(alice)
    assert fty_of(first, 1) == {"type": "im_ack", "seq": 1, "id": "h1", "state": "not_delivered"}
    assert fty_of(second, 1) == {"type": "im_ack", "seq": 2, "state": "not_delivered"}
    assert sig_of(rel, 1, "rel")["cau"] == {"loc": 1, "num": 19}
    assert sig_of(h.one(desk), desk_call, "rel")["cau"] == {"loc": 1, "num": 19}
    assert sig_of(h.one(mobile), mobile_call, "rel")["cau"] == {"loc": 1, "num": 19}
    assert h.switch.chat.calls == {}
    # the call is gone: a retry on it is bad_state
    h.say(alice, 1, "ring ring", id="h1")
    assert h.one(alice)["code"] == "bad_state"
    h.finish()


def test_answered_call_has_no_ring_timeout() -> None:
    h = Harness()
    alice, bob = h.phone("alice"), h.phone("bob")
    h.call(alice, bob)
    h.send(alice, {"mt": "KeepAlive"})
    h.send(bob, {"mt": "KeepAlive"})
    h.take(alice)
    h.take(bob)
    h.advance(h.config.signaling.ring_timeout + 1)
    h.quiet(alice, bob)
    assert len(h.switch.chat.calls) == 1
    h.finish()


# -- typing (PROTOCOL §4.6) --------------------------------------------------------------------


def test_typing_is_relayed_renewed_and_expires_after_typing_ttl() -> None:
    h = Harness()
    alice, bob = h.phone("alice"), h.phone("bob")
    number = h.call(alice, bob)
    ttl = h.config.signaling.typing_ttl
    h.say(alice, 1, None, typing=True)
    assert fty_of(h.one(bob), number) == {
        "type": "im_message",
        "typing": True,
        "sender": "alice",
        "sender_dn": "Alice Example",
    }
    h.quiet(alice)
    h.advance(ttl - 1)
    h.quiet(bob)
    h.say(alice, 1, None, typing=True)  # renewed
    assert fty_of(h.one(bob), number)["typing"] is True
    h.advance(ttl - 1)
    h.quiet(bob)
    h.advance(1)
    assert fty_of(h.one(bob), number) == {
        "type": "im_message",
        "typing": False,
        "sender": "alice",
        "sender_dn": "Alice Example",
    }
    # a typing:false while not typing is not relayed
    h.say(alice, 1, None, typing=False)
    h.quiet(alice, bob)
    h.finish()


def test_a_client_typing_false_is_relayed_once() -> None:
    h = Harness()
    alice, bob = h.phone("alice"), h.phone("bob")
    number = h.call(alice, bob)
    h.say(bob, number, None, typing=True)
    h.take(alice)
    h.say(bob, number, None, typing=False)
    assert fty_of(h.one(alice), 1)["typing"] is False
    h.advance(h.config.signaling.typing_ttl + 1)
    h.quiet(alice, bob)
    h.finish()


def test_a_message_ends_typing_after_the_message() -> None:
    h = Harness()
    alice, bob = h.phone("alice"), h.phone("bob")
    number = h.call(alice, bob)
    h.say(alice, 1, None, typing=True)
    h.take(bob)
    h.say(alice, 1, "done typing")
    message, stop = h.take(bob)
    assert fty_of(message, number)["data"] == "done typing"
    assert fty_of(stop, number) == {
        "type": "im_message",
        "typing": False,
        "sender": "alice",
        "sender_dn": "Alice Example",
    }
    h.advance(60)
    h.quiet(alice, bob)
    h.finish()


def test_closing_cleanly_sends_typing_false_then_rel_16() -> None:
    h = Harness()
    alice, bob = h.phone("alice"), h.phone("bob")
    number = h.call(alice, bob)
    h.say(bob, number, None, typing=True)
    h.take(alice)
    h.close(bob, clean=True)
    stop, rel = h.take(alice)
    assert (fty_of(stop, 1)["typing"], fty_of(stop, 1)["sender"]) == (False, "bob")
    assert sig_of(rel, 1, "rel")["cau"] == {"loc": 1, "num": 16}
    assert h.switch.chat.calls == {} and len(h.switch.registry) == 1
    h.finish()


def test_a_lost_link_releases_the_peer_with_cause_41() -> None:
    h = Harness()
    alice, bob = h.phone("alice"), h.phone("bob")
    number = h.call(alice, bob)
    h.say(alice, 1, None, typing=True)
    h.take(bob)
    h.close(alice, clean=False)
    stop, rel = h.take(bob)
    assert (fty_of(stop, number)["typing"], fty_of(stop, number)["sender"]) == (False, "alice")
    assert sig_of(rel, number, "rel")["cau"] == {"loc": 1, "num": 41}
    h.finish()


def test_unregister_releases_with_16_and_keeps_the_connection() -> None:
    h = Harness()
    alice, bob = h.phone("alice"), h.phone("bob")
    number = h.call(alice, bob)
    h.send(alice, {"api": "PbxSignal", "mt": "Unregister", "src": "u"})
    assert h.one(alice) == {"api": "PbxSignal", "mt": "UnregisterResult", "src": "u"}
    assert sig_of(h.one(bob), number, "rel")["cau"] == {"loc": 1, "num": 16}
    assert h.switch.chat.calls == {} and len(h.switch.registry) == 1
    h.signal(alice, 1, {"type": "facility", "fty": []})
    assert h.one(alice)["code"] == "bad_state"  # no registration any more
    h.finish()


def test_the_last_offered_device_going_away_gives_the_caller_18() -> None:
    h = Harness()
    alice = h.phone("alice")
    desk, mobile = h.phone("bob"), h.phone("bob")
    h.setup(alice, 1, "bob", im("hello?", id="q"))
    h.take(alice)
    h.take(desk)
    h.take(mobile)
    h.close(desk)
    h.quiet(alice, mobile)  # one device is still ringing
    h.close(mobile, clean=False)
    report, rel = h.take(alice)
    assert fty_of(report, 1)["state"] == "not_delivered"
    assert sig_of(rel, 1, "rel")["cau"] == {"loc": 1, "num": 18}
    h.finish()


# -- fragments and size (PROTOCOL §4.6) --------------------------------------------------------


def test_fragments_are_joined_with_the_first_fragments_id_and_mime() -> None:
    h = Harness()
    alice, bob = h.phone("alice"), h.phone("bob")
    number = h.call(alice, bob)
    h.say(alice, 1, "<p>one ", mime="text/html", more=True, id="f")
    h.say(alice, 1, "two ", mime="text/plain", more=True)
    h.quiet(alice, bob)
    h.say(alice, 1, "three</p>", more=False)
    got = fty_of(h.one(bob), number)
    assert (got["data"], got["seq"], got["mime"]) == ("<p>one two three</p>", 1, "text/html")
    ack = fty_of(h.one(alice), 1)
    assert (ack["id"], ack["seq"], ack["state"]) == ("f", 1, "delivered")
    h.finish()


def test_oversize_message_is_refused_and_the_rest_of_its_fragments_dropped() -> None:
    h = Harness(make_config(max_message=1000))
    alice, bob = h.phone("alice"), h.phone("bob")
    number = h.call(alice, bob)
    h.signal(alice, 1, {"type": "facility", "fty": [im("x" * 1001, id="big")]}, src="s")
    error = h.one(alice)
    assert (error["mt"], error["code"], error["call"], error["src"]) == (
        "Error",
        "message_too_big",
        1,
        "s",
    )
    for _ in range(3):
        h.say(alice, 1, "y" * 400, more=True)
    assert [m["code"] for m in h.take(alice)] == ["message_too_big"]  # once
    h.say(alice, 1, "y" * 400, more=True)
    h.say(alice, 1, "tail", more=False)
    h.quiet(alice, bob)
    h.say(alice, 1, "é" * 501)  # 1002 bytes of UTF-8
    assert h.one(alice)["code"] == "message_too_big"
    h.say(alice, 1, "fits", id="small")
    assert fty_of(h.one(alice), 1)["seq"] == 1
    assert fty_of(h.one(bob), number)["data"] == "fits"
    assert h.switch.connections[alice].bad == 0  # refusals are no bad frames
    h.finish()


def test_fragment_id_comes_from_the_last_fragment_when_the_first_has_none() -> None:
    h = Harness()
    alice, bob = h.phone("alice"), h.phone("bob")
    number = h.call(alice, bob)
    h.say(alice, 1, "a", more=True)
    h.say(alice, 1, "b", more=False, id="late")
    assert fty_of(h.one(bob), number)["data"] == "ab"
    assert fty_of(h.one(alice), 1)["id"] == "late"
    h.finish()


def test_attachment_without_text_is_a_message_and_nothing_at_all_is_ignored() -> None:
    h = Harness()
    alice, bob = h.phone("alice"), h.phone("bob")
    number = h.call(alice, bob)
    h.say(alice, 1, attach="https://files.test/x%20y.png", subject="pic")
    got = fty_of(h.one(bob), number)
    assert (got["data"], got["attach"], got["subject"], got["seq"]) == (
        "",
        "https://files.test/x%20y.png",
        "pic",
        1,
    )
    h.say(alice, 1, id="empty")  # neither data, typing nor attach
    h.quiet(alice, bob)
    h.finish()


def test_only_the_last_max_ids_client_ids_are_remembered() -> None:
    """Volatile chat: ids are per call (stored chat keeps them per sender, test_sender_ids)."""
    h = Harness(with_signaling(make_config(), max_ids=2))
    alice, bob = h.phone("carol"), h.phone("dave")
    number = h.call(alice, bob, to="dave")
    for message_id in ("a", "b", "c"):
        h.say(alice, 1, message_id, id=message_id)
    h.take(alice)
    h.take(bob)
    h.say(alice, 1, "c", id="c")  # still remembered: acknowledged again
    assert fty_of(h.one(alice), 1)["seq"] == 3
    h.quiet(bob)
    h.say(alice, 1, "a", id="a")  # forgotten: a new message
    assert fty_of(h.one(alice), 1)["seq"] == 4
    assert fty_of(h.one(bob), number)["seq"] == 4
    h.finish()


def test_register_defaults_hw_to_the_connection_and_repeats_update_it() -> None:
    h = Harness()
    conn = h.phone("alice")
    registration = h.switch.connections[conn].registration
    assert registration is not None and registration.hw == f"conn-{conn}"
    h.send(conn, {"api": "PbxSignal", "mt": "Register", "hw": "desk", "flags": "X | NO_MEDIA_CALL"})
    assert h.one(conn) == {"api": "PbxSignal", "mt": "RegisterResult", "resume": h.tokens[conn]}
    assert h.switch.connections[conn].registration is registration
    assert registration.hw == "desk" and registration.no_media
    h.finish()


def test_bad_mime_is_refused_and_nothing_relayed() -> None:
    h = Harness()
    alice, bob = h.phone("alice"), h.phone("bob")
    h.call(alice, bob)
    h.say(alice, 1, "<svg/>", mime="image/svg+xml", id="svg")
    error = h.one(alice)
    assert (error["code"], error["call"]) == ("bad_mime", 1)
    h.quiet(bob)
    h.finish()


# -- limits (PROTOCOL §1.4, §4.11) -------------------------------------------------------------


def test_rate_limit_answers_retry_after_then_closes_4004() -> None:
    h = Harness(make_config(rate=4.0, burst=5, rate_close_after=3))
    conn = h.login("alice")  # AppChallenge and AppLogin took 2 of 5 tokens
    for _ in range(3):
        h.send(conn, {"mt": "KeepAlive"})
    assert h.take(conn) == [{"mt": "KeepAlive"}] * 3
    h.send(conn, {"mt": "KeepAlive", "src": "k"})
    limited = h.one(conn)
    assert (limited["mt"], limited["code"], limited["retry_after_ms"]) == (
        "Error",
        "rate_limited",
        250,
    )
    h.clock.advance(0.125)
    h.send(conn, {"mt": "KeepAlive"})
    assert h.one(conn)["retry_after_ms"] == 125
    h.clock.advance(0.125)  # tokens come back with time; a passing frame resets the count
    h.send(conn, {"mt": "KeepAlive"})
    assert h.one(conn) == {"mt": "KeepAlive"}
    h.send(conn, {"mt": "KeepAlive"})
    h.send(conn, {"mt": "KeepAlive"})
    assert [m["code"] for m in h.take(conn)] == ["rate_limited", "rate_limited"]
    actions = h.send(conn, {"mt": "KeepAlive"})
    assert actions == [Close(conn, 4004, "rate limit exceeded")]
    assert h.send(conn, {"mt": "KeepAlive"}) == []
    h.finish()


def test_rate_limit_close_releases_the_call_with_41() -> None:
    h = Harness(make_config(rate=1.0, burst=6, rate_close_after=1))
    alice, bob = h.phone("alice"), h.phone("bob")  # 3 frames each
    number = h.call(alice, bob)  # alice: setup (4); bob: conn (4)
    h.say(alice, 1, "a")
    h.say(alice, 1, "b")
    h.take(bob)
    actions = h.say(alice, 1, "c")
    assert closes(actions) == [Close(alice, 4004, "rate limit exceeded")]
    assert sig_of(h.one(bob), number, "rel")["cau"] == {"loc": 1, "num": 41}
    h.finish()


def test_bad_frames_are_counted_and_close_4002_a_good_one_resets_the_count() -> None:
    h = Harness()
    conn = h.login("alice")
    limit = h.config.limits.max_bad_messages
    bad = ["{", "[]", "42", '"mt"', "{}", '{"mt": 5}', '{"mt": ""}', '{"mt":"X","api":3}']
    for text in bad[: limit - 1]:
        h.text(conn, text)
        reply = h.one(conn)
        assert reply == {"mt": "Error", "code": "bad_json", "text": reply["text"]}, text
    assert h.switch.connections[conn].bad == min(len(bad), limit - 1)
    h.send(conn, {"mt": "KeepAlive"})
    h.take(conn)
    assert h.switch.connections[conn].bad == 0
    for _ in range(limit - 1):
        h.text(conn, "not json")
    h.send(conn, {"mt": "NoSuchThing"})  # a protocol error, but not a bad frame: resets too
    assert h.take(conn)[-1]["code"] == "unknown_mt"
    for _ in range(limit - 1):
        assert closes(h.text(conn, "not json")) == []
    actions = h.text(conn, "not json")
    assert actions[-1] == Close(conn, 4002, "too many bad messages")
    assert json.loads(actions[0].text)["code"] == "bad_json"  # type: ignore[union-attr]
    h.finish()


def test_malformed_signaling_is_bad_json_and_echoes_src_and_call() -> None:
    h = Harness()
    conn = h.phone("alice")
    h.send(conn, {"api": "PbxSignal", "mt": "Signaling", "src": 5, "call": 1, "sig": "x"})
    assert h.one(conn) == {
        "api": "PbxSignal",
        "mt": "Error",
        "code": "bad_json",
        "text": "Signaling needs a sig object",
        "call": 1,
        "src": 5,
    }
    assert h.switch.connections[conn].bad == 1
    h.finish()


def test_binary_frame_closes_4003() -> None:
    h = Harness()
    alice, bob = h.phone("alice"), h.phone("bob")
    number = h.call(alice, bob)
    actions = h.record(h.switch.receive_binary(alice))
    assert actions[0] == Close(alice, 4003, "binary frames are not accepted")
    assert sig_of(h.one(bob), number, "rel")["cau"]["num"] == 41
    assert h.record(h.switch.receive_binary(alice)) == []
    h.finish()


def test_kick_closes_with_the_given_code_and_the_registration_is_gone() -> None:
    h = Harness(make_config(messages=False))
    alice, bob = h.phone("alice"), h.phone("bob")
    number = h.call(alice, bob)
    actions = h.record(h.switch.kick(bob, 4008, "slow consumer"))
    assert actions[0] == Close(bob, 4008, "slow consumer")
    assert sig_of(h.one(alice), 1, "rel")["cau"] == {"loc": 1, "num": 41}
    assert h.take(bob) == [] and number == -1
    assert h.switch.chat.calls == {} and len(h.switch.registry) == 1
    h.setup(alice, 2, "bob")
    assert sig_of(h.one(alice), 2, "rel")["cau"]["num"] == 18
    assert h.record(h.switch.kick(bob, 4008, "again")) == []
    h.finish()


def test_a_congested_receiver_is_closed_4008_and_the_sender_told_not_delivered() -> None:
    h = Harness()
    alice, bob = h.phone("alice"), h.phone("bob")
    h.call(alice, bob)
    h.say(bob, -1, None, typing=True)
    h.take(alice)
    h.congested = lambda conn, _pending: conn == bob
    actions = h.say(alice, 1, "are you reading?", id="s1")
    assert closes(actions) == [Close(bob, 4008, "slow consumer")]
    ack, stop, rel = h.take(alice)
    assert fty_of(ack, 1) == {"type": "im_ack", "id": "s1", "state": "not_delivered"}
    assert (fty_of(stop, 1)["typing"], fty_of(stop, 1)["sender"]) == (False, "bob")
    assert sig_of(rel, 1, "rel")["cau"] == {"loc": 1, "num": 41}
    h.quiet(bob)
    assert h.switch.chat.calls == {} and len(h.switch.registry) == 1
    h.finish()


def test_nothing_is_sent_to_a_slow_receiver_after_its_close() -> None:
    h = Harness()
    alice, bob = h.phone("alice"), h.phone("bob")
    h.call(alice, bob)
    h.congested = lambda conn, _pending: conn == bob
    sig = {"type": "facility", "fty": [im("first", id="a"), {"type": "x_vendor"}]}
    message = {"api": "PbxSignal", "mt": "Signaling", "call": 1, "sig": sig}
    actions = h.switch.receive(alice, json.dumps(message))
    (close_at,) = [i for i, a in enumerate(actions) if isinstance(a, Close) and a.conn == bob]
    after = [
        json.loads(a.text) for a in actions[close_at:] if isinstance(a, Send) and a.conn == bob
    ]
    assert after == []  # a Close is the last thing a connection gets
    h.switch.closed(bob)
    h.switch.closed(alice)
    assert h.switch.chat.calls == {} and h.switch.next_deadline() is None


def test_nothing_follows_the_rel_of_a_call_released_for_a_slow_receiver() -> None:
    """docs §12.5: reports about a call come before its rel, never after."""
    h = Harness()
    alice, bob = h.phone("alice"), h.phone("bob")
    h.call(alice, bob)
    h.congested = lambda conn, _pending: conn == bob
    h.signal(alice, 1, {"type": "facility", "fty": [im("one", id="a"), im("two", id="b")]})
    kinds = [m["sig"]["type"] for m in h.take(alice)]
    assert kinds[-1] == "rel", kinds
    h.finish()


def test_events_after_close_are_ignored() -> None:
    h = Harness()
    conn = h.phone("alice")
    h.record(h.switch.kick(conn, 1012, "restart"))
    assert h.send(conn, {"mt": "KeepAlive"}) == []
    assert h.text(conn, "not json") == []
    assert h.record(h.switch.receive_binary(conn)) == []
    assert h.advance(h.config.limits.idle_timeout * 2) == []
    assert h.close(conn) == []
    assert h.close(conn) == []  # a second closed() is harmless
    assert h.record(h.switch.receive(999, '{"mt":"KeepAlive"}')) == []
    h.finish()


# -- envelopes (PROTOCOL §1.2, §1.3, §4.3) -----------------------------------------------------


def test_replies_and_errors_echo_src_and_api() -> None:
    h = Harness()
    conn = h.phone("alice", src={"n": 1})
    h.send(conn, {"api": "PbxSignal", "mt": "Dance", "src": 7})
    reply = h.one(conn)
    assert (reply["api"], reply["mt"], reply["code"], reply["src"]) == (
        "PbxSignal",
        "Error",
        "unknown_mt",
        7,
    )
    h.send(conn, {"mt": "Whatever", "src": "w"})
    reply = h.one(conn)
    assert "api" not in reply and (reply["code"], reply["src"]) == ("unknown_mt", "w")
    h.send(conn, {"api": "NoSuchApi", "mt": "X"})
    reply = h.one(conn)
    assert (reply["api"], reply["code"]) == ("NoSuchApi", "unknown_mt") and "src" not in reply
    h.send(conn, {"api": "PbxMessages", "mt": "Session", "src": "m"})
    assert h.one(conn) == {
        "api": "PbxMessages",
        "mt": "Error",
        "code": "unavailable",
        "text": "messages service unavailable",
        "src": "m",
    }
    h.signal(conn, 5, {"type": "facility", "fty": []}, src="f")
    reply = h.one(conn)
    assert (reply["code"], reply["call"], reply["src"]) == ("bad_state", 5, "f")
    h.signal(conn, 6, {"type": "facility", "fty": []})
    assert "src" not in h.one(conn)
    h.text(conn, '{"mt": "KeepAlive", "src": ')  # undecodable: nothing to echo
    assert h.one(conn) == {"mt": "Error", "code": "bad_json", "text": "malformed JSON"}
    h.finish()


def test_app_challenge_result_echoes_src() -> None:
    """PROTOCOL §1.2: a response to a request carrying ``src`` echoes it."""
    h = Harness()
    conn = h.open()
    h.send(conn, {"mt": "AppChallenge", "src": "c1"})
    assert h.one(conn) == {"mt": "AppChallengeResult", "challenge": CHALLENGE, "src": "c1"}
    h.finish()


def test_unsolicited_signaling_echoes_the_latest_register_src() -> None:
    h = Harness()
    alice = h.phone("alice")
    bob = h.phone("bob", src=42)
    h.setup(alice, 1, "bob")
    h.take(alice)
    offer = h.one(bob)
    assert (offer["src"], offer["call"]) == (42, -1)
    # a repeated Register updates src (and keeps the calls)
    h.send(bob, {"api": "PbxSignal", "mt": "Register", "src": "again", "flags": "NO_MEDIA_CALL"})
    assert h.one(bob) == {
        "api": "PbxSignal",
        "mt": "RegisterResult",
        "src": "again",
        "resume": h.tokens[bob],
    }
    assert len(h.switch.registry) == 2
    h.signal(alice, 1, {"type": "rel"})
    rel = h.one(bob)
    assert (rel["src"], rel["call"], rel["sig"]["type"]) == ("again", -1, "rel")
    h.finish()


def test_bad_state_leaves_the_call_as_it_was() -> None:
    h = Harness()
    alice, bob = h.phone("alice"), h.phone("bob")
    h.setup(alice, 1, "bob")
    h.take(alice)
    number, _ = h.offered(bob)
    h.signal(alice, 1, {"type": "conn"})
    error = h.one(alice)
    assert (error["code"], error["call"]) == ("bad_state", 1)
    assert "conn" in error["text"] and "proceeding" in error["text"]
    h.say(bob, number, "too early")
    assert h.one(bob)["code"] == "bad_state"
    h.setup(alice, 1, "bob")  # a setup on a call number in use
    assert h.one(alice)["code"] == "bad_state"
    h.signal(alice, -3, {"type": "setup", "cd": {"sip": "bob"}, "fty": [{"type": "im_setup"}]})
    assert h.one(alice)["code"] == "bad_state"
    h.signal(alice, 1, {"type": "hold"})
    assert h.one(alice)["code"] == "bad_state"
    h.quiet(bob)
    h.signal(bob, number, {"type": "conn"})
    sig_of(h.one(alice), 1, "conn")
    h.finish()


def test_signaling_before_register_is_bad_state() -> None:
    h = Harness()
    conn = h.login("alice")
    h.signal(conn, 1, {"type": "setup", "cd": {"sip": "bob"}, "fty": [{"type": "im_setup"}]})
    reply = h.one(conn)
    assert (reply["code"], reply["call"]) == ("bad_state", 1)
    h.finish()


def test_calling_yourself_rings_your_other_devices_only() -> None:
    h = Harness()
    desk, mobile = h.phone("alice"), h.phone("alice")
    h.setup(desk, 1, "alice")
    sig_of(h.one(desk), 1, "call_proc")
    _, setup = h.offered(mobile)
    assert setup["cg"]["sip"] == "alice"
    h.quiet(desk)
    h.finish()


@pytest.mark.parametrize(
    "data",
    ['plain "quoted" \\ back', "tab\tnew\nline \x01 ctl", "héllo 😀 مرحبا", "<p>b &amp; i</p>"],
)
def test_the_relayed_frame_is_exactly_what_the_codec_would_write(data: str) -> None:
    h = Harness()
    alice, bob = h.phone("alice"), h.phone("bob")
    number = h.call(alice, bob)
    for src in ({"k": ["v/\\"]}, 'b"o/b', 7):
        # a new Register changes the src every later frame to bob carries
        h.send(bob, {"api": "PbxSignal", "mt": "Register", "src": src, "flags": "NO_MEDIA_CALL"})
        h.take(bob)
        actions = h.say(alice, 1, data, mime="text/html", attach="u%201 u2", subject='s"')
        (frame,) = [a.text for a in actions if isinstance(a, Send) and a.conn == bob]
        assert encode(json.loads(frame)) == frame
        message = json.loads(frame)
        item = message["sig"]["fty"][0]
        assert (message["src"], message["call"]) == (src, number)
        assert (item["attach"], item["subject"], item["sender"]) == ("u%201 u2", 's"', "alice")
        h.take(alice)


def test_congestion_counts_the_frames_this_event_already_produced() -> None:
    h = Harness()
    alice, bob = h.phone("alice"), h.phone("bob")
    h.call(alice, bob)
    # the hub's queue for bob has room for two more frames
    h.congested = lambda conn, pending: conn == bob and pending >= 2
    sig = {"type": "facility", "fty": [im(f"m{n}", id=f"m{n}") for n in range(5)]}
    h.send(alice, {"api": "PbxSignal", "mt": "Signaling", "call": 1, "sig": sig})
    replies = h.take(alice)
    acks = [fty_of(reply, 1) for reply in replies[:-1]]
    assert [(a["id"], a["state"]) for a in acks] == [
        ("m0", "delivered"),
        ("m1", "delivered"),
        ("m2", "not_delivered"),
    ]
    assert sig_of(replies[-1], 1, "rel")["cau"]["num"] == 41  # and nothing after the rel


def test_calls_per_registration_are_limited() -> None:
    h = Harness(with_signaling(make_config(), max_calls=2))
    alice, bob = h.phone("alice"), h.phone("bob")
    for number in (1, 2):
        h.setup(alice, number, "bob")
        assert sig_of(h.take(alice)[0], number, "call_proc")
        h.take(bob)
    h.setup(alice, 3, "bob")
    assert sig_of(h.one(alice), 3, "rel")["cau"] == {"loc": 1, "num": 47}
    carol = h.phone("carol")
    h.setup(carol, 1, "bob")  # bob's only device is full: not offered
    assert sig_of(h.one(carol), 1, "rel")["cau"]["num"] == 47
    h.quiet(bob)


def test_facilities_only_the_hub_writes_are_never_passed_on() -> None:
    h = Harness()
    alice, bob = h.phone("alice"), h.phone("bob")
    number = h.call(alice, bob)
    forged = [
        {"type": "name_identification", "name": "Bank Security Team"},
        {"type": "im_ack", "id": "b1", "seq": 9, "state": "delivered"},
        {"type": "x_vendor", "k": 1},
    ]
    h.signal(alice, 1, {"type": "facility", "fty": forged})
    assert sig_of(h.one(bob), number, "facility")["fty"] == [{"type": "x_vendor", "k": 1}]


def test_a_last_fragment_without_data_ends_the_message() -> None:
    h = Harness()
    alice, bob = h.phone("alice"), h.phone("bob")
    number = h.call(alice, bob)
    h.say(alice, 1, "draft ", more=True)
    h.say(alice, 1, None, more=False)
    assert fty_of(h.one(bob), number)["data"] == "draft "
    h.say(alice, 1, "hello")
    assert fty_of(h.one(bob), number)["data"] == "hello"


# -- nothing kept for a closed connection (docs/benchmarks.md, bench/idle.py) ---------------


def test_connections_that_log_in_register_and_close_leave_nothing_behind() -> None:
    """Counts, not bytes: while connections are registered the core holds one entry of
    each kind per connection and a fixed number of timers; once they have closed every
    way a connection closes and the resume grace is over, it holds nothing at all."""
    grace = 60.0
    h = Harness(make_config(grace=grace))
    users = ("alice", "bob", "carol", "dave")
    conns = [h.phone(users[index % 4]) for index in range(40)]
    held = h.switch.held()
    assert held["connections"] == held["registrations"] == 40
    assert held["login_deadlines"] == 0 and held["throttle_keys"] == 0
    assert held["timers"] <= 2  # one per kind of deadline, not one or two per connection
    assert all(h.switch.connections[conn].login is None for conn in conns)

    alice, bob = conns[0], conns[1]
    h.call(alice, bob)
    h.say(alice, 1, "hello")
    waiting = h.open()  # never logs in
    late = h.open()
    h.advance(h.config.login.timeout)  # late and waiting are closed 4001
    assert h.closed_with[late].code == h.closed_with[waiting].code == 4001
    resumed = _resume(h, "carol", h.tokens[conns[2]], lose=conns[2])
    h.record(h.switch.kick(conns[3], 4008, "slow consumer"))
    for index, conn in enumerate([*conns[4:], alice, bob, resumed, conns[3], waiting, late]):
        h.close(conn, clean=index % 2 == 0)
    h.close(conns[2])  # already replaced: a second close changes nothing

    h.advance(grace)
    assert h.switch.held() == dict.fromkeys(h.switch.held(), 0)
    assert h.switch.next_deadline() is None


def _resume(h: Harness, sip: str, token: str, *, lose: int) -> int:
    """``lose``'s link drops; a new connection of ``sip`` takes its registration over."""
    h.close(lose, clean=False)
    conn = h.login(sip)
    h.send(conn, {"api": "PbxSignal", "mt": "Register", "src": "reg", "resume": token})
    assert h.take(conn)[0]["resumed"] is True
    return conn


def test_successful_logins_leave_no_throttle_keys_and_failed_ones_do() -> None:
    h = Harness()
    for _ in range(5):
        h.close(h.login("alice"))
    assert h.switch.held()["throttle_keys"] == 0
    conn = h.open()
    h.send(conn, {"mt": "AppChallenge"})
    h.take(conn)
    h.send(conn, login_message("alice", "wrong"))
    assert h.closed_with[conn].code == 4001
    assert h.switch.held()["throttle_keys"] == 3  # the pair, the account and the address (§3.6)
    h.close(conn)
