"""``frames.ack_text`` builds an ``im_ack`` frame from pieces (the hot path of an acked
message): it must be exactly what ``encode`` makes of the same frame as dicts, for every
``src`` a device may register with and every id a client may send (§4.6, 12.31)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from signaling.core.calls import Leg
from signaling.core.codec import encode
from signaling.core.delivery_state import Delivery
from signaling.core.frames import ack_text, facility, leg_ack_text, signaling

SOURCES: list[object] = [None, "reg", 7, 'a "quoted" src ü', ["a", 1], {"k": [None, True]}]
IDS = ["m1", 'quote " backslash \\ tab \t', "non-ASCII ü 日本 \u2028", ""]


def as_dicts(src: object, number: int, ids: list[str], seq: int, time: int, state: str) -> str:
    item: dict[str, object] = {"type": "im_ack"}
    if len(ids) == 1:
        item["id"] = ids[0]
    else:
        item["ids"] = ids
    item.update(seq=seq, time=time, state=state)
    return encode(signaling(src, number, facility(item)))


@pytest.mark.parametrize("src", SOURCES)
@pytest.mark.parametrize("ids", [[one] for one in IDS] + [IDS, IDS[:2]])
def test_ack_text_is_what_encode_makes(src: object, ids: list[str]) -> None:
    for state in (Delivery.DELIVERED, Delivery.HELD, "stored"):
        for number, seq, time in ((1, 1, 0), (-42, 9007199254740991, 1_800_000_000_123)):
            text = ack_text(src, number, ids, seq, time, state)
            assert text == as_dicts(src, number, ids, seq, time, state)
            assert json.loads(text)["sig"]["fty"][0]["state"] == state


@pytest.mark.parametrize("src", SOURCES)
def test_an_ack_from_the_leg_is_ack_text(src: object) -> None:
    """``leg_ack_text`` keeps the frame's head on the leg: the same bytes as ``ack_text``
    for every ``src``, and again after the ``src`` or the call number changed."""
    leg = Leg.__new__(Leg)
    leg.ack_head, leg.number, leg.reg = None, 3, SimpleNamespace(src=src)
    for message_id in IDS:
        expected = ack_text(src, 3, [message_id], 5, 1_800_000_000, Delivery.DELIVERED)
        assert leg_ack_text(leg, message_id, 5, 1_800_000_000, Delivery.DELIVERED) == expected
    leg.number = -7  # offered again after a resume
    expected = ack_text(src, -7, ["m1"], 6, 0, Delivery.HELD)
    assert leg_ack_text(leg, "m1", 6, 0, Delivery.HELD) == expected
    leg.reg = SimpleNamespace(src="other")  # registered again, with another src
    expected = ack_text("other", -7, ["m1"], 7, 0, Delivery.HELD)
    assert leg_ack_text(leg, "m1", 7, 0, Delivery.HELD) == expected
