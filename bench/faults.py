"""Fault bench: kill -9 of the hub or the messages service in the middle of 500 messages
with ids, several times, on SQLite and PostgreSQL; a table of what was stored.

Run::

    .venv/bin/python bench/faults.py [--runs N] [--fault hub|service|both]
                                     [--backend sqlite|postgres|both] [--seed S]

Each run is the scenario of ``tests/integration/faults.py`` (imported, not copied), the
same one ``tests/integration/test_faults.py`` runs once per case: hub and service in two
processes, alice writes 500 messages with ids to offline bob, one process is killed with
SIGKILL at a seeded point and started again, alice resends what was not acknowledged
(on a new call if she lost the hub), then both sides' histories are counted. Run ``i``
uses seed ``S + i``; ``SWITCHBOARD_FAULT_SEED=<seed>`` repeats one run in the test.

Exits 1 when any run found a defect (a message missing, stored twice, out of order, or
an ack against the contract), 0 otherwise. See bench/README.md for the columns.
This is a benchmark, not a test: nothing here is collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(ROOT))  # the scenario lives with the tests

import asyncpg  # noqa: E402
from relay import save_results, source_version, terminate_as_exit  # noqa: E402

from tests.databases import scratch_postgres  # noqa: E402
from tests.integration.faults import FAULTS, MESSAGES, WINDOW, Outcome, run_fault  # noqa: E402

JsonObject = dict[str, Any]

RESULTS_DIR = BENCH_DIR / "results"
DEFAULT_POSTGRES = "postgres://postgres@127.0.0.1:5432/postgres"


@dataclass(frozen=True)
class Plan:
    runs: int
    faults: tuple[str, ...]
    backends: tuple[str, ...]
    seed: int
    count: int
    window: int
    postgres: str
    save: bool


def parse_plan(argv: Sequence[str] | None = None) -> Plan:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per fault and back-end (3)")
    parser.add_argument("--fault", choices=[*FAULTS, "both"], default="both", help="default both")
    parser.add_argument(
        "--backend", choices=["sqlite", "postgres", "both"], default="both", help="default both"
    )
    parser.add_argument("--seed", type=int, help="seed of the first run (default: random)")
    parser.add_argument("--messages", type=int, default=MESSAGES, help=f"per run ({MESSAGES})")
    parser.add_argument("--window", type=int, default=WINDOW, help=f"unacked ids ({WINDOW})")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("SWITCHBOARD_BENCH_POSTGRES", DEFAULT_POSTGRES),
        help="server to make each run's database on (default $SWITCHBOARD_BENCH_POSTGRES "
        f"or {DEFAULT_POSTGRES})",
    )
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results JSON")
    args = parser.parse_args(argv)
    if min(args.runs, args.window) < 1 or args.messages < 20:
        parser.error("--runs and --window must be positive, --messages at least 20")
    return Plan(
        runs=args.runs,
        faults=FAULTS if args.fault == "both" else (args.fault,),
        backends=("sqlite", "postgres") if args.backend == "both" else (args.backend,),
        seed=args.seed if args.seed is not None else random.SystemRandom().randrange(2**31),
        count=args.messages,
        window=args.window,
        postgres=args.postgres,
        save=not args.no_save,
    )


# -- databases ------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def database(backend: str, directory: Path, server: str) -> AsyncIterator[str]:
    """A fresh database for one run: a SQLite file, or a PostgreSQL database dropped after."""
    if backend == "sqlite":
        yield f"sqlite://{(directory / 'messages.sqlite3').as_posix()}"
        return
    admin = await asyncpg.connect(server, timeout=5)
    try:
        async with scratch_postgres(admin, server, "switchboard_bench_faults") as url:
            yield url
    finally:
        await admin.close()


async def postgres_unreachable(server: str) -> str | None:
    try:
        connection = await asyncpg.connect(server, timeout=3)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    await connection.close()
    return None


# -- the runs -------------------------------------------------------------------------------

HEADER = (
    f"{'backend':<9}{'fault':<8}{'seed':>11}{'killed at':>10}{'acked':>7}{'resent':>7}"
    f"{'rows a/b':>10}{'missing':>9}{'twice':>9}{'order':>7}{'acks bad':>9}"
    f"{'probe':>7}{'secs':>6}"
)


def row(backend: str, outcome: Outcome, seconds: float) -> str:
    alice, bob = outcome.tally("alice"), outcome.tally("bob")
    order = "ok" if alice.in_order and bob.in_order else "NO"
    probe = sum(outcome.probe_rows.values())
    return (
        f"{backend:<9}{outcome.fault:<8}{outcome.seed:>11}{outcome.kill_at:>10}"
        f"{outcome.acked_at_fault:>7}{outcome.resent:>7}"
        f"{f'{alice.rows}/{bob.rows}':>10}{f'{alice.missing}/{bob.missing}':>9}"
        f"{f'{alice.twice}/{bob.twice}':>9}{order:>7}{len(outcome.bad_acks()):>9}"
        f"{probe:>7}{seconds:>6.1f}"
    )


def figures(backend: str, outcome: Outcome, seconds: float) -> JsonObject:
    return {
        "backend": backend,
        "fault": outcome.fault,
        "seed": outcome.seed,
        "killed_at": outcome.kill_at,
        "acked_at_fault": outcome.acked_at_fault,
        "resent": outcome.resent,
        "sides": {side: asdict(outcome.tally(side)) for side in ("alice", "bob")},
        "bad_acks": len(outcome.bad_acks()),
        "probe_rows": outcome.probe_rows,
        "defects": outcome.defects(),
        "seconds": round(seconds, 2),
    }


async def run_all(plan: Plan, tmp: Path) -> JsonObject:
    results: JsonObject = {"plan": asdict(plan), "source": source_version(), "runs": []}
    print(HEADER, flush=True)
    for backend in plan.backends:
        if backend == "postgres":
            why = await postgres_unreachable(plan.postgres)
            if why is not None:
                print(f"{backend:<9}skipped, server not reachable ({why})", flush=True)
                results["skipped"] = {"postgres": why}
                continue
        for fault in plan.faults:
            for index in range(plan.runs):
                directory = tmp / f"{backend}-{fault}-{index}"
                directory.mkdir()
                began = time.monotonic()
                async with database(backend, directory, plan.postgres) as url:
                    outcome = await run_fault(
                        fault,
                        url,
                        directory / "run",
                        plan.seed + index,
                        count=plan.count,
                        window=plan.window,
                    )
                seconds = time.monotonic() - began
                print(row(backend, outcome, seconds), flush=True)
                results["runs"].append(figures(backend, outcome, seconds))
    return results


def summary(results: JsonObject, count: int) -> str:
    lines = ["", "totals (messages stored twice / sent, per side alice/bob):"]
    groups: dict[tuple[str, str], list[JsonObject]] = {}
    for run in results["runs"]:
        groups.setdefault((run["backend"], run["fault"]), []).append(run)
    for (backend, fault), runs in groups.items():
        sent = count * len(runs)
        missing = "/".join(
            str(sum(r["sides"][s]["missing"] for r in runs)) for s in ("alice", "bob")
        )
        twice = "/".join(str(sum(r["sides"][s]["twice"] for r in runs)) for s in ("alice", "bob"))
        bad = sum(r["bad_acks"] for r in runs)
        lines.append(
            f"  {backend:<9}{fault:<8}{len(runs)} runs, {sent:,} messages: missing {missing}, "
            f"twice {twice}, ids acked against the contract {bad}"
        )
    defective = [run for run in results["runs"] if run["defects"]]
    if defective:
        lines += ["", f"! {len(defective)} of {len(results['runs'])} runs found defects:"]
        for run in defective:
            lines.append(f"  {run['backend']} {run['fault']} seed {run['seed']}:")
            lines += [f"    {defect}" for defect in run["defects"]]
    else:
        lines += ["", f"no defect in {len(results['runs'])} runs"]
    return "\n".join(lines)


def save(results: JsonObject) -> Path:
    return save_results("faults", results)


def main(argv: Sequence[str] | None = None) -> int:
    plan = parse_plan(argv)
    print(
        f"{plan.runs} runs per fault and back-end, {plan.count} messages each, "
        f"window {plan.window}, seeds {plan.seed}..{plan.seed + plan.runs - 1}",
        flush=True,
    )
    began = time.monotonic()
    with terminate_as_exit(), tempfile.TemporaryDirectory(prefix="sb-faults-") as tmp:
        try:
            results = asyncio.run(run_all(plan, Path(tmp)))
        except KeyboardInterrupt:
            print("\ninterrupted; servers stopped", file=sys.stderr)
            return 130
    results["wall_seconds"] = round(time.monotonic() - began, 1)
    print(summary(results, plan.count), flush=True)
    if plan.save:
        print(f"saved {save(results).relative_to(ROOT)}", flush=True)
    return 1 if any(run["defects"] for run in results["runs"]) else 0


if __name__ == "__main__":
    sys.exit(main())
