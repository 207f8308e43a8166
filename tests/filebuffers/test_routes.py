"""Upload and download over real HTTP (uvicorn on loopback, httpx): the refusals of §8.2
with their codes, the safe headers of §8.5, Range, and who may read what. Every test
runs over the local store and again over the shared one (PostgreSQL and a folder), so
that a node of a cluster keeps every rule one process keeps."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from config import Config
from filebuffers import Buffer, LocalStore, Owner, SharedStore
from filebuffers.routes import FileRoutes
from signaling.server import bound_socket, uvicorn_config
from tests.conftest import postgres_database

ALICE = Owner("example.com", "alice")
BOB = Owner("other.org", "bob")
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
SECRET = b"s" * 32

Store = LocalStore | SharedStore


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@dataclass
class Served:
    files: FileRoutes
    store: Store
    http: httpx.AsyncClient
    clock: Clock
    port: int

    async def temporary(self, data: bytes, name: str = "f.bin", mime: str = "") -> str:
        """A temporary buffer holding ``data``: its read url."""
        buffer, keys = await self.store.create(ALICE, name, mime or None, len(data))
        upload = self.files.upload_url(buffer, keys.upload)
        answer = await self.http.post(upload, content=data, headers={"Content-Type": mime or "x/y"})
        assert answer.status_code == 201, answer.text
        return self.files.read_url(buffer, keys.read)


@contextlib.asynccontextmanager
async def opened_store(kind: str, root: Path, clock: Clock) -> AsyncIterator[Store]:
    """The local store in ``root``, or the shared one over ``root`` and a fresh
    PostgreSQL database (skipped when there is none, failed in CI)."""
    async with contextlib.AsyncExitStack() as stack:
        store: Store
        if kind == "local":
            store = LocalStore(root, max_size=64 * 1024, temp_ttl=600, quota=10**7, clock=clock)
        else:
            database = await stack.enter_async_context(postgres_database())
            store = SharedStore(
                root, database, max_size=64 * 1024, temp_ttl=600, quota=10**7, clock=clock
            )
        await store.open()
        stack.push_async_callback(store.close)
        yield store


@pytest.fixture(params=["local", "shared"])
async def served(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Served]:
    clock = Clock()
    async with (
        opened_store(request.param, tmp_path / "files", clock) as store,
        serving(store, clock) as served,
    ):
        yield served


@contextlib.asynccontextmanager
async def serving(store: Store, clock: Clock) -> AsyncIterator[Served]:
    files = FileRoutes(store, SECRET, clock=clock)
    app = Starlette(routes=files.routes())
    sock = bound_socket("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn_config(app, Config(), log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    port = sock.getsockname()[1]
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.005)
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            yield Served(files, store, http, clock, port)
    finally:
        server.should_exit = True
        await task
        sock.close()


async def test_upload_answers_201_with_the_sniffed_type_and_hash(served: Served) -> None:
    buffer, keys = await served.store.create(ALICE, "pic.png", "text/html", len(PNG))
    answer = await served.http.post(
        served.files.upload_url(buffer, keys.upload),
        content=PNG,
        headers={"Content-Type": "text/html"},
    )
    assert answer.status_code == 201
    body = answer.json()
    assert (body["id"], body["size"], body["mime"]) == (buffer.id, len(PNG), "image/png")
    assert len(body["sha256"]) == 64


async def test_refusals_are_json_with_their_codes(served: Served) -> None:
    buffer, keys = await served.store.create(ALICE, "a.bin", None, None)
    url = served.files.upload_url(buffer, keys.upload)
    too_big = await served.http.post(url, content=b"x" * (64 * 1024 + 1))
    assert too_big.status_code == 413
    assert too_big.json() == {"code": "too_big", "text": "at most 65536 bytes", "max_bytes": 65536}
    wrong_key = await served.http.post(f"/messages/files/{buffer.id}?upload=nope", content=b"x")
    assert (wrong_key.status_code, wrong_key.json()["code"]) == (404, "not_found")
    assert (await served.http.post(url, content=b"ok")).status_code == 201
    again = await served.http.post(url, content=b"again")
    assert (again.status_code, again.json()["code"]) == (409, "bad_state")
    late, late_keys = await served.store.create(ALICE, "late.bin", None, None)
    served.clock.now += 601
    expired = await served.http.post(served.files.upload_url(late, late_keys.upload), content=b"x")
    assert (expired.status_code, expired.json()["code"]) == (410, "expired")
    odd = await served.http.post("/messages/files/..%2F..%2Fetc?upload=x", content=b"x")
    assert odd.status_code == 404


async def test_the_read_url_takes_no_upload_and_the_upload_url_reads_nothing(
    served: Served,
) -> None:
    """Whoever got the read url (every recipient of the message) is refused before the
    body is read, and the buffer stays empty for its creator; forged upload keys look
    like no buffer; the upload url reads nothing."""
    buffer, keys = await served.store.create(ALICE, "a.txt", "text/plain", 5)
    read = served.files.read_url(buffer, keys.read)
    upload = served.files.upload_url(buffer, keys.upload)
    assert keys.upload not in read and keys.read not in upload

    refused = await served.http.post(read, content=b"fake!")
    assert refused.status_code == 403
    assert refused.json() == {
        "code": "forbidden",
        "text": "this url only reads the file; upload to the url in CreateFileBufferResult.upload",
    }
    path = f"/messages/files/{buffer.id}"
    for forged in [
        f"{path}?upload={keys.read}",  # the read key where the upload key goes
        f"{path}?upload={keys.upload[:-1]}",
        f"{path}?upload=",
        f"{path}?key={keys.read}&upload=guessed",
        f"{path}?key=guessed",
        path,
    ]:
        answer = await served.http.post(forged, content=b"fake!")
        assert (answer.status_code, answer.json()["code"]) == (404, "not_found"), forged
    assert (await served.http.get(upload)).status_code == 404
    assert not (await served.store.get(buffer.id)).uploaded  # type: ignore[union-attr]
    assert list((served.store.root / "incoming").iterdir()) == []
    assert (await served.http.get(read)).status_code == 404  # nothing to read yet

    assert (await served.http.post(upload, content=b"mine!")).status_code == 201
    assert (await served.http.get(read)).content == b"mine!"
    again = await served.http.post(read, content=b"fake!")
    assert again.status_code == 403  # the read url never uploads, before or after
    assert (await served.http.get(read)).content == b"mine!"


async def test_a_post_to_the_read_url_is_refused_before_its_body(served: Served) -> None:
    """A recipient's huge POST is answered at once; no byte is read or kept."""
    buffer, keys = await served.store.create(ALICE, "big.bin", None, None)
    path = served.files.read_url(buffer, keys.read)
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 60000\r\n"
        "Expect: 100-continue\r\n\r\n".encode()
    )
    await writer.drain()
    head = await asyncio.wait_for(reader.read(4096), 5)  # no body was sent at all
    writer.close()
    assert head.startswith(b"HTTP/1.1 403"), head[:200]
    assert b'"code":"forbidden"' in head


@pytest.mark.parametrize(("announced", "limit"), [(10, 10), (None, 65536)])
async def test_a_body_bigger_than_said_is_cut_off_at_the_limit(
    served: Served, announced: int | None, limit: int
) -> None:
    """A chunked body (no Content-Length to refuse early) of 100 KiB: cut off as soon as
    it passes the size announced at CreateFileBuffer, else the file limit; nothing kept."""
    buffer, keys = await served.store.create(ALICE, "liar.bin", None, announced)
    path = served.files.upload_url(buffer, keys.upload)
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(f"POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
    with contextlib.suppress(ConnectionError):
        for _ in range(100):
            writer.write(b"400\r\n" + b"z" * 1024 + b"\r\n")
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
    head = await reader.read(4096)
    writer.close()
    assert head.startswith(b"HTTP/1.1 413"), head[:200]
    assert f'"max_bytes":{limit}'.encode() in head
    assert list((served.store.root / "incoming").iterdir()) == []
    assert not (await served.store.get(buffer.id)).uploaded  # type: ignore[union-attr]


async def test_a_declared_length_over_the_limit_is_refused_before_the_body(served: Served) -> None:
    buffer, keys = await served.store.create(ALICE, "big.bin", None, None)
    path = served.files.upload_url(buffer, keys.upload)
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n"
        "Expect: 100-continue\r\n\r\n".encode()
    )
    await writer.drain()
    head = await asyncio.wait_for(reader.read(4096), 5)  # no body was sent at all
    writer.close()
    assert head.startswith(b"HTTP/1.1 413"), head[:200]


async def test_html_and_svg_are_served_as_sandboxed_attachments(served: Served) -> None:
    for data, name, sniffed in [
        (b"<!doctype html><script>alert(1)</script>", "page.html", "text/html"),
        (
            b"<svg xmlns='http://www.w3.org/2000/svg'><script>x()</script></svg>",
            "i.svg",
            "image/svg+xml",
        ),
    ]:
        url = await served.temporary(data, name, "image/png")  # claimed an image
        answer = await served.http.get(url)
        assert answer.status_code == 200 and answer.content == data
        assert answer.headers["content-disposition"].startswith("attachment; ")
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["content-security-policy"] == "sandbox"
        assert answer.headers["content-type"].split(";")[0] == sniffed


async def test_images_are_shown_inline_and_names_come_back_safely(served: Served) -> None:
    url = await served.temporary(PNG, "../../\u202egnp.exe", "image/png")
    answer = await served.http.get(url)
    assert answer.headers["content-disposition"] == (
        "inline; filename=\"gnp.exe\"; filename*=UTF-8''gnp.exe"
    )
    assert answer.headers["content-security-policy"] == "sandbox"


async def test_range_requests_are_served(served: Served) -> None:
    url = await served.temporary(PNG, "p.png", "image/png")
    part = await served.http.get(url, headers={"Range": "bytes=8-15"})
    assert part.status_code == 206 and part.content == PNG[8:16]
    assert part.headers["content-range"] == f"bytes 8-15/{len(PNG)}"
    assert part.headers["x-content-type-options"] == "nosniff"
    tail = await served.http.get(url, headers={"Range": "bytes=-4"})
    assert tail.content == PNG[-4:]
    beyond = await served.http.get(url, headers={"Range": f"bytes={len(PNG) + 10}-"})
    assert beyond.status_code == 416


async def test_a_temporary_url_expires(served: Served) -> None:
    url = await served.temporary(b"soon gone", "a.txt", "text/plain")
    assert (await served.http.get(url)).status_code == 200
    served.clock.now += 601
    assert (await served.http.get(url)).status_code == 410


async def test_bytes_missing_from_the_folder_are_not_found(served: Served) -> None:
    """A folder not mounted on this node (or restored apart from the metadata): 404, as
    for no file, never a 500."""
    url = await served.temporary(b"somewhere else", "a.txt", "text/plain")
    (blob,) = (path for path in (served.store.root / "blobs").rglob("*") if path.is_file())
    blob.unlink()
    answer = await served.http.get(url)
    assert (answer.status_code, answer.json()["code"]) == (404, "not_found")


async def _permanent(served: Served) -> Buffer:
    buffer, keys = await served.store.create(ALICE, "doc.pdf", "application/pdf", None)
    await served.store.upload(buffer.id, keys.upload, _once(b"%PDF-1.7 body"))
    uploaded = await served.store.get(buffer.id)
    assert uploaded is not None
    return await served.store.grant(uploaded, BOB, secrets.token_urlsafe(16))


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def test_signed_urls_open_for_their_session_only_until_they_expire(served: Served) -> None:
    permanent = await _permanent(served)
    url = served.files.signed_url(permanent, "session-1", lifetime=60)
    answer = await served.http.get(url)
    assert answer.status_code == 200 and answer.content == b"%PDF-1.7 body"
    assert answer.headers["content-disposition"].startswith("attachment; ")
    other_session = url.replace("s=session-1", "s=session-2")
    assert (await served.http.get(other_session)).status_code == 403
    unsigned = f"/messages/files/{permanent.id}"
    assert (await served.http.get(unsigned)).status_code == 403
    with_a_key = f"/messages/files/{permanent.id}?key=anything"
    assert (await served.http.get(with_a_key)).status_code == 403
    served.clock.now += 61
    assert (await served.http.get(url)).status_code == 403


async def test_an_upload_cut_off_by_the_client_leaves_no_file(served: Served) -> None:
    buffer, keys = await served.store.create(ALICE, "half.bin", None, None)
    path = served.files.upload_url(buffer, keys.upload)
    _, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 50000\r\n\r\n".encode())
    writer.write(b"q" * 20000)
    await writer.drain()
    started = False
    for _ in range(200):  # until the server has started writing the upload
        started = any((served.store.root / "incoming").iterdir())
        if started:
            break
        await asyncio.sleep(0.01)
    assert started
    writer.close()  # gone with 30,000 bytes still to come
    for _ in range(200):
        if not any((served.store.root / "incoming").iterdir()):
            break
        await asyncio.sleep(0.01)
    assert list((served.store.root / "incoming").iterdir()) == []
    assert list((served.store.root / "blobs").iterdir()) == []
    assert not (await served.store.get(buffer.id)).uploaded  # type: ignore[union-attr]
    retry = await served.http.post(path, content=b"whole")  # the url still takes the file
    assert retry.status_code == 201


@pytest.mark.parametrize(
    ("name", "ascii_name"),
    [
        ("../../../etc/passwd", "passwd"),
        ("nul\x00byte.txt", "nulbyte.txt"),
        ("\u202eexe.txt", "exe.txt"),
        ("ünïcødé 文件.txt", "_n_c_d_ __.txt"),
        ("x" * 600 + ".txt", "x" * 251 + ".txt"),
    ],
)
async def test_odd_names_stay_names_and_come_back_safely(
    served: Served, name: str, ascii_name: str
) -> None:
    url = await served.temporary(b"plain words", name, "text/plain")
    disposition = (await served.http.get(url)).headers["content-disposition"]
    assert disposition.startswith(f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''")
    assert all(32 <= ord(char) < 127 for char in disposition)
    root = served.store.root.resolve()
    assert all(path.resolve().is_relative_to(root) for path in served.store.root.rglob("*"))
    made = {path.name for path in served.store.root.iterdir()}
    assert made - {"buffers"} == {"blobs", "incoming"}  # buffers/: the local store's metadata


def test_urls_can_name_another_origin(tmp_path: Path) -> None:
    store = LocalStore(tmp_path, max_size=1, temp_ttl=1, quota=1)
    files = FileRoutes(store, SECRET, base_url="https://files.example.com/")
    buffer = Buffer("b" * 22, "permanent", "d", "u", "n", "m", 1, "0" * 64, 0.0, None)
    base = "https://files.example.com/messages/files/" + "b" * 22
    assert files.read_url(buffer, "r") == base + "?key=r"
    assert files.upload_url(buffer, "u") == base + "?upload=u"
