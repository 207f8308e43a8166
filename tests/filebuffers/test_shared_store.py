"""The shared buffer store on a real PostgreSQL database and a real folder, as several
service processes use it: three stores on one database and one folder stand for three
processes (SCALE.md decision 9; docs/protocol.md 12.45). A buffer made through one is
uploaded through another and read through a third; uploads at once through several
share the quota exactly; whatever one deletes or collects is gone for all; and the
counters in the database stay exact through failed, cancelled and expired uploads."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

from filebuffers import (
    AlreadyUploaded,
    Expired,
    NotFound,
    Owner,
    SharedStore,
    TooBig,
    Unavailable,
    Usage,
    storage,
)
from filebuffers.storage import BufferTable
from tests.filebuffers.test_store import PNG, Clock, chunks, files_under
from tests.tcp_proxy import tcp_proxy

ALICE = Owner("example.com", "alice")
BOB = Owner("example.com", "bob")
PERMANENT_ID = "p" * 22


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def stores(
    tmp_path: Path, postgres_url: str, clock: Clock
) -> AsyncIterator[list[SharedStore]]:
    """Three processes' stores on one database and one folder, with one clock."""
    made = [
        SharedStore(
            tmp_path / "shared",
            postgres_url,
            max_size=4096,
            temp_ttl=600,
            quota=10_000,
            clock=clock,
        )
        for _ in range(3)
    ]
    for store in made:
        await store.open()
    try:
        yield made
    finally:
        for store in made:
            await store.close()


async def counters(url: str) -> dict[Owner, tuple[int, int]]:
    """Every owner's (used, held) as the database has them."""
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch("SELECT domain, username, used, held FROM file_quotas")
    finally:
        await connection.close()
    return {Owner(row[0], row[1]): (row[2], row[3]) for row in rows}


def incoming(store: SharedStore) -> list[Path]:
    return list((store.root / "incoming").iterdir())


async def test_made_through_one_uploaded_through_another_read_through_a_third(
    stores: list[SharedStore], postgres_url: str
) -> None:
    a, b, c = stores
    buffer, keys = await a.create(ALICE, "../photo.png", "text/html", len(PNG))
    assert buffer.name == "photo.png" and await b.get(buffer.id) == buffer
    done = await b.upload(buffer.id, keys.upload, chunks(PNG), declared=len(PNG))
    assert (done.size, done.mime) == (len(PNG), "image/png")  # the bytes beat the claim
    assert done.sha256 == hashlib.sha256(PNG).hexdigest()
    assert await c.get(buffer.id) == done
    assert c.opens(done, keys.read) and not c.opens(done, keys.upload)
    assert c.blob(done).read_bytes() == PNG
    assert [await store.used(ALICE) for store in stores] == [len(PNG)] * 3
    assert await counters(postgres_url) == {ALICE: (len(PNG), 0)}
    assert [path.parent.name for path in files_under(a.root)] == [done.sha256[:2]]


async def test_only_hashes_of_the_keys_reach_the_database(
    stores: list[SharedStore], postgres_url: str
) -> None:
    buffer, keys = await stores[0].create(ALICE, "a.txt", None, None)
    connection = await asyncpg.connect(postgres_url)
    try:
        row = await connection.fetchval("SELECT row_to_json(f)::text FROM file_buffers f")
    finally:
        await connection.close()
    assert buffer.id in row and keys.read not in row and keys.upload not in row


async def test_every_refusal_of_one_process_is_made_by_the_others(
    stores: list[SharedStore], clock: Clock
) -> None:
    a, b, c = stores
    with pytest.raises(TooBig) as announced:
        await b.create(ALICE, "big.bin", None, 4097)
    assert announced.value.max_bytes == 4096
    buffer, keys = await a.create(ALICE, "small.bin", None, 10)
    with pytest.raises(TooBig):  # Content-Length says too much: refused unread
        await b.upload(buffer.id, keys.upload, chunks(b"x"), declared=5000)
    with pytest.raises(TooBig):  # Content-Length lies: cut off at the announced size
        await c.upload(buffer.id, keys.upload, chunks(b"x" * 5000), declared=10)
    for wrong in (keys.read, "guessed", ""):
        with pytest.raises(NotFound):
            await b.upload(buffer.id, wrong, chunks(b"x"))
    for odd in ("../../etc/passwd", "..", "x" * 22 + "/", ""):
        assert await c.get(odd) is None and not await c.delete(odd)
    assert incoming(a) == [] and not (await a.get(buffer.id)).uploaded  # type: ignore[union-attr]
    await b.upload(buffer.id, keys.upload, chunks(b"once"))
    with pytest.raises(AlreadyUploaded):
        await c.upload(buffer.id, keys.upload, chunks(b"twice"))
    late, late_keys = await a.create(ALICE, "late.txt", None, None)
    clock.now += 600
    with pytest.raises(Expired):
        await b.upload(late.id, late_keys.upload, chunks(b"late"))


async def test_two_uploads_into_one_buffer_through_two_processes_take_one(
    stores: list[SharedStore], postgres_url: str
) -> None:
    a, b, _ = stores
    buffer, keys = await a.create(ALICE, "a.txt", None, None)
    results = await asyncio.gather(
        a.upload(buffer.id, keys.upload, chunks(b"a" * 1000, 10)),
        b.upload(buffer.id, keys.upload, chunks(b"b" * 1000, 10)),
        return_exceptions=True,
    )
    assert sum(isinstance(result, AlreadyUploaded) for result in results) == 1
    (kept,) = [result for result in results if not isinstance(result, BaseException)]
    assert await b.get(buffer.id) == kept
    assert await counters(postgres_url) == {ALICE: (1000, 0)}
    assert incoming(a) == []


async def test_uploads_at_once_through_three_processes_fill_the_quota_exactly(
    stores: list[SharedStore], postgres_url: str
) -> None:
    """Eleven uploads of 1,000 bytes, each announced, against a 10,000-byte quota, all
    claimed before any sends a byte: exactly ten are taken, and the counters add up."""
    made = [await stores[0].create(ALICE, f"{n}.bin", None, 1000) for n in range(11)]
    arrived: list[int] = []
    everyone = asyncio.Event()

    async def together(data: bytes) -> AsyncIterator[bytes]:
        arrived.append(1)  # this upload is claimed and holds its room (or none)
        if len(arrived) == len(made):
            everyone.set()
        await everyone.wait()
        async for chunk in chunks(data, 100):
            yield chunk

    results = await asyncio.gather(
        *(
            stores[n % 3].upload(buffer.id, keys.upload, together(bytes([n]) * 1000))
            for n, (buffer, keys) in enumerate(made)
        ),
        return_exceptions=True,
    )
    refused = [result for result in results if isinstance(result, BaseException)]
    assert len(refused) == 1 and isinstance(refused[0], TooBig), refused
    assert refused[0].max_bytes == 0
    assert await counters(postgres_url) == {ALICE: (10_000, 0)}
    assert await stores[1].room(ALICE) == 0 and await stores[2].room(BOB) == 4096
    with pytest.raises(TooBig):
        await stores[2].create(ALICE, "more.bin", None, 1)


async def test_a_failed_or_cancelled_upload_gives_its_room_back(
    stores: list[SharedStore], postgres_url: str
) -> None:
    a, b, _ = stores
    buffer, keys = await a.create(ALICE, "a.bin", None, None)

    async def broken() -> AsyncIterator[bytes]:
        yield b"x" * 1000
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await a.upload(buffer.id, keys.upload, broken())
    assert await counters(postgres_url) == {ALICE: (0, 0)}
    started = asyncio.Event()

    async def endless() -> AsyncIterator[bytes]:
        while True:
            yield b"y" * 100
            started.set()
            await asyncio.sleep(0.01)

    task = asyncio.create_task(b.upload(buffer.id, keys.upload, endless()))
    await started.wait()
    assert await counters(postgres_url) == {ALICE: (0, 4096)}  # held while it runs
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await counters(postgres_url) == {ALICE: (0, 0)}
    assert incoming(a) == [] and list((a.root / "blobs").iterdir()) == []
    done = await a.upload(buffer.id, keys.upload, chunks(b"whole"))  # the url still takes it
    assert done.size == 5 and await counters(postgres_url) == {ALICE: (5, 0)}


async def test_permanent_copies_granted_anywhere_and_deleted_anywhere(
    stores: list[SharedStore], postgres_url: str, clock: Clock
) -> None:
    a, b, c = stores
    temporary, keys = await a.create(ALICE, "photo.png", "image/png", None)
    uploaded = await b.upload(temporary.id, keys.upload, chunks(PNG))
    granted = await asyncio.gather(  # a Post stored twice, by two processes at once
        b.grant(uploaded, BOB, PERMANENT_ID), c.grant(uploaded, BOB, PERMANENT_ID)
    )
    assert granted[0] == granted[1] == await a.get(PERMANENT_ID)
    mine = await c.grant(uploaded, ALICE, "m" * 22)
    assert (mine.kind, mine.expires, mine.key_hash, mine.upload_hash) == ("permanent", None, "", "")
    assert a.blob(mine) == c.blob(granted[0])  # one copy on disk
    # alice's temporary buffer and her own copy; bob's received copy costs him nothing
    assert await counters(postgres_url) == {ALICE: (2 * len(PNG), 0)}
    assert await a.delete(mine.id) and not await b.delete(mine.id)
    assert await c.get(mine.id) is None
    clock.now += 601
    removed = await b.collect_garbage()
    assert removed == Usage(buffers=1)  # the temporary buffer, for everyone
    assert await a.get(temporary.id) is None
    assert await counters(postgres_url) == {ALICE: (0, 0)}
    assert c.blob(granted[0]).read_bytes() == PNG  # bob's copy keeps the bytes
    assert await c.delete(PERMANENT_ID)
    assert await a.collect_garbage() == Usage(blobs=1)
    assert files_under(a.root) == []


async def collected_or_waiting(collection: asyncio.Task[Usage], url: str) -> None:
    """Until ``collection`` ends or waits for a lock in the test's database."""
    waiting = """SELECT count(*) FROM pg_locks WHERE NOT granted
        AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"""
    connection = await asyncpg.connect(url)
    try:
        # a lock waiting in PostgreSQL is seen by asking it, not by an event
        while not collection.done() and not await connection.fetchval(waiting):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    finally:
        await connection.close()


async def test_bytes_renewed_by_an_upload_while_another_process_collects_stay(
    stores: list[SharedStore], postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bytes of a deleted buffer are old and no buffer refers to them; an upload of
    the same bytes through b finds them and renews them, and a's collection runs right
    then and still sees them old (its file system's cached times, or a stat just before
    the renewal). The upload's buffer keeps its bytes."""
    a, b, c = stores
    first, keys = await a.create(ALICE, "first.png", None, None)
    blob = a.blob(await a.upload(first.id, keys.upload, chunks(PNG)))
    assert await a.delete(first.id)
    buffer, keys = await c.create(ALICE, "again.png", None, None)
    settle = b._blobs.settle
    collections: list[asyncio.Task[Usage]] = []

    async def settle_while_collected(incoming: Path, digest: str) -> None:
        await settle(incoming, digest)
        os.utime(blob, (0, 0))  # as a collector on another machine may still see it
        collections.append(asyncio.create_task(a.collect_garbage()))
        await collected_or_waiting(collections[0], postgres_url)

    monkeypatch.setattr(b._blobs, "settle", settle_while_collected)
    done = await b.upload(buffer.id, keys.upload, chunks(PNG))
    await collections[0]
    assert c.blob(done).read_bytes() == PNG
    assert await c.collect_garbage() == Usage()  # and the next collection keeps them too


async def test_a_folder_failing_as_an_upload_ends_is_unavailable_and_gives_the_room_back(
    stores: list[SharedStore],
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    a, b, _ = stores
    buffer, keys = await a.create(ALICE, "a.bin", None, None)

    async def full(incoming: Path, digest: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(b._blobs, "settle", full)
    with pytest.raises(Unavailable):
        await b.upload(buffer.id, keys.upload, chunks(b"bytes"))
    assert "file buffers' folder: OSError" in caplog.text and "database" not in caplog.text
    assert await counters(postgres_url) == {ALICE: (0, 0)} and incoming(a) == []
    monkeypatch.undo()
    assert (await a.upload(buffer.id, keys.upload, chunks(b"bytes"))).size == 5


async def test_a_copy_is_not_granted_over_bytes_collected_since_they_were_read(
    stores: list[SharedStore], clock: Clock
) -> None:
    """A copy granted from a temporary buffer read before it expired, after another
    process collected it and its bytes: no buffer without bytes is made."""
    a, b, c = stores
    temporary, keys = await a.create(ALICE, "photo.png", None, None)
    uploaded = await a.upload(temporary.id, keys.upload, chunks(PNG))
    clock.now += 601
    assert await b.collect_garbage() == Usage(buffers=1, blobs=1)
    with pytest.raises(NotFound):
        await c.grant(uploaded, BOB, PERMANENT_ID)
    assert await a.get(PERMANENT_ID) is None


async def test_an_upload_outlived_by_its_buffer_gives_its_room_back_once(
    stores: list[SharedStore], postgres_url: str, clock: Clock
) -> None:
    """The buffer expires during the upload and another process collects it (giving the
    room back); the upload's end finds it gone and gives nothing back again."""
    a, b, _ = stores
    buffer, keys = await a.create(ALICE, "slow.bin", None, 3000)
    halfway = asyncio.Event()
    resume = asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield b"s" * 1000
        halfway.set()
        await resume.wait()
        yield b"s" * 1000

    task = asyncio.create_task(a.upload(buffer.id, keys.upload, slow()))
    await halfway.wait()
    assert await counters(postgres_url) == {ALICE: (0, 3000)}
    clock.now += 601
    assert (await b.collect_garbage()).buffers == 1
    assert await counters(postgres_url) == {ALICE: (0, 0)}
    resume.set()
    with pytest.raises(Expired):
        await task
    assert await counters(postgres_url) == {ALICE: (0, 0)}
    assert incoming(a) == []


async def test_a_process_gone_during_an_upload_holds_its_room_until_the_buffer_expires(
    stores: list[SharedStore], postgres_url: str, clock: Clock
) -> None:
    """A process killed while uploading leaves its claim: the buffer takes no other
    upload and the room stays held, until the buffer is collected."""
    a, b, _ = stores
    buffer, keys = await a.create(ALICE, "lost.bin", None, 2000)
    crashed = BufferTable(postgres_url)
    await crashed.open()
    try:
        assert await crashed.hold(buffer, "token-of-a-dead-process", 2000, 10_000) == 2000
    finally:
        await crashed.close()
    with pytest.raises(AlreadyUploaded):
        await b.upload(buffer.id, keys.upload, chunks(b"again"))
    assert await b.room(ALICE) == 4096 and await counters(postgres_url) == {ALICE: (0, 2000)}
    clock.now += 601
    await b.collect_garbage()
    assert await counters(postgres_url) == {ALICE: (0, 0)}


async def test_a_database_that_cannot_be_reached_is_unavailable(tmp_path: Path) -> None:
    nowhere = SharedStore(
        tmp_path, "postgres://postgres@127.0.0.1:9/none", max_size=1, temp_ttl=1, quota=1
    )
    with pytest.raises(Unavailable) as refused:
        await nowhere.open()
    assert isinstance(refused.value.__cause__, OSError)
    with pytest.raises(Unavailable):  # not open: every step says so, none hangs
        await nowhere.get("a" * 22)


async def test_steps_queued_for_a_database_that_does_not_answer_are_unavailable(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database stops answering (its packets held) while one step runs on the only
    connection: a second step does not wait behind it (here the statement's own timeout
    is an hour) but is answered unavailable as soon as no connection comes free."""
    for name, seconds in (("COMMAND_TIMEOUT", 3600), ("CONNECT_TIMEOUT", 3600)):
        monkeypatch.setattr(storage, name, seconds)
    monkeypatch.setattr(storage, "ACQUIRE_TIMEOUT", 0.2)
    monkeypatch.setattr(storage, "POOL_SIZE", 1)
    server = urlsplit(postgres_url)
    async with tcp_proxy(server.port or 5432) as proxy:
        proxied = server._replace(netloc=f"{server.username}@127.0.0.1:{proxy.port}").geturl()
        store = SharedStore(tmp_path, proxied, max_size=10, temp_ttl=60, quota=100)
        await store.open()
        try:
            proxy.pause()
            steps = {asyncio.create_task(store.get(f"{n}" * 22)) for n in range(2)}
            done, waiting = await asyncio.wait(steps, return_when=asyncio.FIRST_COMPLETED)
            (first,) = done
            assert isinstance(first.exception(), Unavailable)
            proxy.heal()
            assert [await step for step in waiting] == [None]  # the one that held it ends
        finally:
            await store.close()
