"""A TCP proxy for the hub's link to the messages service that lets the service's
WebSocket frames reach the hub one at a time, at least ``gap`` seconds apart.

On loopback two frames the service writes back to back usually arrive in one read, so
a hub reads the second one microseconds after the first, sooner than any client can
answer. Over a real network, or on a loaded machine, frames travel and are read apart.
The pacer makes that the normal case, so that a test sees what a client could do
between two frames of the service. The hub's direction passes unchanged.

Frames from a server are never masked (RFC 6455 §5.1); the link uses no extensions, so
a frame is its header and its payload, nothing more.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from typing import Any
from urllib.parse import urlsplit

__all__ = ["paced"]

_END_OF_HEADERS = b"\r\n\r\n"


@contextlib.asynccontextmanager
async def paced(url: str, gap: float) -> AsyncIterator[str]:
    """Serve a pacer in front of the WebSocket ``url``; yields the url to use instead."""
    target = urlsplit(url)
    assert target.hostname is not None and target.port is not None, url
    host, port = target.hostname, target.port
    pumps: set[asyncio.Task[None]] = set()

    async def accepted(hub_in: asyncio.StreamReader, hub_out: asyncio.StreamWriter) -> None:
        service_in, service_out = await asyncio.open_connection(host, port)
        both = [
            asyncio.create_task(_until_closed(_copy(hub_in, service_out))),
            asyncio.create_task(_until_closed(_pace(service_in, hub_out, gap))),
        ]
        pumps.update(both)
        try:
            await asyncio.wait(both, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in both:
                task.cancel()
                pumps.discard(task)
            for writer in (hub_out, service_out):
                writer.close()

    server = await asyncio.start_server(accepted, "127.0.0.1", 0)
    own_port = server.sockets[0].getsockname()[1]
    try:
        yield target._replace(netloc=f"127.0.0.1:{own_port}").geturl()
    finally:
        server.close()
        for task in list(pumps):
            task.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)


async def _until_closed(pump: Coroutine[Any, Any, None]) -> None:
    """Run one direction until either end closes."""
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        await pump


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()


async def _pace(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, gap: float) -> None:
    """The HTTP answer of the handshake as it comes, then one frame per ``gap``."""
    headers = await reader.readuntil(_END_OF_HEADERS)
    writer.write(headers)
    await writer.drain()
    loop = asyncio.get_running_loop()
    last = -gap
    while True:
        frame = await _frame(reader)
        await asyncio.sleep(max(0.0, last + gap - loop.time()))
        writer.write(frame)
        await writer.drain()
        last = loop.time()


async def _frame(reader: asyncio.StreamReader) -> bytes:
    """One whole frame (header and payload) as read; raises at the end of the stream."""
    head = await reader.readexactly(2)
    length = head[1] & 0x7F
    extended = {126: 2, 127: 8}.get(length, 0)
    more = await reader.readexactly(extended) if extended else b""
    if extended:
        length = int.from_bytes(more, "big")
    mask = await reader.readexactly(4) if head[1] & 0x80 else b""
    return head + more + mask + await reader.readexactly(length)
