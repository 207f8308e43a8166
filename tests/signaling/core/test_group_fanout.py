"""A group's message is encoded once for every member device and wrapped in each
device's own envelope (frames.fanout_text): the frames must be exactly what ``encode``
makes of the same message, whatever the devices' ``src`` and call numbers."""

from __future__ import annotations

import json

from signaling.core.actions import Send
from signaling.core.codec import encode
from tests.signaling.core.harness import Harness
from tests.signaling.core.test_licensed import TEAM, up

TRICKY = 'quote " backslash \\ tab \t line\nnon-ASCII ü 日本 \u2028'


def test_every_member_device_gets_the_frame_encode_would_make() -> None:
    h = up(Harness(), TEAM)
    sources: list[object] = ["reg", 7, 'a "quoted" src ü', ["a", 1]]
    devices = [
        h.phone("alice" if index % 2 else "bob", src=src, hw=f"hw{index}")
        for index, src in enumerate(sources)
    ]
    for number, device in enumerate(devices, 1):
        h.setup(device, number, "group-1")  # joins at once (call_proc, conn)
        h.take(device)
    for turn, text in enumerate(
        (TRICKY, "plain", TRICKY)
    ):  # the second and third reuse the cached heads
        actions = h.say(devices[0], 1, text, id=f"x{turn}", subject="s ü")
        frames = {a.conn: a.text for a in actions if isinstance(a, Send)}
        for number, (device, src) in enumerate(zip(devices, sources, strict=True), 1):
            if device == devices[0]:
                continue
            message = json.loads(frames[device])
            assert encode(message) == frames[device]
            assert message.get("src") == src and message["call"] == number
            (item,) = message["sig"]["fty"]
            assert (item["data"], item["sender"], item["subject"]) == (text, "bob", "s ü")
            h.take(device)
        h.take(devices[0])
    h.finish()
