"""Groups (PROTOCOL §7.6, §12.10): admins, licensed members, one row per member."""

from __future__ import annotations

from tests.messages_service.support import (
    DOMAIN,
    HubLink,
    RunningService,
    group_post,
)


async def _team(hub: HubLink) -> tuple[int, str]:
    """alice creates "Team" and adds bob; returns its id and sip."""
    created = await hub.user("alice").one("WriteGroup", dn="Team")
    assert created["mt"] == "WriteGroupResult", created
    added = await hub.user("alice").one("WriteMember", grp=created["id"], member="bob")
    assert added["mt"] == "WriteMemberResult" and added["member"] == "bob", added
    return created["id"], created["sip"]


async def test_groups_are_created_filled_and_announced(service: RunningService) -> None:
    hub, other_hub = await service.hub(), await service.hub()
    group_id, sip = await _team(hub)
    assert sip == f"group-{group_id}"
    announced = await other_hub.take("GroupInd")  # every hub hears of every change
    assert announced[-1] == {
        "mt": "GroupInd",
        "domain": DOMAIN,
        "id": group_id,
        "sip": sip,
        "dn": "Team",
        "members": [{"sip": "alice", "admin": True}, {"sip": "bob", "admin": False}],
    }
    assert len(announced) == 2  # one for the group, one for the member
    *groups, result = await hub.user("bob").ask("ReadGroups")
    assert result["mt"] == "ReadGroupsResult"
    assert [(g["id"], g["sip"], g["dn"], g["admin"]) for g in groups] == [
        (group_id, sip, "Team", False)
    ]

    renamed = await hub.user("alice").one("WriteGroup", id=group_id, dn="Dream team")
    assert renamed["mt"] == "WriteGroupResult" and renamed["id"] == group_id
    assert (await hub.take("GroupInd"))[-1]["dn"] == "Dream team"

    *synced, done = await hub.ask("SyncGroups")
    assert done["mt"] == "SyncGroupsResult"
    assert [(g["mt"], g["sip"], g["dn"]) for g in synced] == [("GroupInd", sip, "Dream team")]


async def test_a_group_post_is_stored_for_every_member(service: RunningService) -> None:
    hub = await service.hub()
    _, sip = await _team(hub)
    await hub.take("GroupInd")
    result = await hub.post(1, **group_post("alice", sip, 1, "hello team"))
    assert result["mt"] == "PostResult"
    (bob_row,) = await hub.user("bob").read(sip)
    (alice_row,) = await hub.user("alice").read(sip)
    assert alice_row["id"] == result["id"] != bob_row["id"]
    assert bob_row["text"] == "hello team" and bob_row["author"] == "alice"
    assert "read" not in alice_row  # no single peer reads a group message
    bob_chats = await hub.user("bob").chats()
    assert bob_chats[sip]["grp"] is True and bob_chats[sip]["dn"] == "Team"
    assert (await hub.post(2, **group_post("alice", sip, 1, "hello team")))["id"] == result["id"]
    unknown = await hub.post(3, **group_post("alice", "group-999", 1, "nobody"))
    assert unknown["mt"] == "Error" and unknown["code"] == "not_found", unknown


async def test_a_non_member_reads_nothing_of_a_group(service: RunningService) -> None:
    hub = await service.hub()
    _, sip = await _team(hub)
    await hub.post(1, **group_post("alice", sip, 1, "members only"))
    refused = await hub.user("dave").one("ReadChat", sip=sip)
    assert refused["mt"] == "Error" and refused["code"] == "forbidden", refused
    assert sip not in await hub.user("dave").chats()
    *hits, _ = await hub.user("dave").ask("Search", text="members")
    assert hits == []


async def test_only_admins_change_a_group(sqlite_service: RunningService) -> None:
    hub = await sqlite_service.hub()
    group_id, _ = await _team(hub)
    bob = hub.user("bob")
    for mt, fields in [
        ("WriteMember", {"grp": group_id, "member": "carol"}),
        ("WriteMember", {"grp": group_id, "member": "bob", "admin": True}),
        ("WriteMember", {"grp": group_id, "member": "alice", "remove": True}),
        ("WriteGroup", {"id": group_id, "dn": "Mine now"}),
    ]:
        answer = await bob.one(mt, **fields)
        assert answer["mt"] == "Error" and answer["code"] == "forbidden", (mt, answer)
    outsider = await hub.user("alice", "other.org").one("WriteGroup", id=group_id, dn="x")
    assert outsider["code"] == "not_found"  # another tenant's group does not exist there
    assert (await hub.user("alice").one("WriteMember", grp=999, member="bob"))["code"] == (
        "not_found"
    )


async def test_members_must_be_licensed_users_of_the_tenant(
    sqlite_service: RunningService,
) -> None:
    hub = await sqlite_service.hub()
    group_id, _ = await _team(hub)
    alice = hub.user("alice")
    unlicensed = await alice.one("WriteMember", grp=group_id, member="carol")
    assert unlicensed["mt"] == "Error" and unlicensed["code"] == "unlicensed", unlicensed
    unknown = await alice.one("WriteMember", grp=group_id, member="zoe")
    assert unknown["code"] == "not_found"
    other_tenant = await alice.one("WriteMember", grp=group_id, member="erin")
    assert other_tenant["code"] == "not_found"


async def test_members_leave_and_admins_remove(sqlite_service: RunningService) -> None:
    hub = await sqlite_service.hub()
    group_id, sip = await _team(hub)
    await hub.post(1, **group_post("alice", sip, 1, "before"))
    left = await hub.user("bob").one("WriteMember", grp=sip, member="bob", remove=True)
    assert left["mt"] == "WriteMemberResult" and left["grp"] == group_id, left
    assert (await hub.take("GroupInd"))[-1]["members"] == [{"sip": "alice", "admin": True}]
    assert [g["mt"] for g in await hub.user("bob").ask("ReadGroups")] == ["ReadGroupsResult"]
    await hub.post(2, **group_post("alice", sip, 2, "after"))
    # only members read a group's chat (§7.6); bob's copy of "before" is in his search
    assert (await hub.user("bob").one("ReadChat", sip=sip))["code"] == "forbidden"
    assert [hit["msg"]["text"] for hit in (await hub.user("bob").ask("Search", text=""))[:-1]] == [
        "before"
    ]
    again = await hub.user("bob").one("WriteMember", grp=group_id, member="bob", remove=True)
    assert again["code"] == "not_found"
    promoted = await hub.user("alice").one("WriteMember", grp=group_id, member="bob", admin=True)
    assert promoted["mt"] == "WriteMemberResult"
    removed = await hub.user("bob").one("WriteMember", grp=group_id, member="alice", remove=True)
    assert removed["mt"] == "WriteMemberResult"
    assert (await hub.take("GroupInd"))[-1]["members"] == [{"sip": "bob", "admin": True}]


async def test_every_hub_is_told_of_a_change_before_the_asker_gets_its_result(
    service: RunningService,
) -> None:
    """PROTOCOL §7.6 (revised), docs/protocol.md 12.23: a hub applies each frame before it
    reads the next, so the GroupInd must come before the result on the asker's link, and
    before the answer to anything another hub reads after the change."""
    hub, other_hub = await service.hub(), await service.hub()
    created = await hub.user("alice").one("WriteGroup", dn="Team")
    (told,) = hub.notifications  # read while waiting for the result: it came first
    assert (told["mt"], told["sip"], told["members"]) == (
        "GroupInd",
        created["sip"],
        [{"sip": "alice", "admin": True}],
    )
    hub.notifications.clear()
    await other_hub.user("bob").ask("ReadGroups")
    assert [n["sip"] for n in other_hub.notifications] == [created["sip"]]
    other_hub.notifications.clear()
    for change, members in [
        ({"admin": False}, [{"sip": "alice", "admin": True}, {"sip": "bob", "admin": False}]),
        ({"remove": True}, [{"sip": "alice", "admin": True}]),
    ]:
        result = await hub.user("alice").one(
            "WriteMember", grp=created["id"], member="bob", **change
        )
        assert result["mt"] == "WriteMemberResult", result
        (told,) = hub.notifications
        assert (told["mt"], told["members"]) == ("GroupInd", members)
        hub.notifications.clear()
        await other_hub.user("bob").ask("ReadGroups")
        assert [n["members"] for n in other_hub.notifications] == [members]
        other_hub.notifications.clear()
