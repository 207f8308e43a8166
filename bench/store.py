"""Store benchmark: licensed chat stored end to end, and what storing costs the relay.

Run::

    .venv/bin/python bench/store.py [--backend sqlite|postgres|both] [--quick]

What it does (see bench/README.md for what the figures mean):

1. for each back-end, starts ``switchboard serve`` (hub and messages service in one process,
   the embedded default) with a generated config: half the users unlicensed, half holding
   the ``messages`` licence, the service on SQLite (``messages.sqlite3`` in the data dir) or
   on a fresh PostgreSQL database made for the run and dropped after it;
2. alternates closed-loop relay runs between unlicensed pairs (storage off: volatile chat)
   and licensed pairs (storage on: every message posted to the hub's durable outbox and
   written by the service as one row per side), the same load generator as bench/relay.py;
3. during each storage-on run, counts the rows committed in the database: the rows that
   appear between the two measuring marks give the stored rate, and after the senders stop
   it waits until every message sent has both its rows, which gives the end-to-end rate
   (first message sent -> last row committed) and how long storage trailed the relay;
4. prints a summary and writes it as JSON to bench/results/.

This is a benchmark, not a test: nothing here is collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from relay import (
    BENCH_SETTINGS,
    DOMAIN,
    DRAIN_SECONDS,
    HOST,
    START_LEAD,
    JsonObject,
    ServerProcess,
    WorkerPool,
    _cost,
    _cpu_text,
    _health,
    _warn,
    cpu_ticks,
    cpu_use,
    free_port,
    run_bench,
    sample_cpu,
    save_results,
    say,
    source_version,
    switchboard_command,
    user_name,
    user_password,
)

RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_POSTGRES = "postgres://postgres@127.0.0.1:5432/postgres"
BENCH_DATABASE = "switchboard_bench_store"
CATCH_UP_LIMIT = 180.0  # seconds storage may trail the senders before the run is called failed
POLL = 0.02  # seconds between row counts while waiting for storage to catch up


@dataclass(frozen=True)
class Plan:
    backends: tuple[str, ...]
    pairs: int
    procs: int
    window: int
    seconds: float
    warmup: float
    rounds: int
    postgres: str
    save: bool
    split: bool = False
    ids: bool = False
    """Every message carries a client ``id`` (acked; on licensed pairs a per-sender
    idempotency key, PROTOCOL §4.6)."""

    @property
    def pair_users(self) -> int:
        """Users one kind of run needs: two per pair, over every load process."""
        return 2 * self.pairs * self.procs


def parse_plan(argv: Sequence[str] | None = None) -> Plan:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--backend", choices=["sqlite", "postgres", "both"], default="both", help="default both"
    )
    parser.add_argument("--pairs", type=int, default=25, help="pairs per load process")
    parser.add_argument("--procs", type=int, default=2, help="load generator processes")
    parser.add_argument("--window", type=int, default=16, help="messages in flight per sender")
    parser.add_argument("--seconds", type=float, help="measuring time per run (default 8, quick 3)")
    parser.add_argument("--rounds", type=int, help="off/on runs, alternating (default 2, quick 1)")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("SWITCHBOARD_BENCH_POSTGRES", DEFAULT_POSTGRES),
        help="server to make the bench database on (default $SWITCHBOARD_BENCH_POSTGRES "
        f"or {DEFAULT_POSTGRES})",
    )
    parser.add_argument(
        "--split",
        action="store_true",
        help="run the messages service in a process of its own (--role messages) beside "
        "the hub (--role hub), instead of both in one process",
    )
    parser.add_argument(
        "--ids", action="store_true", help="every message carries an id (acked, idempotent)"
    )
    parser.add_argument("--quick", action="store_true", help="short run (about a minute)")
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results JSON")
    args = parser.parse_args(argv)
    seconds = args.seconds or (3.0 if args.quick else 8.0)
    rounds = args.rounds or (1 if args.quick else 2)
    if min(args.pairs, args.procs, args.window, rounds) < 1 or seconds <= 0:
        parser.error("--pairs, --procs, --window, --rounds, --seconds must be positive")
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    return Plan(
        backends=backends,
        pairs=args.pairs,
        procs=args.procs,
        window=args.window,
        seconds=seconds,
        warmup=0.5 if args.quick else 1.0,
        rounds=rounds,
        postgres=args.postgres,
        save=not args.no_save,
        split=args.split,
        ids=args.ids,
    )


def write_config(path: Path, plan: Plan, secret: str, database: str, service_url: str = "") -> None:
    """Users ``0 .. n-1`` chat volatile, ``n .. 2n-1`` hold the licence (n = pair users).

    With ``service_url`` the hub uses the service there (``--split``); both processes
    then share a password for the hub's login as App object ``messages``."""
    lines = [
        *BENCH_SETTINGS,
        "[messages]",
        f"database = {json.dumps(database)}",
        f"url = {json.dumps(service_url)}",
        f"password = {json.dumps(secret if plan.split else '')}",
        "",
    ]
    for index in range(2 * plan.pair_users):
        licences = '["messages"]' if index >= plan.pair_users else "[]"
        lines += [
            f'[tenants."{DOMAIN}".users.{user_name(index)}]',
            f'password = "{user_password(secret, index)}"',
            f"licences = {licences}",
            "",
        ]
    path.write_text("\n".join(lines))


# ==========================================================================================
# Counting committed rows, from outside the server
# ==========================================================================================


class RowCounter:
    """``SELECT count(*)`` of the service's message rows; sees only committed rows."""

    def count(self) -> int:
        raise NotImplementedError

    def close(self) -> None:
        pass


class SqliteRows(RowCounter):
    def __init__(self, path: Path) -> None:
        self.path = path
        self.connection: sqlite3.Connection | None = None

    def count(self) -> int:
        if self.connection is None:
            if not self.path.exists():
                return 0
            self.connection = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        try:
            row = self.connection.execute("SELECT count(*) FROM messages").fetchone()
        except sqlite3.OperationalError:  # the service has not made its tables yet
            return 0
        return int(row[0])

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()


class PostgresRows(RowCounter):
    """A fresh database for the run, dropped again by ``close``."""

    def __init__(self, server_url: str) -> None:
        import asyncpg

        self.asyncpg = asyncpg
        self.server_url = server_url
        self.loop = asyncio.new_event_loop()
        self.connection: Any = None
        self.url = server_url.rsplit("/", 1)[0] + f"/{BENCH_DATABASE}"
        self._admin(f"DROP DATABASE IF EXISTS {BENCH_DATABASE}")
        self._admin(f"CREATE DATABASE {BENCH_DATABASE}")

    def _admin(self, statement: str) -> None:
        async def run() -> None:
            connection = await self.asyncpg.connect(self.server_url, timeout=5)
            try:
                await connection.execute(statement)
            finally:
                await connection.close()

        self.loop.run_until_complete(run())

    def count(self) -> int:
        async def run() -> int:
            if self.connection is None:
                self.connection = await self.asyncpg.connect(self.url, timeout=5)
            try:
                return int(await self.connection.fetchval("SELECT count(*) FROM messages"))
            except self.asyncpg.UndefinedTableError:
                return 0

        return self.loop.run_until_complete(run())

    def close(self) -> None:
        if self.connection is not None:
            self.loop.run_until_complete(self.connection.close())
        with contextlib.suppress(Exception):
            self._admin(f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)")
        self.loop.close()


def postgres_reachable(url: str) -> str | None:
    """None when a connection to ``url`` works, else why not."""
    import asyncpg

    async def probe() -> None:
        connection = await asyncpg.connect(url, timeout=3)
        await connection.close()

    try:
        asyncio.run(probe())
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


# ==========================================================================================
# The runs
# ==========================================================================================


class StoreBench:
    def __init__(self, plan: Plan, stack: contextlib.ExitStack) -> None:
        self.plan = plan
        self.stack = stack
        self.tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sb-store-")))
        self.secret = secrets.token_hex(8)
        self.workers = WorkerPool(plan.procs, self.secret)
        stack.callback(self.workers.stop)
        self.service_pid: int | None = None
        """The messages service's process with ``--split``; else it is the hub's."""

    def run(self) -> JsonObject:
        results: JsonObject = {"plan": asdict(self.plan), "cores": os.cpu_count()}
        results["source"] = source_version()
        say(
            "messages service in its own process"
            if self.plan.split
            else "hub and service in one process"
        )
        say(
            f"load processes: {self.plan.procs} ({', '.join(sorted(self.workers.loops))}), "
            f"{self.plan.pairs} pairs each, window {self.plan.window}"
        )
        for backend in self.plan.backends:
            if backend == "postgres":
                why = postgres_reachable(self.plan.postgres)
                if why is not None:
                    say(f"\npostgres: skipped, server not reachable ({why})")
                    results["postgres"] = {"skipped": why}
                    continue
            say(f"\n== {backend}")
            results[backend] = self.backend_runs(backend)
        return results

    def backend_runs(self, backend: str) -> JsonObject:
        with contextlib.ExitStack() as stack:
            data_dir = self.tmp / backend
            counter: RowCounter
            if backend == "postgres":
                postgres = PostgresRows(self.plan.postgres)
                stack.callback(postgres.close)
                counter, database = postgres, postgres.url
            else:
                counter, database = SqliteRows(data_dir / "messages.sqlite3"), ""
                stack.callback(counter.close)
            config = self.tmp / f"{backend}.toml"
            write_config(config, self.plan, self.secret, database)
            if self.plan.split:  # the service keeps its SQLite file in data_dir
                service = self.start_server(f"{backend}-service", config, data_dir, "messages")
                stack.callback(service.stop)
                service.wait_ready()
                self.service_pid = service.pid
                url = f"ws://{HOST}:{service.port}/messages/websocket"
                config = self.tmp / f"{backend}-hub.toml"
                write_config(config, self.plan, self.secret, database, url)
                hub_dir = self.tmp / f"{backend}-hub"
                hub = self.start_server(backend, config, hub_dir, "hub")
            else:
                hub = self.start_server(backend, config, data_dir, "all")
            stack.callback(hub.stop)
            hub.wait_ready()
            off_runs, on_runs = [], []
            for _ in range(self.plan.rounds):
                off_runs.append(self.relay_run(hub, counter, stored=False))
                on_runs.append(self.relay_run(hub, counter, stored=True))
            return {"off": _best(off_runs), "on": _best(on_runs)}

    def start_server(self, name: str, config: Path, data_dir: Path, role: str) -> ServerProcess:
        port = free_port()
        argv = [*switchboard_command(), "serve", "--config", str(config), "--role", role]
        argv += ["--host", HOST, "--port", str(port), "--data-dir", str(data_dir)]
        return ServerProcess(name, argv, port, self.tmp / f"{name}.log")

    def relay_run(self, hub: ServerProcess, counter: RowCounter, stored: bool) -> JsonObject:
        """One closed-loop relay run over volatile (``stored=False``) or licensed pairs."""
        plan, workers = self.plan, self.workers
        base = plan.pair_users if stored else 0
        setup = [
            {"op": "relay", "port": hub.port, "count": plan.pairs, "with_id": plan.ids}
            | {"first_user": base + 2 * plan.pairs * index}
            for index in range(plan.procs)
        ]
        workers.call(setup, timeout=60.0)
        rows_at_start = counter.count()
        start = time.monotonic() + START_LEAD
        measure_from = start + plan.warmup
        measure_to = measure_from + plan.seconds
        times = {"start": start, "measure_from": measure_from, "measure_to": measure_to}
        workers.send([{"op": "max", "window": plan.window} | times] * plan.procs)
        time.sleep(max(0.0, measure_from - time.monotonic()))
        before, rows_from = sample_cpu(hub.pid, workers.pids), counter.count()
        service_before = cpu_ticks(self.service_pid) if self.service_pid else 0
        time.sleep(max(0.0, measure_to - time.monotonic()))
        after, rows_to = sample_cpu(hub.pid, workers.pids), counter.count()
        service_after = cpu_ticks(self.service_pid) if self.service_pid else 0
        replies = workers.gather(timeout=DRAIN_SECONDS + 30.0)
        sent = sum(reply["sent"] for reply in replies)
        delivered = sum(reply["delivered"] for reply in replies)
        cpu = asdict(cpu_use(before, after))
        if self.service_pid:  # "other" then includes it: take it out, report it apart
            service = 100.0 * (service_after - service_before)
            service /= (after.at - before.at) * os.sysconf("SC_CLK_TCK")
            cpu["service"] = service
            cpu["other"] = max(0.0, cpu["other"] - service)
        result: JsonObject = {
            "rate": delivered / plan.seconds,
            "sent": sent,
            "cpu": cpu,
            "server_us_per_msg": _cost(cpu, delivered / plan.seconds),
            **_health(replies),
        }
        if stored:
            result |= self.catch_up(counter, rows_at_start, rows_from, rows_to, sent, start)
        workers.call([{"op": "close"}] * plan.procs)
        time.sleep(0.3)  # let the server finish tearing the connections down
        label = "storage on " if stored else "storage off"
        service_text = f"  service CPU {cpu['service']:3.0f}%" if "service" in cpu else ""
        say(
            f"relay max, {label} {result['rate']:8.0f} msg/s   {_cpu_text(result)}"
            f"{service_text}{_warn(result)}"
        )
        if stored:
            say(
                f"  stored {result['stored_rate']:8.0f} msg/s while relaying, "
                f"{result['catch_up_rate']:.0f} msg/s after; every message committed "
                f"{result['catch_up_s']:.2f} s after the senders stopped: "
                f"{result['end_to_end_rate']:.0f} msg/s end to end"
                + ("" if result["complete"] else "  ! rows missing")
            )
        return result

    def catch_up(
        self,
        counter: RowCounter,
        rows_at_start: int,
        rows_from: int,
        rows_to: int,
        sent: int,
        start: float,
    ) -> JsonObject:
        """Wait until all ``sent`` messages have their two rows; the storage figures."""
        want = rows_at_start + 2 * sent  # both sides licensed: one row each
        stopped = self.plan.seconds  # senders stop refilling at measure_to, drained since
        deadline = time.monotonic() + CATCH_UP_LIMIT
        rows = counter.count()
        while rows < want and time.monotonic() < deadline:
            time.sleep(POLL)
            rows = counter.count()
        done = time.monotonic()
        measure_to = start + self.plan.warmup + stopped
        catch_up = max(0.0, done - measure_to)
        return {
            "stored_rate": (rows_to - rows_from) / 2 / self.plan.seconds,
            "catch_up_rate": (rows - rows_to) / 2 / catch_up if catch_up else float("nan"),
            "rows_expected": want - rows_at_start,
            "rows_found": rows - rows_at_start,
            "complete": rows == want,
            "catch_up_s": catch_up,
            "end_to_end_rate": sent / (done - start),
        }


def _best(runs: list[JsonObject]) -> JsonObject:
    best = max(runs, key=lambda run: float(run["rate"]))
    return best | {"rounds": [run["rate"] for run in runs]}


def summary(results: JsonObject) -> str:
    lines = []
    for backend in ("sqlite", "postgres"):
        figures = results.get(backend)
        if figures is None:
            continue
        if "skipped" in figures:
            lines.append(f"{backend:<8} skipped: {figures['skipped']}")
            continue
        off, on = figures["off"], figures["on"]
        share = on["rate"] / off["rate"] if off["rate"] else float("nan")
        lines += [
            f"{backend:<8} relay storage off {off['rate']:6.0f} msg/s   storage on "
            f"{on['rate']:6.0f} msg/s ({share:.2f} of off; server {off['server_us_per_msg']:.0f}"
            f" -> {on['server_us_per_msg']:.0f} us/msg)",
            f"{'':<8} stored {on['stored_rate']:6.0f} msg/s while relaying, "
            f"{on['catch_up_rate']:6.0f} msg/s after (x2 rows); end to end "
            f"{on['end_to_end_rate']:6.0f} msg/s, all committed {on['catch_up_s']:.2f} s "
            "after the last send"
            + ("" if on["complete"] else f"  ! {on['rows_found']}/{on['rows_expected']} rows"),
        ]
    return "\n".join(lines)


def save(results: JsonObject) -> Path:
    return save_results("store", results)


def main(argv: Sequence[str] | None = None) -> int:
    plan = parse_plan(argv)
    return run_bench(
        lambda stack: StoreBench(plan, stack).run(), summary, save if plan.save else None
    )


if __name__ == "__main__":
    sys.exit(main())
