"""Presence over the switches of a cluster (docs/protocol.md 12.39): a subscriber on any
switch sees the user's devices on every switch, is told only what changed, and a lost
switch's users go ``closed`` once. The switches share the in-memory bus's book, which
holds the shares as Redis does."""

from __future__ import annotations

from typing import Any

from signaling.core.actions import Action, PresenceShare, PresenceWatch, WhenFindable
from tests.signaling.core.cluster_harness import Client, Cluster
from tests.signaling.core.harness import Harness, fty_of, sig_of
from tests.support import make_config

JsonObject = dict[str, Any]

_CLUSTER_ONLY = (PresenceShare, PresenceWatch, WhenFindable)


def _subscribe_sig(to: str) -> JsonObject:
    return {"type": "setup", "cd": {"sip": to}, "fty": [{"type": "presence_subscribe"}]}


def _publish_sig(activity: str, note: str) -> JsonObject:
    item = {"type": "presence_publish", "activity": activity, "note": note}
    return {"type": "facility", "fty": [item]}


def subscribe(cluster: Cluster, client: Client, number: int, to: str) -> JsonObject:
    """``client`` subscribes to ``to``'s presence: ``conn``, then the first notify."""
    cluster.signal(client, number, _subscribe_sig(to))
    answer, notify = cluster.take(client)
    sig_of(answer, number, "conn")
    return fty_of(notify, number)


def notified(cluster: Cluster, client: Client, number: int) -> list[JsonObject]:
    return [fty_of(frame, number) for frame in cluster.take(client)]


def status(frames: list[JsonObject]) -> list[tuple[str, str, str]]:
    return [(frame["status"], frame["activity"], frame["note"]) for frame in frames]


# -- a user on another switch --------------------------------------------------------------------


def test_a_subscriber_sees_a_user_on_another_switch_as_on_one_switch() -> None:
    """The notifies a subscriber on a gets while bob comes to b, publishes and leaves are
    the ones a subscriber on bob's own switch gets."""
    one = Harness()
    watcher_one = one.phone("alice")
    one.signal(watcher_one, 7, _subscribe_sig("bob"))
    seen_one = one.take(watcher_one)
    bob_one = one.phone("bob")
    one.signal(bob_one, 3, _subscribe_sig("bob"))
    one.take(bob_one)
    one.signal(bob_one, 3, _publish_sig("dnd", "in a meeting"))
    one.close(bob_one)
    seen_one += one.take(watcher_one)

    cluster = Cluster()
    watcher = cluster.phone("a", "alice")
    cluster.signal(watcher, 7, _subscribe_sig("bob"))
    seen = cluster.take(watcher)
    bob = cluster.phone("b", "bob")
    cluster.signal(bob, 3, _subscribe_sig("bob"))
    cluster.take(bob)
    cluster.signal(bob, 3, _publish_sig("dnd", "in a meeting"))
    cluster.close(bob)
    seen += cluster.take(watcher)

    assert [frame["sig"] for frame in seen[1:]] == [frame["sig"] for frame in seen_one[1:]]
    assert status([fty_of(frame) for frame in seen[1:]]) == [
        ("closed", "", ""),
        ("open", "available", ""),
        ("open", "dnd", "in a meeting"),
        ("closed", "", ""),
    ]
    cluster.signal(watcher, 7, {"type": "rel"})
    one.signal(watcher_one, 7, {"type": "rel"})
    cluster.finish()
    one.finish()


def test_a_user_online_on_two_switches_is_open_until_the_last_one_goes() -> None:
    cluster = Cluster(("a", "b", "c"))
    alice, carol = cluster.phone("a", "alice"), cluster.phone("c", "carol")
    bob_a, bob_b = cluster.phone("a", "bob"), cluster.phone("b", "bob")
    assert subscribe(cluster, alice, 1, "bob")["status"] == "open"
    assert subscribe(cluster, carol, 1, "bob")["status"] == "open"
    cluster.close(bob_b)
    cluster.quiet(alice, carol)  # still online on a: nothing a subscriber sees changed
    bob_b = cluster.phone("b", "bob")
    cluster.quiet(alice, carol)
    cluster.close(bob_a)
    cluster.quiet(alice, carol)
    cluster.close(bob_b)
    assert status(notified(cluster, alice, 1)) == [("closed", "", "")]
    assert status(notified(cluster, carol, 1)) == [("closed", "", "")]
    cluster.finish()


def test_the_first_notify_waits_for_the_other_switches() -> None:
    """A new subscription is never told ``closed`` for a user online elsewhere."""
    cluster = Cluster()
    cluster.phone("b", "bob")
    alice = cluster.phone("a", "alice")
    cluster.signal(alice, 1, _subscribe_sig("bob"), settle=False)
    (answer,) = cluster.take(alice)
    sig_of(answer, 1, "conn")
    cluster.bus.run()  # the bus reads bob's shares on the other switches
    assert status(notified(cluster, alice, 1)) == [("open", "available", "")]
    cluster.signal(alice, 2, _subscribe_sig("bob"))  # followed already: told at once
    answer, notify = cluster.take(alice)
    assert fty_of(notify, 2)["status"] == "open"
    cluster.finish()


def test_a_first_answer_that_never_comes_is_waited_for_answer_wait_only() -> None:
    cluster = Cluster()
    cluster.phone("b", "bob")
    alice = cluster.phone("a", "alice")
    cluster.signal(alice, 1, _subscribe_sig("bob"), settle=False)
    cluster.take(alice)
    cluster.bus.drop()  # Redis does not answer
    cluster.advance(cluster.config.cluster.answer_wait)
    assert status(notified(cluster, alice, 1)) == [("closed", "", "")]  # what a knows
    bob = cluster.phone("b", "bob")
    cluster.signal(bob, 5, _subscribe_sig("bob"))
    cluster.signal(bob, 5, _publish_sig("away", "back soon"))  # a change: read again
    assert status(notified(cluster, alice, 1)) == [("open", "away", "back soon")]
    cluster.finish()


def test_the_activity_outlives_the_devices_of_the_switch_it_was_published_on() -> None:
    """The activity and note are the last published by any device of the user, kept until
    the user's last registration anywhere ends (docs 12.11)."""
    cluster = Cluster(("a", "b", "c"))
    bob_a, bob_b = cluster.phone("a", "bob"), cluster.phone("b", "bob")
    cluster.signal(bob_b, 3, _subscribe_sig("bob"))
    cluster.take(bob_b)
    cluster.signal(bob_b, 3, _publish_sig("busy", "on a call"))
    cluster.close(bob_b)
    carol = cluster.phone("c", "carol")
    assert status([subscribe(cluster, carol, 1, "bob")]) == [("open", "busy", "on a call")]
    cluster.signal(bob_a, 4, _subscribe_sig("bob"))
    assert fty_of(cluster.take(bob_a)[-1], 4)["activity"] == "busy"
    cluster.close(bob_a)
    assert status(notified(cluster, carol, 1)) == [("closed", "", "")]
    cluster.finish()


def test_a_clean_close_elsewhere_is_offline_at_once_and_a_resume_brings_it_back() -> None:
    cluster = Cluster(("a", "b"), make_config(grace=30.0))
    bob = cluster.phone("b", "bob")
    cluster.signal(bob, 3, _subscribe_sig("bob"))
    cluster.take(bob)
    cluster.signal(bob, 3, _publish_sig("dnd", "focus"))
    alice = cluster.phone("a", "alice")
    assert status([subscribe(cluster, alice, 1, "bob")]) == [("open", "dnd", "focus")]
    cluster.close(bob)  # clean: offline now, the registration waits out the grace
    assert status(notified(cluster, alice, 1)) == [("closed", "", "focus")]
    cluster.resume(bob, "b", "bob", {})
    assert status(notified(cluster, alice, 1)) == [("open", "dnd", "focus")]
    cluster.finish()


def test_a_lost_link_elsewhere_stays_open_through_the_grace() -> None:
    cluster = Cluster(("a", "b"), make_config(grace=30.0))
    bob = cluster.phone("b", "bob")
    alice = cluster.phone("a", "alice")
    assert subscribe(cluster, alice, 1, "bob")["status"] == "open"
    cluster.close(bob, clean=False)
    cluster.quiet(alice)
    cluster.advance(30.0)
    assert status(notified(cluster, alice, 1)) == [("closed", "", "")]
    cluster.finish()


# -- a lost switch -----------------------------------------------------------------------------


def test_a_lost_switch_s_users_are_closed_once() -> None:
    cluster = Cluster(("a", "b", "c"))
    cluster.phone("b", "bob")
    cluster.phone("b", "dave")
    cluster.phone("c", "dave")
    alice = cluster.phone("a", "alice")
    assert subscribe(cluster, alice, 1, "bob")["status"] == "open"
    assert subscribe(cluster, alice, 2, "dave")["status"] == "open"
    cluster.bus.lose("b")
    cluster.bus.run()  # the survivor's cleanup is announced too
    assert status(notified(cluster, alice, 1)) == [("closed", "", "")]
    cluster.quiet(alice)  # dave is still online on c: no notify at all
    cluster.finish()


# -- what is written -------------------------------------------------------------------------------


def test_a_switch_writes_its_share_only_when_it_changes() -> None:
    cluster = Cluster()
    writes: list[tuple[str, PresenceShare]] = []
    book_share = cluster.bus.book.share

    def share(node: str, action: PresenceShare) -> None:
        writes.append((node, action))
        book_share(node, action)

    cluster.bus.book.share = share  # type: ignore[method-assign]
    bob = cluster.phone("b", "bob")
    second = cluster.phone("b", "bob")
    alice = cluster.phone("a", "alice")
    cluster.setup(alice, 1, "bob")
    number = cluster.offered(bob)
    cluster.offered(second)
    cluster.signal(bob, number, {"type": "conn"})
    for n in range(20):
        cluster.say(alice, 1, f"message {n}")
        cluster.say(bob, number, f"answer {n}")
    cluster.close(second)
    cluster.close(alice)
    cluster.close(bob)
    assert [(node, action.sip, action.online) for node, action in writes] == [
        ("b", "bob", True),
        ("a", "alice", True),
        ("a", "alice", None),
        ("b", "bob", None),
    ]
    cluster.finish()


def test_a_standalone_switch_makes_no_cluster_actions_for_presence() -> None:
    h = Harness()
    made: list[Action] = []
    record = h.record

    def keep(actions: list[Action]) -> list[Action]:
        made.extend(actions)
        return record([a for a in actions if not isinstance(a, _CLUSTER_ONLY)])

    h.record = keep  # type: ignore[method-assign]
    alice, bob = h.phone("alice"), h.phone("bob")
    h.signal(alice, 1, _subscribe_sig("bob"))
    h.signal(bob, 2, _subscribe_sig("bob"))
    h.signal(bob, 2, _publish_sig("away", "lunch"))
    h.close(bob)
    h.close(alice)
    assert [a for a in made if isinstance(a, _CLUSTER_ONLY)] == []
    assert h.switch.presence._shares is None
    h.finish()


# -- the unread badge ----------------------------------------------------------------------------


def test_the_badge_reaches_a_user_s_subscriptions_to_itself_on_every_switch() -> None:
    """The messages service tells every hub; each switch shows it on the subscriptions of
    the user's devices there."""
    cluster = Cluster()
    bob_a, bob_b = cluster.phone("a", "bob"), cluster.phone("b", "bob")
    assert subscribe(cluster, bob_a, 1, "bob")["status"] == "open"
    assert subscribe(cluster, bob_b, 1, "bob")["status"] == "open"
    badge = {"mt": "Badge", "domain": "example.com", "user": "bob", "count": 4}
    for node in ("a", "b"):
        cluster.feed(node, cluster.switch(node).from_service(badge), settle=True)
    assert [frame["note"] for frame in notified(cluster, bob_a, 1)] == ["#badge:4"]
    assert [frame["note"] for frame in notified(cluster, bob_b, 1)] == ["#badge:4"]
    cluster.close(bob_b)
    cluster.quiet(bob_a)
    cluster.finish()
