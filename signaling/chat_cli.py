"""``switchboard chat``: a line-based chat client, the smallest useful PbxSignal client.

It logs in, registers with ``NO_MEDIA_CALL``, then either calls ``--to`` or answers the
first incoming chat. Each line typed is one message; received messages are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import itertools
import re
import secrets
import sys
from typing import Any

from .appwebsocket.client import AppWebsocketClient
from .appwebsocket.errors import AppWebsocketError, ReplyTimeout

__all__ = ["run_chat"]

_TAG = re.compile(r"<[^>]*>")


async def run_chat(args: argparse.Namespace) -> int:
    try:
        client = await AppWebsocketClient.connect(args.url)
        await client.login(password=args.password, sip=args.sip, domain=args.domain)
        await client.send(
            {"api": "PbxSignal", "mt": "Register", "src": "chat", "flags": "NO_MEDIA_CALL"}
        )
    except (OSError, AppWebsocketError) as exc:
        print(f"switchboard chat: {exc}", file=sys.stderr)
        return 1
    session = _Session(client)
    if args.to:
        await session.call(args.to)
    else:
        print("waiting for a chat…", flush=True)
    reader = asyncio.create_task(session.read())
    writer = asyncio.create_task(session.write())
    _, pending = await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await client.close()
    return 0


class _Session:
    def __init__(self, client: AppWebsocketClient) -> None:
        self.client = client
        self.call_number: int | None = None
        self._ids = itertools.count(1)
        self._run = secrets.token_hex(6)

    async def call(self, sip: str) -> None:
        self.call_number = 1
        sig = {"type": "setup", "channel": 0, "cd": {"sip": sip}, "fty": [{"type": "im_setup"}]}
        await self._signal(1, sig)

    async def read(self) -> None:
        while True:
            try:
                message = await self.client.recv(timeout=3600)
            except ReplyTimeout:
                continue
            except AppWebsocketError as exc:
                print(f"* {exc}", flush=True)
                return
            if message.get("mt") == "Signaling":
                if await self._on_signal(message["call"], message.get("sig", {})):
                    return
            elif message.get("mt") == "Error":
                print(f"* error {message.get('code')}: {message.get('text')}", flush=True)

    async def _on_signal(self, call: int, sig: dict[str, Any]) -> bool:
        kind = sig.get("type")
        if kind == "setup" and self.call_number is None:
            self.call_number = call
            print(f"* chat from {sig.get('cg', {}).get('sip')}", flush=True)
            await self._signal(call, {"type": "conn"})
        elif kind == "conn":
            print("* connected", flush=True)
        elif kind == "rel":
            print(f"* chat ended (cause {sig.get('cau', {}).get('num')})", flush=True)
            return True
        for item in sig.get("fty", []):
            if item.get("type") == "im_message" and "data" in item:
                text = html.unescape(_TAG.sub("", item["data"]))
                print(f"[{item.get('sender_dn') or item.get('sender')}] {text}", flush=True)
            elif item.get("type") == "im_ack" and item.get("state") == "not_delivered":
                print(f"* message {item.get('id')} was not delivered", flush=True)
            elif item.get("type") == "im_ack" and item.get("state") == "stored":
                print(f"* message {item.get('id')} stored: they will read it later", flush=True)
            elif item.get("type") == "im_seen":
                print(f"* read up to message {item.get('seq')}", flush=True)
        return False

    async def write(self) -> None:
        while True:
            line = await asyncio.to_thread(sys.stdin.readline)
            if not line:
                if self.call_number is not None:
                    await self._signal(self.call_number, {"type": "rel"})
                return
            if self.call_number is None or not line.strip():
                continue
            message = {"type": "im_message", "mime": "text/plain", "data": line.rstrip("\n")}
            # Unique per user for a day (docs/protocol.md 12.21): never reused by a rerun
            message["id"] = f"{self._run}-{next(self._ids)}"
            await self._signal(self.call_number, {"type": "facility", "fty": [message]})

    async def _signal(self, call: int, sig: dict[str, Any]) -> None:
        await self.client.send({"api": "PbxSignal", "mt": "Signaling", "call": call, "sig": sig})
