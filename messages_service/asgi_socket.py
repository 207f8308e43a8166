"""The service's WebSocket as an ASGI route, for servers other than ``switchboard serve``.

``switchboard serve`` serves ``/messages/websocket`` on the transport
(``signaling.appwebsocket.transport``). Under any other ASGI server the same
``Connection`` runs behind this adapter: a receive loop hands it each frame (and waits
while it pauses input), a sender task writes its frames in order. The adapter says it has
no room once ``HIGH_WATER`` frames wait for the sender, and has room again when they are
down to ``LOW_WATER``, as a transport's buffer does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketDisconnected

from signaling.appwebsocket.transport import Served

__all__ = ["AsgiSocket"]

log = logging.getLogger(__name__)

HIGH_WATER = 64
LOW_WATER = 16
FLUSH_TIMEOUT = 5.0
"""How long written frames (and the close) may take to go out once the connection ends."""


class AsgiSocket:
    def __init__(self, websocket: WebSocket) -> None:
        self._ws = websocket
        self._out: deque[str | int] = deque()
        self._wake = asyncio.Event()
        self._input = asyncio.Event()
        self._input.set()
        self._closed = False
        self._served: Served | None = None
        self.writable_now = True

    @property
    def address(self) -> str:
        return self._ws.client.host if self._ws.client else "unknown"

    def write_text(self, text: str) -> None:
        if self._closed:
            return
        self._out.append(text)
        self._wake.set()
        if len(self._out) >= HIGH_WATER:
            self.writable_now = False

    def close_now(self, code: int, reason: str = "") -> None:
        if self._closed:
            return
        self._closed = True
        self.writable_now = False
        self._out.append(code)
        self._wake.set()
        self._input.set()
        self._gone(code)

    def pause_input(self) -> None:
        self._input.clear()

    def resume_input(self) -> None:
        self._input.set()

    async def serve(self, serving: Callable[[AsgiSocket], Served]) -> None:
        """Accept, run the connection until either side closes it, flush what is left."""
        try:
            await self._ws.accept()
        except (OSError, WebSocketDisconnect, WebSocketDisconnected):
            return  # gone before it started
        self._served = serving(self)
        sender = asyncio.get_running_loop().create_task(self._send_loop())
        code = 1006
        try:
            code = await self._receive_loop()
        except (OSError, WebSocketDisconnect, WebSocketDisconnected):
            pass
        finally:
            if not self._closed:  # the peer closed or went away: nothing more to send
                self._closed = True
                self._out.clear()
                sender.cancel()
                self._gone(code)
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(sender, FLUSH_TIMEOUT)

    async def _receive_loop(self) -> int:
        """Frames to the connection until we close, or the peer does (its code)."""
        assert self._served is not None
        while not self._closed:
            await self._input.wait()
            if self._closed:
                break
            message = await self._ws.receive()
            if message["type"] == "websocket.disconnect":
                return int(message.get("code", 1005))
            text = message.get("text")
            if text is not None:
                self._served.text(text)
            else:
                self._served.binary()
        return 1000

    async def _send_loop(self) -> None:
        out = self._out
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while out:
                    item = out.popleft()
                    if isinstance(item, int):
                        await self._ws.close(item)
                        return
                    await self._ws.send_text(item)
                    if not self.writable_now and len(out) <= LOW_WATER and not self._closed:
                        self.writable_now = True
                        if self._served is not None:
                            self._served.resumed()
        except (OSError, WebSocketDisconnect, WebSocketDisconnected, RuntimeError) as exc:
            log.debug("send failed: %r", exc)

    def _gone(self, code: int) -> None:
        if self._served is not None:
            self._served.gone(code)
