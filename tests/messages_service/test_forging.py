"""Every query is scoped to the session's user and tenant (PROTOCOL §7.2, §12.10): what
the hub stamps decides whose rows are reached, never a field a client could choose."""

from __future__ import annotations

from tests.messages_service.support import OTHER_DOMAIN, RunningService, chat_post


async def test_a_topic_other_than_the_user_is_forbidden(sqlite_service: RunningService) -> None:
    hub = await sqlite_service.hub()
    await hub.post(1, **chat_post("alice", "bob", 1, "private"))
    carol = hub.user("carol")
    for mt, fields in [
        ("ReadChats", {"topic": "bob"}),
        ("ReadChat", {"topic": "bob", "sip": "alice"}),
        ("Search", {"topic": "bob", "text": "private"}),
    ]:
        (answer,) = await carol.ask(mt, **fields)
        assert answer["mt"] == "Error" and answer["code"] == "forbidden", answer
    # naming oneself as topic is fine
    (_, result) = await hub.user("bob").ask("ReadChats", topic="bob")
    assert result["mt"] == "ReadChatsResult"


async def test_ids_of_another_users_rows_are_not_found(service: RunningService) -> None:
    hub = await service.hub()
    posted = await hub.post(1, **chat_post("alice", "bob", 1, "mine"))
    alice_row = posted["id"]
    (bob_row,) = [m["id"] for m in await hub.user("bob").read("alice")]
    carol = hub.user("carol")
    for mt in ("SetRead", "Delete"):
        for row in (alice_row, bob_row):
            answer = await carol.one(mt, id=row)
            assert answer["mt"] == "Error" and answer["code"] == "not_found", answer
    assert (await hub.user("bob").one("Delete", id=alice_row))["code"] == "not_found"
    assert (await hub.user("alice").one("SetRead", id=bob_row))["code"] == "not_found"
    assert [m["text"] for m in await hub.user("alice").read("bob")] == ["mine"]
    assert [m["text"] for m in await hub.user("bob").read("alice")] == ["mine"]


async def test_another_tenants_rows_are_invisible(service: RunningService) -> None:
    hub = await service.hub()
    await hub.post(1, **chat_post("alice", "bob", 1, "in example.com"))
    here = hub.user("alice")
    there = hub.user("alice", OTHER_DOMAIN)  # the same sip in another tenant
    assert await there.chats() == {}
    assert await there.read("bob") == []
    (result,) = await there.ask("Search", text="example")
    assert result["mt"] == "SearchResult"
    (row,) = await here.read("bob")
    assert (await there.one("Delete", id=row["id"]))["code"] == "not_found"
    (badge,) = await hub.ask("ReadBadge", domain=OTHER_DOMAIN, user="bob")
    assert badge["count"] == 0


async def test_hub_only_requests_are_refused_on_a_session(sqlite_service: RunningService) -> None:
    hub = await sqlite_service.hub()
    for mt in ("Post", "ReadBadge", "SyncGroups"):
        fields = chat_post("alice", "bob", 1, "forged") if mt == "Post" else {}
        (answer,) = await hub.user("alice").ask(mt, **fields)
        assert answer["mt"] == "Error" and answer["code"] == "forbidden", answer
    assert await hub.user("bob").read("alice") == []


async def test_a_request_without_user_or_domain_is_bad_json(
    sqlite_service: RunningService,
) -> None:
    hub = await sqlite_service.hub()
    (answer,) = await hub.ask("ReadChats", domain="example.com")
    assert answer["mt"] == "Error" and answer["code"] == "bad_json", answer
    (answer,) = await hub.ask("ReadChat", domain="example.com", user="bob", sip=5)
    assert answer["code"] == "bad_json" and "sip" in answer["text"]
    (answer,) = await hub.ask("SetRead", domain="example.com", user="bob", id=True)
    assert answer["code"] == "bad_json"
    (answer,) = await hub.ask("ReadChat", domain="example.com", user="bob", sip="a", topic=1)
    assert answer["code"] == "bad_json"
