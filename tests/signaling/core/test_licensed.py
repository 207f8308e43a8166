"""The core's licensed side, sans I/O: Posts, offline delivery, PbxMessages sessions,
presence and the badge (PROTOCOL §4.10, §6, §7, §12.10).

In the demo tenant alice and bob hold the ``messages`` licence, carol and dave do not.
The service is played by the test: ``ToService`` actions are what the hub sent it,
``Switch.from_service`` is what it answers.
"""

from __future__ import annotations

from typing import Any

from signaling.core.actions import StoredAck
from tests.signaling.core.harness import T0, Harness, fty_of, im, sig_of
from tests.support import make_config

JsonObject = dict[str, Any]


def up(h: Harness, *groups: JsonObject) -> Harness:
    """The link comes up; the service answers SyncGroups with ``groups``."""
    h.record(h.switch.service_up())
    (sync,) = h.to_service
    assert sync["mt"] == "SyncGroups"
    h.to_service.clear()
    for group in groups:
        h.record(h.switch.from_service({"mt": "GroupInd", "src": sync["src"], **group}))
    h.record(h.switch.from_service({"mt": "SyncGroupsResult", "src": sync["src"]}))
    return h


TEAM = {
    "domain": "example.com",
    "id": 1,
    "sip": "group-1",
    "dn": "Team",
    "members": [{"sip": "alice", "admin": True}, {"sip": "bob", "admin": False}],
}


def session(h: Harness, conn: int, src: object = "s") -> str:
    h.send(conn, {"api": "PbxMessages", "mt": "Session", "src": src})
    reply = h.one(conn)
    assert reply["mt"] == "SessionResult" and reply["src"] == src, reply
    return str(reply["session"])


# -- Posts (§7.3) ------------------------------------------------------------------------------


def test_every_message_of_a_licensed_call_is_posted_once_per_message() -> None:
    h = Harness()
    alice, carol = h.phone("alice"), h.phone("carol")
    number = h.call(alice, carol, to="carol")
    h.say(alice, 1, "hi <b>carol</b>", id="m1", mime="text/html")
    h.say(carol, number, "hi alice", mime="text/plain")
    h.say(carol, number, typing=True)
    h.take(alice), h.take(carol)
    first, second = (store.post for store in h.stores)
    call_id = first["callId"]
    assert first == {
        "mt": "Post",
        "type": 1,
        "domain": "example.com",
        "author": "alice",
        "dn": "Alice Example",
        "topic": "alice",
        "peer": "carol",
        "peer_dn": "Carol Example",
        "grp": False,
        "sides": ["alice"],  # carol holds no licence: only alice's side is kept
        "text": "hi <b>carol</b>",
        "callId": call_id,
        "seq": 1,
        "time": T0 * 1000,
        "id": "m1",
    }
    assert (second["author"], second["peer"], second["seq"], second["sides"]) == (
        "carol",
        "alice",
        2,
        ["alice"],
    )
    assert all(store.ack is None for store in h.stores)  # delivered is what they were told
    h.finish()


def test_each_post_of_a_leg_names_the_call_s_parties_as_they_are_now() -> None:
    """A leg keeps the fields its Posts start with (``Leg.post_head``); when the call's
    other party changes (a support transfer gives it another user), the next Post names
    the new one, and every Post is a dict of its own."""
    h = Harness()
    alice, bob = h.phone("alice"), h.phone("bob")
    number = h.call(alice, bob)
    h.say(alice, 1, "one", id="a1")
    h.say(alice, 1, "two")
    leg = next(leg for leg in h.switch.chat.calls.values()).caller
    assert leg is not None
    leg.call.callee_user = h.switch.directory.user("example.com", "carol")
    h.say(alice, 1, "three")
    h.take(alice), h.take(bob)
    first, second, third = (store.post for store in h.stores)
    assert (first["peer"], first["sides"], first["id"]) == ("bob", ["alice", "bob"], "a1")
    assert (second["peer"], second["seq"], "id" in second) == ("bob", 2, False)
    assert (third["peer"], third["peer_dn"], third["sides"]) == (
        "carol",
        "Carol Example",
        ["alice"],
    )
    first["text"] = "changed"
    assert second["text"] == "two" and number != 0


def test_a_call_between_unlicensed_users_stores_nothing() -> None:
    h = Harness()
    carol, dave = h.phone("carol"), h.phone("dave")
    number = h.call(carol, dave, to="dave")
    h.say(carol, 1, "volatile", id="v")
    assert fty_of(h.take(carol)[0], 1)["state"] == "delivered"
    h.say(dave, number, "still volatile")
    assert h.stores == []
    h.finish()


def test_held_messages_are_posted_when_relayed_at_conn() -> None:
    h = Harness()
    alice, bob = h.phone("alice"), h.phone("bob")
    h.setup(alice, 1, "bob", im("early", id="e"))
    assert h.stores == []
    number, _ = h.offered(bob)
    h.signal(bob, number, {"type": "conn"})
    (store,) = h.stores
    assert (store.post["text"], store.post["id"], store.post["sides"]) == (
        "early",
        "e",
        ["alice", "bob"],
    )
    h.finish()


# -- offline delivery (§7.5) -------------------------------------------------------------------


def test_a_licensed_offline_callee_is_answered_by_the_hub_and_acks_wait_for_the_disk() -> None:
    h = Harness()
    carol = h.phone("carol")
    h.setup(carol, 1, "bob", im("are you there?", id="q1"))
    proc, conn = h.take(carol)
    call_id = sig_of(proc, 1, "call_proc")["confId"]
    assert sig_of(conn, 1, "conn")["fty"] == [
        {"type": "name_identification", "name": "Bob Example"}
    ]
    (store,) = h.stores
    assert store.post["sides"] == ["bob"] and store.post["peer"] == "bob"
    assert store.post["callId"] == call_id  # Posts name the conversation: its confId
    assert store.ack == StoredAck(carol, call_id, 1, "q1", 1, "example.com", "carol")
    h.say(carol, 1, "are you there?", id="q1")  # a retry before the disk said yes: silence
    h.quiet(carol)
    assert len(h.stores) == 1
    h.record(h.switch.stored([store.ack]))
    assert fty_of(h.one(carol), 1) == {
        "type": "im_ack",
        "id": "q1",
        "seq": 1,
        "time": T0,
        "state": "stored",
    }
    h.say(carol, 1, "are you there?", id="q1")  # a retry now gets the same answer again
    assert fty_of(h.one(carol), 1)["state"] == "stored"
    h.signal(carol, 1, {"type": "rel"})
    h.quiet(carol)
    h.record(h.switch.stored([store.ack]))  # too late for a released call: nothing
    h.quiet(carol)
    h.finish()


def test_an_offline_callee_without_licence_is_still_cause_18() -> None:
    h = Harness()
    alice = h.phone("alice")
    h.setup(alice, 1, "dave", im("hello", id="x"))
    ack, rel = h.take(alice)
    assert fty_of(ack, 1)["state"] == "not_delivered"
    assert sig_of(rel, 1, "rel")["cau"]["num"] == 18
    assert h.stores == []
    h.finish()


def test_with_the_service_switched_off_everyone_is_volatile() -> None:
    h = Harness(make_config(messages=False))
    alice = h.phone("alice")
    h.setup(alice, 1, "bob")
    assert sig_of(h.one(alice), 1, "rel")["cau"]["num"] == 18
    h.send(alice, {"api": "PbxMessages", "mt": "Session", "src": 1})
    assert h.one(alice)["code"] == "unavailable"  # she holds the licence; the service is off
    carol = h.phone("carol")
    h.send(carol, {"api": "PbxMessages", "mt": "Session", "src": 2})
    assert h.one(carol)["code"] == "unlicensed"
    h.finish()


# -- PbxMessages sessions (§6) -----------------------------------------------------------------


def test_sessions_need_the_licence_and_the_link() -> None:
    h = Harness()
    carol, alice = h.phone("carol"), h.phone("alice")
    h.send(carol, {"api": "PbxMessages", "mt": "Session", "src": 1})
    assert h.one(carol) == {
        "api": "PbxMessages",
        "mt": "Error",
        "code": "unlicensed",
        "text": "no messages licence",
        "src": 1,
    }
    h.send(carol, {"api": "PbxMessages", "mt": "ReadChats", "src": 2})
    assert h.one(carol)["code"] == "unlicensed"
    h.send(alice, {"api": "PbxMessages", "mt": "Session", "src": 3})
    assert h.one(alice)["code"] == "unavailable"
    h.send(alice, {"api": "PbxMessages", "mt": "ReadChats", "src": 4})
    assert h.one(alice)["code"] == "bad_state"  # no session yet
    assert h.to_service == []
    h.finish()


def test_requests_are_forwarded_with_the_hubs_user_and_answers_come_back() -> None:
    h = up(Harness())
    alice = h.phone("alice")
    token = session(h, alice)
    h.send(
        alice,
        {
            "api": "PbxMessages",
            "mt": "ReadChat",
            "src": {"mine": 1},
            "sip": "bob",
            "user": "bob",  # forged: overwritten
            "domain": "other.org",  # forged: overwritten
            "session": "nope",
            "count": 5,
        },
    )
    (forwarded,) = h.to_service
    src = forwarded.pop("src")
    assert forwarded == {
        "mt": "ReadChat",
        "sip": "bob",
        "count": 5,
        "user": "alice",
        "domain": "example.com",
        "session": token,
    }
    h.record(h.switch.from_service({"mt": "ReadChatInd", "src": src, "msg": {"id": 1}}))
    h.record(h.switch.from_service({"mt": "ReadChatResult", "src": src, "more": False}))
    assert h.take(alice) == [
        {"api": "PbxMessages", "mt": "ReadChatInd", "msg": {"id": 1}, "src": {"mine": 1}},
        {"api": "PbxMessages", "mt": "ReadChatResult", "more": False, "src": {"mine": 1}},
    ]
    h.record(h.switch.from_service({"mt": "ReadChatResult", "src": src}))  # stale: dropped
    h.quiet(alice)
    h.finish()


def test_posts_and_hub_queries_cannot_be_sent_by_a_client() -> None:
    h = up(Harness())
    alice = h.phone("alice")
    session(h, alice)
    for mt in ("Post", "ReadBadge", "SyncGroups", "Nonsense"):
        h.send(alice, {"api": "PbxMessages", "mt": mt, "src": mt, "topic": "bob"})
        reply = h.one(alice)
        assert (reply["mt"], reply["code"], reply["src"]) == ("Error", "unknown_mt", mt)
    assert h.to_service == []
    h.finish()


def test_unanswered_and_cut_off_requests_get_unavailable_and_sessions_end() -> None:
    h = up(Harness())
    alice, bob = h.phone("alice"), h.phone("bob")
    session(h, alice)
    session(h, bob)
    h.send(alice, {"api": "PbxMessages", "mt": "ReadChats", "src": "slow"})
    h.advance(h.config.messages.request_timeout + 0.1)
    assert h.one(alice) == {
        "api": "PbxMessages",
        "mt": "Error",
        "code": "unavailable",
        "text": "messages service unavailable",
        "src": "slow",
    }
    h.send(alice, {"api": "PbxMessages", "mt": "ReadChats", "src": "cut"})
    h.record(h.switch.service_down())
    assert h.one(alice)["src"] == "cut"
    assert h.one(bob) == {
        "api": "PbxMessages",
        "mt": "Error",
        "code": "unavailable",
        "text": "messages service unavailable",
    }
    h.send(alice, {"api": "PbxMessages", "mt": "ReadChats", "src": "after"})
    assert h.one(alice)["code"] == "bad_state"  # the session ended with the link
    h.finish()


# -- presence and the badge (§4.10), im_seen (§7.4) ------------------------------------------


def subscribe(h: Harness, conn: int, number: int, to: str) -> JsonObject:
    h.signal(
        conn,
        number,
        {"type": "setup", "cd": {"sip": to}, "fty": [{"type": "presence_subscribe"}]},
    )
    conn_sig, notify = h.take(conn)
    sig_of(conn_sig, number, "conn")
    return fty_of(notify, number)


def test_presence_follows_registrations_and_publish() -> None:
    h = Harness()
    carol = h.phone("carol")
    assert subscribe(h, carol, 7, "dave") == {
        "type": "presence_notify",
        "status": "closed",
        "activity": "",
        "note": "",
    }
    dave = h.phone("dave")
    assert fty_of(h.one(carol), 7)["status"] == "open"
    h.signal(
        dave, 3, {"type": "setup", "cd": {"sip": "dave"}, "fty": [{"type": "presence_subscribe"}]}
    )
    h.take(dave)
    h.signal(
        dave,
        3,
        {
            "type": "facility",
            "fty": [{"type": "presence_publish", "activity": "dnd", "note": "busy"}],
        },
    )
    assert fty_of(h.one(carol), 7) == {
        "type": "presence_notify",
        "status": "open",
        "activity": "dnd",
        "note": "busy",
    }
    h.take(dave)
    h.close(dave)
    assert fty_of(h.one(carol), 7)["status"] == "closed"
    h.signal(carol, 7, {"type": "rel"})
    h.quiet(carol)
    h.finish()


def test_the_badge_rides_on_the_subscription_to_oneself() -> None:
    h = up(Harness())
    alice = h.phone("alice")
    assert subscribe(h, alice, 1, "alice")["status"] == "open"
    (query,) = h.to_service
    assert {key: query[key] for key in ("mt", "domain", "user")} == {
        "mt": "ReadBadge",
        "domain": "example.com",
        "user": "alice",
    }
    h.record(h.switch.from_service({"mt": "ReadBadgeResult", "src": query["src"], "count": 3}))
    assert fty_of(h.one(alice), 1)["note"] == "#badge:3"
    h.record(
        h.switch.from_service({"mt": "Badge", "domain": "example.com", "user": "alice", "count": 0})
    )
    assert fty_of(h.one(alice), 1)["note"] == "#badge:0"
    h.record(
        h.switch.from_service({"mt": "Badge", "domain": "other.org", "user": "alice", "count": 9})
    )
    h.quiet(alice)  # another tenant's alice
    h.finish()


def test_seen_reaches_the_author_on_the_live_call() -> None:
    h = up(Harness())
    alice, bob = h.phone("alice"), h.phone("bob")
    number = h.call(alice, bob)
    h.say(alice, 1, "read me")
    h.take(alice), h.take(bob)
    call_id = h.stores[0].post["callId"]
    seen = {"mt": "Seen", "domain": "example.com", "user": "bob", "peer": "alice"}
    h.record(h.switch.from_service({**seen, "callId": call_id, "seq": 1}))
    assert fty_of(h.one(alice), 1) == {"type": "im_seen", "seq": 1}
    h.quiet(bob)
    assert number < 0
    h.finish()


# -- groups (§7.6) -----------------------------------------------------------------------------


def join(h: Harness, conn: int, number: int, group: str = "group-1") -> str:
    h.setup(conn, number, group)
    proc, conn_sig = h.take(conn)
    assert sig_of(conn_sig, number, "conn")["fty"] == [
        {"type": "name_identification", "name": "Team"}
    ]
    return str(sig_of(proc, number, "call_proc")["confId"])


def test_a_group_call_relays_to_members_in_it_and_offers_it_to_the_others() -> None:
    h = up(Harness(), TEAM)
    alice, bob = h.phone("alice"), h.phone("bob")
    call_id = join(h, alice, 1)
    h.say(alice, 1, "hello team", id="g1")
    h.quiet(alice)  # nobody else is in the call yet: "stored" comes from the disk
    number, offer = h.offered(bob)
    assert offer["cg"] == {"sip": "group-1"} and offer["confId"] == call_id
    assert offer["callId"] not in (call_id, None)  # bob's device has a leg of its own
    (store,) = h.stores
    assert store.post["callId"] == call_id
    assert {key: store.post[key] for key in ("topic", "grp", "author", "seq")} == {
        "topic": "group-1",
        "grp": True,
        "author": "alice",
        "seq": 1,
    }
    h.signal(bob, number, {"type": "conn"})
    missed = fty_of(h.one(bob), number)  # what bob missed is replayed after conn
    assert (missed["data"], missed["seq"], missed["sender"]) == ("hello team", 1, "alice")
    h.say(bob, number, "hi alice", id="b1")
    assert fty_of(h.one(alice), 1)["data"] == "hi alice"
    assert fty_of(h.one(bob), number)["state"] == "delivered"
    h.signal(bob, number, {"type": "rel"})
    h.quiet(alice)  # one member leaving ends nothing for the others
    h.say(alice, 1, "still here")
    offered_again, _ = h.offered(bob)  # bob is online without a leg: offered again
    assert offered_again != number
    h.finish()


def test_non_members_cannot_join_a_group_and_removed_members_are_dropped() -> None:
    h = up(Harness(), TEAM)
    carol, alice = h.phone("carol"), h.phone("alice")
    h.setup(carol, 1, "group-1")
    assert sig_of(h.one(carol), 1, "rel")["cau"]["num"] == 21
    join(h, alice, 1)
    changed = {**TEAM, "members": [{"sip": "bob", "admin": True}]}
    h.record(h.switch.from_service({"mt": "GroupInd", **changed}))
    assert sig_of(h.one(alice), 1, "rel")["cau"]["num"] == 21
    assert h.switch.chat.calls == {}
    h.finish()


def test_a_lone_member_s_message_is_acknowledged_stored_once_on_disk() -> None:
    h = up(Harness(), TEAM)
    alice = h.phone("alice")
    join(h, alice, 1)
    h.say(alice, 1, "anyone?", id="q")
    h.quiet(alice)
    (store,) = h.stores
    assert store.ack is not None
    h.record(h.switch.stored([store.ack]))
    assert fty_of(h.one(alice), 1)["state"] == "stored"
    h.finish()


def test_a_group_change_is_routed_by_as_soon_as_its_indication_is_taken() -> None:
    """PROTOCOL §7.6 (revised), docs/protocol.md 12.23: the service sends GroupInd before
    the result, and the hub applies each message before it forwards the next, so a setup
    made on the result is never refused for an unknown group or member."""
    h = up(Harness())
    alice, bob = h.phone("alice"), h.phone("bob")
    session(h, alice)
    h.send(alice, {"api": "PbxMessages", "mt": "WriteGroup", "src": "w", "dn": "Team"})
    (write,) = h.to_service
    h.to_service.clear()
    alone = {**TEAM, "members": [{"sip": "alice", "admin": True}]}
    h.record(h.switch.from_service({"mt": "GroupInd", **alone}))
    h.quiet(alice)  # an indication alone tells the client nothing
    created = {"mt": "WriteGroupResult", "id": 1, "sip": "group-1"}
    h.record(h.switch.from_service({**created, "src": write["src"]}))
    assert h.one(alice) == {"api": "PbxMessages", **created, "src": "w"}
    join(h, alice, 1)
    h.setup(bob, 1, "group-1")  # not a member yet
    assert sig_of(h.one(bob), 1, "rel")["cau"]["num"] == 21
    h.send(
        alice, {"api": "PbxMessages", "mt": "WriteMember", "src": "m", "grp": 1, "member": "bob"}
    )
    (member,) = h.to_service
    h.record(h.switch.from_service({"mt": "GroupInd", **TEAM}))
    h.record(h.switch.from_service({"mt": "WriteMemberResult", "src": member["src"], "grp": 1}))
    assert h.one(alice)["mt"] == "WriteMemberResult"
    join(h, bob, 2)
    h.finish()
