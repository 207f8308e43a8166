"""Reading, read state, deleting and searching (PROTOCOL §7.4, §12.10)."""

from __future__ import annotations

from tests.messages_service.support import RunningService, Session, chat_post

DOMAIN = "example.com"


async def test_set_read_shows_the_author_read_and_tells_the_hub(
    service: RunningService,
) -> None:
    hub = await service.hub()
    for seq in (1, 2, 3):
        await hub.post(seq, **chat_post("alice", "bob", seq, f"m{seq}"))
    alice, bob = hub.user("alice"), hub.user("bob")
    copies = {m["seq"]: m["id"] for m in await bob.read("alice")}

    answer = await bob.one("SetRead", id=copies[2])
    assert answer == {"mt": "SetReadResult", "src": answer["src"], "id": copies[2]}
    seen = {"mt": "Seen", "domain": DOMAIN, "user": "bob", "peer": "alice", "callId": "c0ffee"}
    assert await hub.take("Seen") == [{**seen, "seq": 2}]
    assert {m["seq"]: m["read"] for m in await alice.read("bob")} == {3: False, 2: True, 1: True}


async def _copy_id(session: Session, text: str) -> int:
    """The id of a message found by Search, which (unlike ReadChat) marks nothing read."""
    (hit, _) = await session.ask("Search", text=text)
    return int(hit["msg"]["id"])


async def test_set_read_moves_the_badge_only_when_unread_ones_become_read(
    sqlite_service: RunningService,
) -> None:
    hub = await sqlite_service.hub()
    for seq in (1, 2, 3):
        await hub.post(seq, **chat_post("alice", "bob", seq, f"m{seq}"))
    assert (await hub.take("Badge"))[-1] == {
        "mt": "Badge",
        "domain": DOMAIN,
        "user": "bob",
        "count": 3,
    }
    bob = hub.user("bob")
    await bob.one("SetRead", id=await _copy_id(bob, "m2"))
    assert await hub.take("Badge") == [{"mt": "Badge", "domain": DOMAIN, "user": "bob", "count": 1}]
    assert (await bob.chats())["alice"]["unread"] == 1
    await bob.one("SetRead", id=await _copy_id(bob, "m1"))  # already read: no change
    assert await hub.take("Badge") == []
    await bob.one("SetRead", id=await _copy_id(bob, "m3"))
    assert await hub.take("Badge") == [{"mt": "Badge", "domain": DOMAIN, "user": "bob", "count": 0}]
    (badge,) = await hub.ask("ReadBadge", domain=DOMAIN, user="bob")
    assert badge == {"mt": "ReadBadgeResult", "src": badge["src"], "count": 0}


async def test_read_chat_pages_newest_first(sqlite_service: RunningService) -> None:
    hub = await sqlite_service.hub()
    for seq in range(1, 8):
        await hub.post(seq, **chat_post("alice", "bob", seq, f"m{seq}"))
    bob = hub.user("bob")
    *inds, result = await bob.ask("ReadChat", sip="alice", count=3)
    assert [ind["msg"]["seq"] for ind in inds] == [7, 6, 5] and result["more"] is True
    older = inds[-1]["msg"]["id"]
    *inds, result = await bob.ask("ReadChat", sip="alice", count=3, older=older)
    assert [ind["msg"]["seq"] for ind in inds] == [4, 3, 2] and result["more"] is True
    *inds, result = await bob.ask("ReadChat", sip="alice", older=inds[-1]["msg"]["id"])
    assert [ind["msg"]["seq"] for ind in inds] == [1] and result["more"] is False
    assert await bob.read("nobody") == []


async def test_delete_removes_only_the_callers_copy_for_good(service: RunningService) -> None:
    hub = await service.hub()
    await hub.post(1, **chat_post("alice", "bob", 1, "keep"))
    await hub.post(2, **chat_post("alice", "bob", 2, "oops"))
    await hub.take("Badge")
    alice, bob = hub.user("alice"), hub.user("bob")
    oops = next(m for m in await alice.read("bob") if m["text"] == "oops")
    answer = await alice.one("Delete", id=oops["id"])
    assert answer == {"mt": "DeleteResult", "src": answer["src"], "id": oops["id"]}
    assert [m["text"] for m in await alice.read("bob")] == ["keep"]
    assert [m["text"] for m in await bob.read("alice")] == ["oops", "keep"]

    again = await hub.post(3, **chat_post("alice", "bob", 2, "oops"))  # the outbox resends
    assert again["id"] == oops["id"]
    assert [m["text"] for m in await alice.read("bob")] == ["keep"]
    gone = await alice.one("Delete", id=oops["id"])
    assert gone["mt"] == "Error" and gone["code"] == "not_found"
    assert (await alice.one("SetRead", id=oops["id"]))["code"] == "not_found"


async def test_deleting_an_unread_message_moves_the_badge(sqlite_service: RunningService) -> None:
    hub = await sqlite_service.hub()
    await hub.post(1, **chat_post("alice", "bob", 1, "spam"))
    assert (await hub.take("Badge"))[-1]["count"] == 1
    bob = hub.user("bob")
    await bob.one("Delete", id=await _copy_id(bob, "spam"))
    assert await hub.take("Badge") == [{"mt": "Badge", "domain": DOMAIN, "user": "bob", "count": 0}]
    assert await bob.chats() == {}


async def test_a_chat_whose_messages_are_all_deleted_is_not_listed(
    sqlite_service: RunningService,
) -> None:
    hub = await sqlite_service.hub()
    await hub.post(1, **chat_post("alice", "bob", 1, "one"))
    alice = hub.user("alice")
    (row,) = await alice.read("bob")
    await alice.one("Delete", id=row["id"])
    assert await alice.chats() == {}
    await hub.post(2, **chat_post("alice", "bob", 2, "two"))
    assert list(await alice.chats()) == ["bob"]


async def test_search_finds_text_in_any_case_newest_first(service: RunningService) -> None:
    hub = await service.hub()
    await hub.post(1, **chat_post("alice", "bob", 1, "<p>Lunch at <b>noon</b>?</p>"))
    await hub.post(2, **chat_post("bob", "alice", 2, "NOON is fine"))
    await hub.post(3, **chat_post("alice", "carol", 3, "no lunch today", sides=("alice",)))
    await hub.post(4, **chat_post("alice", "bob", 4, "fish &amp; chips"))
    await hub.post(5, **chat_post("alice", "bob", 5, "Grüße"))
    alice = hub.user("alice")
    *hits, result = await alice.ask("Search", text="noon")
    assert result["mt"] == "SearchResult"
    assert [(hit["sip"], hit["msg"]["seq"]) for hit in hits] == [("bob", 2), ("bob", 1)]
    *hits, _ = await alice.ask("Search", text="lunch", count=1)
    assert [hit["msg"]["seq"] for hit in hits] == [3]
    *hits, _ = await alice.ask("Search", text="fish & chips")
    assert [hit["msg"]["seq"] for hit in hits] == [4]
    *hits, _ = await alice.ask("Search", text="<b>")  # markup is not text
    assert hits == []
    *hits, _ = await alice.ask("Search", text="GRÜSSE")
    assert [hit["msg"]["seq"] for hit in hits] == [5]
    assert [hit["msg"]["read"] for hit in hits] == [False]  # alice's own: has bob read it?
    *hits, _ = await hub.user("bob").ask("Search", text="chips")
    assert ["read" in hit["msg"] for hit in hits] == [False]  # not bob's own message


async def test_attachments_are_listed_by_name(sqlite_service: RunningService) -> None:
    hub = await sqlite_service.hub()
    attach = "http://h/messages/files/1/report%20final.pdf http://h/messages/files/2/ http://["
    await hub.post(1, **chat_post("alice", "bob", 1, "", attach=attach))
    (row,) = await hub.user("bob").read("alice")
    assert row["attached"] == [
        {"name": "report final.pdf", "url": "http://h/messages/files/1/report%20final.pdf"},
        {"name": "http://h/messages/files/2/", "url": "http://h/messages/files/2/"},
        {"name": "http://[", "url": "http://["},  # URL-encoded text, not a URL: named by itself
    ]
