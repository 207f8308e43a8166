"""What presence and registrations cost Redis in a cluster (docs/protocol.md 12.39).

Two hub nodes in this process on a private ``redis-server`` (the tests' helpers: real
uvicorn servers on loopback, real WebSocket clients). Counts Redis's commands
(``INFO commandstats``, commands inside scripts included) while:

1. bob registers on node b and closes cleanly, again and again, with alice on node a
   subscribed to him: two presence changes per round;
2. bob publishes his activity on b, alice still subscribed;
3. 1,000 messages between users on a and b while the subscriptions exist;

and times ``Register`` to ``RegisterResult`` on a single hub and on a cluster node, where
the answer waits for the pipeline that writes the registration. Not a test: pytest never
collects it. Run from the repository's root::

    .venv/bin/python bench/presence.py [--rounds 200]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.cluster_services import cluster_services, node_config
from tests.signaling.bus.test_cross_node_presence import publish, watch
from tests.support import PASSWORDS, Phone, RunningServer, make_config, running_server

Counts = dict[str, int]


async def commands(client: Any) -> Counts:
    info = await client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(stat["calls"]) for name, stat in info.items()}


def spent(after: Counts, before: Counts) -> Counts:
    """Commands run between two readings, but the ``INFO`` that read them."""
    used = {name: calls - before.get(name, 0) for name, calls in after.items()}
    used["info"] = used.get("info", 1) - 1
    return {name: calls for name, calls in sorted(used.items()) if calls}


def show(title: str, used: Counts, per: int, unit: str) -> None:
    print(f"{title}: {sum(used.values())} commands, {sum(used.values()) / per:.2f} per {unit}")
    for name, calls in used.items():
        print(f"  {name:14} {calls:7} {calls / per:6.2f} per {unit}")


async def changes(redis: Any, a: RunningServer, b: RunningServer, rounds: int) -> Phone:
    alice = await a.phone("alice")
    await watch(alice, 1, "bob")
    before = await commands(redis)
    for _ in range(rounds):
        bob = await b.phone("bob")
        assert (await alice.fty(1))["status"] == "open"
        await bob.client.close()
        assert (await alice.fty(1))["status"] == "closed"
    show(
        "presence changes (bob on b, alice on a)",
        spent(await commands(redis), before),
        2 * rounds,
        "change",
    )
    bob = await b.phone("bob")
    await alice.fty(1)
    await watch(bob, 2, "bob")
    before = await commands(redis)
    for n in range(rounds):
        await publish(bob, 2, "away", f"note {n}")
        await alice.fty(1)
    show(
        "publishes on b (followed on a and, by bob's own subscription, on b)",
        spent(await commands(redis), before),
        rounds,
        "publish",
    )
    return alice


async def messages(redis: Any, a: RunningServer, b: RunningServer, count: int) -> None:
    dave, carol = await a.phone("dave"), await b.phone("carol")
    await dave.setup(3, "carol")
    await dave.sig(3, "call_proc")
    number, _ = await carol.offered()
    await carol.signal(number, {"type": "conn"})
    await dave.sig(3, "conn")
    before = await commands(redis)
    for n in range(count):
        await dave.say(3, f"m{n}", id=f"i{n}")
    for _ in range(count):
        await carol.fty(number)
    acked = 0
    while acked < count:
        ack = await dave.fty(3)
        acked += len(ack.get("ids") or [ack["id"]])
    show(
        f"{count} messages across nodes, subscriptions open",
        spent(await commands(redis), before),
        count,
        "message",
    )


async def registers(server: RunningServer, rounds: int) -> tuple[float, float]:
    """Median and 90th percentile, ms, from Register to RegisterResult."""
    times = []
    for _ in range(rounds):
        client = await server.connect()
        await client.login(password=PASSWORDS["bob"], sip="bob")
        began = time.perf_counter()
        await Phone(client, "bob").register()
        times.append(time.perf_counter() - began)
        await client.close()
    times.sort()
    return statistics.median(times) * 1e3, times[int(0.9 * len(times))] * 1e3


async def main(rounds: int) -> None:
    quiet = {"lease": 30.0, "heartbeat": 10.0}  # no heartbeat among the counted commands
    async with (
        cluster_services() as services,
        running_server(node_config(services, "a", **quiet)) as a,
        running_server(node_config(services, "b", **quiet)) as b,
    ):
        client = services.redis.client()
        try:
            await changes(client, a, b, rounds)
            await messages(client, a, b, 1000)
        finally:
            await client.aclose()
        cluster = await registers(a, rounds)
    async with running_server(make_config(messages=False)) as one:
        single = await registers(one, rounds)
    print("Register to RegisterResult, ms (median, p90):")
    print(f"  single hub    {single[0]:.3f} {single[1]:.3f}")
    print(f"  cluster node  {cluster[0]:.3f} {cluster[1]:.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    asyncio.run(main(parser.parse_args().rounds))
