"""File buffers shared by replicas of the messages service (SCALE.md decision 9;
docs/protocol.md 12.45): three services on real uvicorn servers, one PostgreSQL
database (``cluster.database``, here also the messages' own) and one folder
(``files.dir``). A buffer made through replica a takes its upload through b and is read
through c; the permanent copies of a stored message are listed and read through any;
uploads at once through all three fill the quota exactly; a buffer expired or deleted
through one is gone through the others; an oversize upload is refused by every one.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from config import Config
from filebuffers import Owner
from messages_service import create_messages_app
from tests.messages_service.support import (
    DOMAIN,
    RunningService,
    Session,
    chat_post,
    running_service,
    service_config,
)
from tests.tcp_proxy import TcpProxy, tcp_proxy

PDF = b"%PDF-1.7\n" + b"report body " * 500
ALICE = Owner(DOMAIN, "alice")
TEMP_TTL = 600.0


class Clock:
    """Wall time that the test moves forward, shared by the three replicas; it starts at
    the real time because collection compares it with the times files were written."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def replica_config(database: str, folder: Path, data_dir: Path, **files: int) -> Config:
    config = service_config(database)
    return replace(
        config,
        server=replace(config.server, data_dir=data_dir),
        cluster=replace(config.cluster, database=database),
        files=replace(config.files, dir=str(folder), temp_ttl=TEMP_TTL, **files),
    )


@contextlib.asynccontextmanager
async def three_replicas(
    tmp_path: Path, database: str, clock: Clock, **files: int
) -> AsyncIterator[list[RunningService]]:
    async with contextlib.AsyncExitStack() as stack:
        running = []
        for name in "abc":
            config = replica_config(database, tmp_path / "shared", tmp_path / name, **files)
            make_app = functools.partial(create_messages_app, clock=clock)
            running.append(await stack.enter_async_context(running_service(config, make_app)))
        yield running


def http(replica: RunningService) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{replica.port}", timeout=10)


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def test_made_on_a_uploaded_on_b_read_on_c_and_a_copy_for_each_side(
    tmp_path: Path, postgres_url: str, clock: Clock
) -> None:
    async with three_replicas(tmp_path, postgres_url, clock) as (a, b, c):
        alice = (await a.hub()).user("alice")
        created = await alice.one(
            "CreateFileBuffer", name="report.pdf", size=len(PDF), mime="application/pdf"
        )
        assert created["mt"] == "CreateFileBufferResult", created
        async with http(a) as on_a, http(b) as on_b, http(c) as on_c:
            uploaded = await on_b.post(
                created["upload"], content=PDF, headers={"Content-Type": "text/html"}
            )
            assert uploaded.status_code == 201, uploaded.text
            assert uploaded.json()["mime"] == "application/pdf"  # the bytes decide, anywhere
            assert sorted(p.name for p in (tmp_path / "shared").iterdir()) == ["blobs", "incoming"]
            read = await on_c.get(created["url"])
            assert read.status_code == 200 and read.content == PDF
            assert read.headers["content-disposition"].startswith("attachment; ")
            assert read.headers["x-content-type-options"] == "nosniff"
            assert read.headers["content-security-policy"] == "sandbox"
            again = await on_a.post(created["upload"], content=b"again")
            assert (again.status_code, again.json()["code"]) == (409, "bad_state")
            filled = await on_c.post(created["url"], content=b"fake")  # the read url
            assert (filled.status_code, filled.json()["code"]) == (403, "forbidden")

            stored = await (await b.hub()).post(
                1, **chat_post("alice", "bob", 1, "the report", attach=created["url"])
            )
            assert stored["mt"] == "PostResult", stored
            bob = (await c.hub()).user("bob")
            (theirs,) = await bob.read("alice")
            listed = await bob.one("Attachments", id=theirs["id"])
            (file,) = listed["files"]
            assert (file["name"], file["size"], file["mime"]) == (
                "report.pdf",
                len(PDF),
                "application/pdf",
            )
            for replica in (on_a, on_b):  # a url signed by c opens through every replica
                answer = await replica.get(file["url"])
                assert answer.status_code == 200 and answer.content == PDF

            alice_on_b = (await b.hub()).user("alice")
            (mine,) = await alice_on_b.read("bob")
            (own,) = (await alice.one("Attachments", id=mine["id"]))["files"]
            assert own["id"] != file["id"]
            deleted = await alice_on_b.one("Delete", id=mine["id"])
            assert deleted["mt"] == "DeleteResult", deleted
            assert (await on_c.get(own["url"])).status_code == 404  # gone for every replica
            kept = await on_a.get(file["url"])
            assert kept.status_code == 200 and kept.content == PDF  # bob's copy is his


async def test_uploads_at_once_on_three_replicas_fill_the_quota_exactly(
    tmp_path: Path, postgres_url: str, clock: Clock
) -> None:
    """Eleven announced uploads of 1,000 bytes, against a quota of 10,000, sent at once
    through the three replicas: ten are taken, one is refused, and nothing more fits."""
    async with three_replicas(tmp_path, postgres_url, clock, quota=10_000) as replicas:
        alice = (await replicas[0].hub()).user("alice")
        made = [await alice.one("CreateFileBuffer", name=f"{n}.bin", size=1000) for n in range(11)]
        async with contextlib.AsyncExitStack() as stack:
            clients = [await stack.enter_async_context(http(replica)) for replica in replicas]
            answers = await asyncio.gather(
                *(
                    clients[n % 3].post(created["upload"], content=bytes([n]) * 1000)
                    for n, created in enumerate(made)
                )
            )
        statuses = sorted(answer.status_code for answer in answers)
        assert statuses == [201] * 10 + [413], [answer.text for answer in answers]
        assert [await r.service.file_store.used(ALICE) for r in replicas] == [10_000] * 3
        refused = await (await replicas[2].hub()).user("alice").one("CreateFileBuffer", size=1)
        assert (refused["code"], refused["max_bytes"]) == ("too_big", 0)


async def test_a_buffer_expired_or_deleted_through_one_replica_is_gone_for_the_others(
    tmp_path: Path, postgres_url: str, clock: Clock
) -> None:
    async with three_replicas(tmp_path, postgres_url, clock) as (a, b, c):
        alice = (await a.hub()).user("alice")
        full = await alice.one("CreateFileBuffer", name="full.txt", size=5)
        empty = await alice.one("CreateFileBuffer", name="empty.txt")
        async with http(b) as on_b, http(c) as on_c:
            assert (await on_b.post(full["upload"], content=b"words")).status_code == 201
            clock.now += TEMP_TTL + 1
            late = await on_c.get(full["url"])
            assert (late.status_code, late.json()["code"]) == (410, "expired")
            late = await on_b.post(empty["upload"], content=b"late")
            assert (late.status_code, late.json()["code"]) == (410, "expired")

            removed = await a.service.file_store.collect_garbage()  # a's collector runs
            assert removed.buffers == 2
            for answer in (
                await on_c.get(full["url"]),
                await on_b.get(full["url"]),
                await on_c.post(empty["upload"], content=b"late"),
            ):
                assert (answer.status_code, answer.json()["code"]) == (404, "not_found")
        assert await b.service.file_store.used(ALICE) == 0


async def test_an_oversize_upload_is_refused_on_every_replica(
    tmp_path: Path, postgres_url: str, clock: Clock
) -> None:
    async with three_replicas(tmp_path, postgres_url, clock, max_size=4096) as replicas:
        for replica in replicas:
            alice = (await replica.hub()).user("alice")
            refused = await alice.one("CreateFileBuffer", size=4097)
            assert (refused["code"], refused["max_bytes"]) == ("too_big", 4096)
        alice = (await replicas[0].hub()).user("alice")
        created = await alice.one("CreateFileBuffer", name="liar.bin")

        async def chunked() -> AsyncIterator[bytes]:
            for _ in range(5):
                yield b"z" * 1000

        async with http(replicas[1]) as on_b, http(replicas[2]) as on_c:
            declared = await on_b.post(created["upload"], content=b"z" * 5000)
            assert declared.status_code == 413
            assert declared.json() == {
                "code": "too_big",
                "text": "at most 4096 bytes",
                "max_bytes": 4096,
            }
            streamed = await on_c.post(created["upload"], content=chunked())  # no length
            assert (streamed.status_code, streamed.json()["max_bytes"]) == (413, 4096)
            assert list((tmp_path / "shared" / "incoming").iterdir()) == []
            assert (await on_b.get(created["url"])).status_code == 404  # nothing was kept
            retry = await on_c.post(created["upload"], content=b"z" * 4096)
            assert retry.status_code == 201  # the url still takes a file within the limit
        assert await replicas[0].service.file_store.used(ALICE) == 4096


@contextlib.asynccontextmanager
async def files_behind_a_proxy(
    tmp_path: Path, postgres_url: str, clock: Clock
) -> AsyncIterator[tuple[RunningService, httpx.AsyncClient, TcpProxy]]:
    """One service whose database of file buffers is reached through a proxy the test
    cuts (the messages' own database is reached directly)."""
    server = urlsplit(postgres_url)
    async with tcp_proxy(server.port or 5432) as proxy:
        proxied = server._replace(netloc=f"{server.username}@127.0.0.1:{proxy.port}").geturl()
        config = replica_config(postgres_url, tmp_path / "shared", tmp_path / "a")
        config = replace(config, cluster=replace(config.cluster, database=proxied))
        make_app = functools.partial(create_messages_app, clock=clock)
        async with running_service(config, make_app) as service, http(service) as client:
            yield service, client, proxy


async def uploaded(alice: Session, client: httpx.AsyncClient) -> str:
    """The read url of a new buffer of alice's holding ``PDF``."""
    created = await alice.one("CreateFileBuffer", name="report.pdf")
    assert (await client.post(created["upload"], content=PDF)).status_code == 201
    return str(created["url"])


async def test_a_post_whose_files_cannot_be_granted_now_is_unavailable_and_granted_when_resent(
    tmp_path: Path, postgres_url: str, clock: Clock
) -> None:
    """The database of file buffers is cut when a Post with an attachment is stored:
    the Post is answered unavailable, so the hub keeps it and resends it, and the resend
    grants the file to every side instead of the message being kept without it."""
    async with files_behind_a_proxy(tmp_path, postgres_url, clock) as (service, client, proxy):
        hub = await service.hub()
        url = await uploaded(hub.user("alice"), client)
        post = chat_post("alice", "bob", 1, "the report", attach=url)
        proxy.cut()
        refused = await hub.post(1, **post)
        assert (refused["mt"], refused["code"]) == ("Error", "unavailable"), refused
        proxy.heal()
        stored = await hub.post(1, **post)  # the hub's resend
        assert stored["mt"] == "PostResult", stored
        bob = hub.user("bob")
        (theirs,) = await bob.read("alice")
        (file,) = (await bob.one("Attachments", id=theirs["id"]))["files"]
        answer = await client.get(file["url"])
        assert answer.status_code == 200 and answer.content == PDF


async def test_a_deletion_whose_files_cannot_be_forgotten_now_deletes_nothing(
    tmp_path: Path, postgres_url: str, clock: Clock
) -> None:
    """``Delete`` and ``DeleteChat`` while the database of file buffers is cut are
    answered unavailable with every row still there, so asking again deletes them and
    their files; had the rows gone first, alice's own copies of her files would count
    toward her quota for ever, with no message left to delete."""
    async with files_behind_a_proxy(tmp_path, postgres_url, clock) as (service, client, proxy):
        hub = await service.hub()
        alice = hub.user("alice")
        for seq in (1, 2):
            post = chat_post("alice", "bob", seq, "a file", attach=await uploaded(alice, client))
            assert (await hub.post(seq, **post))["mt"] == "PostResult"
        newest, _ = await alice.read("bob")
        proxy.cut()
        for refused in (
            await alice.one("Delete", id=newest["id"]),
            await alice.one("DeleteChat", sip="bob"),
        ):
            assert (refused["mt"], refused["code"]) == ("Error", "unavailable"), refused
        assert len(await alice.read("bob")) == 2
        proxy.heal()
        assert (await alice.one("Delete", id=newest["id"]))["mt"] == "DeleteResult"
        assert (await alice.one("DeleteChat", sip="bob"))["mt"] == "DeleteChatResult"
        clock.now += TEMP_TTL + 1  # and her temporary buffers expire
        assert (await service.service.file_store.collect_garbage()).buffers == 2
        assert await service.service.file_store.used(ALICE) == 0
