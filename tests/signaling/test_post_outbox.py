"""The hub's durable outbox (PROTOCOL §7.7): what was reported durable survives a crash,
what the service acknowledged does not come back, order is kept."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from signaling import post_outbox
from signaling.core.actions import StoredAck
from signaling.post_outbox import PostOutbox


def post(seq: int) -> dict[str, object]:
    return {"mt": "Post", "callId": "c", "seq": seq, "text": f"message {seq}"}


async def opened(
    path: Path, durable: list[StoredAck] | None = None, on_ready: Callable[[], None] = lambda: None
) -> PostOutbox:
    outbox, _ = await reopened(path, durable, on_ready)
    return outbox


async def reopened(
    path: Path, durable: list[StoredAck] | None = None, on_ready: Callable[[], None] = lambda: None
) -> tuple[PostOutbox, list[str]]:
    """The outbox opened on ``path``, and what it recovered from it."""
    found = durable if durable is not None else []
    outbox = PostOutbox(path, on_durable=found.extend, on_ready=on_ready)
    return outbox, await outbox.open()


def unsent(outbox: PostOutbox) -> list[tuple[int, dict[str, Any]]]:
    """Everything the link would send now, as it takes it (a write at a time), decoded,
    with its key (the Post's ``src``)."""
    taken = []
    while texts := outbox.take_unsent(3):
        taken += [(post["src"], post) for post in map(json.loads, texts)]
    return taken


async def test_posts_become_durable_in_order_and_acks_are_reported(tmp_path: Path) -> None:
    durable: list[StoredAck] = []
    ready: list[int] = []
    outbox = await opened(
        tmp_path / "outbox.jsonl", durable, on_ready=lambda: ready.append(len(outbox.pending))
    )
    ack = StoredAck(1, "c", 1, "m1", 1)
    outbox.add(post(1), ack)
    outbox.add(post(2), None)
    assert outbox.pending == {}  # nothing is durable before the flusher wrote it
    await outbox.flushed()
    assert outbox.take_unsent(1) == [outbox.pending[1]]
    assert json.loads(outbox.pending[1]) == post(1) | {"src": 1}
    assert [post["src"] for _, post in unsent(outbox)] == [2]
    assert durable == [ack] and ready == [2]
    outbox.done(1)
    outbox.rewind()  # a reconnect: whatever is unacknowledged goes again, in order
    assert [key for key, _ in unsent(outbox)] == [2]
    await outbox.close()


async def test_a_crash_keeps_exactly_the_unacknowledged_posts(tmp_path: Path) -> None:
    path = tmp_path / "outbox.jsonl"
    outbox = await opened(path)
    for seq in range(1, 6):
        outbox.add(post(seq), None)
    await outbox.flushed()
    outbox.done(2)
    outbox.done(4)
    outbox.done(99)  # unknown keys are ignored
    await outbox.flushed()
    # no close(): the process dies here; a torn line is all a crash can leave behind
    with path.open("ab") as file:
        file.write(b'{"k":6,"post":{"mt":"Po')
    again, recovered = await reopened(path)
    assert [(key, p["seq"]) for key, p in unsent(again)] == [(1, 1), (3, 3), (5, 5)]
    # Every Post the journal still held, acknowledged or not: the hub learns their ids
    assert [json.loads(text)["seq"] for text in recovered] == [2, 4, 1, 3, 5]
    again.add(post(7), None)  # keys keep growing after a restart
    await again.flushed()
    assert list(again.pending) == [1, 3, 5, 6]
    await again.close()
    lines = [json.loads(line) for line in path.read_bytes().splitlines()]
    assert [line["k"] for line in lines] == [1, 3, 5, 6]  # rewritten at start: compact


async def test_everything_acknowledged_leaves_nothing_to_resend(tmp_path: Path) -> None:
    path = tmp_path / "outbox.jsonl"
    outbox = await opened(path)
    outbox.add(post(1), None)
    await outbox.flushed()
    outbox.done(1)
    await outbox.close()
    again = await opened(path)
    assert again.pending == {}
    assert path.read_bytes() == b""
    await again.close()


async def test_the_journal_stays_small_while_something_is_always_pending(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Steady traffic: the service acknowledges each Post after the next one is added,
    so the outbox is never empty; the journal is still compacted, and keeps exactly
    what is pending."""
    monkeypatch.setattr(post_outbox, "_COMPACT_BYTES", 2000)
    path = tmp_path / "outbox.jsonl"
    outbox = await opened(path)
    largest = 0
    for seq in range(1, 301):
        outbox.add(post(seq), None)
        await outbox.flushed()
        if seq > 1:
            outbox.done(seq - 1)
        largest = max(largest, path.stat().st_size)
    await outbox.flushed()
    assert largest < 3000  # 300 Posts of ~70 bytes, plus their acknowledgements
    await outbox.close()
    again = await opened(path)
    assert [p["seq"] for _, p in unsent(again)] == [300]
    await again.close()


async def test_a_write_that_fails_halfway_is_cut_off_before_the_retry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk error in the middle of an append (disk full): the part that reached the
    file is removed, so the retried Posts start on a line of their own and survive."""
    real_append = post_outbox._append
    failures = [True]

    def flaky_append(file: BinaryIO, data: bytes, sync: bool) -> None:
        if failures and len(data) > 20:
            failures.clear()
            file.write(data[:15])
            file.flush()
            raise OSError(28, "No space left on device")
        real_append(file, data, sync)

    monkeypatch.setattr(post_outbox, "_append", flaky_append)
    path = tmp_path / "outbox.jsonl"
    outbox = await opened(path)
    outbox.add(post(1), None)
    outbox.add(post(2), None)
    await outbox.flushed()
    assert not failures and list(outbox.pending) == [1, 2]
    await outbox.close()
    again = await opened(path)
    assert [p["seq"] for _, p in unsent(again)] == [1, 2]
    await again.close()


async def test_posts_added_during_a_failed_write_follow_the_retried_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The retry keeps the order the relay added them in: the Posts (and their acks) of
    the write that failed first, then those added while it was failing."""
    real_append = post_outbox._append
    writing, go_on = threading.Event(), threading.Event()

    def failing_once(file: BinaryIO, data: bytes, sync: bool) -> None:
        if not go_on.is_set():
            writing.set()
            go_on.wait(5)
            raise OSError(5, "Input/output error")
        real_append(file, data, sync)

    monkeypatch.setattr(post_outbox, "_append", failing_once)
    durable: list[StoredAck] = []
    outbox = await opened(tmp_path / "outbox.jsonl", durable)
    outbox.add(post(1), ack(1))
    outbox.add(post(2), None)
    await asyncio.to_thread(writing.wait, 5)
    outbox.add(post(3), ack(3))
    go_on.set()
    await outbox.flushed()
    assert [p["seq"] for _, p in unsent(outbox)] == [1, 2, 3]
    assert [a.seq for a in durable] == [1, 3]
    await outbox.close()
    again = await opened(tmp_path / "outbox.jsonl")
    assert [(key, p["seq"]) for key, p in unsent(again)] == [(1, 1), (2, 2), (3, 3)]
    await again.close()


def ack(seq: int) -> StoredAck:
    return StoredAck(conn=1, call_id="c", number=1, message_id=f"m{seq}", seq=seq)
