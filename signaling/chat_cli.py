"""``switchboard chat``: a line-based chat client, the smallest useful PbxSignal client.

It logs in and, for a user with the ``messages`` licence, first shows what is waiting:
the unread messages of every chat and, with ``--to``, the last messages with that peer
(PbxMessages ``ReadChats``/``ReadChat``, PROTOCOL §7.4, as the web client reads them).
Then it registers with ``NO_MEDIA_CALL`` and either calls ``--to`` or answers the first
incoming chat. Each line typed is one message; received messages are printed above the
line being typed (``signaling.chat_console``, plain asyncio stdin reading: no thread
blocks on a ``readline``, so nothing is left reading the terminal once the chat ends).

When the chat ends, by the peer's ``rel`` or the hub's, the cause is printed with its
name (``signaling.core.causes``) and the command returns: 0 after a chat that was
connected, 1 when it never was. Ctrl-D ends the chat (``rel``) and returns 0; Ctrl-C
does the same and returns 130, as an interrupted command does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import html
import itertools
import re
import secrets
import signal
import sys
import time
from collections.abc import Awaitable
from typing import Any, TypeVar

from .appwebsocket.client import AppWebsocketClient
from .appwebsocket.errors import AppWebsocketError, LoginFailed, ReplyTimeout
from .chat_console import Console
from .core.causes import Q931

__all__ = ["cause_text", "run_chat"]

JsonObject = dict[str, Any]
T = TypeVar("T")

INTERRUPTED = 130
"""The status of a command stopped by Ctrl-C (128 + SIGINT), as shells report it."""
UNREAD_SHOWN = 50
"""At most this many unread messages of one chat are shown at start."""
_TAG = re.compile(r"<[^>]*>")
_BREAK = re.compile(r"<br\s*/?>|</p>|</div>|</li>", re.IGNORECASE)
_QUICK = 5.0
"""How long an answer to our own request may take before the server counts as gone."""


def cause_text(cau: object) -> str:
    """``18 no user responding``: a Q.931 cause (``cau`` of a ``rel``) with its name."""
    num = cau.get("num") if isinstance(cau, dict) else None
    if not isinstance(num, int):
        return "no cause given"
    try:
        name = Q931(num).name.lower().replace("_", " ")
    except ValueError:
        return f"{num}"
    return f"{num} {name.replace('non selected', 'non-selected')}"  # as Q.931 spells it


async def run_chat(args: argparse.Namespace) -> int:
    """The whole client; returns the exit status."""
    loop = asyncio.get_running_loop()
    interrupted = asyncio.Event()
    loop.add_signal_handler(signal.SIGINT, interrupted.set)
    console = Console()
    chat = asyncio.create_task(_chat(args, console))
    stop = asyncio.create_task(interrupted.wait())
    try:
        await asyncio.wait({chat, stop}, return_when=asyncio.FIRST_COMPLETED)
        if chat.done():
            return chat.result()
        chat.cancel()  # its cleanup releases the call and closes the connection
        with contextlib.suppress(asyncio.CancelledError):
            await chat
        return INTERRUPTED
    finally:
        stop.cancel()
        console.close()
        loop.remove_signal_handler(signal.SIGINT)
        sys.stdout.flush()


async def _chat(args: argparse.Namespace, console: Console) -> int:
    try:
        client = await AppWebsocketClient.connect(args.url)
    except (OSError, AppWebsocketError) as exc:
        print(f"switchboard chat: cannot reach {args.url}: {exc}", file=sys.stderr)
        return 1
    session = _Session(client, console)
    try:
        try:
            await client.login(password=args.password, sip=args.sip, domain=args.domain)
            try:
                await _show_stored(_Requests(client, args.sip), console, args.to, args.history)
            except ReplyTimeout:  # the chat itself needs no stored messages: go on
                console.show("* stored messages unavailable (no answer)")
            await session.register()
        except LoginFailed as exc:
            print(
                f"switchboard chat: the server refused the login of {args.sip!r} "
                f"({exc.text}, error {exc.error}): check --sip, --password and --domain",
                file=sys.stderr,
            )
            return 1
        except (OSError, AppWebsocketError) as exc:
            print(f"switchboard chat: {exc}", file=sys.stderr)
            return 1
        console.start()
        if args.to:
            await session.call(args.to)
        else:
            console.show("* waiting for a chat… (Ctrl-D or Ctrl-C to leave)")
        return await session.run()
    finally:
        await session.leave()


class _Session:
    """One registration and at most one chat call."""

    def __init__(self, client: AppWebsocketClient, console: Console) -> None:
        self.client = client
        self.console = console
        self.call_number: int | None = None
        self.connected = False
        self.ended = False
        self._ids = itertools.count(1)
        self._run = secrets.token_hex(6)
        self._sent: dict[str, str] = {}  # our message ids -> their text, for acks
        self._told_stored = False

    async def register(self) -> None:
        await self.client.send(
            {"api": "PbxSignal", "mt": "Register", "src": "chat", "flags": "NO_MEDIA_CALL"}
        )
        while True:
            answer = await self.client.recv(_QUICK)
            if answer.get("mt") == "RegisterResult":
                if "err" in answer:
                    raise AppWebsocketError(f"register refused: {answer['err']}")
                return

    async def call(self, sip: str) -> None:
        self.call_number = 1
        sig = {"type": "setup", "channel": 0, "cd": {"sip": sip}, "fty": [{"type": "im_setup"}]}
        await self._signal(1, sig)
        self.console.show(f"* calling {sip}…")

    async def run(self) -> int:
        """Until the chat ends (the exit status) or stdin does (Ctrl-D: 0)."""
        reader = asyncio.create_task(self._read())
        writer = asyncio.create_task(self._write())
        try:
            done, _ = await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (reader, writer):
                task.cancel()
        if writer in done:
            writer.result()  # a bug shows its traceback
        return reader.result() if reader in done else 0

    async def leave(self) -> None:
        """Release the call if it still runs, and close; quickly, even if the server is gone."""
        if self.call_number is not None and not self.ended:
            self.ended = True
            with contextlib.suppress(OSError, AppWebsocketError, TimeoutError):
                await _within(self._signal(self.call_number, {"type": "rel"}))
        with contextlib.suppress(OSError, AppWebsocketError, TimeoutError):
            await _within(self.client.close())

    async def _read(self) -> int:
        while True:
            try:
                message = await self.client.recv(timeout=3600)
            except ReplyTimeout:
                continue
            except AppWebsocketError as exc:
                self.console.show(f"* connection lost: {exc}")
                return 1
            if message.get("mt") == "Signaling":
                status = await self._on_signal(message.get("call"), message.get("sig") or {})
                if status is not None:
                    return status
            elif message.get("mt") == "Error":
                self.console.show(f"* error {message.get('code')}: {message.get('text')}")

    async def _on_signal(self, call: object, sig: JsonObject) -> int | None:
        kind = sig.get("type")
        if kind == "setup" and self.call_number is None and isinstance(call, int):
            self.call_number = call
            self.console.show(f"* chat from {_caller(sig)}")
            await self._signal(call, {"type": "conn"})
            self.connected = True
        elif kind == "setup":
            self.console.show(f"* {_caller(sig)} is calling too (not answered: one chat at a time)")
            return None
        elif call != self.call_number:
            return None
        elif kind == "alert":
            self.console.show("* ringing…")
        elif kind == "conn":
            self.connected = True
            self.console.show("* connected: type a message and press Enter")
        elif kind == "rel":
            self.ended = True
            self.console.show(f"* chat ended: {cause_text(sig.get('cau'))}")
            return 0 if self.connected else 1
        for item in sig.get("fty") or []:
            if isinstance(item, dict):
                self._on_facility(item)
        return None

    def _on_facility(self, item: JsonObject) -> None:
        kind, state = item.get("type"), item.get("state")
        if kind == "im_message" and isinstance(item.get("data"), str):
            who = item.get("sender_dn") or item.get("sender") or "?"
            self.console.show(f"[{who}] {_text(item['data'])}{_files(item.get('attach'))}")
        elif kind == "im_ack" and state == "not_delivered":
            said = self._sent.get(str(item.get("id")), "")
            self.console.show(f"* not delivered: {said}")
        elif kind == "im_ack" and state == "stored" and not self._told_stored:
            self._told_stored = True
            self.console.show("* they are away: your messages are stored for them")
        elif kind == "im_seen":
            self.console.show(f"* seen up to message {item.get('seq')}")

    async def _write(self) -> None:
        while True:
            line = await self.console.line()
            if line is None:
                return
            if self.call_number is None or not line.strip():
                continue
            # Unique per user for a day (docs/protocol.md 12.21): never reused by a rerun
            message_id = f"{self._run}-{next(self._ids)}"
            self._sent[message_id] = line
            message = {"type": "im_message", "mime": "text/plain", "data": line, "id": message_id}
            await self._signal(self.call_number, {"type": "facility", "fty": [message]})

    async def _signal(self, call: int, sig: JsonObject) -> None:
        await self.client.send({"api": "PbxSignal", "mt": "Signaling", "call": call, "sig": sig})


# -- stored messages (licensed users) ----------------------------------------------------------


async def _show_stored(
    requests: _Requests, console: Console, peer: str | None, history: int
) -> None:
    """Unread messages of every chat, then the last ``history`` messages with ``peer``.
    Nothing for a user without the licence; a note when the service cannot answer."""
    opened = await requests.ask("Session")
    if opened[-1].get("mt") != "SessionResult":
        if opened[-1].get("code") != "unlicensed":
            console.show(f"* stored messages unavailable ({opened[-1].get('code')})")
        return
    *chats, done = await requests.ask("ReadChats", unread=True)
    if done.get("mt") != "ReadChatsResult":
        console.show(f"* stored messages unavailable ({done.get('code')})")
        return
    unread = {c["sip"]: c for c in chats if isinstance(c.get("sip"), str) and c.get("unread")}
    for sip, chat in sorted(unread.items(), key=lambda item: item[1].get("timestamp") or 0):
        if sip == peer:
            continue
        count = int(chat["unread"])
        name = f"{chat.get('dn') or sip} ({sip})" if chat.get("dn") else sip
        console.show(f"* {count} unread message{'s' * (count != 1)} from {name}:")
        await _show_chat(requests, console, sip, min(count, UNREAD_SHOWN))
    if peer:
        count = max(history, int(unread.get(peer, {}).get("unread") or 0))
        if count:
            console.show(f"* earlier with {peer}:")
            if not await _show_chat(requests, console, peer, min(count, UNREAD_SHOWN)):
                console.show("  (nothing yet)")


async def _show_chat(requests: _Requests, console: Console, sip: str, count: int) -> int:
    """The last ``count`` messages with ``sip``, oldest first; marks them read (the peer
    sees it, as after reading them in the web client). Returns how many were shown."""
    *inds, done = await requests.ask("ReadChat", sip=sip, count=count)
    messages = [ind["msg"] for ind in inds if isinstance(ind.get("msg"), dict)]
    for msg in reversed(messages):
        when = _when(msg.get("timestamp"))
        who = msg.get("dn") or msg.get("author") or "?"
        text = _text(str(msg.get("text") or ""))
        files = "".join(f" [file: {f.get('name')}]" for f in msg.get("attached") or [])
        console.show(f"  {when} [{who}] {text}{files}".replace("\n", "\n    "))
    theirs = [m["id"] for m in messages if m.get("author") != requests.user and "id" in m]
    if done.get("mt") == "ReadChatResult" and theirs:
        await requests.ask("SetRead", id=max(theirs))
    return len(messages)


class _Requests:
    """PbxMessages requests one at a time, before the device registers: nothing else
    arrives meanwhile but the answers, so answers are read in line."""

    def __init__(self, client: AppWebsocketClient, user: str) -> None:
        self.client = client
        self.user = user
        self._srcs = itertools.count(1)

    async def ask(self, mt: str, **fields: Any) -> list[JsonObject]:
        """The Inds and the final answer (a Result or an Error) of one request."""
        src = f"m{next(self._srcs)}"
        await self.client.send({"api": "PbxMessages", "mt": mt, "src": src, **fields})
        answers: list[JsonObject] = []
        while True:
            answer = await self.client.recv(_QUICK)
            if answer.get("api") != "PbxMessages" or answer.get("src") != src:
                continue
            answers.append(answer)
            if not str(answer.get("mt", "")).endswith("Ind"):
                return answers


# -- rendering ---------------------------------------------------------------------------------


def _caller(sig: JsonObject) -> str:
    cg = sig.get("cg")
    if not isinstance(cg, dict):
        cg = {}
    sip = cg.get("sip") or cg.get("num") or "?"
    for item in sig.get("fty") or []:
        is_name = isinstance(item, dict) and item.get("type") == "name_identification"
        if is_name and item.get("name"):
            return f"{item['name']} ({sip})"
    return str(sip)


def _text(data: str) -> str:
    """Message HTML (the hub's sanitized subset) as terminal text."""
    return html.unescape(_TAG.sub("", _BREAK.sub("\n", data))).strip()


def _files(attach: object) -> str:
    if not isinstance(attach, str):
        return ""
    return "".join(f" [file: {url}]" for url in attach.split())


def _when(timestamp: object) -> str:
    if not isinstance(timestamp, int | float):
        return ""
    moment = time.localtime(timestamp / 1000)
    if time.strftime("%Y-%m-%d", moment) == time.strftime("%Y-%m-%d"):
        return time.strftime("%H:%M", moment)
    return time.strftime("%Y-%m-%d %H:%M", moment)


async def _within(work: Awaitable[T]) -> T:
    return await asyncio.wait_for(work, _QUICK)
