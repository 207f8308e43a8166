"""Cluster benchmark: what the Redis bus between hub nodes costs.

Run::

    .venv/bin/python bench/cluster.py [--rounds 3] [--seconds 5] [--rate 1000] [--quick]
                                      [--postgres URL]

What it does (see bench/README.md and docs/benchmarks.md for what the figures mean):

1. starts a private ``redis-server`` on a free port (nothing on disk), one hub without
   any cluster config (the reference) and two hub nodes, ``a`` and ``b``, that share that
   Redis and a PostgreSQL database made for the run (``switchboard serve --node a|b``
   with ``[cluster] redis`` and ``database``; the nodes only read it at start, and the
   database server is not pinned: nothing in the runs uses it); Redis and every hub
   are pinned to one core with ``taskset``, the coordinator and the load processes of
   bench/relay.py to the other;
2. round by round, interleaved: the closed-loop relay maximum on the single hub, on node
   ``a`` with both users of each pair on ``a`` (same-node: ``b`` idle but in the cluster)
   and with each caller on ``a`` and its callee on ``b`` (cross-node: every message goes
   a -> Redis -> b and its delivery report back); then the one-way latency at a fixed
   offered rate across nodes and, for reference, on the single hub. Every message carries
   an ``id`` and is acknowledged to its sender, as a client's would be;
3. around each cluster run it reads Redis's ``INFO commandstats`` and the nodes'
   ``/metrics`` at the measuring marks: Redis commands per relayed message, and how many
   frames each stream entry and pipeline carried;
4. prints medians and min-max over the rounds, with ratios against the single hub and
   the targets, and writes everything as JSON to bench/results/.

On one 2-core box this measures what the bus costs per message (CPU and latency), not
how a cluster scales out: both nodes and Redis share the one server core.

This is a benchmark, not a test: nothing here is collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from relay import (
    BENCH_SETTINGS,
    HOST,
    OTHER_CPU_WARNING,
    JsonObject,
    ServerProcess,
    WorkerPool,
    _cpu_text,
    _latency_text,
    _warn,
    cpu_ticks,
    free_port,
    latency_figures,
    max_figures,
    run_bench,
    save_results,
    say,
    source_version,
    switchboard_command,
    timed_run,
    user_tables,
)

RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_POSTGRES = "postgres://postgres@127.0.0.1:5432/postgres"
NODES = ("a", "b")
SCENARIOS = ("single", "same", "cross", "cross_latency", "single_latency")
"""Each round runs these in this order; each has a block of users of its own."""
WARM_UP_SECONDS = 2.0
"""Relay on every hub before the first round, not counted (``ClusterBench.warm_up``)."""
TARGETS = {"same": 0.95, "cross": 0.5, "p99_ms": 5.0, "commands": 0.2}
"""same and cross: share of the single hub's maximum, at least; p99 and commands per
relayed message: at most."""


@dataclass(frozen=True)
class Plan:
    pairs: int
    procs: int
    window: int
    seconds: float
    warmup: float
    rounds: int
    rate: float
    save: bool
    postgres: str = DEFAULT_POSTGRES
    """The server on which the run's ``[cluster] database`` is made."""
    profile: float = 0.0
    """Seconds of py-spy on each node during an extra cross-node run (0: none)."""

    @property
    def block(self) -> int:
        """Users one run needs: two per pair, over every load process."""
        return 2 * self.pairs * self.procs


def parse_plan(argv: Sequence[str] | None = None) -> Plan:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--pairs", type=int, default=25, help="chat pairs per load process")
    parser.add_argument("--procs", type=int, default=2, help="load generator processes")
    parser.add_argument("--window", type=int, default=16, help="messages in flight per sender")
    parser.add_argument("--seconds", type=float, help="measuring time per run (default 5, quick 2)")
    parser.add_argument("--rounds", type=int, help="rounds of every run (default 3, quick 1)")
    parser.add_argument(
        "--rate", type=float, default=1000.0, help="offered msg/s of the latency runs"
    )
    parser.add_argument(
        "--profile",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="after the rounds, a single-hub and a cross-node run with py-spy on each hub",
    )
    parser.add_argument("--quick", action="store_true", help="one short round (about 40 s)")
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results JSON")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("SWITCHBOARD_BENCH_POSTGRES", DEFAULT_POSTGRES),
        help="server to make the nodes' cluster.database on (default "
        f"$SWITCHBOARD_BENCH_POSTGRES or {DEFAULT_POSTGRES})",
    )
    args = parser.parse_args(argv)
    seconds = args.seconds or (2.0 if args.quick else 5.0)
    rounds = args.rounds or (1 if args.quick else 3)
    if min(args.pairs, args.procs, args.window, rounds) < 1 or min(seconds, args.rate) <= 0:
        parser.error("--pairs, --procs, --window, --rounds, --seconds, --rate must be positive")
    return Plan(
        pairs=args.pairs,
        procs=args.procs,
        window=args.window,
        seconds=seconds,
        warmup=0.5 if args.quick else 1.0,
        rounds=rounds,
        rate=args.rate,
        save=not args.no_save,
        postgres=args.postgres,
        profile=args.profile,
    )


# ==========================================================================================
# Cores, configs, processes
# ==========================================================================================


@dataclass(frozen=True)
class Cores:
    """The server core (Redis and every hub) and the load core (all the rest)."""

    server: int | None
    load: int | None

    @classmethod
    def split(cls) -> Cores:
        usable = sorted(os.sched_getaffinity(0))
        if len(usable) < 2 or shutil.which("taskset") is None:
            say("! fewer than two usable cores or no taskset: nothing is pinned")
            return cls(None, None)
        return cls(usable[0], usable[1])

    def pin_self(self) -> None:
        """The coordinator, and the load processes it spawns, on the load core."""
        if self.load is not None:
            os.sched_setaffinity(0, {self.load})

    def server_argv(self, argv: list[str]) -> list[str]:
        """``argv`` on the server core (taskset execs it: the pid stays the server's)."""
        if self.server is None:
            return argv
        return ["taskset", "-c", str(self.server), *argv]


def hub_config(users: int, secret: str, redis_url: str = "", database: str = "") -> str:
    """The hub's TOML: relay.py's bench settings and users; with ``redis_url`` (and the
    cluster's ``database``) a cluster node. The messages service is off and the resume
    grace zero on every hub alike, so the runs differ only in the cluster (nothing is
    stored: no user holds a licence)."""
    lines = [
        *BENCH_SETTINGS,
        "[messages]",
        "enabled = false",
        "",
        "[signaling]",
        'resume_grace = "0s"',
        "",
        "[trace]",
        "flags = []",
        "",
    ]
    if redis_url:
        lines += ["[cluster]", f"redis = {json.dumps(redis_url)}"]
        lines += [f"database = {json.dumps(database)}", ""]
    return "\n".join([*lines, *user_tables(users, secret)])


class RedisProbe:
    """Reads the private Redis's command counters and the nodes' bus counters."""

    def __init__(self, port: int, node_ports: dict[str, int]) -> None:
        import redis

        self.client = redis.Redis(host=HOST, port=port)
        self.node_ports = node_ports

    def version(self) -> str:
        return str(self.client.info("server").get("redis_version", "?"))

    def commands(self) -> dict[str, int]:
        """Calls so far of every command, but ``info`` (the probe's own)."""
        stats = self.client.info("commandstats")
        calls = {name.removeprefix("cmdstat_"): int(row["calls"]) for name, row in stats.items()}
        calls.pop("info", None)
        return calls

    def bus(self, node: str) -> dict[str, float]:
        """The node's ``switchboard_bus_*`` samples from ``/metrics``."""
        url = f"http://{HOST}:{self.node_ports[node]}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        samples = {}
        for line in text.splitlines():
            if line.startswith("switchboard_bus_"):
                name, _, value = line.rpartition(" ")
                samples[name.removeprefix("switchboard_bus_")] = float(value)
        return samples

    def close(self) -> None:
        self.client.close()


# ==========================================================================================
# The runs
# ==========================================================================================


@dataclass(frozen=True)
class Target:
    """Where a run's pairs are: callers on ``port``, callees on ``callee_port``."""

    port: int
    callee_port: int | None
    pids: dict[str, int]
    """The server processes whose CPU counts (the cluster: both nodes and Redis)."""
    cluster: bool


class ClusterBench:
    def __init__(self, plan: Plan, stack: ExitStack) -> None:
        self.plan = plan
        self.stack = stack
        self.tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sb-cluster-")))
        self.secret = secrets.token_hex(8)
        self.cores = Cores.split()
        self.cores.pin_self()
        self.redis = self._server("redis", _redis_argv(free_port()))
        self.redis.wait_ready()
        redis_url = f"redis://{HOST}:{self.redis.port}/0"
        database = stack.enter_context(scratch_database(plan.postgres))
        users = len(SCENARIOS) * plan.block
        single_config, node_config = self.tmp / "single.toml", self.tmp / "node.toml"
        single_config.write_text(hub_config(users, self.secret))
        node_config.write_text(hub_config(users, self.secret, redis_url, database))
        self.single = self._hub("single", single_config)
        self.nodes = {name: self._hub(name, node_config, "--node", name) for name in NODES}
        self.workers = WorkerPool(plan.procs, self.secret)
        stack.callback(self.workers.stop)
        for server in (self.single, *self.nodes.values()):
            server.wait_ready()
        ports = {name: node.port for name, node in self.nodes.items()}
        self.probe = RedisProbe(self.redis.port, ports)
        stack.callback(self.probe.close)

    def _server(self, name: str, argv: list[str]) -> ServerProcess:
        argv = self.cores.server_argv(argv)
        server = ServerProcess(name, argv, int(argv[-1]), self.tmp / f"{name}.log")
        self.stack.callback(server.stop)
        return server

    def _hub(self, name: str, config: Path, *extra: str) -> ServerProcess:
        argv = [*switchboard_command(), "serve", "--config", str(config), *extra]
        argv += ["--host", HOST, "--data-dir", str(self.tmp / name), "--port", str(free_port())]
        return self._server(name, argv)

    def targets(self) -> dict[str, Target]:
        a, b = self.nodes["a"], self.nodes["b"]
        cluster = {"a": a.pid, "b": b.pid, "redis": self.redis.pid}
        single = Target(self.single.port, None, {"single": self.single.pid}, cluster=False)
        return {
            "single": single,
            "same": Target(a.port, None, cluster, cluster=True),
            "cross": Target(a.port, b.port, cluster, cluster=True),
            "cross_latency": Target(a.port, b.port, cluster, cluster=True),
            "single_latency": single,
        }

    def run(self) -> JsonObject:
        plan = self.plan
        say(
            f"cores: servers on {self.cores.server}, load on {self.cores.load}; "
            f"Redis {self.probe.version()} on port {self.redis.port}; load processes "
            f"{plan.procs} ({', '.join(sorted(self.workers.loops))}), {plan.pairs} pairs "
            f"each, window {plan.window}, every message with an id (acked)"
        )
        results: JsonObject = {"plan": asdict(plan), "cores": os.cpu_count()}
        results |= {"source": source_version(), "redis": self.probe.version()}
        targets = self.targets()
        self.warm_up(targets)
        runs: dict[str, list[JsonObject]] = {name: [] for name in SCENARIOS}
        for round_number in range(1, plan.rounds + 1):
            say(f"\n== round {round_number} of {plan.rounds}")
            for block, name in enumerate(SCENARIOS):
                runs[name].append(self.one_run(name, targets[name], block))
        results["runs"] = runs
        if plan.profile:
            single = {"single": self.single.pid}
            nodes = {name: node.pid for name, node in self.nodes.items()}
            results["profile"] = {
                name: self.profiled_run(name, targets[name], single if "single" in name else nodes)
                for name in ("single", "cross", "single_latency", "cross_latency")
            }
        return results

    def one_run(self, name: str, target: Target, block: int) -> JsonObject:
        """Set the pairs up in user block ``block``, run, and read the figures."""
        plan = self.plan
        self._setup(target, block)
        probe = self.reading if target.cluster else None
        pids = list(target.pids.values())
        if name.endswith("_latency"):
            command = {"op": "paced", "rate": plan.rate / plan.procs}
            run = timed_run(self.workers, pids, plan.warmup, plan.seconds, command, probe)
            result = latency_figures(run, plan.rate, plan.seconds)
            say(f"{name:<15} {_latency_text(result)}\n{'':15} {_cpu_text(result)}")
        else:
            command = {"op": "max", "window": plan.window}
            run = timed_run(self.workers, pids, plan.warmup, plan.seconds, command, probe)
            result = max_figures(run, plan.seconds)
            say(f"{name + ' max':<15} {result['rate']:7.0f} msg/s  {_cpu_text(result)}")
        if probe is not None:
            before, after = run["probes"]
            result["cluster"] = _cluster_figures(before, after, result, target.pids)
            say(f"{'':15} {_cluster_text(result['cluster'])}")
        if _warn(result):
            say(_warn(result).lstrip("\n"))
        return result

    def warm_up(self, targets: dict[str, Target]) -> None:
        """A short unmeasured maximum run of each kind before the first round, so that no
        hub starts its first measured run cold (without it, node a's first same-node
        run came out at 0.89 of the single hub's in two runs, its later ones at 1.0 or
        more)."""
        plan = self.plan
        for block, name in enumerate(SCENARIOS[:3]):
            self._setup(targets[name], block)
            pids = list(targets[name].pids.values())
            command = {"op": "max", "window": plan.window}
            timed_run(self.workers, pids, plan.warmup, WARM_UP_SECONDS, command)
        say(f"warmed up: {WARM_UP_SECONDS:.0f} s of relay on every hub, unmeasured")

    def reading(self) -> JsonObject:
        """What a cluster run's figures are computed from, at one measuring mark."""
        targets = self.targets()["cross"].pids
        return {
            "at": time.monotonic(),
            "ticks": {name: cpu_ticks(pid) for name, pid in targets.items()},
            "commands": self.probe.commands(),
            "bus": {node: self.probe.bus(node) for node in NODES},
        }

    def profiled_run(self, name: str, target: Target, spied: dict[str, int]) -> JsonObject:
        """One more run of scenario ``name`` with ``py-spy record`` on each of the
        ``spied`` processes (raw stacks into bench/results/), and their top functions."""
        spy = shutil.which("py-spy")
        if spy is None:
            say("! --profile: no py-spy on the PATH; skipped")
            return {"skipped": "no py-spy"}
        plan, seconds = self.plan, self.plan.profile
        self._setup(target, SCENARIOS.index(name))
        RESULTS_DIR.mkdir(exist_ok=True)
        outputs = {label: RESULTS_DIR / f"cluster-profile-{name}-{label}.txt" for label in spied}
        spies: list[subprocess.Popen[bytes]] = []

        def start_spies() -> None:
            for label, path in outputs.items():
                argv = [spy, "record", "--pid", str(spied[label]), "--format", "raw"]
                argv += ["--rate", "250", "--nonblocking", "--duration", str(int(seconds))]
                spies.append(subprocess.Popen([*argv, "-o", str(path)], stdout=subprocess.DEVNULL))

        paced = name.endswith("_latency")
        command: JsonObject = {"op": "max", "window": plan.window}
        if paced:
            command = {"op": "paced", "rate": plan.rate / plan.procs}
        pids, probe = list(target.pids.values()), _once(start_spies)
        run = timed_run(self.workers, pids, plan.warmup, seconds + 1.0, command, probe)
        for process in spies:
            process.wait(timeout=60)
        if paced:
            result = latency_figures(run, plan.rate, seconds + 1.0)
            say(f"\nprofiled {name}: {_latency_text(result)}\n  {_cpu_text(result)}")
        else:
            result = max_figures(run, seconds + 1.0)
            say(f"\nprofiled {name} max {result['rate']:.0f} msg/s  {_cpu_text(result)}")
        tops = {}
        for label, path in outputs.items():
            tops[label] = top_functions(path)
            say(f"  {label}: {path.relative_to(RESULTS_DIR.parent.parent)}")
            say("\n".join(f"    {line}" for line in tops[label]))
        return {"result": result, "top": tops}

    def _setup(self, target: Target, block: int) -> None:
        """The pairs of a run, in user block ``block`` (every run has its own users)."""
        plan = self.plan
        setup = {"op": "relay", "port": target.port, "count": plan.pairs, "with_id": True}
        if target.callee_port is not None:
            setup["callee_port"] = target.callee_port
        first = block * plan.block
        commands = [setup | {"first_user": first + 2 * plan.pairs * i} for i in range(plan.procs)]
        self.workers.call(commands, timeout=60.0)


def _once(action: Callable[[], None]) -> Callable[[], None]:
    """A probe for ``timed_run`` that acts at the first measuring mark only."""
    done: list[bool] = []

    def probe() -> None:
        if not done:
            done.append(True)
            action()

    return probe


def top_functions(path: Path, count: int = 12) -> list[str]:
    """The functions with the most samples on top of the stack (own time), from py-spy's
    raw (collapsed) output, ``frame;frame;... samples`` per line, each frame
    ``function (file:line)``; lines of one function are added up. Last, the share of
    samples with the bus (``signaling/bus``, redis-py) anywhere on the stack."""
    own: dict[str, int] = {}
    total = bus = 0
    for line in path.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        if not stack or not samples.isdigit():
            continue
        leaf = stack.rsplit(";", 1)[-1]
        function = leaf.rsplit(":", 1)[0] + ")" if ":" in leaf else leaf
        own[function] = own.get(function, 0) + int(samples)
        total += int(samples)
        if "signaling/bus/" in stack or "redis/" in stack:
            bus += int(samples)
    if not total:
        return []
    ranked = sorted(own.items(), key=lambda item: -item[1])[:count]
    lines = [
        f"{100 * n / total:5.1f}%  {function}{_NOTES.get(function, '')}" for function, n in ranked
    ]
    return [
        *lines,
        f"{100 * bus / total:5.1f}%  in the bus (signaling/bus or redis-py on the stack)",
    ]


_NOTES = {
    "Runner.run (asyncio/runners.py)": "  [uvloop's own C code: polling, socket reads; idle too]"
}
"""What a frame on top of the stack stands for, where its name does not say it."""


@contextmanager
def scratch_database(server: str) -> Iterator[str]:
    """A PostgreSQL database made on ``server`` for this run (its url), dropped after."""
    name = f"switchboard_bench_cluster_{secrets.token_hex(6)}"
    try:
        _postgres(server, f'CREATE DATABASE "{name}"')
    except Exception as exc:
        raise SystemExit(f"bench/cluster.py needs PostgreSQL at {server}: {exc}") from exc
    try:
        yield urllib.parse.urlsplit(server)._replace(path=f"/{name}").geturl()
    finally:
        _postgres(
            server,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            f" WHERE datname = '{name}' AND pid <> pg_backend_pid()",
            f'DROP DATABASE IF EXISTS "{name}"',
        )


def _postgres(server: str, *statements: str) -> None:
    import asyncpg

    async def run() -> None:
        connection = await asyncpg.connect(server, timeout=5)
        try:
            for statement in statements:
                await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(run())


def _redis_argv(port: int) -> list[str]:
    """A private Redis: loopback only, nothing saved, the port last (``_server`` reads it)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("bench/cluster.py needs redis-server on the PATH")
    argv = [binary, "--bind", HOST, "--save", "", "--appendonly", "no"]
    return [*argv, "--loglevel", "warning", "--port", str(port)]


def _cluster_figures(
    before: JsonObject, after: JsonObject, result: JsonObject, pids: dict[str, int]
) -> JsonObject:
    """Per-process CPU, Redis commands per relayed message and the bus's batching,
    between the two measuring marks."""
    seconds = after["at"] - before["at"]
    tick = os.sysconf("SC_CLK_TCK")
    cpu = {
        name: 100.0 * (after["ticks"][name] - before["ticks"][name]) / (seconds * tick)
        for name in pids
    }
    calls = {
        name: count - before["commands"].get(name, 0)
        for name, count in after["commands"].items()
        if count > before["commands"].get(name, 0)
    }
    relayed = result.get("rate") or result["achieved"]
    messages = relayed * (after["at"] - before["at"])
    bus = {
        node: {key: after["bus"][node][key] - before["bus"][node].get(key, 0.0) for key in _BUS}
        for node in NODES
    }
    return {
        "cpu": cpu,
        "commands": calls,
        "commands_per_message": sum(calls.values()) / messages if messages else float("nan"),
        "bus": bus,
    }


_BUS = (
    'frames_total{way="out"}',
    'entries_total{way="out"}',
    'frames_total{way="in"}',
    'entries_total{way="in"}',
    "pipelines_total",
)


def _cluster_text(figures: JsonObject) -> str:
    cpu = "  ".join(f"{name} {share:3.0f}%" for name, share in figures["cpu"].items())
    calls = figures["commands"]
    top = sorted(calls.items(), key=lambda item: -item[1])[:3]
    commands = ", ".join(f"{name} {count}" for name, count in top) or "none"
    batching = []
    for node, bus in figures["bus"].items():
        entries, pipelines = bus['entries_total{way="out"}'], bus["pipelines_total"]
        if pipelines:
            frames = bus['frames_total{way="out"}']
            batching.append(f"{node} {frames / pipelines:.1f}/{frames / max(entries, 1):.1f}")
    per_message = figures["commands_per_message"]
    return (
        f"CPU {cpu}; Redis {per_message:.3f} commands/msg ({commands}); "
        f"frames per pipeline/entry {', '.join(batching) or '-'}"
    )


# ==========================================================================================
# Summary
# ==========================================================================================


def _spread(values: Sequence[float], digits: int = 0) -> str:
    """Median and min-max, e.g. ``8123 (7900-8300)``."""
    if not values:
        return "-"
    form = f"{{:.{digits}f}}"
    low, high = form.format(min(values)), form.format(max(values))
    return f"{form.format(statistics.median(values))} ({low}-{high})"


def _verdict(value: float, target: float, at_least: bool) -> str:
    met = value >= target if at_least else value <= target
    sign = ">=" if at_least else "<="
    if met:
        return f"{sign} {target:g}: met"
    missed = target / value if at_least else value / target
    return f"{sign} {target:g}: MISSED ({missed:.2f}x off)"


def figures(results: JsonObject) -> JsonObject:
    """Medians, ranges and per-round ratios of every figure the table prints.

    ``capacity`` is the same ratio as ``ratios`` from CPU time per message instead of
    messages per second: (1)'s us/msg over the run's. On a box where other work takes
    part of the server core, rates fall with it but the CPU per message moves far less."""
    runs = results["runs"]
    maxima = ("single", "same", "cross")
    rates = {name: [run["rate"] for run in runs[name]] for name in maxima}
    costs = {name: [run["server_us_per_msg"] for run in runs[name]] for name in maxima}
    p99 = {name: [run["p99_ms"] for run in runs[name]] for name in SCENARIOS[3:]}
    ratios = {name: _per_round(rates[name], rates["single"]) for name in ("same", "cross")}
    capacity = {name: _per_round(costs["single"], costs[name]) for name in ("same", "cross")}
    disturbed = sum(
        1 for name in SCENARIOS for run in runs[name] if run["cpu"]["other"] > OTHER_CPU_WARNING
    )
    return {
        "rates": rates,
        "ratios": ratios,
        "server_us_per_msg": costs,
        "capacity_ratios": capacity,
        "p99_ms": p99,
        "commands_per_message": [run["cluster"]["commands_per_message"] for run in runs["cross"]],
        "same_node_commands_per_message": [
            run["cluster"]["commands_per_message"] for run in runs["same"]
        ],
        "disturbed_runs": disturbed,
        "all_runs": sum(len(runs[name]) for name in SCENARIOS),
    }


def _per_round(mine: Sequence[float], reference: Sequence[float]) -> list[float]:
    return [a / b for a, b in zip(mine, reference, strict=True) if b]


def summary(results: JsonObject) -> str:
    table = figures(results)
    results["figures"] = table
    rates, ratios, p99 = table["rates"], table["ratios"], table["p99_ms"]
    costs, capacity = table["server_us_per_msg"], table["capacity_ratios"]
    median = statistics.median
    rate = results["plan"]["rate"]
    rows = [
        f"median (min-max) of {len(rates['single'])} rounds; ratios against (1) round by round",
        f"{'':38} {'figure':>21} {'vs (1)':>17} {'us/msg':>13} {'vs (1) by CPU':>17}  target",
        f"{'(1) single-node relay, msg/s':38} {_spread(rates['single']):>21} {'1':>17} "
        f"{_spread(costs['single']):>13} {'1':>17}",
    ]
    for number, name, label in ((2, "same", "same-node, 2 nodes"), (3, "cross", "cross-node")):
        verdict = _verdict(median(ratios[name]), TARGETS[name], at_least=True)
        rows.append(
            f"{f'({number}) {label} relay, msg/s':38} {_spread(rates[name]):>21} "
            f"{_spread(ratios[name], 2):>17} {_spread(costs[name]):>13} "
            f"{_spread(capacity[name], 2):>17}  {verdict}"
        )
    versus = _per_round(p99["cross_latency"], p99["single_latency"])
    verdict = _verdict(median(p99["cross_latency"]), TARGETS["p99_ms"], at_least=False)
    rows.append(
        f"{f'(4) cross-node p99 at {rate:.0f} msg/s, ms':38} "
        f"{_spread(p99['cross_latency'], 2):>21} {_spread(versus, 1):>17} {'':>31}  {verdict}"
    )
    label = "    single-node p99, same rate, ms"
    rows.append(f"{label:38} {_spread(p99['single_latency'], 2):>21}")
    commands = table["commands_per_message"]
    verdict = _verdict(median(commands), TARGETS["commands"], at_least=False)
    label = "(5) Redis commands per cross-node msg"
    rows.append(f"{label:38} {_spread(commands, 3):>21} {'':>49}  {verdict}")
    same = table["same_node_commands_per_message"]
    rows.append(f"{'    the same, same-node traffic':38} {_spread(same, 3):>21}")
    if table["disturbed_runs"]:
        rows.append(
            f"! {table['disturbed_runs']} of {table['all_runs']} runs disturbed (other CPU "
            f"> {OTHER_CPU_WARNING:.0f} % of a core): rates and latencies are suspect, "
            "the CPU per message less so"
        )
    return "\n".join(rows)


def save(results: JsonObject) -> Path:
    return save_results("cluster", results)


def main(argv: Sequence[str] | None = None) -> int:
    plan = parse_plan(argv)

    def run(stack: ExitStack) -> JsonObject:
        return ClusterBench(plan, stack).run()

    return run_bench(run, summary, save if plan.save else None)


if __name__ == "__main__":
    sys.exit(main())
