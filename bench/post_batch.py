"""What the messages service's writer spends on one stored message, by thread.

Run::

    .venv/bin/python bench/post_batch.py [--pairs 50] [--batches 120] [--rounds 3]
    .venv/bin/python bench/post_batch.py --compare ../other-checkout

``bench/relay.py`` and ``bench/store.py`` see a stored message all in, the relay and the
link beside the storing. This one takes the storage half alone: a ``MessageStore`` on a
fresh SQLite file (the embedded default) writes ``--batches`` batches of ``--size`` Posts
through ``write_posts``, as the writer does under load (one transaction a batch), the
Posts spread over ``--pairs`` one-to-one chats, every one with a client id. It reports,
per Post, the CPU time of the event loop's thread (the Python around the statements:
what the relay shares its core with) and of the database's thread (the driver and
SQLite's own work), from ``/proc``, the median of the rounds. The table grows through the
run, as it does in a long run of the relay benchmark: the later batches are the dearer.

With ``--compare TREE`` every round also runs on another checkout (a child process with
``PYTHONPATH=TREE``), interleaved. This is a benchmark, not a test: nothing here is
collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEXT = "bench message from a sender to its receiver 0123456789"
DOMAIN = "bench.test"


def thread_ticks() -> dict[str, int]:
    """CPU ticks (user + system) of each thread of this process, by thread id."""
    ticks: dict[str, int] = {}
    for tid in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{tid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        ticks[tid] = int(fields[11]) + int(fields[12])
    return ticks


async def one_run(pairs: int, batches: int, size: int) -> dict[str, float]:
    """One fresh store, ``batches`` batches written; µs per Post by thread."""
    from messages_service.storage import MessageStore, NewPost

    with tempfile.TemporaryDirectory() as tmp:
        store = await MessageStore.open(f"sqlite://{Path(tmp) / 'messages.sqlite3'}")
        chats = [
            (f"user{n:05d}@{DOMAIN}", f"user{n + pairs:05d}@{DOMAIN}", secrets.token_hex(16))
            for n in range(pairs)
        ]
        seqs = [0] * pairs
        now = int(time.time() * 1000)

        def batch() -> list[NewPost]:
            posts = []
            for n in range(size):
                chat = n % pairs
                seqs[chat] += 1
                author, peer, call_id = chats[chat]
                seq = seqs[chat]
                posts.append(
                    NewPost(DOMAIN, author, "Author", author, peer, "Peer", False,
                            (author, peer), TEXT, None, call_id, seq, f"{chat}-{seq}", now)
                )  # fmt: skip
            return posts

        planned = [batch() for _ in range(batches + 1)]
        await store.write_posts(planned[0])  # the connection and the first pages
        loop_thread = str(threading.get_native_id())
        before = thread_ticks()
        for posts in planned[1:]:
            await store.write_posts(posts)
        after = thread_ticks()
        await store.close()
    per_tick = 1e6 / os.sysconf("SC_CLK_TCK") / (batches * size)
    spent = {tid: (ticks - before.get(tid, 0)) * per_tick for tid, ticks in after.items()}
    loop = spent.pop(loop_thread, 0.0)
    return {"loop": loop, "database": sum(spent.values())}


def run_in(tree: Path, args: argparse.Namespace) -> dict[str, float]:
    """One run in a child process on ``tree``'s code (this tree's too: every run starts
    from a fresh interpreter)."""
    command = [sys.executable, "-P", str(Path(__file__).resolve()), "--child"]
    command += ["--pairs", str(args.pairs), "--batches", str(args.batches)]
    command += ["--size", str(args.size)]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    return dict(json.loads(out.splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=50, help="one-to-one chats writing")
    parser.add_argument("--batches", type=int, default=120, help="batches measured a run")
    parser.add_argument("--size", type=int, default=2048, help="Posts a batch (batch_max)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--compare", type=Path, help="another checkout, run interleaved")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(one_run(args.pairs, args.batches, args.size))))
        return
    trees: dict[str, Path] = {"this tree": ROOT}
    if args.compare is not None:
        trees["compared"] = args.compare.resolve()
    figures: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    for number in range(args.rounds):
        for name, tree in trees.items():
            figures[name].append(run_in(tree, args))
        print(f"round {number + 1} of {args.rounds} done", file=sys.stderr)
    posts = args.batches * args.size
    print(f"CPU µs per stored Post ({posts} Posts a run in batches of {args.size}, "
          f"{args.pairs} chats; median of {args.rounds} rounds [min-max])")  # fmt: skip
    medians: dict[str, dict[str, float]] = {}
    for name, runs in figures.items():
        medians[name] = {}
        cells = []
        for part in ("loop", "database"):
            values = [run[part] for run in runs]
            medians[name][part] = statistics.median(values)
            cells.append(f"{part} {medians[name][part]:5.1f} [{min(values):.1f}-{max(values):.1f}]")
        total = statistics.median(run["loop"] + run["database"] for run in runs)
        print(f"{name:<10} {'   '.join(cells)}   both {total:5.1f}")
    if args.compare is not None:
        for part in ("loop", "database"):
            ratio = medians["this tree"][part] / medians["compared"][part]
            print(f"{part}: this tree / compared = {ratio:.3f} (medians)")


if __name__ == "__main__":
    main()
