"""Idle and storm benchmark: what a connection costs in memory, and whether it comes back.

Run::

    .venv/bin/python bench/idle.py [--conns N] [--storms S] [--grace SECONDS]
        [--no-deflate-offer] [--compression] [--tracemalloc [DIR]] [--quick]

What it does (see bench/README.md for what the figures mean):

1. **idle**: a fresh ``switchboard serve`` (the embedded default, users made for the load)
   and a fresh bare uvicorn + Starlette WebSocket server (``bench/echo_app.py``), each in
   its own process. After 10 warm-up connections, N connections are opened from K load
   processes: on the hub each logs in with the digest and registers ``NO_MEDIA_CALL``, on
   the echo server each carries three frames of the same shape each way. VmRSS before
   and after gives KiB per connection for both, and their difference is what Switchboard
   adds. The clients offer permessage-deflate as browsers do (``--no-deflate-offer``: not);
2. **storms**: another fresh hub; S storms, each of N connections that connect, log in,
   register and then close. VmRSS is sampled every 20 ms while they log in (the peak,
   per live connection) and read after each storm, once the resume grace has run out
   and the hub's ``/metrics`` (``switchboard_held``) says it keeps nothing: memory after
   the last storm must be close to memory after the first;
3. with ``--tracemalloc`` the servers run under ``bench/traced_serve.py`` and snapshots
   are taken at the same points; the bench prints the allocation sites and object types
   that grew per idle connection (the hub's, and the hub's beyond the bare echo's), while
   storm 1 was live, and from the first storm to the last (figures about *where* memory
   goes only: ``tracemalloc`` makes the servers slower and bigger);
4. prints a summary and writes it as JSON to bench/results/.

The load processes are those of bench/relay.py (raw asyncio WebSocket clients, uvloop).
Everything runs on 127.0.0.1 and stops by itself. This is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import sys
import tempfile
import time
import tracemalloc
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from relay import (
    BENCH_DIR,
    BENCH_SETTINGS,
    HOST,
    MEMORY_WARMUP,
    ROOT,
    JsonObject,
    ServerProcess,
    WorkerPool,
    free_port,
    run_bench,
    save_results,
    say,
    source_version,
    switchboard_command,
    user_tables,
)
from traced_serve import SNAPSHOT_DIR_VARIABLE

RESULTS_DIR = BENCH_DIR / "results"
CONCURRENCY = 100  # connections opening at once per load process
SAMPLE_EVERY = 0.02  # seconds between RSS samples during a storm
STORM_LIMIT = 10.0  # a storm must log everyone in within this many seconds
START_LIMIT = 90.0  # seconds a server may take to listen (tracemalloc makes it slow)
SETTLE = 1.0  # seconds of quiet before reading RSS
FORGET_LIMIT = 30.0  # seconds past the grace for the hub to report nothing left
OUR_CODE = ("signaling", "tracing", "config", "messages_service", "filebuffers")
ENTRY = "signaling/cli.py"  # runs the event loop: every allocation passes through it
TOP = 12  # lines of each tracemalloc listing


@dataclass(frozen=True)
class Plan:
    conns: int
    procs: int
    storms: int
    grace: float
    concurrency: int
    deflate: bool
    """The clients offer permessage-deflate."""
    compression: bool
    """The servers accept it (``limits.compression``)."""
    tracemalloc: str | None
    """None: off; "": snapshots in the temporary folder; else the folder to keep them in."""
    save: bool

    @property
    def users(self) -> int:
        return self.conns + MEMORY_WARMUP


def parse_plan(argv: Sequence[str] | None = None) -> Plan:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--conns", type=int, default=5000, help="connections (default 5000)")
    parser.add_argument("--procs", type=int, default=2, help="load processes (default 2)")
    parser.add_argument("--storms", type=int, default=5, help="storms (default 5; 0: none)")
    parser.add_argument(
        "--grace",
        type=float,
        default=2.0,
        help="signaling.resume_grace of the hub in seconds (default 2; the shipped 60 "
        "works too, the storms then wait a minute each)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=CONCURRENCY,
        help=f"connections opening at once per load process (default {CONCURRENCY})",
    )
    parser.add_argument(
        "--no-deflate-offer",
        action="store_true",
        help="clients do not offer permessage-deflate (by default they do, as browsers do)",
    )
    parser.add_argument(
        "--compression",
        action="store_true",
        help="limits.compression = true: the servers accept the offer (default: as shipped, off)",
    )
    parser.add_argument(
        "--tracemalloc",
        nargs="?",
        const="",
        metavar="DIR",
        help="where the bytes go (a slower server); snapshots are kept in DIR if given",
    )
    parser.add_argument("--quick", action="store_true", help="1000 connections, 2 storms")
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results JSON")
    args = parser.parse_args(argv)
    conns, storms = (1000, 2) if args.quick else (args.conns, args.storms)
    if conns < args.procs or args.procs < 1 or storms < 0 or args.grace < 0:
        parser.error("--conns must be at least --procs >= 1; --storms, --grace not negative")
    if args.concurrency < 1:
        parser.error("--concurrency must be positive")
    return Plan(
        conns=conns,
        procs=args.procs,
        storms=storms,
        grace=args.grace,
        concurrency=args.concurrency,
        deflate=not args.no_deflate_offer,
        compression=args.compression,
        tracemalloc=args.tracemalloc,
        save=not args.no_save,
    )


def write_config(path: Path, plan: Plan, secret: str) -> None:
    """The shipped defaults, but for: the bench tenant as the default one, the login
    throttle and rate limit out of reach of one address making thousands of logins
    (relay.BENCH_SETTINGS), the resume grace of the plan and, with ``--compression``,
    ``limits.compression``. Trace flags stay as shipped."""
    lines = [*BENCH_SETTINGS, "[signaling]", f'resume_grace = "{plan.grace}s"', ""]
    if plan.compression:
        lines.insert(lines.index("[limits]") + 1, "compression = true")
    path.write_text("\n".join([*lines, *user_tables(plan.users, secret)]))


class Snapshots:
    """A traced server's snapshots: ask for one (SIGUSR1), wait until it is written."""

    def __init__(self, server: ServerProcess, folder: Path) -> None:
        self.server = server
        self.folder = folder
        self.taken = 0

    def take(self) -> int:
        self.taken += 1
        done = self.folder / f"types-{self.taken}.json"
        os.kill(self.server.pid, signal.SIGUSR1)
        deadline = time.monotonic() + 300.0
        while not done.exists():
            if time.monotonic() > deadline or self.server.process.poll() is not None:
                raise RuntimeError(f"snapshot {self.taken} not written:\n{self.server.log_tail()}")
            time.sleep(0.1)
        return self.taken

    def sites(self, number: int, ours_only: bool = False) -> dict[str, Site]:
        path = self.folder / f"snap-{number}.pickle"
        return sites(tracemalloc.Snapshot.load(str(path)), ours_only)

    def types(self, number: int) -> dict[str, int]:
        counts: dict[str, int] = json.loads((self.folder / f"types-{number}.json").read_text())
        return counts


class IdleBench:
    def __init__(self, plan: Plan, stack: contextlib.ExitStack) -> None:
        self.plan = plan
        self.stack = stack
        self.tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sb-idle-")))
        self.secret = os.urandom(8).hex()
        self.config_path = self.tmp / "bench.toml"
        write_config(self.config_path, plan, self.secret)
        self.workers = WorkerPool(plan.procs, self.secret)
        stack.callback(self.workers.stop)
        self.traces: Path | None = None
        """Where traced servers write their snapshots; None: nothing is traced."""
        if plan.tracemalloc is not None:
            self.traces = Path(plan.tracemalloc or self.tmp / "snapshots").resolve()
        self.snapshots: dict[str, Snapshots] = {}

    # -- servers ------------------------------------------------------------------------------

    def start_hub(self, name: str) -> ServerProcess:
        port = free_port()
        argv = [*self._launcher("switchboard", name), "serve", "--config", str(self.config_path)]
        argv += ["--host", HOST, "--port", str(port), "--data-dir", str(self.tmp / name)]
        return self._started(ServerProcess(name, argv, port, self.tmp / f"{name}.log"))

    def start_echo(self, name: str) -> ServerProcess:
        port = free_port()
        argv = [*self._launcher(str(BENCH_DIR / "echo_app.py"), name)]
        argv += ["--config", str(self.config_path), "--host", HOST, "--port", str(port)]
        return self._started(ServerProcess(name, argv, port, self.tmp / f"{name}.log"))

    def _launcher(self, program: str, name: str) -> list[str]:
        """How to start ``program``: as it is, or under ``traced_serve.py``."""
        if self.traces is None:
            return switchboard_command() if program == "switchboard" else [sys.executable, program]
        os.environ[SNAPSHOT_DIR_VARIABLE] = str(self.traces / name)  # the child inherits it
        return [sys.executable, str(BENCH_DIR / "traced_serve.py"), program]

    def _started(self, server: ServerProcess) -> ServerProcess:
        self.stack.callback(server.stop)
        server.wait_ready(timeout=START_LIMIT)
        if self.traces is not None:
            self.snapshots[server.name] = Snapshots(server, self.traces / server.name)
        return server

    def snapshot(self, server: ServerProcess) -> int:
        """A snapshot of a traced server (0 when nothing is traced)."""
        found = self.snapshots.get(server.name)
        return found.take() if found is not None else 0

    # -- load ---------------------------------------------------------------------------------

    def open(self, server: ServerProcess, target: str, first: int, count: int) -> JsonObject:
        """``count`` connections from all load processes at once; RSS sampled meanwhile."""
        procs = self.plan.procs
        shares = [count // procs + (1 if index < count % procs else 0) for index in range(procs)]
        commands, start = [], first
        for share in shares:
            commands.append(
                {"op": "idle", "port": server.port, "target": target, "first_user": start}
                | {"count": share, "concurrency": min(self.plan.concurrency, share)}
                | {"deflate": self.plan.deflate, "echo_setup": True}
            )
            start += share
        began = time.monotonic()
        self.workers.send(commands)
        peak = server.rss_kib()
        deadline = began + 120.0
        while not all(pipe.poll() for pipe in self.workers.pipes):
            if time.monotonic() > deadline:
                raise TimeoutError("connections still opening after 120 s")
            peak = max(peak, server.rss_kib())
            time.sleep(SAMPLE_EVERY)
        replies = self.workers.gather(timeout=1.0)
        seconds = time.monotonic() - began
        peak = max(peak, server.rss_kib())
        return {
            "opened": sum(reply["opened"] for reply in replies),
            "deflated": sum(reply["deflated"] for reply in replies),
            "seconds": seconds,
            "peak": peak,
        }

    def close(self) -> None:
        self.workers.call([{"op": "close"}] * self.plan.procs, timeout=60.0)

    def warm_up(self, server: ServerProcess, target: str) -> None:
        """One-time costs (first handshake, first login, lazy caches) go to the baseline."""
        warm = {"op": "idle", "port": server.port, "target": target, "first_user": 0}
        warm |= {"deflate": self.plan.deflate, "echo_setup": True}
        self.workers.call_one(0, warm | {"count": MEMORY_WARMUP, "concurrency": MEMORY_WARMUP})
        time.sleep(SETTLE)

    # -- phases -------------------------------------------------------------------------------

    def run(self) -> JsonObject:
        plan = self.plan
        say(
            f"{plan.conns} connections from {plan.procs} load processes "
            f"({', '.join(sorted(self.workers.loops))}), resume grace {plan.grace:g} s"
            f"; clients {'offer' if plan.deflate else 'do not offer'} permessage-deflate"
            f"{', limits.compression on' if plan.compression else ''}"
            f"{'; tracemalloc on: RSS figures are not comparable' if self.traces else ''}"
        )
        results: JsonObject = {"plan": asdict(plan), "source": source_version()}
        results["hub_idle"] = self.idle_run("hub")
        results["echo_idle"] = self.idle_run("echo")
        hub, echo = results["hub_idle"]["kib"], results["echo_idle"]["kib"]
        results["own_kib"] = hub - echo
        say(f"Switchboard's own: {hub - echo:+.2f} KiB per idle registered connection")
        if self.traces is not None:
            self.report_idle(results["hub_idle"]["marks"], results["echo_idle"]["marks"])
        if plan.storms:
            results["storms"] = self.storm_run()
        return results

    def idle_run(self, target: str) -> JsonObject:
        name = f"idle-{target}"
        server = self.start_hub(name) if target == "hub" else self.start_echo(name)
        self.warm_up(server, target)
        before = server.rss_kib()
        marks = [self.snapshot(server)]
        opened = self.open(server, target, MEMORY_WARMUP, self.plan.conns)
        time.sleep(SETTLE)
        after = server.rss_kib()
        marks.append(self.snapshot(server))
        self.close()
        server.stop()
        kib = (after - before) / opened["opened"]
        what = "idle registered connection" if target == "hub" else "bare WebSocket"
        say(
            f"{target:<5} {kib:6.2f} KiB per {what} (RSS {before} -> {after} KiB, "
            f"{opened['opened']} opened in {opened['seconds']:.1f} s{_deflated(opened)})"
        )
        return {"kib": kib, "rss_before": before, "rss_after": after, "marks": marks, **opened}

    def storm_run(self) -> list[JsonObject]:
        plan = self.plan
        server = self.start_hub("storm")
        self.warm_up(server, "hub")
        baseline = server.rss_kib()
        marks = [self.snapshot(server)]
        say(f"storms: hub RSS {baseline} KiB after {MEMORY_WARMUP} warm-up connections")
        storms = []
        for number in range(1, plan.storms + 1):
            opened = self.open(server, "hub", MEMORY_WARMUP, plan.conns)
            live = server.rss_kib()
            if number == 1:
                marks.append(self.snapshot(server))
            self.close()
            left = self.wait_forgotten(server)
            after = server.rss_kib()
            marks.append(self.snapshot(server))
            storm = {
                "storm": number,
                **opened,
                "rss_live": live,
                "rss_after": after,
                "kib_per_live": (opened["peak"] - baseline) / opened["opened"],
                "left": left,
            }
            storms.append(storm)
            slow = "" if opened["seconds"] <= STORM_LIMIT else f"  ! over {STORM_LIMIT:g} s"
            say(
                f"storm {number}: {opened['opened']} logins in {opened['seconds']:.1f} s"
                f"{_deflated(opened)}{slow}, "
                f"peak RSS {opened['peak']} KiB ({storm['kib_per_live']:.1f} KiB per live "
                f"connection), after {after} KiB; {_holds(left)}"
            )
        server.stop()
        if self.traces is not None:
            self.report_storms(self.snapshots["storm"], marks)
        return storms

    def wait_forgotten(self, server: ServerProcess) -> dict[str, int]:
        """Past the grace, until the hub's /metrics counts no connection or registration."""
        time.sleep(self.plan.grace)
        deadline = time.monotonic() + FORGET_LIMIT
        while True:
            counts = hub_counts(server.port)
            if not any(counts.values()) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        time.sleep(SETTLE)
        return counts

    # -- tracemalloc -------------------------------------------------------------------------

    def report_idle(self, hub_marks: list[int], echo_marks: list[int]) -> None:
        """Per idle connection: the hub's sites, and what it holds beyond the bare echo."""
        hub, echo = self.snapshots["idle-hub"], self.snapshots["idle-echo"]
        count = self.plan.conns
        say(f"\ntracemalloc: {count} idle connections, per connection")
        hub_now, hub_then = hub.sites(hub_marks[1]), hub.sites(hub_marks[0])
        show_sites("hub, by allocation site", hub_now, hub_then, count)
        growth = {
            key: (now[0] - hub_then.get(key, (0, 0))[0], now[1] - hub_then.get(key, (0, 0))[1])
            for key, now in hub_now.items()
        }
        echo_then = echo.sites(echo_marks[0])
        echo_growth = {
            key: (now[0] - echo_then.get(key, (0, 0))[0], now[1] - echo_then.get(key, (0, 0))[1])
            for key, now in echo.sites(echo_marks[1]).items()
        }
        show_sites("hub beyond the bare echo, by allocation site", growth, echo_growth, count)
        ours_now, ours_then = hub.sites(hub_marks[1], True), hub.sites(hub_marks[0], True)
        show_sites("hub, by Switchboard's innermost caller", ours_now, ours_then, count)
        show_types(hub.types(hub_marks[0]), hub.types(hub_marks[1]), count)

    def report_storms(self, storm: Snapshots, marks: list[int]) -> None:
        """Sites and types: baseline -> live (storm 1), storm 1 after -> last storm after."""
        base, live, first, last = marks[0], marks[1], marks[2], marks[-1]
        count = self.plan.conns
        say(f"\ntracemalloc: while the {count} connections of storm 1 were live, per connection")
        show_sites("by allocation site", storm.sites(live), storm.sites(base), count)
        ours_live, ours_base = storm.sites(live, True), storm.sites(base, True)
        show_sites("by Switchboard's innermost caller", ours_live, ours_base, count)
        show_types(storm.types(base), storm.types(live), count)
        if len(marks) < 4:
            return  # one storm: nothing to compare it with
        say(f"\ntracemalloc: after storm {len(marks) - 2} against after storm 1, whole bytes")
        show_sites("by allocation site", storm.sites(last), storm.sites(first), 1)
        ours_first, ours_last = storm.sites(first, True), storm.sites(last, True)
        show_sites("by Switchboard's innermost caller", ours_last, ours_first, 1)
        storms = len(marks) - 3  # storms after the first
        grew = {
            site: blocks - ours_first.get(site, (0, 0))[1]
            for site, (size, blocks) in ours_last.items()
            if size > ours_first.get(site, (0, 0))[0]
        }
        scaling = [site for site, blocks in grew.items() if blocks * 100 >= count * storms]
        say(
            f"  Switchboard sites that grew: {len(grew)}, by {sum(grew.values())} blocks in all; "
            f"growing with the connections (a block per 100 connections a storm or more): "
            f"{', '.join(scaling) or 'none'}"
        )
        show_types(storm.types(first), storm.types(last), 1)


def hub_counts(port: int) -> dict[str, int]:
    """What the hub says it keeps (``switchboard_held`` on /metrics; a hub from before
    that gauge: its connections, registrations and calls)."""
    with urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    held = dict(re.findall(r'^switchboard_held\{what="(\w+)"\} (\d+)$', text, re.MULTILINE))
    if not held:
        found = re.findall(r"^switchboard_(connections|registrations|calls) (\S+)$", text, re.M)
        held = dict(found)
    return {what: int(float(count)) for what, count in held.items()}


def _deflated(opened: JsonObject) -> str:
    deflated = opened["deflated"]
    return f", {deflated} with permessage-deflate" if deflated else ""


def _holds(counts: dict[str, int]) -> str:
    kept = {what: count for what, count in counts.items() if count}
    return f"hub holds {kept}" if kept else f"hub holds nothing ({len(counts)} kinds counted)"


Site = tuple[int, int]  # bytes, blocks


def sites(snapshot: tracemalloc.Snapshot, ours_only: bool) -> dict[str, Site]:
    """Bytes and blocks by the frame that allocated them, or (``ours_only``) by the
    innermost frame of Switchboard's code on the way there, for allocations made while
    our code ran (so ``json.dumps`` called by the codec counts as the codec's)."""
    totals: dict[str, list[int]] = {}
    names: dict[str, str] = {}
    for trace in snapshot.traces:
        frames = trace.traceback  # oldest first
        frame = frames[-1]
        if ours_only:
            mine = [f for f in frames if _is_caller(_short(f.filename, names))]
            if not mine:
                continue
            frame = mine[-1]
        key = f"{_short(frame.filename, names)}:{frame.lineno}"
        entry = totals.setdefault(key, [0, 0])
        entry[0] += trace.size
        entry[1] += 1
    return {key: (size, blocks) for key, (size, blocks) in totals.items()}


def _short(filename: str, cache: dict[str, str]) -> str:
    """A path relative to the checkout, site-packages or the standard library."""
    short = cache.get(filename)
    if short is None:
        short = filename
        with contextlib.suppress(ValueError):
            short = str(Path(filename).resolve().relative_to(ROOT))
        for marker in ("site-packages/", f"python{sys.version_info[0]}.{sys.version_info[1]}/"):
            if marker in short:
                short = short.split(marker, 1)[1]
                break
        cache[filename] = short
    return short


def _is_ours(short: str) -> bool:
    return short.startswith(tuple(f"{package}/" for package in OUR_CODE))


def _is_caller(short: str) -> bool:
    return _is_ours(short) and short != ENTRY


def show_sites(title: str, now: dict[str, Site], then: dict[str, Site], per: int) -> None:
    diffs = sorted(
        ((now.get(key, (0, 0))[0] - then.get(key, (0, 0))[0], key) for key in set(now) | set(then)),
        key=lambda item: -abs(item[0]),
    )
    unit = "B/conn" if per > 1 else "B"
    say(f"  {title}:")
    for size, key in diffs[:TOP]:
        if size == 0:
            break
        blocks = now.get(key, (0, 0))[1] - then.get(key, (0, 0))[1]
        mark = "*" if _is_ours(key) else " "
        say(f"   {mark}{size / per:+10.1f} {unit} {blocks / per:+8.2f} blocks  {key}")
    total = sum(size for size, _ in diffs)
    say(f"    total {total / per:+.1f} {unit} ({len(now)} sites; * Switchboard's code)")


def show_types(before: dict[str, int], after: dict[str, int], per: int) -> None:
    diffs = sorted(
        ((after.get(name, 0) - before.get(name, 0), name) for name in set(before) | set(after)),
        reverse=True,
    )
    grown = [f"{name} {diff / per:+.2f}" for diff, name in diffs[:TOP] if diff > 0]
    say(f"  objects{' per connection' if per > 1 else ''}: {', '.join(grown) or 'none grew'}")


def summary(results: JsonObject) -> str:
    hub, echo = results["hub_idle"], results["echo_idle"]
    lines = [
        f"idle   Switchboard {hub['kib']:.2f} KiB per registered connection, bare uvicorn + "
        f"Starlette {echo['kib']:.2f} KiB: Switchboard's own {results['own_kib']:+.2f} KiB "
        f"(aim <= 1 at 5,000 connections)",
    ]
    storms = results.get("storms") or []
    if storms:
        first, last = storms[0], storms[-1]
        growth = (last["rss_after"] - first["rss_after"]) / first["rss_after"]
        lines += [
            f"storm  {first['opened']} logins in {max(s['seconds'] for s in storms):.1f} s at "
            f"most; peak {max(s['kib_per_live'] for s in storms):.1f} KiB per live connection "
            f"(aim <= 35 for 5,000 within 10 s)",
            f"after  storm 1 {first['rss_after']} KiB, storm {last['storm']} "
            f"{last['rss_after']} KiB: {100 * growth:+.1f} % (aim within 10 %)",
        ]
    return "\n".join(lines)


def save(results: JsonObject) -> Path:
    return save_results("idle", results)


def main(argv: Sequence[str] | None = None) -> int:
    plan = parse_plan(argv)

    def run(stack: contextlib.ExitStack) -> dict[str, Any]:
        return IdleBench(plan, stack).run()

    return run_bench(run, summary, save if plan.save else None)


if __name__ == "__main__":
    sys.exit(main())
