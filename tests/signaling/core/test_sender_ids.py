"""A stored message's id is its sender's key across calls, devices and hub restarts
(PROTOCOL §4.6 revised, docs/protocol.md 12.21), sans I/O.

alice and bob hold the ``messages`` licence; carol and dave chat volatile.
"""

from __future__ import annotations

from typing import Any

from signaling.core.calls import AckRecord
from signaling.core.clock import ManualClock
from signaling.core.sender_ids import SenderIds
from tests.signaling.core.harness import T0, Harness, fty_of, im, sig_of, with_signaling
from tests.support import make_config

JsonObject = dict[str, Any]


def offline_call(h: Harness, conn: int, number: int, to: str = "bob") -> str:
    """``conn`` calls ``to``, who is offline and licensed: the hub answers."""
    h.setup(conn, number, to)
    proc, _ = h.take(conn)
    return str(sig_of(proc, number, "call_proc")["confId"])


def ack_of(h: Harness, conn: int, number: int) -> JsonObject:
    item = fty_of(h.one(conn), number)
    assert item["type"] == "im_ack", item
    return item


def test_a_resend_on_a_new_call_gets_the_original_ack_and_is_relayed_to_nobody() -> None:
    h = Harness()
    alice, bob = h.phone("alice"), h.phone("bob")
    number = h.call(alice, bob)
    h.say(alice, 1, "hello", id="m1")
    first = ack_of(h, alice, 1)
    assert first["state"] == "delivered"
    h.take(bob)
    h.signal(alice, 1, {"type": "rel"})
    h.take(alice), h.take(bob)
    h.clock.advance(30)
    second_number = h.call(alice, bob)
    h.say(alice, 1, "hello", id="m1")  # the client never saw its ack: resent
    assert ack_of(h, alice, 1) == first  # the original seq, time and state
    h.quiet(bob)  # nothing relayed
    assert len(h.stores) == 1  # nothing stored again
    h.say(alice, 1, "next", id="m2")
    assert ack_of(h, alice, 1)["seq"] == 1  # the new call's own numbering goes on
    assert fty_of(h.one(bob), second_number)["data"] == "next"
    assert number != 0
    h.finish()


def test_another_device_of_the_sender_is_answered_the_same() -> None:
    h = Harness()
    phone, laptop = h.phone("alice"), h.phone("alice", hw="laptop")
    call_id = offline_call(h, phone, 1)
    h.say(phone, 1, "from the phone", id="x1")
    (store,) = h.stores
    h.record(h.switch.stored([store.ack]))  # type: ignore[list-item]
    original = ack_of(h, phone, 1)
    assert original["state"] == "stored"
    assert offline_call(h, laptop, 1) != call_id
    h.say(laptop, 1, "from the phone", id="x1")
    assert ack_of(h, laptop, 1) == original
    assert len(h.stores) == 1
    h.finish()


def test_a_resend_while_the_original_waits_for_the_disk_is_told_when_it_is_there() -> None:
    h = Harness()
    alice = h.phone("alice")
    offline_call(h, alice, 1)
    h.say(alice, 1, "one", id="p1")
    h.quiet(alice)  # pending: "stored" comes once the journal has it
    offline_call(h, alice, 2)
    h.say(alice, 2, "one", id="p1")
    h.quiet(alice)
    (store,) = h.stores
    h.record(h.switch.stored([store.ack]))  # type: ignore[list-item]
    acks = {message["call"]: fty_of(message) for message in h.take(alice)}
    assert (
        acks[1]
        == acks[2]
        == {
            "type": "im_ack",
            "id": "p1",
            "seq": 1,
            "time": T0,
            "state": "stored",
        }
    )
    h.finish()


def test_a_message_not_delivered_leaves_its_id_free() -> None:
    h = Harness()
    alice, bob = h.phone("alice"), h.phone("bob")
    h.setup(alice, 1, "bob", im("early", id="e1"))
    h.take(alice)
    number, _ = h.offered(bob)
    h.signal(bob, number, {"type": "rel"})  # declined: the held message never arrived
    assert any(
        fty_of(m).get("state") == "not_delivered"
        for m in h.take(alice)
        if m.get("sig", {}).get("type") == "facility"
    )
    h.take(bob)
    h.call(alice, bob)
    h.say(alice, 1, "early", id="e1")
    assert ack_of(h, alice, 1)["state"] == "delivered"  # sent anew, not answered from memory
    h.finish()


def test_volatile_chat_keeps_the_per_call_rule() -> None:
    h = Harness()
    carol, dave = h.phone("carol"), h.phone("dave")
    h.call(carol, dave, to="dave")
    h.say(carol, 1, "hi", id="v1")
    ack_of(h, carol, 1)
    h.signal(carol, 1, {"type": "rel"})
    h.take(carol), h.take(dave)
    number = h.call(carol, dave, to="dave")
    h.say(carol, 1, "hi", id="v1")  # a new call: a new message (never stored anywhere)
    assert ack_of(h, carol, 1)["seq"] == 1
    assert fty_of(h.one(dave), number)["data"] == "hi"
    assert h.stores == []
    h.finish()


def test_ids_a_previous_run_journaled_are_known_after_a_restart() -> None:
    h = Harness()
    h.switch.recovered(
        [
            {
                "mt": "Post",
                "domain": "example.com",
                "author": "alice",
                "id": "j1",
                "seq": 41,
                "time": (T0 - 5) * 1000 + 250,
                "callId": "old",
            },
            {"mt": "Post", "domain": "example.com", "author": "alice", "seq": 42, "time": 0},
            {"mt": "Post", "domain": "example.com", "author": "alice", "id": 7, "seq": 1},
        ]
    )
    alice = h.phone("alice")
    offline_call(h, alice, 1)
    h.say(alice, 1, "again", id="j1")
    assert ack_of(h, alice, 1) == {
        "type": "im_ack",
        "id": "j1",
        "seq": 41,
        "time": T0 - 5,
        "state": "stored",
    }
    assert h.stores == []
    h.finish()


def test_the_service_naming_an_original_corrects_the_writers_ack() -> None:
    """The hub forgot the id (e.g. restarted after its journal was compacted); the
    service stored nothing and named the original; the writer hears it."""
    h = Harness()
    alice = h.phone("alice")
    offline_call(h, alice, 1)
    h.say(alice, 1, "resent", id="r1")
    (store,) = h.stores
    h.record(h.switch.stored([store.ack]))  # type: ignore[list-item]
    assert ack_of(h, alice, 1)["seq"] == 1
    h.record(h.switch.duplicate(store.post, {"callId": "old", "seq": 9, "time": (T0 - 60) * 1000}))
    assert ack_of(h, alice, 1) == {
        "type": "im_ack",
        "id": "r1",
        "seq": 9,
        "time": T0 - 60,
        "state": "stored",
    }
    offline_call(h, alice, 2)
    h.say(alice, 2, "resent", id="r1")  # and any later resend hears the original too
    assert ack_of(h, alice, 2)["seq"] == 9
    h.finish()


def test_ids_expire_after_the_messages_services_key_lifetime() -> None:
    h = Harness()
    alice = h.phone("alice")
    offline_call(h, alice, 1)
    h.say(alice, 1, "old", id="t1")
    (store,) = h.stores
    h.record(h.switch.stored([store.ack]))  # type: ignore[list-item]
    h.take(alice)
    h.clock.advance(24 * 3600 + 1)
    offline_call(h, alice, 2)
    h.say(alice, 2, "old", id="t1")
    assert len(h.stores) == 2  # a day later the id is a new message
    h.finish()


def test_the_memory_is_bounded() -> None:
    clock = ManualClock(T0)
    ids = SenderIds(capacity=3, ttl=60.0, clock=clock)
    for n in range(5):
        ids.put("d", "alice", f"m{n}", AckRecord(n, int(clock.wall()), "stored"))
    assert len(ids) == 3 and ids.get("d", "alice", "m1") is None
    assert ids.get("d", "alice", "m4") is not None
    clock.advance(61)
    assert ids.get("d", "alice", "m4") is None  # expired
    ids.put("d", "bob", "b", AckRecord(1, int(clock.wall()), "stored"))
    assert list(ids) == [("d", "bob", "b")]  # the expired ones were swept
    off = SenderIds(capacity=0, ttl=60.0, clock=clock)
    off.put("d", "alice", "m", AckRecord(1, int(clock.wall()), "stored"))
    assert len(off) == 0


def test_a_corrected_record_leaves_in_its_own_turn_and_the_bound_holds() -> None:
    """A key put again (the service's correction) is the newest: the place its first
    record had in the order does not take the new one away early, and the cap counts
    keys."""
    clock = ManualClock(T0)
    ids = SenderIds(capacity=3, ttl=60.0, clock=clock)
    first = AckRecord(1, int(clock.wall()), "stored")
    ids.put("d", "alice", "a", first)
    ids.put("d", "alice", "b", AckRecord(2, int(clock.wall()), "stored"))
    ids.put("d", "alice", "a", first)  # the very record again: the newest now
    corrected = AckRecord(7, int(clock.wall()), "stored")
    ids.put("d", "alice", "a", corrected)
    ids.put("d", "alice", "c", AckRecord(3, int(clock.wall()), "stored"))
    assert ids.get("d", "alice", "a") is corrected and len(ids) == 3
    ids.put("d", "alice", "e", AckRecord(4, int(clock.wall()), "stored"))
    assert ids.get("d", "alice", "b") is None  # the oldest went
    assert ids.get("d", "alice", "a") is corrected
    for n in range(10):
        ids.put("d", "alice", f"x{n}", AckRecord(10 + n, int(clock.wall()), "stored"))
        assert len(ids) <= 3
    assert ids.get("d", "alice", "a") is None
    assert list(ids) == [("d", "alice", "x7"), ("d", "alice", "x8"), ("d", "alice", "x9")]


def test_a_key_put_again_does_not_count_twice_against_the_cap() -> None:
    clock = ManualClock(T0)
    ids = SenderIds(capacity=3, ttl=60.0, clock=clock)
    ids.put("d", "alice", "b", AckRecord(1, int(clock.wall()), "stored"))
    ids.put("d", "alice", "a", AckRecord(2, int(clock.wall()), "stored"))
    ids.put("d", "alice", "a", AckRecord(7, int(clock.wall()), "stored"))
    ids.put("d", "alice", "c", AckRecord(3, int(clock.wall()), "stored"))
    assert sorted(key[2] for key in ids) == ["a", "b", "c"]


def test_a_record_put_back_after_a_correction_stays() -> None:
    """put(r1), put(r2), put(r1): r1 is the key's record, as new as its last put."""
    clock = ManualClock(T0)
    ids = SenderIds(capacity=3, ttl=60.0, clock=clock)
    first = AckRecord(1, int(clock.wall()), "stored")
    ids.put("d", "alice", "a", first)
    ids.put("d", "alice", "a", AckRecord(7, int(clock.wall()), "stored"))
    ids.put("d", "alice", "a", first)
    ids.put("d", "alice", "b", AckRecord(2, int(clock.wall()), "stored"))
    ids.put("d", "alice", "c", AckRecord(3, int(clock.wall()), "stored"))
    assert ids.get("d", "alice", "a") is first


def test_expired_records_go_a_bounded_number_at_a_time() -> None:
    """A thousand ids that expire in the same second are dropped over several puts,
    ``_SWEEP`` at most each, and none of them is answered meanwhile."""
    clock = ManualClock(T0)
    ids = SenderIds(capacity=10_000, ttl=60.0, clock=clock)
    for n in range(1000):
        ids.put("d", "alice", f"old{n}", AckRecord(n, int(clock.wall()), "stored"))
    clock.advance(61)
    sizes = []
    for n in range(6):
        ids.put("d", "bob", f"new{n}", AckRecord(n, int(clock.wall()), "stored"))
        sizes.append(len(ids))
    assert sizes == [1000 - 256 + 1, 1000 - 512 + 2, 1000 - 768 + 3, 4, 5, 6]
    assert ids.get("d", "alice", "old999") is None


def test_sender_ids_zero_turns_the_hub_memory_off() -> None:
    h = Harness(with_signaling(make_config(), sender_ids=0))
    alice, bob = h.phone("alice"), h.phone("bob")
    h.call(alice, bob)
    h.say(alice, 1, "x", id="z1")
    h.take(alice), h.take(bob)
    h.signal(alice, 1, {"type": "rel"})
    h.take(alice), h.take(bob)
    h.call(alice, bob)
    h.say(alice, 1, "x", id="z1")
    assert len(h.stores) == 2  # left to the messages service's own check
    h.finish()


def test_a_journal_older_than_the_key_lifetime_is_no_trouble() -> None:
    """A restarted hub whose journal still holds a day-old Post starts, and forgets it."""
    h = Harness()
    old = {"mt": "Post", "domain": "example.com", "author": "alice", "id": "o1", "seq": 3}
    h.switch.recovered([old | {"time": (T0 - 2 * 24 * 3600) * 1000}])
    assert len(h.switch.chat.sender_ids) == 0
    clock = ManualClock(T0)
    ids = SenderIds(capacity=2, ttl=60.0, clock=clock)
    ids.put("d", "alice", "gone", AckRecord(1, int(T0 - 61), "stored"))  # empty, expired
    assert len(ids) == 0
    h.finish()


def test_a_held_message_whose_caller_gave_up_was_never_stored_so_a_resend_is_new() -> None:
    h = Harness()
    alice, bob = h.phone("alice"), h.phone("bob")
    h.setup(alice, 1, "bob", im("early", id="e2"))
    h.take(alice)
    h.offered(bob)
    h.signal(alice, 1, {"type": "rel"})  # the caller leaves while bob's phone rings
    h.take(alice), h.take(bob)
    assert h.stores == []
    number = h.call(alice, bob)
    h.say(alice, 1, "early", id="e2")
    assert ack_of(h, alice, 1)["state"] == "delivered"
    assert fty_of(h.one(bob), number)["data"] == "early"
    assert len(h.stores) == 1
    h.finish()


def test_an_original_stored_after_its_call_ended_still_answers_resends() -> None:
    h = Harness()
    alice, laptop = h.phone("alice"), h.phone("alice", hw="laptop")
    offline_call(h, alice, 1)
    h.say(alice, 1, "one", id="s1")
    (store,) = h.stores
    offline_call(h, laptop, 1)
    for _ in range(20):  # a client retrying in a loop while the disk is slow
        h.say(laptop, 1, "one", id="s1")
    h.quiet(laptop)
    assert len(h.switch.chat._awaiting[("example.com", "alice", "s1")]) == 1
    h.signal(alice, 1, {"type": "rel"})  # the original's call ends before the disk said yes
    h.take(alice)
    h.record(h.switch.stored([store.ack]))  # type: ignore[list-item]
    assert ack_of(h, laptop, 1)["state"] == "stored"
    assert h.switch.chat._awaiting == {}
    offline_call(h, alice, 2)
    h.say(alice, 2, "one", id="s1")
    assert ack_of(h, alice, 2) == {
        "type": "im_ack",
        "id": "s1",
        "seq": 1,
        "time": T0,
        "state": "stored",
    }
    assert len(h.stores) == 1
    h.finish()


def test_an_agents_journaled_id_is_the_agents_not_its_queues() -> None:
    h = Harness()
    post = {"mt": "Post", "domain": "example.com", "author": "support", "writer": "alice"}
    h.switch.recovered([post | {"id": "w1", "seq": 2, "time": T0 * 1000}])
    assert h.switch.chat.sender_ids.get("example.com", "alice", "w1") is not None
    assert h.switch.chat.sender_ids.get("example.com", "support", "w1") is None
    h.finish()
