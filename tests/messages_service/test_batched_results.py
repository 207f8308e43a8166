"""``PostResults``: the plain answers of one transaction in one frame, for a hub that
asks for them in its ``PbxInfo`` (docs/protocol.md 12.48)."""

from __future__ import annotations

import json
from typing import Any

from tests.messages_service.support import DOMAIN, PASSWORD, HubLink, RunningService, chat_post

JsonObject = dict[str, Any]


async def batched_hub(service: RunningService, flag: object = True) -> HubLink:
    client = await service.connect()
    await client.login(app="messages", sip="messages", domain=DOMAIN, password=PASSWORD)
    await client.send({"mt": "PbxInfo", "domain": DOMAIN, "pbx": "hub", "batchedResults": flag})
    return service.links[-1]


async def send_posts(hub: HubLink, posts: dict[int, JsonObject]) -> None:
    """Every Post in one write, as the hub's link sends what became durable together."""
    await hub.client.send_texts(
        [json.dumps({"mt": "Post", "src": key, "type": 1, **post}) for key, post in posts.items()]
    )


async def answers(hub: HubLink, count: int) -> list[JsonObject]:
    """Frames with answers, in the order they came, until ``count`` Posts are answered."""
    frames: list[JsonObject] = []
    answered = 0
    while answered < count:
        message = await hub.client.recv()
        if message["mt"] == "PostResults":
            answered += len(message["ids"])
        elif "src" in message:
            answered += 1
        else:
            hub.notifications.append(message)
            continue
        frames.append(message)
    return frames


def srcs_in_order(frames: list[JsonObject]) -> list[int]:
    order: list[int] = []
    for frame in frames:
        if frame["mt"] == "PostResults":
            order += [src for src, _ in frame["ids"]]
        else:
            order.append(frame["src"])
    return order


async def test_a_transaction_s_posts_are_answered_in_one_frame(
    sqlite_service: RunningService,
) -> None:
    hub = await batched_hub(sqlite_service)
    posts = {key: chat_post("alice", "bob", key, f"note {key}") for key in range(1, 41)}
    await send_posts(hub, posts)
    frames = await answers(hub, len(posts))
    assert {frame["mt"] for frame in frames} == {"PostResults"}
    assert len(frames) < len(posts)  # one frame a transaction, not one a Post
    assert srcs_in_order(frames) == list(posts)
    ids = {src: row_id for frame in frames for src, row_id in frame["ids"]}
    stored = await hub.user("alice").read("bob", count=100)
    assert {message["id"]: message["text"] for message in stored} == {
        ids[key]: f"note {key}" for key in posts
    }


async def test_answers_of_their_own_keep_their_place_among_the_batched(
    sqlite_service: RunningService,
) -> None:
    hub = await batched_hub(sqlite_service)
    posts = {key: chat_post("alice", "bob", key, f"m{key}", id=f"c{key}") for key in range(1, 6)}
    posts[6] = chat_post("alice", "bob", 6, "to no group") | {"grp": True, "topic": "group-404"}
    posts[6].pop("peer"), posts[6].pop("sides")
    posts[7] = chat_post("alice", "bob", 1, "m2 again", call_id="c2ff", id="c2")  # resent
    posts |= {key: chat_post("alice", "bob", key, f"m{key}") for key in range(8, 11)}
    await send_posts(hub, posts)
    frames = await answers(hub, len(posts))
    assert srcs_in_order(frames) == list(range(1, 11))
    alone = {frame["src"]: frame for frame in frames if frame["mt"] != "PostResults"}
    assert set(alone) == {6, 7}
    assert alone[6]["mt"] == "Error" and alone[6]["code"] == "not_found"
    assert alone[7]["mt"] == "PostResult"
    assert alone[7]["original"] == {"callId": "c0ffee", "seq": 2, "time": 1_700_000_000_002}
    batched = {src for frame in frames if frame["mt"] == "PostResults" for src, _ in frame["ids"]}
    assert batched == {1, 2, 3, 4, 5, 8, 9, 10}


async def test_a_hub_that_does_not_ask_gets_a_post_result_a_post(
    sqlite_service: RunningService,
) -> None:
    for flag in (None, "yes", 1):
        hub = await batched_hub(sqlite_service, flag)
        base = 100 * (len(sqlite_service.links))
        posts = {base + n: chat_post("alice", "bob", base + n) for n in range(5)}
        await send_posts(hub, posts)
        frames = await answers(hub, len(posts))
        assert [frame["mt"] for frame in frames] == ["PostResult"] * 5, flag
        assert srcs_in_order(frames) == list(posts)


async def test_a_src_that_is_not_an_integer_is_answered_alone(
    sqlite_service: RunningService,
) -> None:
    hub = await batched_hub(sqlite_service)
    await hub.client.send_texts(
        [
            json.dumps({"mt": "Post", "src": src, "type": 1, **chat_post("bob", "alice", seq)})
            for seq, src in enumerate([1, "two", 3], start=1)
        ]
    )
    frames = await answers(hub, 3)
    assert srcs_in_order(frames) == [1, "two", 3]
    assert [f["mt"] for f in frames if f["mt"] != "PostResults"] == ["PostResult"]
