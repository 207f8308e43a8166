"""A private ``redis-server`` for one test: on a free loopback port, nothing on disk, and
the test's to kill and start again (the shared instance on 6379 is never touched); with
a password (``AUTH``) or TLS only when asked.

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
from pathlib import Path

import pytest
import redis.asyncio as aioredis

__all__ = ["RedisServer", "private_redis"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    def __init__(
        self, binary: str, password: str | None = None, tls: tuple[Path, Path] | None = None
    ) -> None:
        """``password``: clients must ``AUTH``; ``tls``: a certificate (its own CA) and its
        key, and the server speaks TLS only."""
        self.binary = binary
        self.port = _free_port()
        self.password = password
        self.tls = tls
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        secret = f":{self.password}@" if self.password else ""
        if self.tls is not None:
            return f"rediss://{secret}127.0.0.1:{self.port}/0?ssl_ca_certs={self.tls[0]}"
        return f"redis://{secret}127.0.0.1:{self.port}/0"

    def spawn(self) -> None:
        port = ["--port", str(self.port)]
        if self.tls is not None:
            cert, key = (str(path) for path in self.tls)
            port = ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", cert]
            port += ["--tls-key-file", key, "--tls-ca-cert-file", cert]
            port += ["--tls-auth-clients", "no"]
        command = [self.binary, *port, "--bind", "127.0.0.1"]
        if self.password:
            command += ["--requirepass", self.password]
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
async def private_redis(
    password: str | None = None, tls: tuple[Path, Path] | None = None
) -> AsyncIterator[RedisServer]:
    binary = shutil.which("redis-server")
    if binary is None:
        message = "no redis-server on this machine"
        if os.environ.get("SWITCHBOARD_REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    server = RedisServer(binary, password, tls)
    await server.start()
    try:
        yield server
    finally:
        server.kill()
