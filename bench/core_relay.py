"""Core micro-benchmark: what the sans-I/O ``Switch`` spends on one relayed message.

Run::

    .venv/bin/python bench/core_relay.py [--messages 20000] [--rounds 7]
    .venv/bin/python bench/core_relay.py --compare ../other-checkout

No sockets, no event loop: one ``Switch`` (built as the core tests build it, with a
manual clock) takes pre-encoded client frames through ``Switch.receive`` and returns its
actions, which are dropped. Each frame is one ``im_message`` with an ``id`` (so every
message is also acknowledged), from a connected caller to its callee, between two users
whose chat is not stored. Three runs, each on a fresh switch:

- ``single``: a standalone switch, both users on it;
- ``cluster-local``: a switch of a two-switch cluster (in-memory bus), both users on it:
  what a clustered node's own traffic costs (SCALE.md performance rule 1);
- ``cluster-cross``: the callee on the other switch: the core work of both switches for
  a cross-node message (the home's relay and forward, the device's switch pushing it and
  reporting, the home's ack on the report), the in-memory bus delivering each batch of
  ``BATCH`` frames together as a stream entry would. No encoding for Redis, no Redis.

Two more runs, chosen with ``--runs`` (``--runs stored,group``), are of licensed chat, on
a standalone switch whose messages service is up:

- ``stored``: a licensed user's chat, every message also handed to the outbox as a Post;
  the ``stored`` acks come back through ``Switch.stored`` once for every ``BATCH``
  messages, as the outbox's flush hands them over;
- ``group``: a group call of ``GROUP`` member devices (two members, as the group tests
  make one), one device writing: each message goes to the other devices, is posted once,
  and is acknowledged (the Posts' acks handed back as in ``stored``).

It prints the median and the best of the rounds in microseconds per message;
``--without-id`` sends the same messages without an ``id`` (relayed, never acknowledged).
With ``--compare TREE`` every round runs once on this tree and once on ``TREE`` (a child
process with ``PYTHONPATH=TREE``), interleaved, so that both see the same machine.

This is a benchmark, not a test: nothing here is collected by pytest.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RUNS = ("single", "cluster-local", "cluster-cross")
LICENSED = ("stored", "group")
GROUP = 10
"""Member devices in the ``group`` run's call."""
BATCH = 16
"""Frames a client's read brings at once (the window of bench/relay.py): the bus carries
one batch's forwards together, and the report comes back once for it."""


def _frames(count: int, tag: str, with_id: bool) -> list[str]:
    frames = []
    for index in range(count):
        item = {
            "type": "im_message",
            "mime": "text/plain",
            "data": "bench message from a sender to its receiver 0123456789",
        }
        if with_id:
            item["id"] = f"{tag}-{index}"
        sig = {"type": "facility", "fty": [item]}
        frames.append(json.dumps({"api": "PbxSignal", "mt": "Signaling", "call": 1, "sig": sig}))
    return frames


def _prepare(kind: str, count: int, with_id: bool = True) -> Callable[[], None]:
    """One run of ``kind`` on a fresh switch (imported from the tree on ``PYTHONPATH``),
    set up and ready: the returned function relays ``count`` messages."""
    from tests.signaling.core.cluster_harness import Cluster
    from tests.signaling.core.harness import Harness
    from tests.support import make_config

    if kind in LICENSED:
        return _licensed(kind, count, with_id)
    config = make_config(messages=False, grace=60.0, rate=1e9, burst=1e9)  # as a hub runs
    frames = _frames(count, kind, with_id)
    if kind == "single":
        one = Harness(config)
        carol, dave = one.phone("carol"), one.phone("dave")
        one.setup(carol, 1, "dave")
        number, _ = one.offered(dave)
        one.signal(dave, number, {"type": "conn"})
        receive = one.switch.receive

        def alone() -> None:
            for text in frames:
                receive(carol, text)

        return alone
    cluster = Cluster(("a", "b"), config)
    caller = cluster.phone("a", "carol")
    callee = cluster.phone("a" if kind == "cluster-local" else "b", "dave")
    cluster.setup(caller, 1, "dave")
    cluster.signal(callee, cluster.offered(callee), {"type": "conn"})
    bus, receive, conn = cluster.bus, cluster.switch("a").receive, caller[1]
    bus.sink = _drop

    def clustered() -> None:
        feed, step = bus.feed, bus.step
        for start in range(0, count, BATCH):
            for text in frames[start : start + BATCH]:
                feed("a", receive(conn, text))
            while bus.pending:
                _one_entry_a_way(bus.pending)
                step()

    return clustered


def _licensed(kind: str, count: int, with_id: bool) -> Callable[[], None]:
    """A ``stored`` or ``group`` run, set up and ready (see the module's docstring)."""
    from signaling.core.actions import Store
    from tests.signaling.core.harness import Harness
    from tests.signaling.core.test_licensed import TEAM, up
    from tests.support import make_config

    h = up(Harness(make_config(messages=True, grace=60.0, rate=1e9, burst=1e9)), TEAM)
    if kind == "stored":
        writer, reader = h.phone("alice"), h.phone("carol")
        h.call(writer, reader, to="carol")
    else:
        devices = [h.phone("alice" if n % 2 else "bob", hw=f"hw{n}") for n in range(GROUP)]
        for device in devices:
            h.setup(device, 1, "group-1")  # joins at once
        writer = devices[0]
    frames = _frames(count, kind, with_id)
    receive, stored = h.switch.receive, h.switch.stored

    def licensed() -> None:
        for start in range(0, count, BATCH):
            acks = []
            for text in frames[start : start + BATCH]:
                for action in receive(writer, text):
                    if type(action) is Store and action.ack is not None:
                        acks.append(action.ack)
            if acks:  # the outbox's flush: these Posts are on disk
                stored(acks)

    return licensed


def _one_entry_a_way(pending: list[Any]) -> None:
    """What waits on the bus, one delivery per way: what one batch of client frames made
    for another switch leaves as one stream entry (the Redis bus's writer turn), and the
    switch it reaches reports once for it."""
    ways: dict[tuple[str, str], Any] = {}
    for delivery in list(pending):
        if delivery.question is not None or delivery.read is not None:
            continue  # an answer from the shared state, not frames
        first = ways.setdefault((delivery.sender, delivery.target), delivery)
        if first is not delivery:
            first.frames.extend(delivery.frames)
            pending.remove(delivery)


def _drop(node: str, actions: list[Any]) -> None:
    """The local actions of every switch: what a socket would send, not measured."""


def _cpu(kind: str, count: int, with_id: bool) -> float:
    """CPU microseconds per message of one run (other processes on the box do not count)."""
    run = _prepare(kind, count, with_id)
    gc.collect()
    began = time.process_time()
    run()
    return (time.process_time() - began) * 1e6 / count


def _opcodes(kind: str, count: int, with_id: bool) -> float:
    """Python bytecode instructions executed per message of one run: the core's work,
    counted, not timed (C functions count as the one instruction that calls them)."""
    run = _prepare(kind, count, with_id)
    executed = 0

    def trace(frame: FrameType, event: str, arg: object) -> Any:
        nonlocal executed
        frame.f_trace_opcodes = True
        if event == "opcode":
            executed += 1
        return trace

    sys.settrace(trace)
    try:
        run()
    finally:
        sys.settrace(None)
    return executed / count


def _child(runs: list[str], count: int, opcodes: bool, with_id: bool) -> dict[str, float]:
    if opcodes:
        _opcodes(runs[0], 50, with_id)  # first calls: imports, caches
        return {kind: _opcodes(kind, count, with_id) for kind in runs}
    for kind in runs:  # warm-up: imports, caches, the first calls
        _cpu(kind, min(count, 2000), with_id)
    return {kind: _cpu(kind, count, with_id) for kind in runs}


def _in(tree: Path, runs: list[str], count: int, opcodes: bool, with_id: bool) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = [sys.executable, __file__, "--child", "--messages", str(count)]
    command += ["--runs", ",".join(runs)]
    command += ["--opcodes"] if opcodes else []
    command += [] if with_id else ["--without-id"]
    out = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    result: dict[str, float] = json.loads(out)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--compare", type=Path, help="another checkout, run interleaved")
    parser.add_argument(
        "--opcodes", action="store_true", help="count bytecode instructions instead of CPU time"
    )
    parser.add_argument(
        "--without-id", action="store_true", help="messages without an id (never acknowledged)"
    )
    parser.add_argument(
        "--runs",
        type=_runs,
        default=list(RUNS),
        help=f"comma-separated, of {', '.join(RUNS + LICENSED)} (default: {', '.join(RUNS)})",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    runs: list[str] = args.runs
    if args.opcodes and args.messages == parser.get_default("messages"):
        args.messages, args.rounds = 500, 1  # counting is exact, and slow
    if args.child:
        print(json.dumps(_child(runs, args.messages, args.opcodes, not args.without_id)))
        return
    trees = {"this tree": ROOT}
    if args.compare is not None:
        trees["compared"] = args.compare.resolve()
    figures: dict[str, dict[str, list[float]]] = {name: {k: [] for k in runs} for name in trees}
    for round_ in range(args.rounds):
        for name, tree in trees.items():
            with_id = not args.without_id
            for kind, value in _in(tree, runs, args.messages, args.opcodes, with_id).items():
                figures[name][kind].append(value)
        print(f"round {round_ + 1} of {args.rounds} done", file=sys.stderr)
    unit = "bytecode instructions" if args.opcodes else "CPU µs"
    what = "message without id" if args.without_id else "acked message"
    print(f"{unit} per {what}, {args.messages} messages a run, {args.rounds} rounds")
    print(f"{'run':<16}" + "".join(f"{name:>28}" for name in trees))
    for kind in runs:
        cells = []
        for name in trees:
            values = figures[name][kind]
            cells.append(f"{statistics.median(values):8.2f} (best {min(values):6.2f})")
        print(f"{kind:<16}" + "".join(f"{cell:>28}" for cell in cells))
    if args.compare is not None:
        for kind in runs:
            mine, theirs = figures["this tree"][kind], figures["compared"][kind]
            ratio = statistics.median(mine) / statistics.median(theirs)
            print(f"{kind}: this tree / compared = {ratio:.3f} (medians)")


def _runs(text: str) -> list[str]:
    runs = [run.strip() for run in text.split(",") if run.strip()]
    unknown = sorted(set(runs) - set(RUNS + LICENSED))
    if unknown or not runs:
        raise argparse.ArgumentTypeError(f"unknown run(s): {', '.join(unknown) or '(none)'}")
    return runs


if __name__ == "__main__":
    main()
