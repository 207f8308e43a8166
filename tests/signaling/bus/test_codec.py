"""Node frames survive the trip through bytes, and anything else is refused whole."""

from __future__ import annotations

import orjson
import pytest

from signaling.bus.codec import decode_frames, decode_snapshot, encode_frames, encode_snapshot
from signaling.bus.errors import BadFrame
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

RECORD = DeviceRecord("a.1", 7, "example.com", "bob", "phone", frozenset({"NO_MEDIA_CALL"}))

EVERY_KIND: list[NodeFrame] = [
    Offer(3, 12, '{"type":"setup","cg":{"sip":"alice"}}'),
    ToLeg(3, 12, '{"type":"facility","fty":[{"type":"im_message","data":"\\u2028 😀"}]}'),
    ToLeg(3, 12, '{"type":"facility","fty":[{"type":"im_message","seq":9}]}', 9),
    Release(3, 12, '{"type":"rel","cau":{"loc":1,"num":16}}'),
    FromDevice(3, 12, {"type": "conn", "nested": {"x": [1, 2.5, None, True]}}),
    Join(RECORD, 4, {"type": "setup", "cd": {"sip": "group"}}),
    Refused(3, 12, "bad_state", "no such call"),
    DeviceAway(3),
    DeviceBack(3, (("call-1", 5), ("call-2", 0))),
    DeviceGone(3, 41),
    Reached(((3, -1, 9), (4, -7, 120))),
    TakeOver(3, 8, (("conf-1", 5),)),
    DeviceMoved("b.2", 3, "c.3", 8, (("conf-1", 5), ("leg-2", 0))),
    BoardNews("example.com", "desk", "ChatTaken", {"chat": {"confId": "c1"}}, True),
    BoardState((("example.com", "desk", {"confId": "c1"}), ("x.org", "help", {}))),
    BoardState(()),
    QueueAsk(5, "example.com", "bob", RECORD, {"mt": "Take", "confId": "c1"}),
    QueueAsk(6, "example.com", "bob", None, {"mt": "Close", "confId": "c1"}),
    QueueAnswer(5, {"mt": "TakeResult", "confId": "c1", "call": -3}, -3),
    AgentChanged("example.com", ("alice",)),
    AgentChanged("example.com", ("alice", "bob"), missed=True),
]


def test_every_kind_of_frame_comes_back_as_it_was_sent() -> None:
    assert decode_frames(encode_frames(EVERY_KIND)) == EVERY_KIND


def test_a_pre_encoded_sig_travels_as_the_same_text() -> None:
    sig = '{"b":1,"a":2}'  # not re-ordered, not re-encoded
    (frame,) = decode_frames(encode_frames([ToLeg(1, 2, sig)]))
    assert isinstance(frame, ToLeg) and frame.sig == sig


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b'{"o": 1}',
        b'[["o", 1, 2]]',
        b'[["o", 1, 2, {}]]',
        b'[["z", 1]]',
        b"[[]]",
        b'[["a", "3"]]',
        b'[["a", true]]',
        b'[["b", 3, [["c", "1"]]]]',
        b'[["j", ["a.1", 7, "d", "s", "hw", [1]], 4, {}]]',
        b'[["g", 3]]',
        b'[["j", 5, 4, {}]]',
        b'[["b", 3, 7]]',
        b'[["t", 1, 2, "{}", 0]]',
        b'[["t", 1, 2, "{}", "9"]]',
        b'[["t", 1, 2, "{}", 9, 9]]',
        b'[["d"]]',
        b'[["d", 3, -1]]',
        b'[["d", 3, -1, "9"]]',
        b'[["k", 3, 8]]',
        b'[["k", 3, "8", []]]',
        b'[["k", 3, 8, [["c", 1, 2]]]]',
        b'[["v", "b.2", 3, "c.3", 8]]',
        b'[["v", 2, 3, "c.3", 8, []]]',
        b'[["v", "b.2", 3, "c.3", 8, {}]]',
        b'[["n", "d", "q", "ChatTaken", {}, 1]]',
        b'[["n", "d", "q", "ChatTaken", [], true]]',
        b'[["s", "d", "q", {}]]',
        b'[["s", ["d", 7, {}]]]',
        b'[["q", 5, "d", "bob", null, []]]',
        b'[["q", 5, "d", "bob", [1], {}]]',
        b'[["w", 5, {}, "3"]]',
        b'[["w", 5, {}]]',
        b'[["c", "example.com"]]',
        b'[["c", "example.com", ["alice"]]]',
        b'[["c", "example.com", "alice", false]]',
        b'[["c", "example.com", ["alice", 7], false]]',
        b'[["c", "example.com", ["alice"], 0]]',
    ],
)
def test_a_malformed_entry_is_refused_whole(data: bytes) -> None:
    with pytest.raises(BadFrame):
        decode_frames(data)


def test_one_bad_frame_among_good_ones_refuses_the_entry() -> None:
    good = orjson.loads(encode_frames(EVERY_KIND[:2]))
    with pytest.raises(BadFrame):
        decode_frames(orjson.dumps([*good, ["x", 1]]))


SNAPSHOT = Snapshot("example.com", "bob", "phone", frozenset({"NO_MEDIA_CALL"}), "b.2", 3, ("a.1",))


def test_a_snapshot_comes_back_as_it_was_kept() -> None:
    data = encode_snapshot(SNAPSHOT)
    assert orjson.loads(data)[:2] == ["example.com", "bob"]  # what the recall script reads
    assert decode_snapshot(data) == SNAPSHOT


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b'{"domain": "example.com"}',
        b'["example.com", "bob", "phone", [], "b.2", 3]',
        b'["example.com", "bob", "phone", [], "b.2", "3", []]',
        b'["example.com", "bob", "phone", [1], "b.2", 3, []]',
        b'["example.com", "bob", "phone", [], "b.2", 3, "a.1"]',
    ],
)
def test_a_malformed_snapshot_is_refused(data: bytes) -> None:
    with pytest.raises(BadFrame):
        decode_snapshot(data)
