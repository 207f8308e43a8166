"""A small TCP proxy a test owns, between a node and a service on loopback (SCALE.md
"Testing on one 2-core machine"): ``cut()`` breaks every connection through it and
refuses new ones until ``heal()``, as a partition of that node would; ``pause()`` holds
whatever either side sends (and new connections) until ``heal()``, as a network that
drops packets does to a connection that survives it (TCP resends them once it heals)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

__all__ = ["TcpProxy", "tcp_proxy"]

HOST = "127.0.0.1"


class TcpProxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.accepted = 0
        """Connections forwarded so far (a node that reconnected made more)."""
        self._cut = False
        self._flowing = asyncio.Event()
        """Clear while paused: nothing crosses."""
        self._flowing.set()
        self._open: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._forward, HOST, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        self.cut()
        self._flowing.set()  # whatever was held finds its connection gone
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def cut(self) -> None:
        """Reset every connection through the proxy; refuse new ones until ``heal``."""
        self._cut = True
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()

    def pause(self) -> None:
        """Hold every byte either way, and new connections, until ``heal``."""
        self._flowing.clear()

    def heal(self) -> None:
        self._cut = False
        self._flowing.set()

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._cut:
            writer.transport.abort()
            return
        await self._flowing.wait()
        if self._cut:
            writer.transport.abort()
            return
        try:
            upstream_reader, upstream = await asyncio.open_connection(HOST, self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self.accepted += 1
        self._open |= {writer, upstream}
        try:
            await asyncio.gather(
                _copy(reader, upstream, self._flowing),
                _copy(upstream_reader, writer, self._flowing),
            )
        finally:
            for end in (writer, upstream):
                self._open.discard(end)
                end.transport.abort()


async def _copy(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, flowing: asyncio.Event
) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            await flowing.wait()
            writer.write(data)
            await writer.drain()
    writer.transport.abort()


@contextlib.asynccontextmanager
async def tcp_proxy(target_port: int) -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy(target_port)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()
