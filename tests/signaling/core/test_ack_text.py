"""``frames.ack_text`` builds an ``im_ack`` frame from pieces (the hot path of an acked
message): it must be exactly what ``encode`` makes of the same frame as dicts, for every
``src`` a device may register with and every id a client may send (§4.6, 12.31)."""

from __future__ import annotations

import json

import pytest

from signaling.core.codec import encode
from signaling.core.delivery_state import Delivery
from signaling.core.frames import ack_text, facility, signaling

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
