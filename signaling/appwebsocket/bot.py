"""A small client API for bots (docs/bots.md): log in as a user or an App object, register
as a chat device, answer or place chats, send and receive messages with their
acknowledgements, show typing, and come back after a lost connection without losing a
chat or a message.

It is the protocol a web client speaks (PROTOCOL §3, §4; docs/protocol.md 12.18), wrapped
so that a bot reads like its conversation: ``async for chat in bot.offers()``, ``await
chat.answer()``, ``await chat.receive()``, ``await chat.send("…")``. One task reads the
connection and sorts what arrives into the chats it belongs to; everything else waits on
those chats. When the connection drops, the reader logs in again, registers with the
resume token and the last ``seq`` of every chat, and answers the hub's re-offers of those
chats itself: a bot's ``Chat`` objects live on across the blink, and a message it missed
arrives once, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from .client import AppWebsocketClient
from .errors import AppWebsocketError, ConnectionClosed

__all__ = ["Bot", "BotMessage", "Chat", "ChatEnded"]

JsonObject = dict[str, Any]


class ChatEnded(AppWebsocketError):
    """The chat was released (``cause``: its Q.931 number, e.g. 16 normal clearing)."""

    def __init__(self, cause: int | None) -> None:
        super().__init__(f"chat ended (cause {cause})")
        self.cause = cause


@dataclass(frozen=True, slots=True)
class BotMessage:
    """One ``im_message`` that arrived: its text, type, ``seq`` and time as the hub set them."""

    data: str
    mime: str
    seq: int
    time: int | None
    raw: JsonObject


@dataclass(eq=False)
class Chat:
    """One chat call of the bot; ``peer`` is who (or which queue) is at the other end."""

    bot: Bot
    call: int
    peer: JsonObject
    offer: JsonObject = field(default_factory=dict)
    """The ``setup`` that offered it (with its ``fty``: the visitor's context, …)."""
    conf_id: str | None = None
    last_seq: int = 0
    ended: int | None = None
    peer_typing: bool = False
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    _inbox: asyncio.Queue[BotMessage | None] = field(default_factory=asyncio.Queue)

    @property
    def peer_name(self) -> str:
        """The peer's display name, as the offer named it (``name_identification``)."""
        for item in self.offer.get("fty") or []:
            if isinstance(item, dict) and item.get("type") == "name_identification":
                return str(item.get("name") or "")
        return str(self.peer.get("dn") or self.peer.get("sip") or "")

    async def answer(self) -> None:
        """Take the offered chat (``conn``); the first device to answer wins it."""
        await self.bot._signal(self.call, {"type": "conn"})
        self.connected.set()

    async def send(self, text: str, *, mime: str = "text/plain", timeout: float = 10.0) -> str:
        """Send a message and return its ``im_ack`` state (``delivered``, ``held``, ``stored``
        or ``not_delivered``). Its ``id`` makes a resend after a reconnect harmless."""
        message_id = self.bot._new_id()
        ack: asyncio.Future[JsonObject] = asyncio.get_running_loop().create_future()
        self.bot._acks[message_id] = ack
        fty = [{"type": "im_message", "mime": mime, "data": text, "id": message_id}]
        try:
            await self.bot._signal(self.call, {"type": "facility", "fty": fty})
            return str((await asyncio.wait_for(ack, timeout)).get("state", ""))
        finally:
            self.bot._acks.pop(message_id, None)

    async def typing(self, on: bool = True) -> None:
        """Show (or stop showing) the peer that the bot is writing."""
        fty = [{"type": "im_message", "typing": on}]
        await self.bot._signal(self.call, {"type": "facility", "fty": fty})

    async def receive(self, timeout: float | None = None) -> BotMessage:
        """The next message of the peer; ``ChatEnded`` once the chat is over."""
        item = await asyncio.wait_for(self._inbox.get(), timeout)
        if item is None:
            self._inbox.put_nowait(None)  # every later call hears it too
            raise ChatEnded(self.ended)
        return item

    async def release(self, cause: int = 16) -> None:
        """End the chat (``rel``) with ``cause`` (16, normal clearing, by default)."""
        if self.ended is None:
            await self.bot._signal(self.call, {"type": "rel", "cau": {"loc": 0, "num": cause}})
            self._end(cause)

    def _end(self, cause: int | None) -> None:
        if self.ended is None:
            self.ended = cause if cause is not None else 0
            self._inbox.put_nowait(None)


class Bot:
    """A bot's connection to a Switchboard hub (``wss://host/PBX0/APPS/websocket``).

    ``Bot(url, sip=…, password=…)`` logs in as a user; ``Bot(url, app=…, password=…)`` as
    an App object (one with ``"PbxSignal"`` among its ``apis`` chats under its own name).
    Use it as ``async with Bot(...) as bot:``, which logs in, registers and starts reading.
    """

    def __init__(
        self,
        url: str,
        *,
        password: str,
        sip: str = "",
        app: str = "",
        domain: str = "",
        ssl: ssl.SSLContext | None = None,
        reconnect_delays: tuple[float, ...] = (0.2, 0.5, 1.0, 2.0, 5.0),
    ) -> None:
        self.url = url
        self._password = password
        self._account = (sip, app, domain)
        self._ssl = ssl
        self._delays = reconnect_delays
        self._client: AppWebsocketClient | None = None
        self._reader: asyncio.Task[None] | None = None
        self._resume = ""
        self._chats: dict[int, Chat] = {}
        self._offers: asyncio.Queue[Chat] = asyncio.Queue()
        self._acks: dict[str, asyncio.Future[JsonObject]] = {}
        self._calls = itertools.count(1)
        self._ids = itertools.count(1)
        self._id_prefix = secrets.token_hex(4)
        """Marks the ids of this bot's messages, to know them when the hub replays them."""
        self.resumes = 0
        """How many times the bot came back after a lost connection (and kept its chats)."""
        self.domain = ""

    async def __aenter__(self) -> Bot:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Log in and register; from now on the bot is offered chats."""
        await self._connect(resume=False)
        self._reader = asyncio.create_task(self._read())

    async def close(self) -> None:
        """Leave: the hub releases the bot's chats as after any clean close."""
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._client is not None:
            await self._client.close()

    async def offers(self) -> AsyncIterator[Chat]:
        """Chats offered to the bot (a user calls it, or a queue it is an agent of)."""
        while True:
            yield await self._offers.get()

    async def call(self, sip: str, text: str | None = None) -> Chat:
        """Place a chat to a user, App object, queue or group; ``text`` goes with the setup.
        Returns once the hub took the call (``call_proc``); ``chat.connected`` is set once the
        peer answers."""
        number = next(self._calls)
        chat = Chat(self, number, peer={"sip": sip})
        self._chats[number] = chat
        fty: list[JsonObject] = [{"type": "im_setup"}]
        if text is not None:
            fty.append({"type": "im_message", "mime": "text/plain", "data": text})
        sig = {"type": "setup", "channel": 0, "cd": {"sip": sip}, "fty": fty}
        await self._signal(number, sig)
        return chat

    # -- the connection --------------------------------------------------------------------

    async def _connect(self, *, resume: bool) -> None:
        client = await AppWebsocketClient.connect(self.url, max_size=None, ssl=self._ssl)
        sip, app, domain = self._account
        result = await client.login(password=self._password, sip=sip, app=app, domain=domain)
        self.domain = str(result.get("domain", ""))
        register: JsonObject = {"api": "PbxSignal", "mt": "Register", "src": "bot"}
        register["flags"] = "NO_MEDIA_CALL"
        if resume and self._resume:
            register["resume"] = self._resume
            register["seqs"] = {c.conf_id: c.last_seq for c in self._live() if c.conf_id}
        await client.send(register)
        answer = await client.recv()
        while answer.get("mt") != "RegisterResult":
            answer = await client.recv()
        if "err" in answer:
            raise AppWebsocketError(f"Register refused: {answer.get('err')}")
        self._resume = str(answer.get("resume", ""))
        if resume and not answer.get("resumed"):
            for chat in self._live():  # the hub let the chats go meanwhile
                chat._end(None)
        self._client = client

    def _live(self) -> list[Chat]:
        return [chat for chat in set(self._chats.values()) if chat.ended is None]

    async def _read(self) -> None:
        while True:
            assert self._client is not None
            try:
                message = await self._client.recv(timeout=3600.0)
            except ConnectionClosed:
                await self._come_back()
                continue
            if message.get("mt") == "Signaling":
                await self._on_signal(message)

    async def _come_back(self) -> None:
        """Reconnect with growing pauses, registering with the resume token (12.18)."""
        for delay in itertools.chain(self._delays, itertools.repeat(self._delays[-1])):
            await asyncio.sleep(delay)
            with contextlib.suppress(OSError, AppWebsocketError):
                await self._connect(resume=True)
                self.resumes += 1
                return

    async def _signal(self, call: int, sig: JsonObject) -> None:
        if self._client is None:
            raise ConnectionClosed(None, "not connected")
        message = {"api": "PbxSignal", "mt": "Signaling", "call": call, "sig": sig}
        await self._client.send(message)

    def _new_id(self) -> str:
        return f"bot-{self._id_prefix}-{next(self._ids)}"

    # -- what arrives ----------------------------------------------------------------------

    async def _on_signal(self, message: JsonObject) -> None:
        call, sig = message.get("call"), message.get("sig") or {}
        if not isinstance(call, int) or not isinstance(sig, dict):
            return
        kind = sig.get("type")
        if kind == "setup":
            return await self._on_setup(call, sig)
        chat = self._chats.get(call)
        if chat is None:
            return None
        if isinstance(sig.get("confId"), str):
            chat.conf_id = sig["confId"]
        if kind == "conn":
            chat.connected.set()
        elif kind == "facility":
            self._on_facility(chat, sig.get("fty") or [])
        elif kind == "rel":
            chat._end((sig.get("cau") or {}).get("num"))
        return None

    async def _on_setup(self, call: int, sig: JsonObject) -> None:
        conf_id = sig.get("confId")
        fty = sig.get("fty") or []
        resumed = any(isinstance(f, dict) and f.get("type") == "resumed" for f in fty)
        known = next((c for c in self._live() if c.conf_id == conf_id), None)
        if resumed and known is not None:  # a chat of ours, offered again after a blink
            self._chats[call] = known
            known.call = call
            await self._signal(call, {"type": "conn"})
            return
        chat = Chat(self, call, peer=dict(sig.get("cg") or {}), offer=sig)
        chat.conf_id = conf_id if isinstance(conf_id, str) else None
        self._chats[call] = chat
        self._on_facility(chat, fty)  # messages that came with the setup
        await self._offers.put(chat)

    def _on_facility(self, chat: Chat, fty: list[Any]) -> None:
        for item in fty:
            if not isinstance(item, dict):
                continue
            if item.get("type") == "im_ack":
                ack = self._acks.get(str(item.get("id")))
                if ack is not None and not ack.done() and item.get("state") != "held":
                    ack.set_result(item)
            elif item.get("type") == "im_message":
                self._on_message(chat, item)

    def _on_message(self, chat: Chat, item: JsonObject) -> None:
        if "typing" in item and "data" not in item:
            chat.peer_typing = bool(item["typing"])
            return
        seq = item.get("seq")
        if isinstance(seq, int):
            if seq <= chat.last_seq:
                return  # seen before the connection dropped
            chat.last_seq = seq
        if str(item.get("id", "")).startswith(f"bot-{self._id_prefix}-"):
            return  # our own, replayed after a resume
        chat.peer_typing = False
        text = item.get("data")
        chat._inbox.put_nowait(
            BotMessage(
                data=text if isinstance(text, str) else "",
                mime=str(item.get("mime", "text/plain")),
                seq=seq if isinstance(seq, int) else 0,
                time=item.get("time") if isinstance(item.get("time"), int) else None,
                raw=item,
            )
        )
