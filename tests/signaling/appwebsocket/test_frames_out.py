"""Client text frames built by ``signaling.appwebsocket.frames_out``: a server that
parses with ``websockets`` reads each payload back whole, in order, at every length
class of RFC 6455 §5.2, each frame masked with a key of its own."""

from __future__ import annotations

from websockets.frames import Opcode
from websockets.protocol import CLIENT, SERVER, Protocol, State

from signaling.appwebsocket.frames_out import masked_texts, text_header

SIZES = (0, 1, 125, 126, 127, 65535, 65536, 70000)


def parsed(data: bytes) -> list[tuple[Opcode, bool, bytes]]:
    server = Protocol(SERVER, state=State.OPEN, max_size=None)
    server.receive_data(data)
    assert server.parser_exc is None
    return [(frame.opcode, frame.fin, frame.data) for frame in server.events_received()]


def test_every_length_class_reads_back_whole_and_in_order() -> None:
    payloads = [bytes((65 + n % 26,)) * size for n, size in enumerate(SIZES)]
    payloads.append("grüße, ☃".encode())
    frames = parsed(masked_texts(payloads))
    assert frames == [(Opcode.TEXT, True, payload) for payload in payloads]


def test_each_length_has_its_shortest_header() -> None:
    """§5.2: the payload length in the fewest bytes that hold it (a parser may accept a
    longer form; the RFC does not)."""
    cases = {
        125: b"\x81\xfd",
        126: b"\x81\xfe\x00\x7e",
        65535: b"\x81\xfe\xff\xff",
        65536: b"\x81\xff\x00\x00\x00\x00\x00\x01\x00\x00",
    }
    for size, header in cases.items():
        data = masked_texts([b"y" * size])
        assert data[: len(header)] == header
        assert len(data) == len(header) + 4 + size


def test_each_frame_has_its_own_mask() -> None:
    payload = b"x" * 40
    data = masked_texts([payload] * 50)
    step = 2 + 4 + len(payload)
    assert len(data) == 50 * step
    keys = {data[n * step + 2 : n * step + 6] for n in range(50)}
    assert len(keys) > 45  # 32 random bits each: a repeat among 50 is near impossible
    bodies = {data[n * step + 6 : (n + 1) * step] for n in range(50)}
    assert payload not in bodies and len(bodies) == len(keys)


def test_no_payloads_no_bytes() -> None:
    assert masked_texts([]) == b""


def test_a_server_header_reads_back_unmasked_at_every_length_class() -> None:
    """The same headers without the mask bit, as the hub's transport writes its frames:
    a client's parser reads each payload back, and the lengths are the shortest."""
    client = Protocol(CLIENT, state=State.OPEN, max_size=None)
    payloads = [b"z" * size for size in SIZES]
    client.receive_data(b"".join(text_header(len(p)) + p for p in payloads))
    assert client.parser_exc is None
    assert [frame.data for frame in client.events_received()] == payloads
    assert [len(text_header(size)) for size in (125, 126, 65535, 65536)] == [2, 4, 4, 10]
