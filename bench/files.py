"""Files benchmark: upload and download throughput, and server memory during a big upload.

Run::

    .venv/bin/python bench/files.py [--big-mib 100] [--small-count 20] [--quick] [--shared]

What it does (see bench/README.md for what the figures mean):

1. starts ``switchboard serve`` (the embedded default: hub, messages service and file
   buffers in one process) with a generated config: one licensed user, ``files.max_size``
   and ``files.quota`` above the biggest file of the run;
2. logs that user in over the hub's AppWebsocket, opens a PbxMessages session and asks
   ``CreateFileBuffer`` for every file, exactly as a client does;
3. uploads each file with one HTTP POST to its upload url (the body streamed from a
   1 MiB block repeated, so the client costs little) and downloads it again from its
   read url, timing both;
4. during the big upload samples the server's resident memory every 10 ms: it must stay
   flat, because uploads are streamed to disk, never held;
5. prints a summary and writes it as JSON to bench/results/.

With ``--shared`` the server keeps its file buffers as a node of a cluster does
(docs/protocol.md 12.45): metadata, uploads in progress and quotas in a PostgreSQL
database made for the run (``[cluster] database``), the bytes in a ``files.dir`` of
their own; comparing it with a run without says what sharing costs an upload.

This is a benchmark, not a test: nothing here is collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
from cluster import DEFAULT_POSTGRES, scratch_database
from relay import (
    DOMAIN,
    HOST,
    HUB_PATH,
    JsonObject,
    ServerProcess,
    free_port,
    run_bench,
    save_results,
    say,
    source_version,
    switchboard_command,
)

MIB = 1024 * 1024
BLOCK = os.urandom(MIB)  # incompressible, and the same block every time: cheap to send
USER = "filer"


@dataclass(frozen=True)
class Plan:
    big_mib: int
    big_count: int
    small_count: int
    save: bool
    shared: bool = False
    postgres: str = DEFAULT_POSTGRES


def parse_plan(argv: Sequence[str] | None = None) -> Plan:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--big-mib", type=int, default=100, help="size of the big file")
    parser.add_argument("--big-count", type=int, help="big files (default 3, quick 1)")
    parser.add_argument("--small-count", type=int, help="1 MiB files (default 20, quick 5)")
    parser.add_argument("--quick", action="store_true", help="short run")
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results JSON")
    parser.add_argument(
        "--shared", action="store_true", help="file buffers as a cluster's node keeps them"
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get("SWITCHBOARD_BENCH_POSTGRES", DEFAULT_POSTGRES),
        help="server to make the --shared run's database on",
    )
    args = parser.parse_args(argv)
    big_count = args.big_count or (1 if args.quick else 3)
    small_count = args.small_count or (5 if args.quick else 20)
    if min(args.big_mib, big_count, small_count) < 1:
        parser.error("sizes and counts must be positive")
    return Plan(
        args.big_mib,
        big_count,
        small_count,
        save=not args.no_save,
        shared=args.shared,
        postgres=args.postgres,
    )


def write_config(path: Path, plan: Plan, password: str, database: str = "") -> None:
    """The run's config; with ``database``, file buffers are shared (metadata there,
    bytes in a folder next to the config)."""
    limit = (plan.big_mib + 1) * MIB
    shared = [f"dir = {json.dumps(str(path.parent / 'shared'))}"] if database else []
    cluster = ["[cluster]", f"database = {json.dumps(database)}", ""] if database else []
    path.write_text(
        "\n".join(
            [
                "[login]",
                f'default_domain = "{DOMAIN}"',
                "",
                *cluster,
                "[files]",
                f"max_size = {limit}",
                f"quota = {limit * (plan.big_count + plan.small_count + 2)}",
                *shared,
                "",
                f'[tenants."{DOMAIN}".users.{USER}]',
                f'password = "{password}"',
                'licences = ["messages"]',
                "",
            ]
        )
    )


class Client:
    """The user's AppWebsocket session (for CreateFileBuffer) and an HTTP client."""

    def __init__(self, port: int, password: str) -> None:
        self.port = port
        self.password = password
        self.http = httpx.AsyncClient(base_url=f"http://{HOST}:{port}", timeout=600)

    async def __aenter__(self) -> Client:
        from signaling.appwebsocket.client import AppWebsocketClient

        self.ws = await AppWebsocketClient.connect(f"ws://{HOST}:{self.port}{HUB_PATH}")
        await self.ws.login(password=self.password, sip=USER)
        await self.ws.send({"api": "PbxMessages", "mt": "Session", "src": "s"})
        answer = await self.ws.recv()
        if answer.get("mt") != "SessionResult":
            raise RuntimeError(f"no PbxMessages session: {answer}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.ws.close()
        await self.http.aclose()

    async def create(self, size: int) -> tuple[str, str]:
        """The new buffer's upload url and read url."""
        await self.ws.send(
            {"api": "PbxMessages", "mt": "CreateFileBuffer", "src": "c", "name": "b.bin"}
            | {"size": size, "mime": "application/octet-stream"}
        )
        answer = await self.ws.recv()
        if "upload" not in answer:
            raise RuntimeError(f"CreateFileBuffer refused: {answer}")
        return str(answer["upload"]), str(answer["url"])

    async def upload(self, url: str, size: int) -> float:
        """Seconds to POST ``size`` bytes (streamed, with Content-Length)."""

        async def body() -> AsyncIterator[bytes]:
            left = size
            while left > 0:
                chunk = BLOCK if left >= MIB else BLOCK[:left]
                left -= len(chunk)
                yield chunk

        began = time.perf_counter()
        answer = await self.http.post(url, content=body(), headers={"Content-Length": str(size)})
        seconds = time.perf_counter() - began
        if answer.status_code != 201 or answer.json()["size"] != size:
            raise RuntimeError(f"upload failed: {answer.status_code} {answer.text[:200]}")
        return seconds

    async def download(self, url: str, size: int) -> float:
        """Seconds to GET the file back, reading it as it comes."""
        began = time.perf_counter()
        got = 0
        async with self.http.stream("GET", url) as answer:
            async for chunk in answer.aiter_raw():
                got += len(chunk)
        seconds = time.perf_counter() - began
        if got != size:
            raise RuntimeError(f"download returned {got} of {size} bytes")
        return seconds


async def sample_rss(server: ServerProcess, into: list[int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        into.append(server.rss_kib())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.01)


async def measure(plan: Plan, server: ServerProcess, password: str) -> JsonObject:
    results: JsonObject = {}
    async with Client(server.port, password) as client:
        await client.upload((await client.create(MIB))[0], MIB)  # warm-up: first-use costs
        for label, size, count in [
            ("1 MiB", MIB, plan.small_count),
            (f"{plan.big_mib} MiB", plan.big_mib * MIB, plan.big_count),
        ]:
            uploads, downloads, peaks = [], [], []
            for _ in range(count):
                upload, url = await client.create(size)
                await asyncio.sleep(0.2)  # let the server settle before the baseline
                baseline = server.rss_kib()
                samples: list[int] = []
                stop = asyncio.Event()
                sampler = asyncio.create_task(sample_rss(server, samples, stop))
                uploads.append(await client.upload(upload, size))
                stop.set()
                await sampler
                peaks.append(max(samples, default=baseline) - baseline)
                downloads.append(await client.download(url, size))
            total = size * count / MIB
            results[label] = {
                "files": count,
                "upload_mib_s": total / sum(uploads),
                "download_mib_s": total / sum(downloads),
                "upload_s": uploads,
                "download_s": downloads,
                "rss_growth_kib_max": max(peaks),
            }
            figures = results[label]
            say(
                f"{label:>8}  upload {figures['upload_mib_s']:7.1f} MiB/s   download "
                f"{figures['download_mib_s']:7.1f} MiB/s   server RSS during upload "
                f"+{figures['rss_growth_kib_max'] / 1024:.1f} MiB at most ({count} files)"
            )
    return results


def run(plan: Plan, stack: contextlib.ExitStack) -> JsonObject:
    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sb-files-")))
    password = secrets.token_hex(8)
    config = tmp / "files.toml"
    database = stack.enter_context(scratch_database(plan.postgres)) if plan.shared else ""
    write_config(config, plan, password, database)
    say("file buffers shared (PostgreSQL and a folder)" if plan.shared else "file buffers local")
    port = free_port()
    argv = [*switchboard_command(), "serve", "--config", str(config)]
    argv += ["--host", HOST, "--port", str(port), "--data-dir", str(tmp / "data")]
    server = ServerProcess("files", argv, port, tmp / "server.log")
    stack.callback(server.stop)
    server.wait_ready()
    say(f"server RSS at start {server.rss_kib() / 1024:.1f} MiB")
    results: JsonObject = {"plan": asdict(plan), "source": source_version()}
    results["runs"] = asyncio.run(measure(plan, server, password))
    results["rss_end_kib"] = server.rss_kib()
    return results


def summary(results: JsonObject) -> str:
    lines = []
    for label, figures in results["runs"].items():
        lines.append(
            f"{label:>8}: upload {figures['upload_mib_s']:.1f} MiB/s, download "
            f"{figures['download_mib_s']:.1f} MiB/s, server RSS +"
            f"{figures['rss_growth_kib_max'] / 1024:.1f} MiB at most during an upload"
        )
    return "\n".join(lines)


def save(results: JsonObject) -> Path:
    return save_results("files", results)


def main(argv: Sequence[str] | None = None) -> int:
    plan = parse_plan(argv)
    return run_bench(lambda stack: run(plan, stack), summary, save if plan.save else None)


if __name__ == "__main__":
    sys.exit(main())
