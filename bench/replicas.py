"""Replica bench: what telling the other replicas of the messages service costs
(docs/protocol.md 12.41).

Run::

    .venv/bin/python bench/replicas.py [--rounds R] [--posts N] [--receivers K] [--runs M]

What it does, on a fresh PostgreSQL database per part (dropped after it):

1. **Latency.** Replicas a and b (``switchboard serve --role messages`` with
   ``messages.replicas`` on) and a scripted hub logged in to each. R times, one at a
   time, the hub on a renames a group (``WriteGroup``): timed from sending the request to
   its answer on a, and to the ``GroupInd`` arriving at the hub on b (one insert, one
   notify, one read on b, one frame to its hub).
2. **Throughput.** N Posts from alice to K receivers (each batch gives one ``Badge`` per
   receiver, each a note for the other replicas), at most W waiting for their
   ``PostResult``: first into one service with replicas off, then into replica a while
   the hub on b listens; M times each way, alternating. Posts per second, the notes a
   wrote, and whether the hub on b heard every receiver's last badge.

Prints a table and writes it as JSON to bench/results/. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(ROOT))  # the process and link helpers live with the tests

import asyncpg  # noqa: E402
from relay import percentile, save_results, source_version, terminate_as_exit  # noqa: E402

from signaling.appwebsocket.client import AppWebsocketClient  # noqa: E402
from signaling.appwebsocket.errors import ReplyTimeout  # noqa: E402
from tests.databases import scratch_postgres  # noqa: E402
from tests.integration.processes import ServerProcess, free_port, stopping  # noqa: E402
from tests.messages_service.support import DOMAIN, HubLink, chat_post  # noqa: E402

JsonObject = dict[str, Any]

DEFAULT_POSTGRES = "postgres://postgres@127.0.0.1:5432/postgres"
PASSWORD = secrets.token_hex(16)
WINDOW = 256


def service(directory: Path, database: str, name: str, *, replicas: bool) -> ServerProcess:
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / f"{name}.toml"
    config.write_text(
        "\n".join(
            [
                "[messages]",
                f"password = {json.dumps(PASSWORD)}",
                f"database = {json.dumps(database)}",
                f"replicas = {'true' if replicas else 'false'}",
                "[limits]",
                "rate = 1000000.0",
                "burst = 1000000",
                "[trace]",
                "flags = []",
                "",
            ]
        )
    )
    return ServerProcess(
        "messages",
        config,
        directory / name,
        free_port(),
        directory / f"{name}.log",
        "--node",
        name,
    )


async def hub(process: ServerProcess) -> HubLink:
    url = f"ws://127.0.0.1:{process.port}/messages/websocket"
    client = await AppWebsocketClient.connect(url, max_size=None)
    await client.login(app="messages", sip="messages", domain=DOMAIN, password=PASSWORD)
    return HubLink(client)


async def latency(directory: Path, database: str, rounds: int) -> JsonObject:
    a = service(directory, database, "a", replicas=True)
    b = service(directory, database, "b", replicas=True)
    with stopping(a, b):
        await a.start()
        await b.start()
        on_a, on_b = await hub(a), await hub(b)
        group = (await on_a.user("alice").ask("WriteGroup", dn="bench"))[0]
        answered: list[float] = []
        told: list[float] = []
        for n in range(rounds):
            began = time.perf_counter()
            await on_a.user("alice").ask("WriteGroup", id=group["id"], dn=f"round {n}")
            answered.append(time.perf_counter() - began)
            while True:
                message = await on_b.client.recv(10.0)
                if message.get("mt") == "GroupInd" and message.get("dn") == f"round {n}":
                    break
            told.append(time.perf_counter() - began)
    return {"rounds": rounds, "answer_ms": _spread(answered), "other_hub_ms": _spread(told)}


def _spread(seconds: list[float]) -> JsonObject:
    ordered = sorted(seconds)
    return {
        name: round(percentile(ordered, fraction) * 1000, 2)
        for name, fraction in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0))
    }


async def throughput(
    directory: Path, database: str, posts: int, receivers: int, *, replicas: bool
) -> JsonObject:
    a = service(directory, database, "a", replicas=replicas)
    b = service(directory, database, "b", replicas=True)
    with stopping(a, b):
        await a.start()
        listener = None
        if replicas:
            await b.start()
            listener = await hub(b)
        writer = await hub(a)
        began = time.perf_counter()
        await _post_all(writer, posts, receivers)
        seconds = time.perf_counter() - began
        heard = await _last_badges(listener, posts, receivers) if listener is not None else None
        written = await _notes_written(database) if replicas else 0
    return {
        "replicas": replicas,
        "posts": posts,
        "posts_per_second": round(posts / seconds),
        "notes_written": written,
        "other_hub_heard_last_badges": heard,
    }


async def _post_all(link: HubLink, posts: int, receivers: int) -> None:
    """Every Post, at most ``WINDOW`` unanswered; badges on this link are passed over."""
    client, sent, done = link.client, 0, 0
    while done < posts:
        while sent < posts and sent - done < WINDOW:
            peer = f"user{sent % receivers}"
            post = chat_post("alice", peer, sent + 1, f"message {sent}", call_id=f"c-{peer}")
            await client.send({"mt": "Post", "src": sent, "type": 1, **post})
            sent += 1
        message = await client.recv(30.0)
        if "src" in message:
            assert message["mt"] == "PostResult", message
            done += 1


async def _last_badges(link: HubLink, posts: int, receivers: int) -> bool:
    """Whether the link hears, for every receiver, the badge counting all its messages
    (within 10 s of the last PostResult)."""
    expected = {
        f"user{k}": posts // receivers + (1 if k < posts % receivers else 0)
        for k in range(receivers)
    }
    missing = {user for user, count in expected.items() if count}
    try:
        while missing:
            message = await link.client.recv(10.0)
            if message.get("mt") == "Badge" and message["count"] == expected.get(message["user"]):
                missing.discard(message["user"])
    except ReplyTimeout:
        return False
    return True


async def _notes_written(database: str) -> int:
    connection = await asyncpg.connect(database)
    try:
        return int(await connection.fetchval("SELECT MAX(id) FROM replica_notes") or 0)
    finally:
        await connection.close()


async def run(args: argparse.Namespace, directory: Path) -> JsonObject:
    admin = await asyncpg.connect(args.postgres)
    results: JsonObject = {"version": source_version()}
    try:
        async with scratch_postgres(admin, args.postgres, "switchboard_bench_replicas") as url:
            results["latency"] = await latency(directory / "latency", url, args.rounds)
        runs = []
        for number in range(args.runs):  # alternating, so that a busy moment hits both
            for replicas in (False, True):
                prefix = "switchboard_bench_replicas"
                async with scratch_postgres(admin, args.postgres, prefix) as url:
                    where = directory / f"throughput-{number}-{replicas}"
                    runs.append(
                        await throughput(where, url, args.posts, args.receivers, replicas=replicas)
                    )
        results["throughput"] = runs
    finally:
        await admin.close()
    return results


def summary(results: JsonObject) -> str:
    latency = results["latency"]
    lines = [
        f"latency over {latency['rounds']} renames (ms): "
        f"answer on a {latency['answer_ms']}, GroupInd at b's hub {latency['other_hub_ms']}",
    ]
    for replicas in (False, True):
        runs = [run for run in results["throughput"] if run["replicas"] == replicas]
        best = max(runs, key=lambda run: run["posts_per_second"])
        lines.append(
            f"replicas {'on ' if replicas else 'off'}: best {best['posts_per_second']} Posts/s "
            f"of {[run['posts_per_second'] for run in runs]}, "
            f"notes written {[run['notes_written'] for run in runs]}, other hub heard every "
            f"last badge: {[run['other_hub_heard_last_badges'] for run in runs]}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=1000, help="default 1000")
    parser.add_argument("--posts", type=int, default=20_000, help="default 20000")
    parser.add_argument("--receivers", type=int, default=50, help="default 50")
    parser.add_argument("--runs", type=int, default=3, help="throughput runs each way, default 3")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="server for the databases")
    parser.add_argument("--no-save", dest="save", action="store_false")
    args = parser.parse_args(argv)
    with terminate_as_exit(), tempfile.TemporaryDirectory(prefix="sb-replicas-") as tmp:
        results = asyncio.run(run(args, Path(tmp)))
    print(summary(results), flush=True)
    if args.save:
        print(f"saved {save_results('replicas', results).relative_to(ROOT)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
