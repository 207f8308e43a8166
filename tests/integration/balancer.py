"""A TCP balancer for tests: each connection goes to the first of its backends that
accepts one, as a balancer with health checks does once a dead backend is noticed. A
backend killed with SIGKILL refuses connections from then on, so its clients, cut off,
connect again and land on the next one (docs/operations.md "Running several nodes":
replicas of the messages service behind a balancer)."""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["Balancer"]

HOST = "127.0.0.1"


class Balancer:
    def __init__(self, port: int, backends: list[int]) -> None:
        self.port = port
        self.backends = backends
        self.routed: list[int] = []
        """The backend each connection went to, in order."""
        self._server: asyncio.Server | None = None
        self._pumps: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accepted, HOST, self.port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in self._pumps:
            task.cancel()

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for port in self.backends:
            try:
                backend_reader, backend_writer = await asyncio.open_connection(HOST, port)
            except OSError:
                continue
            self.routed.append(port)
            for pump in (_pump(reader, backend_writer), _pump(backend_reader, writer)):
                task = asyncio.create_task(pump)
                self._pumps.add(task)
                task.add_done_callback(self._pumps.discard)
            return
        writer.close()  # no backend: the client sees its connection refused, in effect


async def _pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy until either side ends, then close the other way too."""
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            sink.close()
