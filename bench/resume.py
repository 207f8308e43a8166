"""What a resume costs in a cluster, on the node the registration lives on and on another
one (docs/protocol.md 12.43).

Two hub nodes in this process on a private ``redis-server`` and a scratch PostgreSQL
database (the tests' helpers: real uvicorn servers on loopback, real WebSocket clients).
alice on node a is in a call with bob, whose link drops (the socket is cut) and who
resumes, again and again:

1. on the node he is on (the resume of 12.18, plus the snapshot under the new token);
2. on the other node each time (a to b, b to a, ...): the snapshot is taken from Redis,
   the node he left lets the registration go, the call's home offers the call where he is;

then both in turn for the timings, so that both see the same load;

each round ends when bob has answered the call offered again and received a message
alice wrote while he was away (so each round proves the call goes on). Counts Redis's
commands (``INFO commandstats``, commands inside scripts included) and times the
reconnection (connect, log in, ``Register``) to ``RegisterResult`` and to the replayed
message. Not a test: pytest never
collects it. Run from the repository's root::

    .venv/bin/python bench/resume.py [--rounds 100]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from presence import Counts, commands, spent

from tests.cluster_services import cluster_services, node_config
from tests.support import (
    PASSWORDS,
    Phone,
    RunningServer,
    answered_call,
    make_config,
    resume_phone,
    running_server,
)


def show(title: str, used: Counts, per: int) -> None:
    print(f"{title}: {sum(used.values()) / per:.2f} Redis commands per resume")
    for name, calls in used.items():
        print(f"  {name:14} {calls / per:6.2f}")


def timing(title: str, times: list[float]) -> None:
    times = sorted(times)
    median, p90 = statistics.median(times) * 1e3, times[int(0.9 * len(times))] * 1e3
    print(f"  {title:44} median {median:6.2f} ms  p90 {p90:6.2f} ms")


async def rounds(
    alice: Phone, bob: Phone, conf: str, seen: int, where: list[RunningServer], count: int
) -> tuple[Phone, int, list[float], list[float]]:
    """``count`` resumes of bob on the nodes ``where`` names in turn: his phone and the
    last seq he saw after them, and the times to his RegisterResult and to the message
    alice wrote while he was away."""
    answered, replayed = [], []
    for n in range(count):
        bob.client._ws.transport.abort()
        await alice.say(1, f"while away {seen}", id=f"w{seen}")
        began = time.perf_counter()
        bob, result = await resume_phone(where[n % len(where)], bob, PASSWORDS["bob"], {conf: seen})
        answered.append(time.perf_counter() - began)
        assert result["resumed"] is True, result
        number, _ = await bob.offered()
        await bob.signal(number, {"type": "conn"})
        seen = (await bob.fty(number))["seq"]
        replayed.append(time.perf_counter() - began)
        while (await alice.fty(1))["state"] != "delivered":
            pass
    return bob, seen, answered, replayed


async def main(count: int) -> None:
    quiet = {"lease": 30.0, "heartbeat": 10.0}  # no heartbeat among the counted commands
    config = make_config(messages=False, burst=100_000, rate_close_after=100_000, grace=60.0)
    async with (
        cluster_services() as services,
        running_server(node_config(services, "a", config, **quiet)) as a,
        running_server(node_config(services, "b", config, **quiet)) as b,
    ):
        client = services.redis.client()
        try:
            alice, bob = await a.phone("alice"), await b.phone("bob")
            conf, _ = await answered_call(alice, bob)
            bob, seen, _, _ = await rounds(alice, bob, conf, 0, [b], 20)  # warm up
            before = await commands(client)
            bob, seen, _, _ = await rounds(alice, bob, conf, seen, [b], count)
            show("resume on the same node", spent(await commands(client), before), count)
            before = await commands(client)
            bob, seen, _, _ = await rounds(alice, bob, conf, seen, [a, b], count)
            show("resume on the other node", spent(await commands(client), before), count)
            times: dict[str, list[list[float]]] = {"same": [[], []], "other": [[], []]}
            here, there = (b, a) if bob in b.phones else (a, b)
            for n in range(2 * count):  # in turn, so that both see the same load
                kind, where = ("same", here) if n % 2 == 0 else ("other", there)
                bob, seen, answered, replayed = await rounds(alice, bob, conf, seen, [where], 1)
                times[kind][0] += answered
                times[kind][1] += replayed
                if kind == "other":
                    here, there = there, here
        finally:
            await client.aclose()
    print(f"{count} resumes each way, in turn:")
    timing("same node: reconnection to RegisterResult", times["same"][0])
    timing("same node: to the replayed message", times["same"][1])
    timing("other node: reconnection to RegisterResult", times["other"][0])
    timing("other node: to the replayed message", times["other"][1])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=100)
    asyncio.run(main(parser.parse_args().rounds))
