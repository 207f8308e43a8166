"""A private ``redis-server`` for one test: on a free loopback port, nothing on disk, and
the test's to kill and start again (the shared instance on 6379 is never touched).

Without ``redis-server`` on the PATH the test is skipped, or fails when
``SWITCHBOARD_REQUIRE_SERVICES=1`` (CI).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

__all__ = ["RedisServer", "private_redis"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def spawn(self) -> None:
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--loglevel", "warning"]
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
        )

    async def start(self) -> None:
        """Start (again, on the same port: a restart without persistence starts empty)."""
        self.spawn()
        assert self.process is not None
        client = aioredis.Redis.from_url(self.url)
        try:
            for _ in range(400):
                with contextlib.suppress(OSError, aioredis.ConnectionError):
                    if await client.ping():
                        return
                assert self.process.poll() is None, "redis-server exited at start"
                await asyncio.sleep(0.025)
            raise AssertionError("redis-server did not answer")
        finally:
            await client.aclose()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def client(self) -> aioredis.Redis:
        return aioredis.Redis.from_url(self.url)


@contextlib.asynccontextmanager
async def private_redis() -> AsyncIterator[RedisServer]:
    binary = shutil.which("redis-server")
    if binary is None:
        message = "no redis-server on this machine"
        if os.environ.get("SWITCHBOARD_REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    server = RedisServer(binary)
    await server.start()
    try:
        yield server
    finally:
        server.kill()
