"""The Post writer against a scripted store: batching, order, retry, drain (§12.10)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from messages_service.errors import NotFound, Unavailable
from messages_service.storage import Badge, FileGrant, NewPost, PostBatch
from messages_service.writer import PostWriter, QueuedPost

JsonObject = dict[str, Any]


def _post(seq: int) -> NewPost:
    return NewPost(
        domain="example.com",
        author="alice",
        author_dn="Alice",
        topic="alice",
        peer="bob",
        peer_dn="Bob",
        grp=False,
        sides=("alice", "bob"),
        text=f"m{seq}",
        attach=None,
        call_id="c",
        seq=seq,
        client_id=None,
        time_ms=seq,
    )


class ScriptedStore:
    """Answers each batch with ids = seq * 10; fails the first ``failures`` calls; holds
    the first call until ``release`` is set, so tests can queue Posts behind it."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()
        self.release.set()

    async def write_posts(self, posts: list[NewPost]) -> PostBatch:
        self.batches.append([post.seq for post in posts])
        await self.release.wait()
        if self.failures:
            self.failures -= 1
            raise Unavailable()
        outcomes = tuple(
            NotFound("no such group") if post.seq == 13 else post.seq * 10 for post in posts
        )
        return PostBatch(outcomes, (Badge("example.com", "bob", len(posts)),))


class Recorder:
    def __init__(self) -> None:
        self.frames: list[JsonObject] = []

    def __call__(self, frame: JsonObject) -> None:
        self.frames.append(frame)


async def _run(store: ScriptedStore, seqs: list[int], batch_max: int = 512) -> Recorder:
    """Submit ``seqs`` while the store holds its first batch, then drain."""
    out = Recorder()
    writer = PostWriter(store, batch_max=batch_max, notify=out)
    writer.start()
    store.release.clear()
    for seq in seqs:
        await writer.submit(QueuedPost(_post(seq), seq, out))
        await asyncio.sleep(0)  # the writer takes the first Post alone
    store.release.set()
    await writer.stop()
    return out


async def test_posts_queued_during_a_commit_go_in_the_next_one_in_order() -> None:
    store = ScriptedStore()
    out = await _run(store, [1, 2, 3, 4, 5], batch_max=3)
    assert store.batches == [[1], [2, 3, 4], [5]]
    results = [frame for frame in out.frames if frame["mt"] == "PostResult"]
    assert [(frame["src"], frame["id"]) for frame in results] == [(s, s * 10) for s in range(1, 6)]
    # each batch: its PostResults first, then its Badges
    assert [frame["mt"] for frame in out.frames[:5]] == [
        "PostResult",
        "Badge",
        "PostResult",
        "PostResult",
        "PostResult",
    ]


async def test_a_batch_ends_at_its_share_of_group_posts() -> None:
    """A group Post writes a row per member: however large ``batch_max``, a batch takes
    ``group_posts_max`` of them at most, and one-to-one Posts fill the rest as usual."""
    store = ScriptedStore()
    out = Recorder()
    writer = PostWriter(store, batch_max=10, notify=out, group_posts_max=2)
    writer.start()
    store.release.clear()
    for seq in range(1, 9):
        post = _post(seq)
        if seq in (2, 3, 4, 6, 7):
            post = replace(post, grp=True, topic="group:1", peer="", peer_dn="", sides=())
        await writer.submit(QueuedPost(post, seq, out))
        await asyncio.sleep(0)  # the writer takes the first Post alone
    store.release.set()
    await writer.stop()
    assert store.batches == [[1], [2, 3], [4, 5, 6], [7, 8]]


async def test_one_posts_error_does_not_stop_its_batch() -> None:
    out = await _run(ScriptedStore(), [12, 13, 14])
    answers = [frame for frame in out.frames if frame["mt"] != "Badge"]
    assert [(a["mt"], a["src"]) for a in answers] == [
        ("PostResult", 12),
        ("Error", 13),
        ("PostResult", 14),
    ]
    assert answers[1]["code"] == "not_found"


async def test_a_failed_batch_is_retried_once() -> None:
    store = ScriptedStore(failures=1)
    out = await _run(store, [1])
    assert store.batches == [[1], [1]]
    assert out.frames[0] == {"mt": "PostResult", "src": 1, "id": 10}


async def test_a_batch_failing_twice_is_refused_with_everything_behind_it() -> None:
    """Post 2 waited behind the failed batch: storing it now would put it before Post 1,
    which the hub resends; so it is refused too. A Post after that is written."""
    store = ScriptedStore(failures=2)
    out = Recorder()
    writer = PostWriter(store, batch_max=512, notify=out)
    writer.start()
    store.release.clear()
    for seq in (1, 2):
        await writer.submit(QueuedPost(_post(seq), seq, out))
        await asyncio.sleep(0)
    store.release.set()
    for _ in range(100):  # until both are refused
        if len(out.frames) == 2:
            break
        await asyncio.sleep(0)
    await writer.submit(QueuedPost(_post(3), 3, out))
    await writer.stop()
    unavailable = {"mt": "Error", "code": "unavailable", "text": "storage unavailable"}
    assert store.batches == [[1], [1], [3]]
    assert out.frames[:3] == [
        unavailable | {"src": 1},
        unavailable | {"src": 2},
        {"mt": "PostResult", "src": 3, "id": 30},
    ]


async def test_a_post_whose_files_cannot_be_granted_now_is_answered_unavailable() -> None:
    """Posts 1 and 3 are stored and answered; post 2 is stored too, but its files cannot
    be granted now: it is answered unavailable, so the hub resends it (and its resend
    grants them). The badges of the stored rows still go out."""

    class WithFiles(ScriptedStore):
        async def write_posts(self, posts: list[NewPost]) -> PostBatch:
            batch = await super().write_posts(posts)
            grants = tuple(FileGrant(post, ("alice", "bob")) for post in posts if post.seq == 2)
            return PostBatch(batch.outcomes, batch.badges, grants)

    async def cannot_grant(grants: tuple[FileGrant, ...]) -> None:
        raise Unavailable("file buffers are unavailable")

    out = Recorder()
    writer = PostWriter(WithFiles(), batch_max=512, notify=out, on_files=cannot_grant)
    writer.start()
    for seq in (1, 2, 3):
        writer.offer(QueuedPost(_post(seq), seq, out))
    await writer.stop()
    assert [(frame["mt"], frame.get("src")) for frame in out.frames] == [
        ("PostResult", 1),
        ("Error", 2),
        ("PostResult", 3),
        ("Badge", None),
    ]
    assert out.frames[1]["code"] == "unavailable" and writer.refused == 1


async def test_after_stop_posts_are_answered_unavailable() -> None:
    out = Recorder()
    writer = PostWriter(ScriptedStore(), batch_max=8, notify=out)
    writer.start()
    await writer.stop()
    await writer.submit(QueuedPost(_post(1), "k", out))
    assert out.frames == [
        {"mt": "Error", "code": "unavailable", "text": "service stopping", "src": "k"}
    ]
