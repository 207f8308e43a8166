"""Client frames cut by the transport itself (``signaling.appwebsocket.frames_in``): the
hub reads what a client writes byte for byte as ``websockets`` would, however the bytes
are split or joined, with control frames and fragments in between (RFC 6455 §5)."""

from __future__ import annotations

import asyncio
import json
import os
import re

import httpx
import pytest

from signaling.appwebsocket import closecodes
from signaling.appwebsocket.frames_in import apply_mask, frame_end
from tests.support import Phone, RunningServer, make_config, running_server

KEEPALIVE = {"mt": "KeepAlive"}


def frame(payload: bytes, *, first: int = 0x81, masked: bool = True) -> bytes:
    """One client frame: ``first`` is FIN, reserved bits and opcode."""
    size = len(payload)
    mask_bit = 0x80 if masked else 0
    if size < 126:
        header = bytes((first, mask_bit | size))
    elif size < 65536:
        header = bytes((first, mask_bit | 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((first, mask_bit | 127)) + size.to_bytes(8, "big")
    if not masked:
        return header + payload
    mask = os.urandom(4)
    return header + mask + apply_mask(payload, mask)


def text(message: dict[str, object]) -> bytes:
    return frame(json.dumps(message).encode())


def write(phone: Phone, data: bytes) -> None:
    phone.client._ws.transport.write(data)


# -- frame_end, pure ----------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536])
def test_frame_end_finds_the_payload_of_every_length_encoding(size: int) -> None:
    data = frame(b"x" * size)
    payload, stop = frame_end(data, 0, 1 << 20) or (0, 0)
    assert stop == len(data)
    assert stop - payload == size
    for cut in range(payload):  # a header not yet whole
        assert frame_end(data[:cut], 0, 1 << 20) is None


def test_frame_end_reads_from_an_offset_and_refuses_a_length_over_the_limit() -> None:
    data = b"junk" + frame(b"y" * 300)
    assert frame_end(data, 4, 1 << 20) == (4 + 8, len(data))
    assert frame_end(data, 4, 299) == (-1, -1)
    assert frame_end(frame(b"z" * 3, masked=False), 0, 10) == (2, 5)


# -- over a real connection ---------------------------------------------------------------


async def test_frames_joined_in_one_write_are_each_answered(server: RunningServer) -> None:
    phone = await server.phone("alice")
    write(phone, b"".join(text({"mt": "KeepAlive", "src": n}) for n in range(5)))
    assert [await phone.next() for _ in range(5)] == [
        {"mt": "KeepAlive", "src": n} for n in range(5)
    ]
    await phone.sync()


async def test_a_frame_written_byte_by_byte_is_read_whole(server: RunningServer) -> None:
    phone = await server.phone("alice")
    data = text({"mt": "KeepAlive", "src": "x" * 200}) + text({"mt": "KeepAlive", "src": 2})
    for index in range(len(data)):
        write(phone, data[index : index + 1])
        await asyncio.sleep(0)
    assert (await phone.next())["src"] == "x" * 200
    assert (await phone.next())["src"] == 2
    await phone.sync()


async def test_pings_and_fragments_between_text_frames_are_read_in_order(
    server: RunningServer,
) -> None:
    """A ping is answered (the client's ``ping()`` completes); a message in fragments
    (text without FIN, then continuations) arrives whole, between its neighbours."""
    phone = await server.phone("alice")
    whole = json.dumps({"mt": "KeepAlive", "src": "fragmented"}).encode()
    data = (
        text({"mt": "KeepAlive", "src": 1})
        + frame(b"ping", first=0x89)
        + frame(whole[:10], first=0x01)
        + frame(b"", first=0x8A)  # an unsolicited pong, allowed between fragments
        + frame(whole[10:20], first=0x00)
        + frame(whole[20:], first=0x80)
        + text({"mt": "KeepAlive", "src": 3})
    )
    write(phone, data)
    assert [(await phone.next())["src"] for _ in range(3)] == [1, "fragmented", 3]
    pong = await phone.client._ws.ping()
    await asyncio.wait_for(pong, 5)
    await phone.sync()


async def test_a_whole_text_frame_inside_a_fragmented_message_closes_1002(
    server: RunningServer,
) -> None:
    phone = await server.phone("alice")
    write(phone, frame(b'{"mt":', first=0x01) + text(KEEPALIVE))
    code, _ = await phone.client.wait_closed()
    assert code == closecodes.WS_1002_PROTOCOL_ERROR


async def test_frames_after_one_too_big_are_not_read() -> None:
    """The oversize frame is refused (1009) however it is joined with others, and what
    follows it in the same write is not answered."""
    async with running_server(make_config(max_frame=4096)) as server:
        phone = await server.phone("alice")
        big = text({"mt": "KeepAlive", "pad": "x" * 5000})
        write(phone, text({"mt": "KeepAlive", "src": 1}) + big + text(KEEPALIVE))
        assert await phone.next() == {"mt": "KeepAlive", "src": 1}
        code, _ = await phone.client.wait_closed()
        assert code == 1009
        fresh = await server.phone("bob")
        await fresh.sync()


async def test_a_message_of_64_kib_or_more_is_read() -> None:
    async with running_server(make_config(max_frame=1 << 20)) as server:
        phone = await server.phone("alice")
        write(phone, text({"mt": "KeepAlive", "src": "y" * 70_000}))
        assert (await phone.next())["src"] == "y" * 70_000
        await phone.sync()


async def test_bad_utf8_among_good_frames_closes_1007_after_the_good_ones(
    server: RunningServer,
) -> None:
    phone = await server.phone("alice")
    write(phone, text({"mt": "KeepAlive", "src": 1}) + frame(b'{"x":"\xff"}') + text(KEEPALIVE))
    assert await phone.next() == {"mt": "KeepAlive", "src": 1}
    code, _ = await phone.client.wait_closed()
    assert code == closecodes.WS_1007_INVALID_UTF8


async def test_frames_after_the_one_that_closes_in_the_same_write_are_not_answered(
    server: RunningServer,
) -> None:
    """The frames of one read are one event for the hub: the tenth bad frame closes the
    connection (4002) and what follows it in the same write is not answered."""
    phone = await server.phone("alice")
    bad = b"".join(frame(b"{not json") for _ in range(10))
    write(phone, text({"mt": "KeepAlive", "src": 1}) + bad + text({"mt": "KeepAlive", "src": 2}))
    assert await phone.next() == {"mt": "KeepAlive", "src": 1}
    answers = [await phone.next() for _ in range(10)]
    assert {answer["code"] for answer in answers} == {"bad_json"}
    code, _ = await phone.client.wait_closed()
    assert code == closecodes.WS_4002_TOO_MANY_BAD_MESSAGES
    fresh = await server.phone("bob")
    await fresh.sync()


async def test_every_frame_of_one_write_is_counted_in_the_frame_times(
    server: RunningServer,
) -> None:
    phone = await server.phone("alice")
    before = frame_count(await metrics(server))
    write(phone, b"".join(text({"mt": "KeepAlive", "src": n}) for n in range(5)))
    assert [(await phone.next())["src"] for _ in range(5)] == [0, 1, 2, 3, 4]
    page = await metrics(server)
    assert frame_count(page) == before + 5
    assert _sample(page, 'switchboard_frame_seconds_bucket{le="+Inf"}') == before + 5


async def metrics(server: RunningServer) -> str:
    async with httpx.AsyncClient(base_url=server.http, timeout=10) as http:
        answer = await http.get("/metrics")
    assert answer.status_code == 200
    return answer.text


def frame_count(page: str) -> float:
    return _sample(page, "switchboard_frame_seconds_count")


def _sample(page: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", page, re.MULTILINE)
    assert match, f"{name} not in metrics"
    return float(match.group(1))
