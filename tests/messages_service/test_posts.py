"""Posts over the wire, on SQLite and PostgreSQL (PROTOCOL §7.3, §12.10)."""

from __future__ import annotations

from tests.messages_service.support import (
    RunningService,
    chat_post,
    running_service,
    service_config,
)


async def test_post_is_stored_for_both_sides_and_read_from_each(service: RunningService) -> None:
    hub = await service.hub()
    result = await hub.post(1, **chat_post("alice", "bob", 1, "hi <b>Bob</b>", id="m1"))
    assert result["mt"] == "PostResult" and isinstance(result["id"], int), result
    alice, bob = hub.user("alice"), hub.user("bob")

    (mine,) = await alice.read("bob")
    assert mine["id"] == result["id"]  # the author's own row answers the Post
    assert mine["author"] == "alice" and mine["dn"] == "Alice"
    assert mine["text"] == "hi <b>Bob</b>" and mine["timestamp"] == 1_700_000_000_001
    assert mine["callId"] == "c0ffee" and mine["seq"] == 1 and mine["attached"] == []
    assert mine["read"] is False  # alice's own message: has bob read it? not yet

    (theirs,) = await bob.read("alice")
    assert theirs["id"] != mine["id"] and theirs["author"] == "alice"
    assert "read" not in theirs  # only on the reader's own messages
    assert (await bob.chats())["alice"]["dn"] == "Alice"
    assert (await alice.chats())["bob"]["dn"] == "Bob"


async def test_a_resent_post_is_stored_once_and_answered_with_the_same_id(
    service: RunningService,
) -> None:
    hub = await service.hub()
    first = await hub.post(7, **chat_post("alice", "bob", 1, "once"))
    again = await hub.post(8, **chat_post("alice", "bob", 1, "once"))
    assert again == {"mt": "PostResult", "src": 8, "id": first["id"]}
    assert [m["text"] for m in await hub.user("bob").read("alice")] == ["once"]
    assert len(await hub.user("alice").read("bob")) == 1


async def test_a_post_with_one_side_stores_only_that_side(service: RunningService) -> None:
    hub = await service.hub()
    # bob holds the licence, carol does not: only bob's copy exists
    result = await hub.post(1, **chat_post("carol", "bob", 1, "to bob", sides=("bob",)))
    assert result["mt"] == "PostResult"
    (row,) = await hub.user("bob").read("carol")
    assert row["id"] == result["id"] and row["author"] == "carol"  # no author row: first row
    assert await hub.user("carol").read("bob") == []
    assert await hub.user("carol").chats() == {}


async def test_unread_counts_and_badges(service: RunningService) -> None:
    hub = await service.hub()
    for seq in (1, 2, 3):
        await hub.post(seq, **chat_post("alice", "bob", seq, f"m{seq}"))
    badges = await hub.take("Badge")
    assert badges[-1] == {"mt": "Badge", "domain": "example.com", "user": "bob", "count": 3}
    assert all(badge["user"] == "bob" for badge in badges)  # the author's side is read
    bob = hub.user("bob")
    assert (await bob.chats(unread=True))["alice"]["unread"] == 3
    assert await hub.user("alice").chats(unread=True) == {}

    await bob.ask("ReadChat", sip="alice", noind=True)
    assert await hub.take("Badge") == [
        {"mt": "Badge", "domain": "example.com", "user": "bob", "count": 0}
    ]
    assert await bob.chats(unread=True) == {}
    assert (await bob.chats())["alice"]["unread"] == 0


async def test_the_store_survives_a_restart_of_the_service(database_url: str) -> None:
    config = service_config(database_url)
    async with running_service(config) as service:
        hub = await service.hub()
        first = await hub.post(1, **chat_post("alice", "bob", 1, "before"))
        await hub.user("bob").ask("WriteGroup", dn="Kept")
        await service.service.stop()
        await service.service.start()  # the same object again, the same database
        hub = await service.hub()
        assert [m["id"] for m in await hub.user("alice").read("bob")] == [first["id"]]
    async with running_service(config) as service:  # a new process, as far as it can tell
        hub = await service.hub()
        again = await hub.post(2, **chat_post("alice", "bob", 1, "before"))
        assert again["id"] == first["id"]
        later = await hub.post(3, **chat_post("alice", "bob", 2, "after"))
        assert later["id"] > first["id"]
        texts = [m["text"] for m in await hub.user("bob").read("alice")]
        assert texts == ["after", "before"]
        (group, result) = await hub.user("bob").ask("ReadGroups")
        assert group["dn"] == "Kept" and group["admin"] is True
        assert result["mt"] == "ReadGroupsResult"
