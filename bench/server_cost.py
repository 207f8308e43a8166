"""What the hub spends on one relayed message: CPU time, or instructions, under a fixed load.

Run::

    .venv/bin/python bench/server_cost.py [--messages 40000] [--rounds 3]
    .venv/bin/python bench/server_cost.py --compare ../other-checkout
    .venv/bin/python bench/server_cost.py --instructions --compare ../other-checkout

``bench/relay.py`` measures how much the hub relays at full speed, which on a shared box
moves with everything else that runs there, and how the load batches frames moves with
the hub's own speed. This one fixes the pattern instead: ``--pairs`` chat pairs, each
caller writing ``--burst`` messages in one write and waiting until all of them are
delivered (and acknowledged) before the next burst, so every run asks the hub for the
same reads, writes and turns of its loop. It reports, per kind of message (with an
``id``, acked one by one; the same with cumulative acks, docs/protocol.md 12.31; without
an ``id``), the hub's CPU time per message while the messages flow (``/proc``, so other
processes weigh less than on a wall clock, but still some: caches and cores are shared).

``--instructions`` runs the hub under valgrind (``cachegrind``, no cache simulation) and
counts the instructions it executes instead: exact and the same from run to run on any
box, kernel time left out. Each figure is the difference between a run of ``--messages``
and one of a fifth of them (start-up, login and call set-up cancel out), divided by the
difference in messages. It is slow: a minute or two a run.

``--kinds stored`` (not run by default) measures a stored message: every user holds the
``messages`` licence, the messages service runs in the hub's process on SQLite (the
embedded default, trace flags as configured by default: the ``appwebsocket`` trace on),
every message carries an id; its CPU time is counted until every message sent has its two
rows committed (read from the database file, from outside), so that the service's work
and the hub's Post for each message are in it.

With ``--compare TREE`` every round also runs a hub served from another checkout
(``PYTHONPATH=TREE``), interleaved. This is a benchmark, not a test: nothing here is
collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from relay import (
    BENCH_SETTINGS,
    DOMAIN,
    HOST,
    ROOT,
    FrameClient,
    Lane,
    ServerProcess,
    Tally,
    cpu_ticks,
    free_port,
    open_pair,
    switchboard_command,
    tree_env,
    user_name,
    user_password,
    write_config,
)

KINDS = {
    "acked": ("NO_MEDIA_CALL", True),
    "cumulative": ("NO_MEDIA_CALL|CUMULATIVE_ACK", True),
    "without id": ("NO_MEDIA_CALL", False),
    "stored": ("NO_MEDIA_CALL", True),
}
"""Each kind of message: the flags its devices register with, whether it carries an id."""
STORED = "stored"
"""The kind whose users are licensed: every message also stored (not run by default)."""
VALGRIND = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
REPLY_TIMEOUT = 60.0
"""Seconds a burst may take to arrive (and be acknowledged): a hub under valgrind is slow."""


class Counts:
    """What the callers and callees of one run have received so far; ``arrived`` is set
    once it is all that was sent (``expect``)."""

    def __init__(self, with_id: bool) -> None:
        self.delivered = self.acked = self.sent = 0
        self.with_id = with_id
        self.arrived = asyncio.Event()

    def expect(self, sent: int) -> None:
        self.sent = sent
        self.arrived.clear()
        self._check()

    def on_delivered(self, texts: list[bytes]) -> None:
        self.delivered += sum(1 for text in texts if b'"im_message"' in text)
        self._check()

    def on_acks(self, texts: list[bytes]) -> None:
        for text in texts:
            if b'"im_ack"' not in text:
                continue
            start = text.find(b'"ids":[')  # a cumulative ack: count its ids
            self.acked += 1 if start < 0 else text.count(b",", start, text.index(b"]", start)) + 1
        self._check()

    def _check(self) -> None:
        if self.delivered >= self.sent and (not self.with_id or self.acked >= self.sent):
            self.arrived.set()


async def drive(
    port: int, secret: str, kind: str, args: argparse.Namespace, hub: int, rows: Path | None
) -> float:
    """Set the pairs up, send the messages in bursts, and return the hub's CPU
    microseconds per message while they flowed (and, with ``rows``, until that database
    holds both rows of every message)."""
    flags, with_id = KINDS[kind]
    pairs = [await open_pair(port, secret, 2 * i, flags=flags) for i in range(args.pairs)]
    counts = Counts(with_id)
    lanes: list[Lane] = []
    for caller, callee in pairs:
        lanes.append(Lane(caller, callee, Tally(), with_id))
        caller.on_texts, callee.on_texts = counts.on_acks, counts.on_delivered
    began, sent = cpu_ticks(hub), 0
    while sent < args.messages:
        for lane in lanes:
            lane.send_burst(args.burst)
        sent += args.burst * len(lanes)
        counts.expect(sent)
        await asyncio.wait_for(counts.arrived.wait(), REPLY_TIMEOUT)
    if rows is not None:
        await _all_stored(rows, 2 * sent)
    used = (cpu_ticks(hub) - began) / os.sysconf("SC_CLK_TCK")
    clients: list[FrameClient] = [client for pair in pairs for client in pair]
    for client in clients:
        client.close()
    await asyncio.sleep(0.3)
    return used * 1e6 / sent


async def _all_stored(path: Path, rows: int) -> None:
    """Wait until the messages database holds ``rows`` committed rows."""
    waited = 0.0
    while _rows(path) < rows:
        if waited > REPLY_TIMEOUT:
            raise RuntimeError(f"only {_rows(path)} of {rows} rows stored")
        await asyncio.sleep(0.02)
        waited += 0.02


def _rows(path: Path) -> int:
    if not path.exists():
        return 0
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        try:
            return int(db.execute("SELECT count(*) FROM messages").fetchone()[0])
        except sqlite3.OperationalError:  # no tables yet
            return 0


def write_stored_config(
    path: Path,
    users: int,
    secret: str,
    service_url: str = "",
    *,
    split: bool = False,
    trace: str | None = None,
) -> None:
    """Every user licensed; the messages service and the trace flags as by default. With
    ``split`` the hub logs in to the service with ``secret``, at ``service_url`` (the
    hub's configuration; empty in the service's). ``trace``: the flags on, comma separated
    (None: as by default)."""
    lines = list(BENCH_SETTINGS)
    if trace is not None:
        flags = [flag.strip() for flag in trace.split(",") if flag.strip()]
        lines += ["[trace]", f"flags = {json.dumps(flags)}", ""]
    if service_url or split:
        lines += ["[messages]", f'url = "{service_url}"', f'password = "{secret}"', ""]
    for index in range(users):
        lines += [
            f'[tenants."{DOMAIN}".users.{user_name(index)}]',
            f'password = "{user_password(secret, index)}"',
            'licences = ["messages"]',
            "",
        ]
    path.write_text("\n".join(lines))


def one_run(tree: Path, kind: str, args: argparse.Namespace, messages: int) -> float:
    """One hub from ``tree``, one kind of message: CPU µs per message, or with
    ``--instructions`` the instructions the whole process executed."""
    tmp = Path(tempfile.mkdtemp(prefix="server-cost-"))
    try:
        secret = secrets.token_hex(8)
        config = tmp / "bench.toml"
        rows = tmp / "data" / "messages.sqlite3" if kind == STORED else None
        service: ServerProcess | None = None
        if rows is None:
            write_config(config, 2 * args.pairs, secret)
        elif args.split:
            write_stored_config(
                tmp / "service.toml", 2 * args.pairs, secret, split=True, trace=args.trace
            )
            service = _server(tree, "service", tmp / "service.toml", tmp, "data", "messages")
            service.wait_ready(timeout=20.0)
            url = f"ws://{HOST}:{service.port}/messages/websocket"
            write_stored_config(config, 2 * args.pairs, secret, url, split=True, trace=args.trace)
        else:
            write_stored_config(config, 2 * args.pairs, secret, trace=args.trace)
        role = "hub" if service else "all"
        hub = _server(
            tree, "hub", config, tmp, "hub-data" if service else "data", role, args.instructions
        )
        port = hub.port
        try:
            hub.wait_ready(timeout=600.0 if args.instructions else 20.0)
            run_args = argparse.Namespace(**{**vars(args), "messages": messages})
            per_message = asyncio.run(drive(port, secret, kind, run_args, hub.pid, rows))
        finally:
            _stop(hub, patient=args.instructions)
            if service is not None:
                service.stop()
        if not args.instructions:
            return per_message
        found = re.search(r"I\s+refs:\s+([\d,]+)", hub.log_path.read_text(errors="replace"))
        if found is None:
            raise RuntimeError(f"no instruction count in the hub's log:\n{hub.log_tail()}")
        return float(found.group(1).replace(",", ""))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _server(
    tree: Path, name: str, config: Path, tmp: Path, data: str, role: str, counted: bool = False
) -> ServerProcess:
    """A ``switchboard serve`` from ``tree`` in ``role``, keeping its files in ``tmp/data``;
    ``counted`` runs it under valgrind."""
    port = free_port()
    argv = [*switchboard_command(), "serve", "--config", str(config), "--role", role]
    argv += ["--host", HOST, "--port", str(port), "--data-dir", str(tmp / data)]
    if counted:
        argv = [*VALGRIND, *argv]
    return ServerProcess(name, argv, port, tmp / f"{name}.log", tree_env(tree))


def _stop(hub: ServerProcess, *, patient: bool) -> None:
    """Stop the hub; under valgrind it needs minutes to shut down and print its count."""
    if not patient:
        hub.stop()
        return
    hub.process.terminate()
    try:
        hub.process.wait(timeout=600)
    except subprocess.TimeoutExpired:
        hub.process.kill()
        hub.process.wait(timeout=10)


def figure(tree: Path, kind: str, args: argparse.Namespace) -> float:
    """CPU µs per message, or instructions per message (the difference of two runs)."""
    if not args.instructions:
        return one_run(tree, kind, args, args.messages)
    fewer = max(args.messages // 5, args.burst * args.pairs)
    more = one_run(tree, kind, args, args.messages)
    less = one_run(tree, kind, args, fewer)
    sent = _rounded(args.messages, args) - _rounded(fewer, args)
    return (more - less) / sent


def _rounded(messages: int, args: argparse.Namespace) -> int:
    """Messages a run really sends: whole bursts of every pair."""
    step = args.burst * args.pairs
    return -(-messages // step) * step


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--messages", type=int, help="per run (default 40000, instructions 4000)")
    parser.add_argument("--rounds", type=int, help="rounds (default 3, instructions 1)")
    parser.add_argument("--pairs", type=int, default=2, help="chat pairs")
    parser.add_argument("--burst", type=int, default=16, help="messages a caller writes at once")
    parser.add_argument(
        "--kinds",
        default=",".join(kind for kind in KINDS if kind != STORED),
        help="comma separated: " + ", ".join(KINDS),
    )
    parser.add_argument("--compare", type=Path, help="another checkout, run interleaved")
    parser.add_argument("--instructions", action="store_true", help="count instructions (valgrind)")
    parser.add_argument(
        "--split",
        action="store_true",
        help="stored: the messages service in a process of its own, the hub's cost alone",
    )
    parser.add_argument(
        "--trace",
        help="stored: the trace flags on, comma separated (default: as configured by default)",
    )
    args = parser.parse_args(argv)
    args.messages = args.messages or (4000 if args.instructions else 40_000)
    args.rounds = args.rounds or (1 if args.instructions else 3)
    kinds = [kind.strip() for kind in args.kinds.split(",") if kind.strip()]
    if unknown := [kind for kind in kinds if kind not in KINDS]:
        parser.error(f"unknown kinds: {', '.join(unknown)}")
    if args.instructions and shutil.which("valgrind") is None:
        parser.error("--instructions needs valgrind")
    trees = {"this tree": ROOT}
    if args.compare is not None:
        trees["compared"] = args.compare.resolve()
    report(collect(trees, kinds, args, lambda text: print(text, file=sys.stderr)), args)


def collect(
    trees: dict[str, Path], kinds: list[str], args: argparse.Namespace, say: Callable[[str], None]
) -> dict[str, dict[str, list[float]]]:
    """Every round runs every kind on every tree, interleaved."""
    figures: dict[str, dict[str, list[float]]] = {
        kind: {name: [] for name in trees} for kind in kinds
    }
    for round_ in range(args.rounds):
        for kind in kinds:
            for name, tree in trees.items():
                value = figure(tree, kind, args)
                figures[kind][name].append(value)
                say(f"round {round_ + 1}, {kind}, {name}: {value:.1f}")
    return figures


def report(figures: dict[str, dict[str, list[float]]], args: argparse.Namespace) -> None:
    unit = "instructions" if args.instructions else "CPU µs"
    print(
        f"hub {unit} per message: {args.pairs} pairs, bursts of {args.burst}, "
        f"{args.messages} messages a run, {args.rounds} rounds; median [min-max]"
    )
    for kind, by_tree in figures.items():
        cells = []
        for name, values in by_tree.items():
            cells.append(
                f"{name} {statistics.median(values):.1f} [{min(values):.1f}-{max(values):.1f}]"
            )
        line = f"{kind:<12}" + "   ".join(cells)
        if len(by_tree) == 2:
            mine, theirs = (statistics.median(values) for values in by_tree.values())
            line += f"   this tree - compared = {mine - theirs:+.1f}"
        print(line)


if __name__ == "__main__":
    main()
