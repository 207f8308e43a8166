"""The local buffer store on a real folder: streamed uploads with limits, one upload per
url, expiry, per-side permanent buffers over shared bytes, quotas, and nothing left
behind by a refused or interrupted upload (PROTOCOL §8)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import pytest

from filebuffers import AlreadyUploaded, Expired, LocalStore, NotFound, Owner, TooBig, Usage

ALICE = Owner("example.com", "alice")
BOB = Owner("example.com", "bob")
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


class Clock:
    """Wall time that tests move forward; it starts at the real time because collection
    compares it with the times files were written."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(tmp_path: Path, clock: Clock) -> LocalStore:
    opened = LocalStore(tmp_path / "files", max_size=4096, temp_ttl=600, quota=10_000, clock=clock)
    await opened.open()
    return opened


async def chunks(data: bytes, size: int = 100) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]
        await asyncio.sleep(0)


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file())


def names(paths: Iterable[Path]) -> set[str]:
    return {path.parent.name for path in paths}


async def test_an_upload_is_hashed_sniffed_and_stored_once(store: LocalStore) -> None:
    buffer, keys = await store.create(ALICE, "../photo.png", "text/html", len(PNG))
    assert buffer.name == "photo.png" and not buffer.uploaded
    done = await store.upload(buffer.id, keys.upload, chunks(PNG), declared=len(PNG))
    assert (done.size, done.mime) == (len(PNG), "image/png")  # the bytes beat the claim
    assert done.sha256 == hashlib.sha256(PNG).hexdigest()
    assert store.blob(done).read_bytes() == PNG
    assert await store.get(buffer.id) == done
    assert await store.used(ALICE) == len(PNG)
    assert names(files_under(store.root)) == {"buffers", done.sha256[:2]}  # nothing else


async def test_sizes_over_the_limit_are_refused_before_and_during_the_upload(
    store: LocalStore,
) -> None:
    with pytest.raises(TooBig) as announced:
        await store.create(ALICE, "big.bin", None, 4097)
    assert announced.value.max_bytes == 4096
    assert files_under(store.root) == []  # refused before anything was written
    buffer, keys = await store.create(ALICE, "big.bin", None, 10)
    with pytest.raises(TooBig):  # Content-Length says too much: refused unread
        await store.check_upload(buffer.id, keys.upload, declared=5000)
    with pytest.raises(TooBig):  # Content-Length lies: cut off at the limit
        await store.upload(buffer.id, keys.upload, chunks(b"x" * 5000), declared=10)
    assert list((store.root / "incoming").iterdir()) == []
    assert not (await store.get(buffer.id)).uploaded  # type: ignore[union-attr]
    assert await store.used(ALICE) == 0
    done = await store.upload(buffer.id, keys.upload, chunks(b"small"))  # a retry within the limit
    assert done.size == 5


async def test_one_upload_per_url_and_only_before_it_expires(
    store: LocalStore, clock: Clock
) -> None:
    buffer, keys = await store.create(ALICE, "a.txt", "text/plain", None)
    await store.upload(buffer.id, keys.upload, chunks(b"once"))
    with pytest.raises(AlreadyUploaded):
        await store.upload(buffer.id, keys.upload, chunks(b"twice"))
    late, late_keys = await store.create(ALICE, "b.txt", "text/plain", None)
    clock.now += 600
    with pytest.raises(Expired):
        await store.upload(late.id, late_keys.upload, chunks(b"late"))


async def test_two_uploads_at_once_into_one_buffer_take_one(store: LocalStore) -> None:
    buffer, keys = await store.create(ALICE, "a.txt", None, None)
    results = await asyncio.gather(
        store.upload(buffer.id, keys.upload, chunks(b"a" * 1000, 10)),
        store.upload(buffer.id, keys.upload, chunks(b"b" * 1000, 10)),
        return_exceptions=True,
    )
    assert sum(isinstance(result, AlreadyUploaded) for result in results) == 1
    assert list((store.root / "incoming").iterdir()) == []


@pytest.mark.parametrize(
    "buffer_id", ["../../etc/passwd", "..", "a/b", "x" * 22 + "/", "", "%2e%2e%2fsecret"]
)
async def test_ids_never_reach_outside_the_store(store: LocalStore, buffer_id: str) -> None:
    assert await store.get(buffer_id) is None
    with pytest.raises(NotFound):
        await store.upload(buffer_id, "key", chunks(b"x"))
    assert not await store.delete(buffer_id)


async def test_a_wrong_key_looks_like_no_buffer(store: LocalStore) -> None:
    buffer, _ = await store.create(ALICE, "a.txt", None, None)
    with pytest.raises(NotFound):
        await store.upload(buffer.id, "guessed", chunks(b"x"))


async def test_the_read_key_opens_for_reading_only_and_the_upload_key_for_upload_only(
    store: LocalStore,
) -> None:
    """The read key goes to every recipient of the message: it must not upload, and
    the upload key (the creator's alone) must not read. Only hashes are stored."""
    buffer, keys = await store.create(ALICE, "a.txt", None, None)
    assert keys.read != keys.upload
    assert store.opens(buffer, keys.read) and not store.opens(buffer, keys.upload)
    with pytest.raises(NotFound):
        await store.upload(buffer.id, keys.read, chunks(b"not the author's"))
    assert not (await store.get(buffer.id)).uploaded  # type: ignore[union-attr]
    done = await store.upload(buffer.id, keys.upload, chunks(b"the author's"))
    assert store.blob(done).read_bytes() == b"the author's"
    stored = (store.root / "buffers" / f"{buffer.id}.json").read_text()
    assert keys.read not in stored and keys.upload not in stored
    assert keys.read not in repr(keys) and keys.upload not in repr(keys)


async def test_a_buffer_from_before_the_split_keys_takes_no_upload(store: LocalStore) -> None:
    """Its one key was both read and upload key; it still reads, but uploads nothing."""
    buffer, keys = await store.create(ALICE, "old.txt", None, None)
    meta = store.root / "buffers" / f"{buffer.id}.json"
    fields = json.loads(meta.read_text())
    del fields["upload_hash"]  # as metadata was written then
    meta.write_text(json.dumps(fields))
    old = await store.get(buffer.id)
    assert old is not None and store.opens(old, keys.read)
    with pytest.raises(NotFound):
        await store.upload(buffer.id, keys.read, chunks(b"x"))
    with pytest.raises(NotFound):
        await store.upload(buffer.id, "", chunks(b"x"))


async def test_an_interrupted_upload_leaves_nothing_behind(store: LocalStore) -> None:
    buffer, keys = await store.create(ALICE, "a.bin", None, None)

    async def broken() -> AsyncIterator[bytes]:
        yield b"x" * 1000
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await store.upload(buffer.id, keys.upload, broken())
    started = asyncio.Event()

    async def endless() -> AsyncIterator[bytes]:
        while True:
            yield b"y" * 100
            started.set()
            await asyncio.sleep(0.01)

    task = asyncio.create_task(store.upload(buffer.id, keys.upload, endless()))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert list((store.root / "incoming").iterdir()) == []
    assert list((store.root / "blobs").iterdir()) == []
    assert await store.used(ALICE) == 0


async def test_promotion_gives_each_side_its_own_buffer_over_one_copy(
    store: LocalStore, clock: Clock
) -> None:
    temporary, keys = await store.create(ALICE, "photo.png", "image/png", None)
    await store.upload(temporary.id, keys.upload, chunks(PNG))
    mine, theirs = await store.promote(temporary.id, [ALICE, BOB])
    assert await store.get(temporary.id) is None
    assert mine.id != theirs.id and (mine.user, theirs.user) == ("alice", "bob")
    assert mine.kind == theirs.kind == "permanent" and mine.expires is None
    assert store.blob(mine) == store.blob(theirs)  # one copy on disk
    assert await store.used(ALICE) == len(PNG)  # the uploader's quota carries the file
    assert await store.used(BOB) == 0  # a received copy costs bob nothing: nobody fills his quota
    assert await store.delete(mine.id)
    clock.now += 3600
    await store.collect_garbage()
    assert store.blob(theirs).read_bytes() == PNG  # bob's copy is untouched
    assert await store.delete(theirs.id)
    removed = await store.collect_garbage()
    assert removed.blobs == 1 and files_under(store.root) == []


async def test_the_quota_counts_what_an_owner_holds(store: LocalStore) -> None:
    for index in range(3):  # 3 x 3000 of a 10,000 quota
        buffer, keys = await store.create(ALICE, f"{index}.bin", None, None)
        await store.upload(buffer.id, keys.upload, chunks(b"z" * 3000))
    assert await store.room(ALICE) == 1000 and await store.room(BOB) == 4096
    with pytest.raises(TooBig) as refused:
        await store.create(ALICE, "more.bin", None, 1001)
    assert refused.value.max_bytes == 1000
    buffer, keys = await store.create(ALICE, "more.bin", None, None)
    with pytest.raises(TooBig):
        await store.upload(buffer.id, keys.upload, chunks(b"z" * 1001))


async def test_collection_takes_expired_buffers_and_stale_uploads(
    store: LocalStore, clock: Clock
) -> None:
    kept, kept_keys = await store.create(ALICE, "kept.txt", None, None)
    await store.upload(kept.id, kept_keys.upload, chunks(b"kept"))
    (permanent,) = await store.promote(kept.id, [BOB])
    gone, gone_keys = await store.create(ALICE, "gone.txt", None, None)
    await store.upload(gone.id, gone_keys.upload, chunks(b"gone"))
    never, _ = await store.create(ALICE, "never.txt", None, None)
    (store.root / "incoming" / "left-by-a-crash").write_bytes(b"partial")
    assert await store.collect_garbage() == Usage()  # nothing is old yet
    clock.now += 601
    removed = await store.collect_garbage()
    assert (removed.buffers, removed.incoming, removed.blobs) == (2, 1, 1)
    assert await store.get(gone.id) is None and await store.get(never.id) is None
    assert (await store.get(permanent.id)) == permanent
    assert await store.used(ALICE) == 0 and await store.used(BOB) == 0


async def test_usage_is_counted_again_when_the_store_opens(
    store: LocalStore, tmp_path: Path, clock: Clock
) -> None:
    buffer, keys = await store.create(ALICE, "a.txt", None, None)
    await store.upload(buffer.id, keys.upload, chunks(b"x" * 123))
    again = LocalStore(store.root, max_size=4096, temp_ttl=600, quota=10_000, clock=clock)
    await again.open()
    assert await again.used(ALICE) == 123


async def test_uploads_at_once_share_the_quota(store: LocalStore) -> None:
    """Four 3000-byte uploads started together against a 10,000-byte quota: the room each
    may take is held while it runs, so one of them is refused."""
    started = []
    for index in range(4):
        started.append(await store.create(ALICE, f"{index}.bin", None, None))
    results = await asyncio.gather(
        *(
            store.upload(buffer.id, keys.upload, chunks(b"q" * 3000, 50))
            for buffer, keys in started
        ),
        return_exceptions=True,
    )
    assert sum(isinstance(result, TooBig) for result in results) >= 1
    assert await store.used(ALICE) <= 10_000
