"""Node frames as bytes, for a transport between processes (SCALE.md performance rule 3).

One stream entry carries the frames one switch forwarded to another in one turn of its
loop, as one JSON array of arrays: a one-letter tag, then the frame's fields in their
declared order. A ``sig`` that is already JSON text (an offer, a relayed message)
travels as a string and is never decoded on the way: the receiving switch puts its own
envelope around it. A device's ``sig`` (``FromDevice``, ``Join``) is an object the home
reads, so it travels as one. A ``ToLeg`` that relays a message carries its ``seq`` as a
fourth field; a delivery report (``Reached``) is its legs' numbers in a row, three by
three. Live support's frames (boards, Queue requests) carry their JSON objects as such;
agents who may take chats (``AgentChanged``) are a domain and a list of sips.
A registration's snapshot (docs 12.43), kept in Redis under its token's hash, has an
encoding of its own (``encode_snapshot``). Decoding checks each frame's shape: a
malformed entry raises ``BadFrame`` and is dropped whole by the transport, never
half-applied.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from signaling.core.nodes.frames import (
    AgentChanged,
    BoardNews,
    BoardState,
    DeviceAway,
    DeviceBack,
    DeviceGone,
    DeviceMoved,
    DeviceRecord,
    FromDevice,
    Join,
    NodeFrame,
    Offer,
    QueueAnswer,
    QueueAsk,
    Reached,
    Refused,
    Release,
    Snapshot,
    TakeOver,
    ToLeg,
)

from .errors import BadFrame

__all__ = [
    "decode_frames",
    "decode_record",
    "decode_snapshot",
    "encode_frames",
    "encode_record",
    "encode_snapshot",
]


def encode_record(record: DeviceRecord) -> list[Any]:
    return [record.node, record.ref, record.domain, record.sip, record.hw, sorted(record.flags)]


def decode_record(fields: Any) -> DeviceRecord:
    node, ref, domain, sip, hw, flags = fields
    if not (
        isinstance(node, str)
        and type(ref) is int
        and isinstance(domain, str)
        and isinstance(sip, str)
        and isinstance(hw, str)
        and isinstance(flags, list)
        and all(isinstance(flag, str) for flag in flags)
    ):
        raise BadFrame(f"not a device record: {fields!r}")
    return DeviceRecord(node, ref, domain, sip, hw, frozenset(flags))


def encode_snapshot(snapshot: Snapshot) -> bytes:
    """Domain and sip first: the script that takes a snapshot compares them."""
    s = snapshot
    return orjson.dumps([s.domain, s.sip, s.hw, sorted(s.flags), s.node, s.ref, list(s.homes)])


def decode_snapshot(data: bytes) -> Snapshot:
    try:
        domain, sip, hw, flags, node, ref, homes = orjson.loads(data)
    except (orjson.JSONDecodeError, ValueError, TypeError):
        raise BadFrame(f"not a snapshot: {data[:80]!r}") from None
    if not (
        all(isinstance(text, str) for text in (domain, sip, hw, node))
        and type(ref) is int
        and _strings(flags)
        and _strings(homes)
    ):
        raise BadFrame(f"not a snapshot: {data[:80]!r}")
    return Snapshot(domain, sip, hw, frozenset(flags), node, ref, tuple(homes))


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _seqs(seqs: tuple[tuple[str, int], ...]) -> list[list[Any]]:
    return [list(pair) for pair in seqs]


SupportFrame = BoardNews | BoardState | QueueAsk | QueueAnswer | AgentChanged


def _support_fields(frame: SupportFrame) -> list[Any]:
    if isinstance(frame, AgentChanged):
        return [frame.domain, list(frame.sips), frame.missed]
    if isinstance(frame, BoardNews):
        return [frame.domain, frame.queue, frame.mt, frame.body, frame.kept]
    if isinstance(frame, BoardState):
        return [list(chat) for chat in frame.chats]
    if isinstance(frame, QueueAsk):
        record = encode_record(frame.record) if frame.record is not None else None
        return [frame.ask, frame.domain, frame.sip, record, frame.body]
    return [frame.ask, frame.body, frame.leg]


def _fields(frame: NodeFrame) -> list[Any]:
    if isinstance(frame, SupportFrame):
        return _support_fields(frame)
    if type(frame) is ToLeg and frame.seq:
        return [frame.device, frame.leg, frame.sig, frame.seq]
    if isinstance(frame, Offer | ToLeg | Release | FromDevice):
        return [frame.device, frame.leg, frame.sig]
    if isinstance(frame, Reached):
        return [number for leg in frame.legs for number in leg]
    if isinstance(frame, Join):
        return [encode_record(frame.record), frame.leg, frame.sig]
    if isinstance(frame, Refused):
        return [frame.device, frame.leg, frame.code, frame.text]
    if isinstance(frame, DeviceAway):
        return [frame.device]
    if isinstance(frame, DeviceBack):
        return [frame.device, _seqs(frame.seqs)]
    if isinstance(frame, TakeOver):
        return [frame.device, frame.ref, _seqs(frame.seqs)]
    if isinstance(frame, DeviceMoved):
        return [frame.node, frame.device, frame.to, frame.ref, _seqs(frame.seqs)]
    return [frame.device, frame.cause]


_TAGS: dict[type[Any], str] = {
    Offer: "o",
    ToLeg: "t",
    Release: "r",
    FromDevice: "f",
    Join: "j",
    Refused: "x",
    DeviceAway: "a",
    DeviceBack: "b",
    DeviceGone: "g",
    Reached: "d",
    TakeOver: "k",
    DeviceMoved: "v",
    BoardNews: "n",
    BoardState: "s",
    QueueAsk: "q",
    QueueAnswer: "w",
    AgentChanged: "c",
}


def encode_frames(frames: list[NodeFrame]) -> bytes:
    return orjson.dumps([[_TAGS[type(frame)], *_fields(frame)] for frame in frames])


def _ints(*values: Any) -> bool:
    return all(type(value) is int for value in values)


def _text_frame(kind: type[Offer | Release]) -> Callable[[list[Any]], NodeFrame]:
    def build(fields: list[Any]) -> NodeFrame:
        device, leg, sig = fields
        if not (_ints(device, leg) and isinstance(sig, str)):
            raise BadFrame(f"bad {kind.__name__}: {fields!r}")
        return kind(device, leg, sig)

    return build


def _to_leg(fields: list[Any]) -> NodeFrame:
    """A ``ToLeg``, with the ``seq`` of the message it relays when it has a fourth field."""
    if len(fields) == 4:
        device, leg, sig, seq = fields
        if not (type(device) is int and type(leg) is int and type(seq) is int and seq > 0):
            raise BadFrame(f"bad ToLeg: {fields!r}")
    else:
        device, leg, sig = fields
        seq = 0
        if not (type(device) is int and type(leg) is int):
            raise BadFrame(f"bad ToLeg: {fields!r}")
    if not isinstance(sig, str):
        raise BadFrame(f"bad ToLeg: {fields!r}")
    return ToLeg(device, leg, sig, seq)


def _reached(fields: list[Any]) -> NodeFrame:
    if not fields or len(fields) % 3 or not all(type(number) is int for number in fields):
        raise BadFrame(f"bad Reached: {fields!r}")
    return Reached(tuple(zip(fields[0::3], fields[1::3], fields[2::3], strict=True)))


def _from_device(fields: list[Any]) -> NodeFrame:
    device, leg, sig = fields
    if not (_ints(device, leg) and isinstance(sig, dict)):
        raise BadFrame(f"bad FromDevice: {fields!r}")
    return FromDevice(device, leg, sig)


def _join(fields: list[Any]) -> NodeFrame:
    record, leg, sig = fields
    if not (type(leg) is int and isinstance(sig, dict)):
        raise BadFrame(f"bad Join: {fields!r}")
    return Join(decode_record(record), leg, sig)


def _refused(fields: list[Any]) -> NodeFrame:
    device, leg, code, text = fields
    if not (_ints(device, leg) and isinstance(code, str) and isinstance(text, str)):
        raise BadFrame(f"bad Refused: {fields!r}")
    return Refused(device, leg, code, text)


def _away(fields: list[Any]) -> NodeFrame:
    (device,) = fields
    if not _ints(device):
        raise BadFrame(f"bad DeviceAway: {fields!r}")
    return DeviceAway(device)


def _pairs(seqs: Any) -> tuple[tuple[str, int], ...]:
    """A client's seqs as a frame carries them: [name, seq] pairs."""
    if not isinstance(seqs, list):
        raise BadFrame(f"bad seqs: {seqs!r}")
    pairs: list[tuple[str, int]] = []
    for pair in seqs:
        if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str)):
            raise BadFrame(f"bad seqs: {seqs!r}")
        if not _ints(pair[1]):
            raise BadFrame(f"bad seqs: {seqs!r}")
        pairs.append((pair[0], pair[1]))
    return tuple(pairs)


def _back(fields: list[Any]) -> NodeFrame:
    device, seqs = fields
    if not _ints(device):
        raise BadFrame(f"bad DeviceBack: {fields!r}")
    return DeviceBack(device, _pairs(seqs))


def _take_over(fields: list[Any]) -> NodeFrame:
    device, ref, seqs = fields
    if not _ints(device, ref):
        raise BadFrame(f"bad TakeOver: {fields!r}")
    return TakeOver(device, ref, _pairs(seqs))


def _moved(fields: list[Any]) -> NodeFrame:
    node, device, to, ref, seqs = fields
    if not (isinstance(node, str) and isinstance(to, str) and _ints(device, ref)):
        raise BadFrame(f"bad DeviceMoved: {fields!r}")
    return DeviceMoved(node, device, to, ref, _pairs(seqs))


def _gone(fields: list[Any]) -> NodeFrame:
    device, cause = fields
    if not _ints(device, cause):
        raise BadFrame(f"bad DeviceGone: {fields!r}")
    return DeviceGone(device, cause)


def _board_news(fields: list[Any]) -> NodeFrame:
    domain, queue, mt, body, kept = fields
    if not (_texts(domain, queue, mt) and isinstance(body, dict) and type(kept) is bool):
        raise BadFrame(f"bad BoardNews: {fields!r}")
    return BoardNews(domain, queue, mt, body, kept)


def _board_state(fields: list[Any]) -> NodeFrame:
    chats: list[tuple[str, str, dict[str, Any]]] = []
    for chat in fields:
        if not (isinstance(chat, list) and len(chat) == 3 and _texts(*chat[:2])):
            raise BadFrame(f"bad BoardState: {chat!r}")
        if not isinstance(chat[2], dict):
            raise BadFrame(f"bad BoardState: {chat!r}")
        chats.append((chat[0], chat[1], chat[2]))
    return BoardState(tuple(chats))


def _queue_ask(fields: list[Any]) -> NodeFrame:
    ask, domain, sip, record, body = fields
    if not (_ints(ask) and _texts(domain, sip) and isinstance(body, dict)):
        raise BadFrame(f"bad QueueAsk: {fields!r}")
    return QueueAsk(ask, domain, sip, decode_record(record) if record is not None else None, body)


def _queue_answer(fields: list[Any]) -> NodeFrame:
    ask, body, leg = fields
    if not (_ints(ask, leg) and isinstance(body, dict)):
        raise BadFrame(f"bad QueueAnswer: {fields!r}")
    return QueueAnswer(ask, body, leg)


def _agent_changed(fields: list[Any]) -> NodeFrame:
    domain, sips, missed = fields
    if not (_texts(domain) and _strings(sips) and type(missed) is bool):
        raise BadFrame(f"bad AgentChanged: {fields!r}")
    return AgentChanged(domain, tuple(sips), missed)


def _texts(*values: Any) -> bool:
    return all(isinstance(value, str) for value in values)


_BUILDERS: dict[str, Callable[[list[Any]], NodeFrame]] = {
    "o": _text_frame(Offer),
    "t": _to_leg,
    "r": _text_frame(Release),
    "f": _from_device,
    "j": _join,
    "x": _refused,
    "a": _away,
    "b": _back,
    "g": _gone,
    "d": _reached,
    "k": _take_over,
    "v": _moved,
    "n": _board_news,
    "s": _board_state,
    "q": _queue_ask,
    "w": _queue_answer,
    "c": _agent_changed,
}


def decode_frames(data: bytes) -> list[NodeFrame]:
    """The frames of one entry, or ``BadFrame`` if any of them is not a frame."""
    try:
        items = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise BadFrame(f"not JSON: {exc}") from None
    if not isinstance(items, list):
        raise BadFrame("not a list of frames")
    frames: list[NodeFrame] = []
    for item in items:
        if not (isinstance(item, list) and item and isinstance(item[0], str)):
            raise BadFrame(f"not a frame: {item!r}")
        build = _BUILDERS.get(item[0])
        if build is None:
            raise BadFrame(f"unknown frame tag {item[0]!r}")
        try:
            frames.append(build(item[1:]))
        except (ValueError, TypeError):  # the wrong number or kind of fields
            raise BadFrame(f"bad frame: {item!r}") from None
    return frames
