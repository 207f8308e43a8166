"""An asyncio AppWebsocket client: connect, log in with the digest, send and receive.

The hub uses it to reach the messages service; tests, bots and benchmarks use it to
reach the hub. Frames are JSON objects; ``recv`` returns the next one in order.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Sequence
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection, connect

from .digest import NO_INFO, login_digest
from .errors import ConnectionClosed, LoginFailed, ReplyTimeout
from .frames_out import masked_texts
from .json_in import loads

__all__ = ["AppWebsocketClient"]

JsonObject = dict[str, Any]


class AppWebsocketClient:
    def __init__(self, connection: ClientConnection) -> None:
        self._ws = connection
        self.domain: str | None = None

    @classmethod
    async def connect(
        cls, url: str, *, max_size: int | None = 2**20, ssl: ssl.SSLContext | None = None
    ) -> AppWebsocketClient:
        """``ssl`` for a wss:// url whose certificate the system does not trust (default:
        the system's trusted roots)."""
        options: dict[str, Any] = {} if ssl is None else {"ssl": ssl}
        return cls(
            await connect(url, max_size=max_size, ping_interval=None, compression=None, **options)
        )

    async def login(
        self,
        *,
        password: str,
        app: str = "",
        domain: str = "",
        sip: str = "",
        guid: str = "",
        dn: str = "",
        info: object = NO_INFO,
        pbx_obj: str | None = None,
        timeout: float = 5.0,
    ) -> JsonObject:
        """Challenge, digest, ``AppLogin``; returns ``AppLoginResult`` or raises LoginFailed."""
        challenge = await self._challenge(timeout)
        identity = {"app": app, "domain": domain, "sip": sip, "guid": guid, "dn": dn}
        digest = login_digest(**identity, info=info, challenge=challenge, password=password)
        message: JsonObject = {"mt": "AppLogin", **identity, "digest": digest}
        if info is not NO_INFO:
            message["info"] = info
        if pbx_obj is not None:
            message["pbxObj"] = pbx_obj
        await self.send(message)
        result = await self.recv(timeout)
        if result.get("mt") != "AppLoginResult" or result.get("ok") is not True:
            raise LoginFailed(result.get("error"), result.get("errorText"))
        self.domain = result.get("domain")
        return result

    async def _challenge(self, timeout: float) -> str:
        """Ask for a login challenge (``AppChallenge``) and return it."""
        await self.send({"mt": "AppChallenge"})
        challenge = await self.recv(timeout)
        if challenge.get("mt") != "AppChallengeResult":
            raise LoginFailed(None, f"unexpected {challenge.get('mt')!r}")
        return str(challenge.get("challenge", ""))

    async def send(self, message: JsonObject) -> None:
        await self.send_text(json.dumps(message, separators=(",", ":"), ensure_ascii=False))

    async def send_text(self, text: str | bytes) -> None:
        try:
            await self._ws.send(text)
        except websockets.ConnectionClosed as exc:
            raise _closed(exc) from exc

    async def send_texts(self, texts: Sequence[str]) -> None:
        """Several text frames in one write to the transport (one ``send()`` where
        ``send_text`` per frame makes one each); each is still a frame of its own, built
        by ``masked_texts`` (no compression is negotiated, and this client never sends a
        fragment). Waits, as ``send`` does, while the transport's buffer is over its
        mark."""
        ws = self._ws
        try:
            async with ws.send_context():  # enters only while the connection is open
                queued = ws.protocol.data_to_send()  # whatever it has to send goes first
                frames = masked_texts([text.encode() for text in texts])
                ws.transport.write(b"".join([*queued, frames]) if queued else frames)
        except websockets.ConnectionClosed as exc:
            raise _closed(exc) from exc

    async def recv(self, timeout: float = 5.0) -> JsonObject:
        return (await self.recv_frame(timeout))[1]

    async def recv_frame(self, timeout: float | None = 5.0) -> tuple[str, JsonObject]:
        """The next frame as it came and as parsed (a trace shows the text unchanged,
        without encoding the message again). ``timeout=None`` waits as long as it takes,
        without a timer (or a task) per frame: for a caller that watches the link's
        silence itself."""
        try:
            if timeout is None:
                text = await self._ws.recv()
            else:
                text = await asyncio.wait_for(self._ws.recv(), timeout)
        except TimeoutError as exc:
            raise ReplyTimeout(f"nothing received within {timeout} s") from exc
        except websockets.ConnectionClosed as exc:
            raise _closed(exc) from exc
        # orjson, or json where they differ; a binary frame as before
        message = loads(text, json.loads) if isinstance(text, str) else json.loads(text)
        if not isinstance(message, dict):
            raise ConnectionClosed(None, "peer sent a non-object frame")
        return text if isinstance(text, str) else text.decode(errors="replace"), message

    async def wait_closed(self, timeout: float = 5.0) -> tuple[int | None, str]:
        """Read until the server closes; returns the close code and reason."""
        try:
            while True:
                await self.recv(timeout)
        except ConnectionClosed as exc:
            return exc.code, exc.reason

    async def close(self, code: int = 1000) -> None:
        await self._ws.close(code)

    @property
    def close_code(self) -> int | None:
        return self._ws.close_code


def _closed(exc: websockets.ConnectionClosed) -> ConnectionClosed:
    frame = exc.rcvd
    return ConnectionClosed(frame.code if frame else None, frame.reason if frame else "")
