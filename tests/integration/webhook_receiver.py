"""A webhook receiver on a loopback port, for tests whose servers are other processes
(respx mocks only the test's own): it answers every POST ``204`` and keeps the events
(PROTOCOL §9.6) in the order they arrived."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

__all__ = ["WebhookReceiver", "webhook_receiver"]

JsonObject = dict[str, Any]


class WebhookReceiver:
    def __init__(self) -> None:
        self.events: list[JsonObject] = []
        self.port = 0
        self._arrived = asyncio.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One connection: requests one after another (the sender keeps it open)."""
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                length = 0
                for line in head.decode("latin-1").split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                self.events.append(json.loads(await reader.readexactly(length)))
                self._arrived.set()
                writer.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def until(self, count: int, what: str, timeout: float = 20.0) -> list[JsonObject]:
        """The events once ``count`` have arrived."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.events) < count:
            self._arrived.clear()
            left = deadline - loop.time()
            assert left > 0, f"{len(self.events)} of {count} events ({what}): {self.events}"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), left)
        return list(self.events)


@contextlib.asynccontextmanager
async def webhook_receiver() -> AsyncIterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    server = await asyncio.start_server(receiver.serve, "127.0.0.1", 0)
    receiver.port = server.sockets[0].getsockname()[1]
    try:
        yield receiver
    finally:
        server.close()
        await server.wait_closed()
