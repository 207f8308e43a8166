"""Attachments end to end in one real server (PROTOCOL §8): CreateFileBuffer through
PbxMessages, the upload over HTTP, the url in ``im_message.attach``, and after the Post is
stored a permanent buffer per side, each listed with its own signed url.

alice and bob hold the ``messages`` licence in the demo tenant.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.integration.test_delete_chat import delete_chat
from tests.integration.test_messages import ask, drained, read_chat, session
from tests.support import RunningServer, connected_pair, make_config, running_server

PDF = b"%PDF-1.7\n" + b"report body " * 500


async def test_a_file_from_a_to_b_gets_a_permanent_copy_on_each_side(
    server: RunningServer,
) -> None:
    alice, bob, number = await connected_pair(server)
    await session(alice)
    (created,) = await ask(
        alice, "CreateFileBuffer", name="report.pdf", size=len(PDF), mime="application/pdf"
    )
    assert created["mt"] == "CreateFileBufferResult" and created["url"], created
    assert created["upload"] != created["url"]
    async with httpx.AsyncClient(base_url=server.http, timeout=10) as http:
        uploaded = await http.post(
            created["upload"], content=PDF, headers={"Content-Type": "application/pdf"}
        )
        assert uploaded.status_code == 201, uploaded.text
        assert uploaded.json()["mime"] == "application/pdf"

        await alice.say(1, "the report", attach=created["url"])
        relayed = await bob.fty(number)
        assert relayed["attach"] == created["url"]
        online = await http.get(relayed["attach"])  # bob was online: the url he got works
        assert online.status_code == 200 and online.content == PDF

        await drained(server)
        await session(bob)
        (mine,) = await read_chat(alice, "bob")
        (theirs,) = await read_chat(bob, "alice")
        (alice_files,) = await ask(alice, "Attachments", id=mine["id"])
        (bob_files,) = await ask(bob, "Attachments", id=theirs["id"])
        (a,) = alice_files["files"]
        (b,) = bob_files["files"]
        assert a["id"] != b["id"] and a["url"] != b["url"]
        assert (a["name"], a["size"], a["mime"]) == ("report.pdf", len(PDF), "application/pdf")
        assert (b["name"], b["size"]) == ("report.pdf", len(PDF))
        for url in (a["url"], b["url"]):
            answer = await http.get(url)
            assert answer.status_code == 200 and answer.content == PDF
            assert answer.headers["content-disposition"].startswith("attachment; ")

        (refused,) = await ask(bob, "Attachments", id=mine["id"])  # alice's row, not his
        assert refused["mt"] == "Error" and refused["code"] == "not_found"

        (deleted,) = await ask(alice, "Delete", id=mine["id"])
        assert deleted["mt"] == "DeleteResult"
        assert (await http.get(a["url"])).status_code == 404  # alice's copy is gone
        kept = await http.get(b["url"])
        assert kept.status_code == 200 and kept.content == PDF  # bob's is not


async def test_a_message_cannot_claim_someone_elses_file(server: RunningServer) -> None:
    """bob forwards the url of alice's upload in a message of his own: it is relayed as
    text, but nobody is granted a copy of a file bob did not upload."""
    alice, bob, number = await connected_pair(server)
    await session(alice)
    (created,) = await ask(alice, "CreateFileBuffer", name="private.txt", size=6)
    async with httpx.AsyncClient(base_url=server.http, timeout=10) as http:
        assert (await http.post(created["upload"], content=b"secret")).status_code == 201
    await bob.say(number, "look", attach=created["url"])
    await alice.fty(1)
    await drained(server)
    await session(bob)
    (his,) = await read_chat(bob, "alice")
    (listed,) = await ask(bob, "Attachments", id=his["id"])
    assert listed == {
        "api": "PbxMessages",
        "mt": "AttachmentsResult",
        "files": [],
        "src": listed["src"],
    }


async def test_a_recipient_cannot_fill_a_buffer_the_author_has_not_uploaded_yet(
    server: RunningServer,
) -> None:
    """alice sends the url before she uploads (a client may): bob, who got it in the
    message, is refused a POST to it, and so is a forged upload key; the buffer stays
    empty, alice's upload then goes in, and bob reads her file from the same url."""
    alice, bob, number = await connected_pair(server)
    await session(alice)
    (created,) = await ask(alice, "CreateFileBuffer", name="plan.txt", size=5)
    await alice.say(1, "coming", attach=created["url"])
    relayed = await bob.fty(number)
    assert "upload" not in relayed and created["upload"] not in str(relayed)
    got = relayed["attach"]
    async with httpx.AsyncClient(base_url=server.http, timeout=10) as http:
        refused = await http.post(got, content=b"evil!", headers={"Content-Type": "text/plain"})
        assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")
        buffer_path = got.split("?", 1)[0]
        read_key = got.split("key=", 1)[1]
        for forged in (f"{buffer_path}?upload={read_key}", f"{buffer_path}?upload=x" + read_key):
            answer = await http.post(forged, content=b"evil!")
            assert (answer.status_code, answer.json()["code"]) == (404, "not_found")
        assert (await http.get(got)).status_code == 404  # still empty

        uploaded = await http.post(created["upload"], content=b"plan!")
        assert uploaded.status_code == 201, uploaded.text
        assert (await http.get(got)).content == b"plan!"
        again = await http.post(created["upload"], content=b"more!")
        assert (again.status_code, again.json()["code"]) == (409, "bad_state")
        assert (await http.post(got, content=b"evil!")).status_code == 403


async def test_an_announced_size_over_the_limit_is_refused_before_any_upload(
    server: RunningServer,
) -> None:
    alice = await server.phone("alice")
    await session(alice)
    (answer,) = await ask(alice, "CreateFileBuffer", name="huge.iso", size=26 * 1024 * 1024)
    assert answer["mt"] == "CreateFileBufferResult"
    assert (answer["error"], answer["code"], answer["max_bytes"]) == (
        True,
        "too_big",
        25 * 1024 * 1024,
    )


async def test_one_upload_in_two_messages_gives_each_message_its_own_copy(
    server: RunningServer,
) -> None:
    alice, bob, number = await connected_pair(server)
    await session(alice)
    (created,) = await ask(alice, "CreateFileBuffer", name="twice.txt", size=5)
    async with httpx.AsyncClient(base_url=server.http, timeout=10) as http:
        assert (await http.post(created["upload"], content=b"twice")).status_code == 201
        await alice.say(1, "first", attach=created["url"])
        await alice.say(1, "second", attach=created["url"])
        await bob.fty(number)
        await bob.fty(number)
        await drained(server)
        second, first = await read_chat(alice, "bob")
        (listed_first,) = await ask(alice, "Attachments", id=first["id"])
        (listed_second,) = await ask(alice, "Attachments", id=second["id"])
        (one,) = listed_first["files"]
        (two,) = listed_second["files"]
        assert one["id"] != two["id"]
        await ask(alice, "Delete", id=first["id"])
        assert (await http.get(one["url"])).status_code == 404
        assert (await http.get(two["url"])).content == b"twice"  # the other message keeps it


async def test_deleting_a_whole_chat_releases_that_sides_files(tmp_path: Path) -> None:
    """docs/protocol.md 12.32: ``DeleteChat`` takes the deleter's permanent buffers with its
    copy; with ``delete_chat = "both"`` the other side's go too."""
    for mode, bob_keeps in (("own", True), ("both", False)):
        config = delete_chat(make_config(), mode)
        async with running_server(config, data_dir=tmp_path / mode) as server:
            alice, bob, number = await connected_pair(server)
            await session(alice)
            (created,) = await ask(alice, "CreateFileBuffer", name="plan.txt", size=5)
            async with httpx.AsyncClient(base_url=server.http, timeout=10) as http:
                assert (await http.post(created["upload"], content=b"plan!")).status_code == 201
                await alice.say(1, "the plan", attach=created["url"])
                await alice.say(1, "and no file")
                await bob.fty(number)
                await bob.fty(number)
                await drained(server)
                await session(bob)
                files = {}
                for phone, peer in ((alice, "bob"), (bob, "alice")):
                    with_file = (await read_chat(phone, peer))[-1]
                    (listed,) = await ask(phone, "Attachments", id=with_file["id"])
                    files[phone.sip] = listed["files"][0]["url"]
                (result,) = await ask(alice, "DeleteChat", sip="bob")
                assert (result["mt"], result["removed"]) == ("DeleteChatResult", 2), result
                assert (await http.get(files["alice"])).status_code == 404, mode
                kept = await http.get(files["bob"])
                assert (kept.status_code == 200) is bob_keeps, (mode, kept.status_code)
