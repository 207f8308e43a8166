"""Delivery reports on the Redis bus (docs 12.39): two nodes in one process on a private
``redis-server``. A message to a device on the other node is acknowledged ``delivered``
only once that node reports it, and the reports are cumulative: what the inboxes hold
afterwards shows at most one report per entry of relayed messages, never one per
message."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as aioredis

from signaling.bus import keys
from signaling.bus.codec import decode_frames
from signaling.bus.outbound import join_reports
from signaling.bus.report_pace import ReportPace
from signaling.core.nodes.frames import DeviceAway, NodeFrame, Reached, ToLeg
from tests.signaling.bus.test_cross_node import call_across, two_nodes
from tests.support import RunningServer

JsonObject = dict[str, Any]

BATCH = 10
"""Messages per frame the writer sends: each frame's messages leave its node together."""


async def _inbox(redis: Any, node: RunningServer, sender: RunningServer) -> list[list[NodeFrame]]:
    """The frames of each entry ``sender`` wrote to ``node``'s inbox, oldest first."""
    bus, other = node.hub.bus, sender.hub.bus
    assert bus is not None and other is not None
    entries = await redis.xrange(keys.inbox(bus.address))
    return [
        decode_frames(fields[b"f"])
        for _, fields in entries
        if b"f" in fields and fields[b"n"].decode() == other.address
    ]


async def test_reports_come_once_per_batch_and_every_id_is_delivered_once() -> None:
    async with two_nodes() as (services, a, b):
        alice, bob, number = await call_across(a, b)
        messages = 1000
        for first in range(0, messages, BATCH):  # as fast as the socket takes them
            items = [
                {"type": "im_message", "mime": "text/plain", "data": f"m{n}", "id": f"m{n}"}
                for n in range(first, first + BATCH)
            ]
            sig = {"type": "facility", "fty": items}
            await alice.client.send({"api": "PbxSignal", "mt": "Signaling", "call": 1, "sig": sig})
        seqs = [(await bob.fty(number))["seq"] for _ in range(messages)]
        assert seqs == list(range(1, messages + 1))
        acked: list[tuple[str, int]] = []
        while len(acked) < messages:
            ack = await alice.fty(1)
            assert ack["type"] == "im_ack" and ack["state"] == "delivered", ack
            acked.append((ack["id"], ack["seq"]))
        assert acked == [(f"m{n}", n + 1) for n in range(messages)]
        await alice.sync()
        await bob.sync()
        redis = aioredis.Redis.from_url(services.redis.url)
        try:
            to_b = await _inbox(redis, b, a)
            to_a = await _inbox(redis, a, b)
        finally:
            await redis.aclose()
        relayed = [f for entry in to_b for f in entry if type(f) is ToLeg and f.seq]
        assert [frame.seq for frame in relayed] == list(range(1, messages + 1))
        reports = [frame for entry in to_a for frame in entry if type(frame) is Reached]
        batches = sum(1 for entry in to_b if any(type(f) is ToLeg and f.seq for f in entry))
        assert 1 <= len(reports) <= batches <= messages // BATCH
        assert reports[-1].legs[-1][2] == messages  # cumulative: the last one covers all
        highest = [seq for report in reports for _, _, seq in report.legs]
        assert highest == sorted(highest)


def test_reports_next_to_each_other_in_one_pipeline_leave_as_one() -> None:
    """A node that read several entries in one turn made a report for each: adjacent
    ones are joined, the highest seq per leg; a report is never moved past a frame."""
    away = DeviceAway(7)
    frames: list[NodeFrame] = [
        Reached(((3, -1, 4), (5, -2, 9))),
        Reached(((3, -1, 6),)),
        away,
        Reached(((3, -1, 8),)),
        Reached(((3, -1, 7), (5, -2, 10))),
    ]
    assert join_reports(frames) == [
        Reached(((3, -1, 6), (5, -2, 9))),
        away,
        Reached(((3, -1, 8), (5, -2, 10))),
    ]
    plain: list[NodeFrame] = [ToLeg(3, -1, "{}", 1), away]
    assert join_reports(plain) is plain


def test_reports_leave_at_once_after_a_quiet_spell_and_then_at_their_pace() -> None:
    pace = ReportPace(gap=0.005)
    assert pace.wait(100.0) == 0  # the first report: with the next pipeline
    pace.sent(100.0)
    assert pace.wait(100.001) == pytest.approx(0.004)  # the next one waits for the gap
    assert pace.wait(100.005) == 0
    pace.sent(100.007)
    assert pace.wait(100.0071) == pytest.approx(0.0049)
    assert pace.wait(101.0) == 0  # quiet again: at once


async def test_one_message_at_a_time_is_delivered_each_with_its_report() -> None:
    """A moderate rate: each message alone in its entry; the reports keep their pace and
    every message is still acknowledged, in order, once."""
    async with two_nodes() as (_, a, b):
        alice, bob, number = await call_across(a, b)
        for n in range(200):
            await alice.say(1, f"one {n}", id=f"o{n}")
            assert (await bob.fty(number))["seq"] == n + 1
        acked: list[str] = []
        while len(acked) < 200:
            ack = await alice.fty(1)
            assert ack["state"] == "delivered", ack
            acked.append(ack["id"])
        assert acked == [f"o{n}" for n in range(200)]
        await alice.sync()
