"""Relay benchmark: Switchboard chat throughput, latency and memory against a bare relay.

Run::

    .venv/bin/python bench/relay.py [--pairs N] [--procs K] [--seconds S] [--idle M] [--quick]
    .venv/bin/python bench/relay.py --rounds 3 --rate 1000 --compare ../other-checkout

What it does (see bench/README.md for what the figures mean):

1. starts ``switchboard serve`` with a generated config (users for every pair and idle
   connection, a rate limit so high it never triggers but still runs) and a bare
   uvicorn + Starlette server (``bench/echo_app.py``) with the same uvicorn settings, which
   serves a bare echo and a bare JSON relay (two clients, each frame parsed, re-encoded
   and sent to the peer: no login, no state, no ack); with ``--compare`` a second hub
   served from another source tree (``PYTHONPATH``), for before/after in one run;
2. max throughput: K load processes, each with P chat pairs (relay) or P connections (echo),
   a closed loop with W messages in flight per sender; counts what receivers get; the
   hub without and with ``id`` (acked), the bare relay and the echo, round by round; on
   a second hub whose users hold the ``messages`` licence (messages service embedded,
   SQLite or ``--postgres``): licensed pairs with every message stored and acked, and
   groups of ``--group`` members made through the protocol, one writer each, against
   a bare 1-to-N fan-out (``/fanout/{group}``) in deliveries per second; ``--only``
   picks rows;
3. latency at half the relay maximum (or ``--rate``), paced evenly over all senders,
   one-way for the relays (sender -> server -> receiver) and round trip for the echo;
   ``acklatency`` the same for the hub with every message carrying an
   ``id``, acked one by one to its sender;
4. memory: RSS growth of a fresh server per idle logged-in, registered connection;
5. prints a summary and writes it as JSON to bench/results/.

The load generator speaks WebSocket on raw asyncio protocols (``FrameClient``) instead of
the ``websockets`` client so that it costs a fraction of what the server spends per frame;
the run reports load-generator CPU next to server CPU to show that it is not the limit.

This is a benchmark, not a test: nothing here is collected by pytest.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import base64
import contextlib
import ctypes
import hashlib
import json
import multiprocessing
import os
import re
import resource
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any, cast

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
HOST = "127.0.0.1"
DOMAIN = "bench.test"
HUB_PATH = "/PBX0/APPS/websocket"
ECHO_PATH = "/echo"  # bench/echo_app.py ECHO_PATH; not imported, the app is a subprocess
BARE_RELAY_PATH = "/relay"  # bench/echo_app.py RELAY_PATH
BARE_FANOUT_PATH = "/fanout"  # bench/echo_app.py FANOUT_PATH

JsonObject = dict[str, Any]

# Message text of the throughput runs: typical chat length, no markup, so the hub takes the
# sanitizer's fast path exactly as it does for nearly every real message.
FILLER = b"bench message from a sender to its receiver 0123456789"
CALL = 1  # the caller's call number of every pair
MEMORY_WARMUP = 10  # connections opened before the memory baseline (one-time costs)
SETUP_CONCURRENCY = 50  # chat pairs set up at once per load process
SETUP_ATTEMPTS = 40  # setups across nodes, 50 ms apart (see open_pair)
IDLE_CONCURRENCY = 100  # idle connections opening at once (memory run)
PACE_TICK = 0.001  # seconds between pacer wake-ups in the latency runs
DRAIN_SECONDS = 3.0  # how long a run waits for messages still in flight
REPLY_TIMEOUT = 10.0  # seconds to wait for one expected protocol reply
START_LEAD = 0.3  # how far ahead the coordinator schedules a run's start
ID_SPAN = 10**7  # message ids one lane may use (it starts past every earlier lane's)
OTHER_CPU_WARNING = 30.0  # % of a core used by neither server nor load: figures disturbed
CATCH_UP_LIMIT = 300.0  # seconds the licensed hub may take to store what a run sent
ROWS = (
    "relay",
    "ack",
    "cack",
    "bare",
    "echo",
    "stored",
    "group",
    "latency",
    "acklatency",
    "memory",
)
"""What ``--only`` may name: the maximum rows (``group`` is the hub's group and the bare
fan-out, its reference), the latency runs and the memory runs. All run by default."""
BENCH_DATABASE = "switchboard_bench_relay"  # made on --postgres for the run, dropped after
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
DEFLATE_OFFER = "permessage-deflate; client_max_window_bits"  # what browsers offer (RFC 7692)
DEFLATE_TAIL = b"\x00\x00\xff\xff"  # RFC 7692 §7.2.2: removed by the sender, added back


# ==========================================================================================
# Load generator side (runs inside the worker processes)
# ==========================================================================================


def client_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """One final client frame, masked with an all-zero key (RFC 6455 §5.3).

    The key is four zero bytes: XOR with it changes nothing, so the payload needs no
    per-byte work here, yet the server unmasks exactly as for any other key.
    """
    size = len(payload)
    if size < 126:
        head = bytes((0x80 | opcode, 0x80 | size))
    elif size < 65536:
        head = bytes((0x80 | opcode, 0x80 | 126)) + size.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + size.to_bytes(8, "big")
    return head + b"\x00\x00\x00\x00" + payload


class FrameClient(asyncio.Protocol):
    """A minimal client WebSocket on a raw asyncio protocol.

    The ``websockets`` client spends about as much per frame as the server does (futures,
    a reader task, UTF-8 checks), so with two cores the benchmark would mostly measure its
    own load generator. Here a burst of frames is one ``transport.write`` of prepared
    bytes and each received chunk is split into frames in one pass. Before ``on_texts`` is
    set, text frames go to ``inbox`` for the scripted login and call setup.

    With ``deflate`` it offers permessage-deflate as browsers do, so that the server keeps
    the compression state it would keep for them; it inflates what the server sends and
    sends its own frames uncompressed (allowed per message, RFC 7692 §6).
    """

    def __init__(self, port: int, path: str, deflate: bool = False) -> None:
        self._key = base64.b64encode(os.urandom(16))
        offer = f"Sec-WebSocket-Extensions: {DEFLATE_OFFER}\r\n" if deflate else ""
        self._request = (
            f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n{offer}"
            f"Sec-WebSocket-Key: {self._key.decode()}\r\n\r\n"
        ).encode()
        self._inflater: Any = None  # a zlib decompressor once the server accepted deflate
        self._buffer = bytearray()
        self._upgraded = False
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.inbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.on_texts: Callable[[list[bytes]], None] | None = None
        self.lost = False
        self.error: str | None = None

    @property
    def deflated(self) -> bool:
        """The server accepted permessage-deflate for this connection."""
        return self._inflater is not None

    @classmethod
    async def open(cls, port: int, path: str, deflate: bool = False) -> FrameClient:
        loop = asyncio.get_running_loop()
        _, client = await asyncio.wait_for(
            loop.create_connection(lambda: cls(port, path, deflate), HOST, port), REPLY_TIMEOUT
        )
        await asyncio.wait_for(client.opened, REPLY_TIMEOUT)
        return client

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if not self._upgraded and not self._upgrade():
            return
        texts = self._frames()
        if not texts:
            return
        handler = self.on_texts
        if handler is not None:
            handler(texts)
        else:
            for text in texts:
                self.inbox.put_nowait(text)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(self.error or "connection lost"))
        self.inbox.put_nowait(None)

    # -- sending ------------------------------------------------------------------------------

    def write(self, frames: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(frames)

    def send_json(self, message: JsonObject) -> None:
        self.write(client_frame(json.dumps(message, separators=(",", ":")).encode()))

    def close(self) -> None:
        """Close 1000 and hang up; the server sees a clean close."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(client_frame((1000).to_bytes(2, "big"), 0x8))
            self.transport.close()

    # -- receiving ----------------------------------------------------------------------------

    async def recv_json(self) -> JsonObject:
        item = await asyncio.wait_for(self.inbox.get(), REPLY_TIMEOUT)
        if item is None:
            raise ConnectionError(self.error or "connection closed during setup")
        message: JsonObject = json.loads(item)
        return message

    def _upgrade(self) -> bool:
        """Consume the HTTP 101 answer; False while it is incomplete."""
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        head = bytes(self._buffer[:end]).decode("latin-1").split("\r\n")
        del self._buffer[: end + 4]
        status = head[0].split(" ")
        headers = dict(line.lower().split(": ", 1) for line in head[1:] if ": " in line)
        accept = base64.b64encode(hashlib.sha1(self._key + WS_GUID).digest()).decode().lower()
        if len(status) < 2 or status[1] != "101" or headers.get("sec-websocket-accept") != accept:
            self._fail(f"handshake refused: {head[0]}")
            return False
        if headers.get("sec-websocket-extensions", "").startswith("permessage-deflate"):
            self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)  # takes any window size
        self._upgraded = True
        self.opened.set_result(None)
        return True

    def _frames(self) -> list[bytes]:
        """Split the buffer into complete frames; text payloads are returned, in order."""
        buffer = self._buffer
        texts: list[bytes] = []
        size = len(buffer)
        pos = 0
        while size - pos >= 2:  # pos only grows: bounded by the buffer length
            head, length = buffer[pos], buffer[pos + 1] & 0x7F
            start = pos + 2
            if length >= 126:
                start += 2 if length == 126 else 8
                if start > size:
                    break
                length = int.from_bytes(buffer[pos + 2 : start], "big")
            end = start + length
            if end > size:
                break
            payload = bytes(buffer[start:end])
            pos = end
            if head == 0x81:  # FIN + text: the only data frame the server sends here
                texts.append(payload)
            elif head == 0xC1 and self._inflater is not None:  # FIN + RSV1 + text: deflated
                texts.append(self._inflater.decompress(payload + DEFLATE_TAIL))
            else:
                self._control(head, payload)
        if pos:
            del buffer[:pos]
        return texts

    def _control(self, head: int, payload: bytes) -> None:
        opcode = head & 0x0F
        if opcode == 0x9:  # ping (the server pings every 20 s): answer or be dropped
            self.write(client_frame(payload, 0xA))
        elif opcode == 0x8:
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            self.error = f"closed by server: {code} {payload[2:].decode(errors='replace')}"
            self.close()
        elif opcode != 0xA:
            self._fail(f"unexpected frame 0x{head:02x}")

    def _fail(self, reason: str) -> None:
        self.error = reason
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(reason))
        if self.transport is not None:
            self.transport.close()


async def expect(client: FrameClient, mt: str, sig: str | None = None) -> JsonObject:
    """The next message, which must be ``mt`` (and Signaling of type ``sig``); a
    ``TraceFlags`` (the browser trace flag, PROTOCOL 12.14) is passed over."""
    message = await client.recv_json()
    while message.get("mt") == "TraceFlags":
        message = await client.recv_json()
    if message.get("mt") != mt or (sig is not None and message.get("sig", {}).get("type") != sig):
        raise RuntimeError(f"expected {mt} {sig or ''}, got {json.dumps(message)[:300]}")
    return message


def user_name(index: int) -> str:
    return f"u{index}"


def user_password(secret: str, index: int) -> str:
    return f"{secret}-{index}"


async def open_session(
    port: int, secret: str, index: int, deflate: bool = False, flags: str = "NO_MEDIA_CALL"
) -> FrameClient:
    """A connection logged in as user ``index`` and registered with ``flags`` (PROTOCOL §3,
    §4.1; ``CUMULATIVE_ACK``: docs/protocol.md 12.31)."""
    from signaling.appwebsocket.digest import login_digest

    client = await FrameClient.open(port, HUB_PATH, deflate)
    client.send_json({"mt": "AppChallenge"})
    challenge = str((await expect(client, "AppChallengeResult")).get("challenge", ""))
    sip = user_name(index)
    fields = {"app": "", "domain": "", "sip": sip, "guid": "", "dn": ""}
    digest = login_digest(**fields, challenge=challenge, password=user_password(secret, index))
    client.send_json({"mt": "AppLogin", **fields, "digest": digest})
    result = await expect(client, "AppLoginResult")
    if result.get("ok") is not True:
        raise RuntimeError(f"login of {sip} failed: {result}")
    client.send_json({"api": "PbxSignal", "mt": "Register", "src": "reg", "flags": flags})
    registered = await expect(client, "RegisterResult")
    if "err" in registered:
        raise RuntimeError(f"Register of {sip} failed: {registered}")
    return client


async def echo_session(client: FrameClient, index: int) -> None:
    """On the echo server: the frames of ``open_session``, each sent and echoed back."""
    sip = user_name(index)
    fields = {"app": "", "domain": "", "sip": sip, "guid": "", "dn": "", "digest": "0" * 64}
    register = {"api": "PbxSignal", "mt": "Register", "src": "reg", "flags": "NO_MEDIA_CALL"}
    for message in ({"mt": "AppChallenge"}, {"mt": "AppLogin", **fields}, register):
        client.send_json(message)
        await client.recv_json()


async def open_pair(
    port: int,
    secret: str,
    caller_index: int,
    flags: str = "NO_MEDIA_CALL",
    callee_port: int | None = None,
) -> tuple[FrameClient, FrameClient]:
    """Caller ``caller_index`` calls ``caller_index + 1``, who answers: a connected chat.

    With ``callee_port`` the callee is a client of another server (a node of the same
    cluster: bench/cluster.py), so the call crosses between nodes. The callee's
    ``RegisterResult`` comes once its node has written the registration to Redis
    (docs/protocol.md 12.39); a tree from before that answered first, so a setup that
    came first was released (18, no user responding): it is placed again, a little
    later."""
    callee = await open_session(callee_port or port, secret, caller_index + 1, flags=flags)
    caller = await open_session(port, secret, caller_index, flags=flags)
    setup = {"type": "setup", "channel": 0, "cd": {"sip": user_name(caller_index + 1)}}
    setup["fty"] = [{"type": "im_setup"}]
    attempts = SETUP_ATTEMPTS if callee_port else 1
    for attempt in range(attempts):
        caller.send_json({"api": "PbxSignal", "mt": "Signaling", "call": CALL, "sig": setup})
        answer = await expect(caller, "Signaling")
        if answer["sig"].get("type") == "call_proc":
            break
        if answer["sig"].get("type") != "rel" or attempt == attempts - 1:
            raise RuntimeError(f"setup of {user_name(caller_index)}: {json.dumps(answer)[:300]}")
        await asyncio.sleep(0.05)
    offer = await expect(callee, "Signaling", "setup")
    conn = {"api": "PbxSignal", "mt": "Signaling", "call": offer["call"], "sig": {"type": "conn"}}
    callee.send_json(conn)
    await expect(caller, "Signaling", "conn")
    return caller, callee


async def messages_request(client: FrameClient, mt: str, **fields: Any) -> JsonObject:
    """One PbxMessages request (PROTOCOL §6) and its answer, which must be ``mt`` +
    ``Result``; frames of other kinds that come first are passed over."""
    client.send_json({"api": "PbxMessages", "mt": mt, "src": mt, **fields})
    for _ in range(100):
        message = await client.recv_json()
        if message.get("api") == "PbxMessages" and message.get("src") == mt:
            if message.get("mt") != f"{mt}Result":
                raise RuntimeError(f"{mt}: {json.dumps(message)[:300]}")
            return message
    raise RuntimeError(f"{mt}: no answer among 100 frames")


async def make_group(admin: FrameClient, dn: str, first: int, size: int) -> str:
    """``admin`` (user ``first``) writes a group with users ``first + 1 .. first + size - 1``
    as its other members (PROTOCOL §7.6); its sip."""
    await messages_request(admin, "Session")
    group = await messages_request(admin, "WriteGroup", dn=dn)
    for index in range(first + 1, first + size):
        await messages_request(
            admin, "WriteMember", grp=group["id"], member=user_name(index), admin=False
        )
    return str(group["sip"])


async def join_group(member: FrameClient, sip: str) -> None:
    """``member`` calls the group ``sip`` on ``CALL``: ``call_proc``, then ``conn``."""
    setup = {"type": "setup", "channel": 0, "cd": {"sip": sip}, "fty": [{"type": "im_setup"}]}
    member.send_json({"api": "PbxSignal", "mt": "Signaling", "call": CALL, "sig": setup})
    await expect(member, "Signaling", "call_proc")
    await expect(member, "Signaling", "conn")


class Tally:
    """What the receivers of one load process saw in the current run."""

    __slots__ = (
        "acks",
        "delivered",
        "latencies",
        "measure_from",
        "measure_to",
        "other_samples",
        "others",
        "refill",
    )

    def __init__(self) -> None:
        self.delivered = 0
        self.acks = 0
        self.others = 0
        self.other_samples: list[str] = []
        self.refill = False
        self.measure_from = 0.0
        self.measure_to = 0.0
        self.latencies = array.array("d")

    def other(self, text: bytes) -> None:
        """A frame that is not what the run expects (an Error, a rel): counted and kept."""
        self.others += 1
        if len(self.other_samples) < 5:
            self.other_samples.append(text[:300].decode(errors="replace"))


class Lane:
    """One message stream: a sender and the connections that receive what it sends.

    For the relay the receiver is the chat peer, for the echo it is the sender itself, for
    a group (or the bare fan-out) every other member: ``fanout`` receivers, each of which
    gets every message. Frames are prepared from a byte template so that sending costs no
    JSON encoding.
    """

    lanes = 0  # made so far in this process
    __slots__ = (
        "_head",
        "_mid",
        "_tail",
        "fanout",
        "frame",
        "next_id",
        "owed",
        "receivers",
        "sender",
        "sent",
        "tally",
        "with_id",
    )

    def __init__(
        self,
        sender: FrameClient,
        receiver: FrameClient | Sequence[FrameClient],
        tally: Tally,
        with_id: bool,
    ) -> None:
        self.sender = sender
        self.receivers = (receiver,) if isinstance(receiver, FrameClient) else tuple(receiver)
        self.fanout = len(self.receivers)
        self.owed = 0  # deliveries of the fan-out not yet worth a whole message
        self.tally = tally
        self.sent = 0
        # Ids are keys per sender for as long as the hub remembers them (docs/protocol.md
        # 12.21): a later run of the same users must not resend the ids of an earlier one,
        # which the hub would answer as retries without relaying them.
        Lane.lanes += 1
        self.next_id = Lane.lanes * ID_SPAN
        self.with_id = with_id
        item = {"type": "im_message", "mime": "text/plain", "data": "@DATA@"}
        if with_id:
            item["id"] = "@ID@"
        message = {"api": "PbxSignal", "mt": "Signaling", "call": CALL}
        message["sig"] = {"type": "facility", "fty": [item]}
        self._head, rest = json.dumps(message, separators=(",", ":")).encode().split(b"@DATA@")
        self._mid, self._tail = rest.split(b"@ID@") if with_id else (b"", rest)
        self.frame: bytes | None = None if with_id else client_frame(self.payload(FILLER))

    def payload(self, data: bytes) -> bytes:
        """The message JSON for ``data`` (ASCII without quotes), with a fresh id if used."""
        if self.with_id:
            self.next_id += 1
            return b"".join((self._head, data, self._mid, b"m%d" % self.next_id, self._tail))
        return self._head + data + self._tail

    def send_burst(self, count: int) -> None:
        frame = self.frame
        if frame is not None:
            self.sender.write(frame * count)
        else:
            self.sender.write(b"".join(client_frame(self.payload(FILLER)) for _ in range(count)))
        self.sent += count

    def send_stamped(self) -> float:
        """Send one message carrying its send time (time.monotonic is system-wide)."""
        stamp = time.monotonic()
        self.sender.write(client_frame(self.payload(b"%.6f" % stamp)))
        self.sent += 1
        return stamp

    # -- receive handlers ---------------------------------------------------------------

    def _delivered(self, texts: list[bytes]) -> int:
        """Count the messages among ``texts`` as delivered (the rest go to the tally's
        ``other``); how many there were."""
        tally = self.tally
        count = 0
        for text in texts:
            if b'"im_message"' in text:
                count += 1
            else:
                tally.other(text)
        tally.delivered += count
        return count

    def on_bulk(self, texts: list[bytes]) -> None:
        """Closed loop: every message that arrives lets its sender send one more."""
        count = self._delivered(texts)
        if count and self.tally.refill:
            self.send_burst(count)

    def on_fan(self, texts: list[bytes]) -> None:
        """Closed loop over a fan-out: every ``fanout`` deliveries (one message's worth,
        whichever receivers they reached) let the sender send one more."""
        more, self.owed = divmod(self.owed + self._delivered(texts), self.fanout)
        if more and self.tally.refill:
            self.send_burst(more)

    def on_acks(self, texts: list[bytes]) -> None:
        tally = self.tally
        for text in texts:
            if b'"im_ack"' in text:
                start = text.find(b'"ids":[')  # a cumulative ack (docs/protocol.md 12.31)
                if start < 0:
                    tally.acks += 1
                else:
                    tally.acks += text.count(b",", start, text.index(b"]", start)) + 1
            else:
                tally.other(text)

    def on_stamped(self, texts: list[bytes]) -> None:
        """Latency: arrival minus the send time the message carries in its data."""
        now = time.monotonic()
        tally = self.tally
        for text in texts:
            start = text.find(b'"data":"')
            if start < 0 or b'"im_message"' not in text:
                tally.other(text)
                continue
            start += 8
            stamp = float(text[start : text.index(b'"', start)])
            tally.delivered += 1
            if tally.measure_from <= stamp < tally.measure_to:
                tally.latencies.append(now - stamp)


async def sleep_until(moment: float) -> None:
    delay = moment - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


class LoadWorker:
    """The state of one load process between the coordinator's commands."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.clients: list[FrameClient] = []
        self.lanes: list[Lane] = []
        self.tally = Tally()

    async def handle(self, command: JsonObject) -> JsonObject:
        handlers: dict[str, Callable[[JsonObject], Coroutine[Any, Any, JsonObject]]] = {
            "relay": self.setup_relay,
            "echo": self.setup_echo,
            "bare": self.setup_bare,
            "group": self.setup_group,
            "fanout": self.setup_fanout,
            "max": self.run_max,
            "paced": self.run_paced,
            "idle": self.open_idle,
            "close": self.close_all,
        }
        return await handlers[command["op"]](command)

    # -- setup ------------------------------------------------------------------------

    async def setup_relay(self, command: JsonObject) -> JsonObject:
        port, first, with_id = command["port"], command["first_user"], command["with_id"]
        flags = "NO_MEDIA_CALL|CUMULATIVE_ACK" if command.get("cumulative") else "NO_MEDIA_CALL"
        callee_port = command.get("callee_port")  # callees on another node (cluster.py)
        gate = asyncio.Semaphore(SETUP_CONCURRENCY)

        async def one(index: int) -> tuple[FrameClient, FrameClient]:
            async with gate:
                return await open_pair(port, self.secret, first + 2 * index, flags, callee_port)

        self.tally = Tally()
        pairs = await asyncio.gather(*(one(i) for i in range(command["count"])))
        for caller, callee in pairs:
            self.clients += [caller, callee]
            self.lanes.append(Lane(caller, callee, self.tally, with_id))
        return {"lanes": len(self.lanes)}

    async def setup_echo(self, command: JsonObject) -> JsonObject:
        self.tally = Tally()
        count = command["count"]
        clients = await asyncio.gather(
            *(FrameClient.open(command["port"], ECHO_PATH) for _ in range(count))
        )
        for client in clients:
            self.clients.append(client)
            self.lanes.append(Lane(client, client, self.tally, with_id=False))
        return {"lanes": len(self.lanes)}

    async def setup_bare(self, command: JsonObject) -> JsonObject:
        """Pairs on the bare relay: two connections on one pair path, each the other's peer."""
        self.tally = Tally()
        port, first = command["port"], command["first_user"]

        async def one(index: int) -> tuple[FrameClient, FrameClient]:
            path = f"{BARE_RELAY_PATH}/{first + 2 * index}"
            return await FrameClient.open(port, path), await FrameClient.open(port, path)

        pairs = await asyncio.gather(*(one(i) for i in range(command["count"])))
        for caller, callee in pairs:
            self.clients += [caller, callee]
            self.lanes.append(Lane(caller, callee, self.tally, command["with_id"]))
        return {"lanes": len(self.lanes)}

    async def setup_group(self, command: JsonObject) -> JsonObject:
        """Groups of ``size`` licensed members, made as a client makes one (PROTOCOL §7.6):
        each member logs in and registers; the first opens a PbxMessages session, writes
        the group and its members; then every member calls the group (``call_proc``,
        ``conn``: all in one live call, docs/protocol.md 12.12). The first member writes,
        every message with an ``id``; the others receive."""
        self.tally = Tally()
        port, first, size = command["port"], command["first_user"], command["size"]
        gate = asyncio.Semaphore(max(1, SETUP_CONCURRENCY // size))

        async def one(index: int) -> list[FrameClient]:
            async with gate:
                base = first + size * index
                members = list(
                    await asyncio.gather(
                        *(open_session(port, self.secret, base + k) for k in range(size))
                    )
                )
                sip = await make_group(members[0], f"Bench {base}", base, size)
                for member in members:
                    await join_group(member, sip)
                return members

        return self._group_lanes(await asyncio.gather(*(one(i) for i in range(command["count"]))))

    def _group_lanes(self, groups: list[list[FrameClient]]) -> JsonObject:
        """One lane per group: its first member writes, the others read."""
        for members in groups:
            self.clients += members
            self.lanes.append(Lane(members[0], members[1:], self.tally, with_id=True))
        return {"lanes": len(self.lanes)}

    async def setup_fanout(self, command: JsonObject) -> JsonObject:
        """Groups on the bare fan-out: ``size`` connections on one group path, the first
        the writer (the same frames as the hub's group writer, ids included)."""
        self.tally = Tally()
        port, first, size = command["port"], command["first_user"], command["size"]

        async def one(index: int) -> list[FrameClient]:
            path = f"{BARE_FANOUT_PATH}/{first + size * index}"
            return [await FrameClient.open(port, path) for _ in range(size)]

        return self._group_lanes(await asyncio.gather(*(one(i) for i in range(command["count"]))))

    async def open_idle(self, command: JsonObject) -> JsonObject:
        """Idle connections for the memory runs, then left alone.

        On the hub each one logs in and registers; on the echo server it is a bare
        WebSocket, which is what the stack costs before Switchboard adds anything. With
        ``echo_setup`` the echo connection first carries three frames each way shaped like
        the login and Register, so that the stack has done what it does for a hub session.
        """
        gate = asyncio.Semaphore(command["concurrency"])
        first, port, hub = command["first_user"], command["port"], command["target"] == "hub"
        deflate, echo_setup = bool(command.get("deflate")), bool(command.get("echo_setup"))

        async def one(index: int) -> FrameClient:
            async with gate:
                if hub:
                    return await open_session(port, self.secret, first + index, deflate)
                client = await FrameClient.open(port, ECHO_PATH, deflate)
                if echo_setup:
                    await echo_session(client, first + index)
                return client

        began = time.monotonic()
        clients = await asyncio.gather(*(one(i) for i in range(command["count"])))
        self.clients += clients
        deflated = sum(1 for client in clients if client.deflated)
        return {"opened": len(clients), "seconds": time.monotonic() - began, "deflated": deflated}

    async def close_all(self, command: JsonObject) -> JsonObject:
        clients, self.clients, self.lanes = self.clients, [], []
        for client in clients:
            client.on_texts = None
            client.close()
        for _ in range(300):  # up to 3 s for the server to see every close
            if all(client.lost for client in clients):
                break
            await asyncio.sleep(0.01)
        return {"closed": len(clients)}

    # -- runs ---------------------------------------------------------------------------

    def _attach(self, receive: Callable[[Lane], Callable[[list[bytes]], None]]) -> None:
        """Route each lane's frames: replies to the sender are acks or surprises."""
        for lane in self.lanes:
            lane.sender.on_texts = lane.on_acks
            for receiver in lane.receivers:
                receiver.on_texts = receive(lane)

    async def run_max(self, command: JsonObject) -> JsonObject:
        """Closed loop at full speed; counts deliveries between the two measuring marks."""
        tally = self.tally
        self._attach(lambda lane: lane.on_fan if lane.fanout > 1 else lane.on_bulk)
        await sleep_until(command["start"])
        tally.refill = True
        for lane in self.lanes:
            lane.send_burst(command["window"])
        await sleep_until(command["measure_from"])
        delivered, acks = tally.delivered, tally.acks
        await sleep_until(command["measure_to"])
        delivered, acks = tally.delivered - delivered, tally.acks - acks
        tally.refill = False
        drained = await self._drain()
        return self._report(delivered=delivered, acks=acks, drained=drained)

    async def run_paced(self, command: JsonObject) -> JsonObject:
        """Open loop at ``rate`` messages/s over all lanes, round robin, each stamped."""
        tally = self.tally
        tally.measure_from, tally.measure_to = command["measure_from"], command["measure_to"]
        self._attach(lambda lane: lane.on_stamped)
        sent_in_window, max_lag = await self._pace(
            command["rate"], command["start"], command["measure_to"]
        )
        drained = await self._drain()
        return self._report(
            sent_in_window=sent_in_window,
            delivered_in_window=len(tally.latencies),
            latencies=tally.latencies.tobytes(),
            max_lag=max_lag,
            drained=drained,
        )

    async def _pace(self, rate: float, start: float, stop: float) -> tuple[int, float]:
        """Send ``rate`` per second from ``start`` to ``stop``; returns (in window, max lag).

        Each tick sends what the schedule says is due by now, so a late wake-up is made up
        at once rather than silently lowering the offered rate; ``max_lag`` says how late.
        """
        tally, lanes = self.tally, self.lanes
        await sleep_until(start)
        sent = index = in_window = 0
        max_lag = 0.0
        ticks = int((stop - start) / PACE_TICK * 4) + 100  # bound; sleeps are >= PACE_TICK
        for _ in range(ticks):
            now = time.monotonic()
            if now >= stop:
                break
            due = int((now - start) * rate)
            if due > sent:
                max_lag = max(max_lag, now - start - sent / rate)
            for _ in range(due - sent):
                stamp = lanes[index].send_stamped()
                index = (index + 1) % len(lanes)
                if tally.measure_from <= stamp < tally.measure_to:
                    in_window += 1
            sent = max(sent, due)
            await asyncio.sleep(PACE_TICK)
        return in_window, max_lag

    async def _drain(self) -> bool:
        """Wait (bounded) until everything sent has arrived, so runs do not overlap."""
        for _ in range(int(DRAIN_SECONDS / 0.01)):
            if self.tally.delivered >= sum(lane.sent * lane.fanout for lane in self.lanes):
                return True
            await asyncio.sleep(0.01)
        return False

    def _report(self, **figures: Any) -> JsonObject:
        tally = self.tally
        return {
            **figures,
            "sent": sum(lane.sent for lane in self.lanes),
            "delivered_total": tally.delivered,
            "others": tally.others,
            "other_samples": tally.other_samples,
            "lost": sum(1 for client in self.clients if client.lost),
            "errors": [client.error for client in self.clients if client.error][:5],
        }


async def serve_commands(pipe: Pipe, secret: str) -> None:
    """Answer the coordinator's commands one at a time until told to exit."""
    loop = asyncio.get_running_loop()
    worker = LoadWorker(secret)
    pipe.send({"ready": True, "loop": type(loop).__module__})
    try:
        for _ in range(10_000):  # far more commands than a run sends
            if not await loop.run_in_executor(None, pipe.poll, 900.0):
                break  # the coordinator is gone or stuck: give up
            command = pipe.recv()
            if command["op"] == "exit":
                break
            try:
                reply = await worker.handle(command)
            except Exception as exc:
                reply = {"error": f"{command['op']}: {type(exc).__name__}: {exc}"}
            pipe.send(reply)
    finally:
        await worker.close_all({})


def worker_main(pipe: Pipe, secret: str) -> None:
    """Entry point of a load process: own event loop (uvloop if installed)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the coordinator decides when we stop
    _die_with_parent()  # ... or its death does
    raise_fd_limit()
    runner: Callable[[Coroutine[Any, Any, None]], None]
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    with contextlib.suppress(EOFError, BrokenPipeError):
        runner(serve_commands(pipe, secret))


# ==========================================================================================
# Coordinator side (the main process)
# ==========================================================================================


@dataclass(frozen=True)
class Plan:
    """The run's parameters, as given or defaulted on the command line."""

    pairs: int
    procs: int
    seconds: float
    warmup: float
    idle: int
    window: int
    rounds: int
    ack_seconds: float
    save: bool
    quick: bool
    rate_fraction: float = 0.5
    rate: float | None = None
    trace: tuple[str, ...] = ()
    compare: str | None = None
    memory: bool = True
    only: tuple[str, ...] = ROWS
    group: int = 10
    groups: int = 5
    postgres: str | None = None

    @property
    def users(self) -> int:
        return max(2 * self.pairs * self.procs, self.idle + MEMORY_WARMUP)

    @property
    def licensed_users(self) -> int:
        """Users of the licensed hub: the stored row's pairs, then the groups' members."""
        return 2 * self.pairs * self.procs + self.group * self.groups * self.procs


def parse_plan(argv: Sequence[str] | None = None) -> Plan:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--pairs", type=int, default=25, help="pairs (or echo conns) per process")
    parser.add_argument("--procs", type=int, default=2, help="load generator processes")
    parser.add_argument("--seconds", type=float, help="measuring time per run (default 8, quick 3)")
    parser.add_argument(
        "--rounds", type=int, help="relay/echo max runs, alternating; best counts (default 2)"
    )
    parser.add_argument("--idle", type=int, help="idle connections for memory (default 2000)")
    parser.add_argument("--window", type=int, default=16, help="messages in flight per sender")
    parser.add_argument(
        "--rate-fraction",
        type=float,
        default=0.5,
        help="latency runs offer this fraction of the relay maximum (default 0.5)",
    )
    parser.add_argument(
        "--rate", type=float, help="latency runs offer this many msg/s (overrides the fraction)"
    )
    parser.add_argument(
        "--compare",
        help="source tree of a second hub run side by side (labelled 'before', via PYTHONPATH)",
    )
    parser.add_argument("--no-memory", action="store_true", help="skip the memory runs")
    parser.add_argument(
        "--only",
        help=f"run only these, comma separated, of {','.join(ROWS)} (default: all)",
    )
    parser.add_argument("--group", type=int, default=10, help="members of each group (default 10)")
    parser.add_argument("--groups", type=int, default=5, help="groups per load process (default 5)")
    parser.add_argument(
        "--postgres",
        help="licensed hub stores in a database made (and dropped) on this PostgreSQL "
        "server, e.g. postgres://postgres@127.0.0.1:5432/postgres (default: SQLite)",
    )
    parser.add_argument(
        "--trace",
        default="",
        help="trace flags on in the hub, comma separated (default: all off)",
    )
    parser.add_argument("--quick", action="store_true", help="short run (under 30 s)")
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results JSON")
    args = parser.parse_args(argv)
    seconds = args.seconds or (3.0 if args.quick else 8.0)
    idle = args.idle if args.idle is not None else (500 if args.quick else 2000)
    rounds = args.rounds or (1 if args.quick else 2)
    if not 0 < args.rate_fraction <= 1:
        parser.error("--rate-fraction must be in (0, 1]")
    if min(args.pairs, args.procs, args.window, idle, rounds, args.groups) < 1 or seconds <= 0:
        parser.error(
            "--pairs, --procs, --window, --idle, --rounds, --groups, --seconds must be positive"
        )
    if args.group < 2:
        parser.error("--group must be at least 2 (a writer and a receiver)")
    only: tuple[str, ...] = ROWS
    if args.only is not None:
        only = tuple(name.strip() for name in args.only.split(",") if name.strip())
        unknown = sorted(set(only) - set(ROWS))
        if unknown or not only:
            parser.error(f"--only takes some of {','.join(ROWS)}; not {','.join(unknown)}")
    if args.no_memory:
        only = tuple(name for name in only if name != "memory")
    latency = {"latency", "acklatency"} & set(only)
    if latency and "relay" not in only and args.rate is None:
        parser.error(f"--only {','.join(sorted(latency))} without relay needs --rate")
    return Plan(
        pairs=args.pairs,
        procs=args.procs,
        seconds=seconds,
        warmup=0.5 if args.quick else 1.0,
        idle=idle,
        window=args.window,
        rounds=rounds,
        rate_fraction=args.rate_fraction,
        rate=args.rate,
        compare=str(Path(args.compare).resolve()) if args.compare else None,
        memory="memory" in only,
        only=only,
        group=args.group,
        groups=args.groups,
        postgres=args.postgres,
        ack_seconds=max(1.0, seconds / 2),
        save=not args.no_save,
        quick=args.quick,
        trace=tuple(name.strip() for name in args.trace.split(",") if name.strip()),
    )


BENCH_SETTINGS = [
    "[login]",
    f'default_domain = "{DOMAIN}"',
    "throttle_failures = 100000",
    "",
    "[limits]",
    "rate = 1000000.0",
    "burst = 1000000",
    "",
]
"""Config lines every bench server starts with: its tenant the default, login throttling
and the rate limit out of reach (the token bucket still runs on every frame)."""


def write_config(path: Path, users: int, secret: str, trace: Sequence[str] = ()) -> None:
    """Switchboard TOML: one tenant of ``users`` users; rate limit on but out of reach."""
    lines = [
        *BENCH_SETTINGS,
        "[trace]",
        f"flags = {json.dumps(list(trace))}",
        "",
    ]
    path.write_text("\n".join([*lines, *user_tables(users, secret)]))


def user_tables(users: int, secret: str, licences: Sequence[str] = ()) -> list[str]:
    """The TOML lines of the bench tenant's ``users`` users (holding ``licences``)."""
    lines: list[str] = []
    for index in range(users):
        lines += [
            f'[tenants."{DOMAIN}".users.{user_name(index)}]',
            f'dn = "Bench {index}"',
            f'num = "{100000 + index}"',
            f'password = "{user_password(secret, index)}"',
            *([f"licences = {json.dumps(list(licences))}"] if licences else []),
            "",
        ]
    return lines


def write_licensed_config(
    path: Path, users: int, secret: str, database: str, trace: Sequence[str] = ()
) -> None:
    """As ``write_config``, but every user holds the ``messages`` licence and the messages
    service (embedded, the default) stores in ``database`` (empty: SQLite in the data
    directory)."""
    lines = [
        *BENCH_SETTINGS,
        "[messages]",
        f"database = {json.dumps(database)}",
        "",
        "[trace]",
        f"flags = {json.dumps(list(trace))}",
        "",
    ]
    path.write_text("\n".join([*lines, *user_tables(users, secret, ["messages"])]))


@contextlib.contextmanager
def scratch_postgres(server_url: str, name: str) -> Iterator[str]:
    """A database ``name`` made afresh on ``server_url`` and dropped on exit; its URL."""
    import asyncpg

    async def admin(statement: str) -> None:
        connection = await asyncpg.connect(server_url, timeout=5)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(admin(f"DROP DATABASE IF EXISTS {name}"))
    asyncio.run(admin(f"CREATE DATABASE {name}"))
    try:
        yield server_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with contextlib.suppress(Exception):
            asyncio.run(admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def outbox_depth(port: int) -> int:
    """Posts the hub holds that the messages service has not acknowledged yet (its
    ``/metrics``: ``switchboard_outbox_depth``)."""
    with urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    found = re.search(r"^switchboard_outbox_depth (\S+)$", text, re.MULTILINE)
    if found is None:
        raise RuntimeError("no switchboard_outbox_depth on the hub's /metrics")
    return int(float(found.group(1)))


def raise_fd_limit() -> None:
    """Thousands of sockets on both ends: lift the soft descriptor limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def source_version() -> str:
    """The commit measured, marked dirty when the working tree differs from it."""
    try:
        commit = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit.stdout.strip()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def switchboard_command() -> list[str]:
    """``switchboard`` as this interpreter runs it, with ``signaling`` found on the import
    path alone (``-P``: not the working directory), which ``tree_env`` sets to the tree
    to be measured. Not the ``switchboard`` console script: it imports the package from
    wherever the virtualenv was installed from, and its first line names that
    installation's interpreter. Not ``-m signaling.cli`` either: in older trees (a
    ``--compare`` checkout) that module has no ``__main__`` guard."""
    return [
        sys.executable,
        "-P",
        "-c",
        "import sys; from signaling.cli import main; sys.exit(main())",
    ]


def _die_with_parent() -> None:
    """SIGTERM this process when its parent dies without cleaning up (kill -9).

    Runs in server children before exec, and first thing in each load process.
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def cpu_ticks(pid: int) -> int:
    """utime + stime of ``pid`` in clock ticks (/proc/<pid>/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def machine_ticks() -> tuple[int, int]:
    """(busy, total) ticks of all CPUs from /proc/stat; idle and iowait count as not busy."""
    values = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    total = sum(values[:8])  # guest time is already inside user
    return total - values[3] - values[4], total


def tree_env(source: str | Path = ROOT) -> dict[str, str]:
    """The environment of a server process: ``source``'s code first on the import path.

    The ``switchboard`` script and ``bench/echo_app.py`` would otherwise import the
    package wherever the virtualenv's editable install points, which is another checkout
    whenever several share one virtualenv, and the run would measure that one."""
    return {**os.environ, "PYTHONPATH": str(source)}


class ServerProcess:
    """A server subprocess on a loopback port, its log in a file, stopped on exit.

    Without ``env`` it runs with ``tree_env()``: this checkout's code. ``bench/gc_probe``
    is on its import path: it times the process's garbage collections (``gc_pauses``)."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        port: int,
        log_path: Path,
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.port = port
        self.log_path = log_path
        self.gc_path = log_path.with_suffix(".gc.json")
        env = tree_env() if env is None else env
        path = os.pathsep.join(filter(None, [env.get("PYTHONPATH"), str(BENCH_DIR / "gc_probe")]))
        env = {**env, "PYTHONPATH": path, "BENCH_GC_PROBE": str(self.gc_path)}
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches us only; we stop it in order
                preexec_fn=_die_with_parent,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Until the port accepts TCP: uvicorn binds only after its startup has finished."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.log_tail()}")
            with contextlib.suppress(OSError), socket.create_connection((HOST, self.port), 0.2):
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not listening after {timeout} s:\n{self.log_tail()}")

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS in /proc status")

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=8)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def gc_pauses(self, start: float, end: float) -> JsonObject:
        """After ``stop``: its collections that ended between ``start`` and ``end``
        (``time.monotonic``), by generation: how many, the longest (wall clock, and CPU
        time, which a busy box does not stretch) and all together."""
        if not self.gc_path.exists():
            return {}
        probe = json.loads(self.gc_path.read_text())
        found: JsonObject = {}
        for ended, seconds, cpu, generation in zip(
            probe["ends"], probe["seconds"], probe["cpu"], probe["generations"], strict=True
        ):
            if start <= ended <= end:
                entry = found.setdefault(
                    str(generation),
                    {"count": 0, "max_ms": 0.0, "max_cpu_ms": 0.0, "ms": 0.0, "cpu_ms": 0.0},
                )
                entry["count"] += 1
                entry["max_ms"] = max(entry["max_ms"], seconds * 1000)
                entry["max_cpu_ms"] = max(entry["max_cpu_ms"], cpu * 1000)
                entry["ms"] += seconds * 1000
                entry["cpu_ms"] += cpu * 1000
        return found


class WorkerPool:
    """K load processes, each driven through a pipe; every call waits for all replies."""

    def __init__(self, count: int, secret: str) -> None:
        context = multiprocessing.get_context("spawn")  # a clean interpreter per worker
        self.pipes: list[Pipe] = []
        self.processes: list[multiprocessing.process.BaseProcess] = []
        for index in range(count):
            parent, child = context.Pipe()
            process = context.Process(
                target=worker_main, args=(child, secret), name=f"load-{index}", daemon=True
            )
            process.start()
            child.close()
            self.pipes.append(parent)
            self.processes.append(process)
        self.loops = {reply["loop"] for reply in self._gather(range(count), 30.0)}

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes if process.pid is not None]

    def send(self, commands: Sequence[JsonObject]) -> None:
        for pipe, command in zip(self.pipes, commands, strict=True):
            pipe.send(command)

    def call(self, commands: Sequence[JsonObject], timeout: float = 60.0) -> list[JsonObject]:
        self.send(commands)
        return self.gather(timeout)

    def call_one(self, index: int, command: JsonObject, timeout: float = 60.0) -> JsonObject:
        self.pipes[index].send(command)
        return self._gather([index], timeout)[0]

    def gather(self, timeout: float) -> list[JsonObject]:
        return self._gather(range(len(self.pipes)), timeout)

    def _gather(self, indexes: Sequence[int] | range, timeout: float) -> list[JsonObject]:
        deadline = time.monotonic() + timeout
        replies = []
        for index in indexes:
            pipe = self.pipes[index]
            if not pipe.poll(max(0.0, deadline - time.monotonic())):
                raise TimeoutError(f"load process {index} did not answer within {timeout} s")
            reply: JsonObject = pipe.recv()
            if "error" in reply:
                raise RuntimeError(f"load process {index}: {reply['error']}")
            replies.append(reply)
        return replies

    def stop(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError, ValueError):
                pipe.send({"op": "exit"})
        for process in self.processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
                process.join(timeout=2)


@dataclass
class CpuSample:
    at: float
    server: int
    load: int
    busy: int
    total: int


@dataclass
class CpuUse:
    """CPU use in percent of one core (``machine``: of all cores together).

    ``other`` is busy time that is neither the server's nor the load generator's, in
    percent of one core: loopback softirq work the kernel did not charge to either, and
    any other process on the box. A high value means the figures are disturbed.
    """

    server: float
    load: float
    other: float
    machine: float
    cores: int


def sample_cpu(server_pid: int, worker_pids: Sequence[int]) -> CpuSample:
    return sample_cpus([server_pid], worker_pids)


def sample_cpus(server_pids: Sequence[int], worker_pids: Sequence[int]) -> CpuSample:
    """CPU ticks so far; ``server`` is every server process together (a cluster's nodes
    and its Redis count as one server)."""
    busy, total = machine_ticks()
    load = sum(cpu_ticks(pid) for pid in worker_pids)
    server = sum(cpu_ticks(pid) for pid in server_pids)
    return CpuSample(time.monotonic(), server, load, busy, total)


def cpu_use(before: CpuSample, after: CpuSample) -> CpuUse:
    ticks = (after.at - before.at) * os.sysconf("SC_CLK_TCK")
    cores = os.cpu_count() or 1
    server = 100.0 * (after.server - before.server) / ticks
    load = 100.0 * (after.load - before.load) / ticks
    machine = 100.0 * (after.busy - before.busy) / max(1, after.total - before.total)
    other = max(0.0, machine * cores - server - load)
    return CpuUse(server=server, load=load, other=other, machine=machine, cores=cores)


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted sequence."""
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


def timed_run(
    workers: WorkerPool,
    server_pids: Sequence[int],
    warmup: float,
    seconds: float,
    command: JsonObject,
    probe: Callable[[], Any] | None = None,
) -> JsonObject:
    """Schedule a run (``max`` or ``paced``) on every load process, sample CPU at its two
    measuring marks (and ``probe``, whose two readings come back as ``probes``), collect
    the replies and close the run's connections."""
    procs = len(workers.pids)
    start = time.monotonic() + START_LEAD
    measure_from = start + warmup
    measure_to = measure_from + seconds
    times = {"start": start, "measure_from": measure_from, "measure_to": measure_to}
    workers.send([command | times] * procs)
    probes = []
    time.sleep(max(0.0, measure_from - time.monotonic()))
    before = sample_cpus(server_pids, workers.pids)
    if probe is not None:
        probes.append(probe())
    time.sleep(max(0.0, measure_to - time.monotonic()))
    after = sample_cpus(server_pids, workers.pids)
    if probe is not None:
        probes.append(probe())
    replies = workers.gather(timeout=DRAIN_SECONDS + 30.0)
    workers.call([{"op": "close"}] * procs)
    time.sleep(0.3)  # let the server finish tearing the connections down
    return {"replies": replies, "cpu": asdict(cpu_use(before, after)), "probes": probes}


def max_figures(run: JsonObject, seconds: float) -> JsonObject:
    """The figures of a closed-loop run from ``timed_run``: delivered and acked per second."""
    replies = run["replies"]
    delivered = sum(reply["delivered"] for reply in replies)
    return {
        "rate": delivered / seconds,
        "ack_rate": sum(reply["acks"] for reply in replies) / seconds,
        "cpu": run["cpu"],
        "server_us_per_msg": _cost(run["cpu"], delivered / seconds),
        **_health(replies),
    }


def latency_figures(run: JsonObject, rate: float, seconds: float) -> JsonObject:
    """The figures of a paced run from ``timed_run``: one-way latency percentiles."""
    replies = run["replies"]
    latencies = array.array("d")
    for reply in replies:
        latencies.frombytes(reply["latencies"])
    ordered = sorted(latencies)
    achieved = sum(reply["delivered_in_window"] for reply in replies) / seconds
    return {
        "offered": rate,
        "sent_rate": sum(reply["sent_in_window"] for reply in replies) / seconds,
        "achieved": achieved,
        "p50_ms": 1000 * percentile(ordered, 0.50),
        "p99_ms": 1000 * percentile(ordered, 0.99),
        "p999_ms": 1000 * percentile(ordered, 0.999),
        "max_ms": 1000 * (ordered[-1] if ordered else float("nan")),
        "samples": len(ordered),
        "pacer_max_lag_ms": 1000 * max(reply["max_lag"] for reply in replies),
        "cpu": run["cpu"],
        "server_us_per_msg": _cost(run["cpu"], achieved),
        **_health(replies),
    }


class Bench:
    """Starts the servers and load processes, runs each phase, keeps the figures."""

    def __init__(self, plan: Plan, stack: contextlib.ExitStack) -> None:
        self.plan = plan
        self.stack = stack
        self.tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sb-bench-")))
        self.secret = secrets.token_hex(8)
        self.config_path = self.tmp / "bench.toml"
        write_config(self.config_path, plan.users, self.secret, plan.trace)
        self.workers: WorkerPool | None = None

    # -- processes ------------------------------------------------------------------------

    def start_hub(self, name: str, source: str | None = None) -> ServerProcess:
        """``switchboard serve``; with ``source``, the code of that tree (``PYTHONPATH``)."""
        port = free_port()
        argv = [*switchboard_command(), "serve", "--config", str(self.config_path)]
        argv += ["--host", HOST, "--port", str(port), "--data-dir", str(self.tmp / name)]
        env = None if source is None else tree_env(source)
        return self._started(ServerProcess(name, argv, port, self.tmp / f"{name}.log", env))

    def start_licensed_hub(self) -> ServerProcess:
        """``switchboard serve`` (hub and messages service in one process, the embedded
        default) whose users all hold the ``messages`` licence; SQLite in its data
        directory, or with ``--postgres`` a database made for the run."""
        plan = self.plan
        database = ""
        if plan.postgres:
            database = self.stack.enter_context(scratch_postgres(plan.postgres, BENCH_DATABASE))
        config = self.tmp / "licensed.toml"
        write_licensed_config(config, plan.licensed_users, self.secret, database, plan.trace)
        port = free_port()
        argv = [*switchboard_command(), "serve", "--config", str(config)]
        argv += ["--host", HOST, "--port", str(port), "--data-dir", str(self.tmp / "licensed")]
        return self._started(ServerProcess("licensed", argv, port, self.tmp / "licensed.log"))

    def start_echo(self) -> ServerProcess:
        port = free_port()
        argv = [sys.executable, str(BENCH_DIR / "echo_app.py"), "--config", str(self.config_path)]
        argv += ["--host", HOST, "--port", str(port)]
        return self._started(ServerProcess("echo", argv, port, self.tmp / "echo.log"))

    def _started(self, server: ServerProcess) -> ServerProcess:
        self.stack.callback(server.stop)
        return server

    def start_workers(self) -> WorkerPool:
        self.workers = WorkerPool(self.plan.procs, self.secret)
        self.stack.callback(self.workers.stop)
        return self.workers

    # -- phases -----------------------------------------------------------------------------

    def run(self) -> JsonObject:
        plan = self.plan
        hub, echo = self.start_hub("hub"), self.start_echo()
        before = self.start_hub("before", plan.compare) if plan.compare else None
        licensed = self.start_licensed_hub() if {"stored", "group"} & set(plan.only) else None
        workers = self.start_workers()
        for server in (hub, echo, before, licensed):
            if server is not None:
                server.wait_ready()
        say(
            f"load processes: {plan.procs} ({', '.join(sorted(workers.loops))}), "
            f"{plan.pairs} pairs or connections each, window {plan.window}"
        )
        if licensed is not None:
            say(
                f"licensed hub: messages service embedded, "
                f"{'PostgreSQL' if plan.postgres else 'SQLite'}; "
                f"{plan.groups} groups of {plan.group} per load process"
            )
        results: JsonObject = {"plan": asdict(plan), "cores": os.cpu_count()}
        results["source"] = source_version()
        began = time.monotonic()
        results |= self.max_rounds(hub, echo, before, licensed)
        maxed = time.monotonic()
        if "latency" in plan.only:
            rate = plan.rate or results["relay_max"]["rate"] * plan.rate_fraction
            results["relay_latency"] = self.paced_run(hub, "relay", rate)
            results["bare_latency"] = self.paced_run(echo, "bare", rate)
            if before is not None:
                results["before_latency"] = self.paced_run(before, "relay", rate, label="before")
            results["echo_latency"] = self.paced_run(echo, "echo", rate)
        if "acklatency" in plan.only:
            rate = plan.rate or results["relay_max"]["rate"] * plan.rate_fraction
            results["ack_latency"] = self.paced_run(hub, "relay", rate, "relay+ack", with_id=True)
        for server in (hub, echo, before, licensed):
            if server is not None:
                server.stop()
        results["gc"] = {
            name: {
                "max_runs": server.gc_pauses(began, maxed),
                "latency_run": server.gc_pauses(*results[f"{name}_latency"]["window"])
                if f"{name}_latency" in results
                else {},
            }
            for name, server in (
                ("relay", hub),
                ("bare", echo),
                ("before", before),
                ("licensed", licensed),
            )
            if server is not None
        }
        if plan.memory:
            results["memory"] = self.memory_run("hub")
            if plan.compare:
                results["before_memory"] = self.memory_run("hub", plan.compare)
            results["echo_memory"] = self.memory_run("echo")
        return results

    def _setup(
        self, server: ServerProcess, kind: str, with_id: bool, cumulative: bool = False
    ) -> None:
        assert self.workers is not None
        plan = self.plan
        per = plan.pairs
        if kind in ("group", "fanout"):  # members after every pair's users
            size, first = plan.group, 2 * per * plan.procs
            commands = [
                {"op": kind, "port": server.port, "count": plan.groups, "size": size}
                | {"first_user": first + size * plan.groups * index}
                for index in range(plan.procs)
            ]
            self.workers.call(commands, timeout=120.0)
            return
        commands = [
            {"op": kind, "port": server.port, "count": per, "first_user": 2 * per * index}
            | {"with_id": with_id, "cumulative": cumulative}
            for index in range(plan.procs)
        ]
        self.workers.call(commands, timeout=60.0)

    def _timed(self, server: ServerProcess, seconds: float, **command: Any) -> JsonObject:
        """Schedule a run on every load process; sample CPU over its measuring window."""
        assert self.workers is not None
        return timed_run(self.workers, [server.pid], self.plan.warmup, seconds, command)

    def max_rounds(
        self,
        hub: ServerProcess,
        echo: ServerProcess,
        before: ServerProcess | None,
        licensed: ServerProcess | None = None,
    ) -> JsonObject:
        """Every maximum, interleaved ``rounds`` times; the best of each counts.

        On a small shared box another process can take a core for seconds; interleaving
        gives every server the same chances and the best round is the least disturbed.
        Each round: the hub without ``id``, with ``id`` acked one by one and with
        cumulative acks (docs/protocol.md 12.31), the bare relay, the echo (and the
        ``--compare`` hub, all three ways); then licensed pairs with every message stored
        and a group's fan-out on the licensed hub, and the bare fan-out. Only the rows
        of ``--only`` run."""
        seconds, only = self.plan.seconds, set(self.plan.only)
        targets: list[tuple[str, str, ServerProcess | None, str, bool, bool]] = [
            ("relay", "relay_max", hub, "relay", False, False),
            ("ack", "relay_ack_max", hub, "relay", True, False),
            ("cack", "relay_cack_max", hub, "relay", True, True),
            ("bare", "bare_max", echo, "bare", False, False),
            ("echo", "echo_max", echo, "echo", False, False),
            ("relay", "before_max", before, "relay", False, False),
            ("ack", "before_ack_max", before, "relay", True, False),
            ("cack", "before_cack_max", before, "relay", True, True),
            ("stored", "stored_max", licensed, "relay", True, False),
            ("group", "group_max", licensed, "group", True, False),
            ("group", "fanout_max", echo, "fanout", True, False),
        ]
        chosen = [
            (name, server, kind, with_id, cumulative)
            for row, name, server, kind, with_id, cumulative in targets
            if row in only and server is not None
        ]
        runs: dict[str, list[JsonObject]] = {name: [] for name, *_ in chosen}
        for number in range(self.plan.rounds):
            for name, server, kind, with_id, cumulative in chosen:
                if name in ("stored_max", "group_max"):
                    runs[name].append(self.licensed_run(server, name, seconds))
                    continue
                label = "before" if name.startswith("before") else None
                runs[name].append(
                    self.max_run(server, kind, seconds, with_id, label=label, cumulative=cumulative)
                )
            round_ratios = [
                f"{label} {runs[name][-1]['rate'] / runs[reference][-1]['rate']:.2f}"
                for name, reference, label in (
                    ("stored_max", "bare_max", "stored / bare relay"),
                    ("group_max", "fanout_max", "group / bare fan-out"),
                )
                if name in runs and reference in runs and runs[reference][-1]["rate"]
            ]
            if round_ratios:
                say(f"round {number + 1}: {', '.join(round_ratios)}")
        return {name: _best(rounds) for name, rounds in runs.items()}

    def licensed_run(self, server: ServerProcess, name: str, seconds: float) -> JsonObject:
        """A closed-loop run on the licensed hub, every message with an ``id``: licensed
        pairs (``stored_max``: a message counts once acked to its sender and received by
        its peer, whichever comes last) or the groups (``group_max``: deliveries at the
        receivers, ``group - 1`` per message). Then waits until the messages service has
        stored everything the run sent, so that no run after it shares the box with the
        catch-up."""
        kind = "group" if name == "group_max" else "relay"
        self._setup(server, kind, with_id=True)
        ticks = cpu_ticks(server.pid)
        started = time.monotonic()
        run = self._timed(server, seconds, op="max", window=self.plan.window)
        result = max_figures(run, seconds)
        fanout = self.plan.group - 1 if kind == "group" else 1
        if kind == "relay":
            result["delivered_rate"] = result["rate"]
            result["rate"] = min(result["rate"], result["ack_rate"])
        else:
            result["message_rate"] = result["rate"] / fanout
        result |= self.catch_up(server)
        # The hub's CPU from the run's start until every Post is stored, per delivery of
        # everything the run sent: the measuring window's us/msg leaves out the storing
        # that trails the relay (the embedded service yields to it).
        sent = sum(reply["sent"] for reply in run["replies"])
        used = (cpu_ticks(server.pid) - ticks) / os.sysconf("SC_CLK_TCK")
        result["all_in_us_per_msg"] = 1e6 * used / (sent * fanout) if sent else float("nan")
        # What the hub keeps up with: every message the run sent, from the first sent
        # until the last is stored (the window's rate holds only while the outbox grows).
        whole = time.monotonic() - started - START_LEAD
        result["stored_through_rate"] = sent * fanout / whole if whole > 0 else float("nan")
        if kind == "relay":
            head = f"{'stored max':<14} {result['rate']:9.0f} msg/s"
        else:
            head = (
                f"{'group max':<14} {result['rate']:9.0f} deliveries/s "
                f"({result['message_rate']:.0f} msg/s)"
            )
        say(
            f"{head}   {_cpu_text(result)}{_warn(result)}\n"
            f"{'':14} acked {result['ack_rate']:.0f}/s; every Post stored "
            f"{result['catch_up_s']:.1f} s after the run; hub CPU all in "
            f"{result['all_in_us_per_msg']:.0f} us/{'delivery' if fanout > 1 else 'msg'}; "
            f"from first sent to last stored "
            f"{result['stored_through_rate']:.0f} {'deliveries' if fanout > 1 else 'msg'}/s"
            + ("" if result["caught_up"] else f"  ! {result['outbox_left']} Posts left")
        )
        return result

    def catch_up(self, server: ServerProcess) -> JsonObject:
        """Until the hub's outbox is empty (every Post acknowledged by the service)."""
        began = time.monotonic()
        depth = outbox_depth(server.port)
        while depth and time.monotonic() - began < CATCH_UP_LIMIT:
            time.sleep(0.1)
            depth = outbox_depth(server.port)
        return {
            "catch_up_s": time.monotonic() - began,
            "caught_up": depth == 0,
            "outbox_left": depth,
        }

    def max_run(
        self,
        server: ServerProcess,
        kind: str,
        seconds: float,
        with_id: bool,
        label: str | None = None,
        cumulative: bool = False,
    ) -> JsonObject:
        self._setup(server, kind, with_id, cumulative)
        run = self._timed(server, seconds, op="max", window=self.plan.window)
        result = max_figures(run, seconds)
        acks = "+cack" if cumulative else "+ack" if with_id and kind != "fanout" else ""
        label = f"{label or kind}{acks} max"
        unit = "deliveries/s" if kind == "fanout" else "msg/s"
        say(f"{label:<14} {result['rate']:9.0f} {unit}   {_cpu_text(result)}{_warn(result)}")
        return result

    def paced_run(
        self,
        server: ServerProcess,
        kind: str,
        rate: float,
        label: str | None = None,
        *,
        with_id: bool = False,
    ) -> JsonObject:
        self._setup(server, kind, with_id=with_id)
        began = time.monotonic()
        run = self._timed(server, self.plan.seconds, op="paced", rate=rate / self.plan.procs)
        result = latency_figures(run, rate, self.plan.seconds)
        result["window"] = [began, time.monotonic()]  # for the server's gc pauses
        say(
            f"{(label or kind) + ' latency':<14} {_latency_text(result)}\n"
            f"{'':14} {_cpu_text(result)}{_warn(result)}"
        )
        return result

    def memory_run(self, target: str, source: str | None = None) -> JsonObject:
        """RSS growth per idle connection, on a fresh server that has served nothing else
        (with ``source``, the ``--compare`` tree's hub).

        ``MEMORY_WARMUP`` connections come first and stay open, so one-time costs (first
        handshake, first login, lazily built caches) are in the baseline, not the figure.
        """
        assert self.workers is not None
        if target == "hub":
            server = self.start_hub("memory" if source is None else "memory-before", source)
        else:
            server = self.start_echo()
        server.wait_ready()
        ready = time.monotonic()
        base = {"op": "idle", "port": server.port, "target": target}
        warm = base | {"first_user": 0, "count": MEMORY_WARMUP, "concurrency": MEMORY_WARMUP}
        self.workers.call_one(0, warm)
        time.sleep(0.5)
        before = server.rss_kib()
        idle = base | {"first_user": MEMORY_WARMUP, "count": self.plan.idle}
        opened = self.workers.call_one(0, idle | {"concurrency": IDLE_CONCURRENCY}, timeout=120.0)
        time.sleep(1.0)
        after = server.rss_kib()
        self.workers.call_one(0, {"op": "close"})
        server.stop()
        result = {
            "connections": opened["opened"],
            "open_seconds": opened["seconds"],
            "rss_before_kib": before,
            "rss_after_kib": after,
            "kib_per_connection": (after - before) / opened["opened"],
            "gc": server.gc_pauses(ready, time.monotonic()),
        }
        what = "idle registered connection" if target == "hub" else "idle echo connection"
        name = target if source is None else "before"
        say(
            f"{name + ' memory':<14} {result['kib_per_connection']:.1f} KiB per {what} "
            f"(RSS {before} -> {after} KiB, {result['connections']} opened in "
            f"{result['open_seconds']:.1f} s)"
        )
        return result


def _best(runs: list[JsonObject]) -> JsonObject:
    """The run with the highest rate, with every round's rate alongside."""
    best = max(runs, key=lambda run: float(run["rate"]))
    best = best | {"rounds": [run["rate"] for run in runs]}
    if all("stored_through_rate" in run for run in runs):
        best["through_rounds"] = [run["stored_through_rate"] for run in runs]
    return best


def _ratio(results: JsonObject, name: str, reference: str) -> str:
    """``name``'s best rate over ``reference``'s, and the same round by round."""
    mine, theirs = results[name]["rounds"], results[reference]["rounds"]
    best = results[name]["rate"] / results[reference]["rate"]
    each = "/".join(f"{a / b:.2f}" for a, b in zip(mine, theirs, strict=True) if b)
    return f"{best:.2f}x (rounds {each})"


def _health(replies: Sequence[JsonObject]) -> JsonObject:
    """What went wrong on the way, if anything: surprises, lost connections, stragglers."""
    return {
        "others": sum(reply["others"] for reply in replies),
        "other_samples": [s for reply in replies for s in reply["other_samples"]][:5],
        "lost": sum(reply["lost"] for reply in replies),
        "errors": [e for reply in replies for e in reply["errors"]][:5],
        "drained": all(reply["drained"] for reply in replies),
    }


def say(text: str) -> None:
    print(text, flush=True)


def _cost(cpu: JsonObject, rate: float) -> float:
    """Server CPU time per relayed (or echoed) message, in microseconds."""
    return 1e4 * cpu["server"] / rate if rate else float("nan")


def _cpu_text(result: JsonObject) -> str:
    cpu = result["cpu"]
    return (
        f"server CPU {cpu['server']:3.0f}% ({result['server_us_per_msg']:.0f} us/msg)  "
        f"load CPU {cpu['load']:3.0f}%  other {cpu['other']:3.0f}%"
    )


def _latency_text(result: JsonObject) -> str:
    return (
        f"p50 {result['p50_ms']:.2f} ms  p99 {result['p99_ms']:.2f} ms  "
        f"max {result['max_ms']:.2f} ms at {result['offered']:.0f} msg/s offered "
        f"({result['achieved']:.0f} achieved)"
    )


def _warn(result: JsonObject) -> str:
    notes = []
    if result["others"]:
        notes.append(f"{result['others']} unexpected frames, e.g. {result['other_samples'][:1]}")
    if result["lost"]:
        notes.append(f"{result['lost']} connections lost {result['errors'][:2]}")
    if not result["drained"]:
        notes.append("not everything sent arrived")
    if result["cpu"]["other"] > OTHER_CPU_WARNING:
        notes.append(
            f"other CPU {result['cpu']['other']:.0f}% of a core: something else ran on "
            "the box (or heavy softirq); this figure is disturbed"
        )
    return "".join(f"\n    ! {note}" for note in notes)


def summary(results: JsonObject) -> str:
    relay, echo = results.get("relay_max"), results.get("echo_max")
    rounds = results["plan"]["rounds"]
    lines = [
        f"best of {rounds} rounds (each round in brackets):",
    ]
    names = [
        ("relay_max", "hub, no id"),
        ("relay_ack_max", "hub, with id (acked)"),
        ("relay_cack_max", "hub, acked, cumulative"),
        ("before_max", "before hub, no id"),
        ("before_ack_max", "before hub, with id"),
        ("before_cack_max", "before hub, cumulative"),
        ("bare_max", "bare Starlette JSON relay"),
        ("echo_max", "bare echo"),
    ]
    for name, label in names:
        if name in results:
            rates = results[name]["rounds"]
            versus = (
                _ratio(results, name, "bare_max")
                if name not in ("bare_max", "echo_max") and "bare_max" in results
                else ""
            )
            lines.append(
                f"  {label:<26} {results[name]['rate']:7.0f} msg/s [{_rates(rates)}]  "
                f"{versus and 'vs bare relay ' + versus}"
            )
    lines += _licensed_lines(results)
    if relay is not None and echo is not None:
        ratio = relay["rate"] / echo["rate"] if echo["rate"] else float("nan")
        lines.append(f"  relay / echo ratio {ratio:.2f}")
    for name in ("relay", "ack", "before", "bare", "echo"):
        if f"{name}_latency" in results:
            lines.append(f"{name:<6} {_latency_text(results[name + '_latency'])}")
    for name, pauses in results.get("gc", {}).items():
        lines.append(
            f"gc {name:<6} max runs: {_gc_text(pauses['max_runs'])}; "
            f"latency run: {_gc_text(pauses['latency_run'])}"
        )
    memory = results.get("memory")
    if memory is not None:
        lines.append(
            f"memory {memory['kib_per_connection']:.1f} KiB per idle registered connection "
            f"({memory['connections']} connections; bare echo stack "
            f"{results['echo_memory']['kib_per_connection']:.1f} KiB)"
        )
        lines.append(f"gc memory-run hub, once serving: {_gc_text(memory['gc'])}")
    before = results.get("before_memory")
    if before is not None:
        lines.append(
            f"before: memory {before['kib_per_connection']:.1f} KiB per idle registered "
            f"connection; gc once serving: {_gc_text(before['gc'])}"
        )
    if relay is not None and echo is not None:
        lines.append(
            f"server CPU {relay['cpu']['server']:.0f}%  load CPU {relay['cpu']['load']:.0f}%  "
            f"other {relay['cpu']['other']:.0f}%  (relay max run; echo max run: server "
            f"{echo['cpu']['server']:.0f}%  load {echo['cpu']['load']:.0f}%  "
            f"other {echo['cpu']['other']:.0f}%)"
        )
    return "\n".join(lines)


def _licensed_lines(results: JsonObject) -> list[str]:
    """The stored row against the bare relay and the group against the bare fan-out, each
    with the aim of issue 16 (0.8x), round by round; and how long storing trailed."""
    lines: list[str] = []
    plan = results["plan"]
    stored, group, fanout = (results.get(n) for n in ("stored_max", "group_max", "fanout_max"))
    if stored is not None:
        versus = _ratio(results, "stored_max", "bare_max") if "bare_max" in results else ""
        lines.append(
            f"  {'hub, licensed + stored, id':<26} {stored['rate']:7.0f} msg/s "
            f"[{_rates(stored['rounds'])}]  {versus and 'vs bare relay ' + versus}"
            f"{_aim(results, 'stored_max', 'bare_max')}"
        )
    if group is not None:
        label = f"hub, group of {plan['group']}, id"
        versus = _ratio(results, "group_max", "fanout_max") if fanout is not None else ""
        lines.append(
            f"  {label:<26} {group['rate']:7.0f} deliveries/s [{_rates(group['rounds'])}]  "
            f"{versus and 'vs bare fan-out ' + versus}"
            f"{_aim(results, 'group_max', 'fanout_max')}"
        )
    if fanout is not None:
        lines.append(
            f"  {'bare Starlette JSON fan-out':<26} {fanout['rate']:7.0f} deliveries/s "
            f"[{_rates(fanout['rounds'])}]  (1 to {plan['group'] - 1})"
        )
    trailed = [
        f"{name} {results[key]['catch_up_s']:.1f} s"
        for name, key in (("stored", "stored_max"), ("group", "group_max"))
        if key in results
    ]
    if trailed:
        where = "PostgreSQL" if plan["postgres"] else "SQLite"
        lines.append(f"  storing ({where}) done after the best run: {', '.join(trailed)}")
    if stored is not None and "through_rounds" in stored and "bare_max" in results:
        # Round by round: the run's messages, first sent to last stored, against the
        # bare relay's rate in the same round.
        pairs = zip(stored["through_rounds"], results["bare_max"]["rounds"], strict=True)
        ratios = [through / bare for through, bare in pairs if bare]
        lines.append(
            f"  {'stored, first sent to last':<26} {stored['stored_through_rate']:7.0f} msg/s  "
            f"vs bare relay {'/'.join(f'{ratio:.2f}' for ratio in ratios)}x"
        )
    return lines


def _aim(results: JsonObject, name: str, reference: str, aim: float = 0.8) -> str:
    """Whether ``name`` reached ``aim`` times ``reference`` in every round, some or none."""
    if reference not in results:
        return ""
    pairs = zip(results[name]["rounds"], results[reference]["rounds"], strict=True)
    met = sum(1 for mine, theirs in pairs if theirs and mine / theirs >= aim)
    total = len(results[name]["rounds"])
    return f"; aim >= {aim}x met in {met} of {total} rounds"


def _gc_text(pauses: JsonObject) -> str:
    """Collections by generation: how many, the longest, and all of them together."""
    if not pauses:
        return "none"
    return ", ".join(
        f"gen{generation} {entry['count']} (max {entry['max_ms']:.2f} ms, "
        f"CPU {entry['max_cpu_ms']:.2f} ms; all {entry['ms']:.0f} ms, "
        f"CPU {entry.get('cpu_ms', 0.0):.0f} ms)"
        for generation, entry in sorted(pauses.items())
    )


def _rates(rates: Sequence[float]) -> str:
    return "/".join(f"{rate:.0f}" for rate in rates)


def save_results(kind: str, results: JsonObject) -> Path:
    """``results`` as JSON in bench/results/, named after the bench and the time."""
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    return path


def save(results: JsonObject) -> Path:
    return save_results("relay", results)


@contextlib.contextmanager
def terminate_as_exit() -> Iterator[None]:
    """SIGTERM runs the same cleanup as Ctrl-C: every subprocess is stopped."""

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_bench(
    run: Callable[[contextlib.ExitStack], JsonObject],
    summarize: Callable[[JsonObject], str],
    save_to: Callable[[JsonObject], Path] | None,
) -> int:
    """A benchmark's main: ``run`` with every process it starts stopped on exit, Ctrl-C
    or SIGTERM; then the summary, and the JSON saved unless ``save_to`` is None."""
    raise_fd_limit()
    began = time.monotonic()
    with terminate_as_exit(), contextlib.ExitStack() as stack:
        try:
            results = run(stack)
        except KeyboardInterrupt:
            print("\ninterrupted; stopping servers and load processes", file=sys.stderr)
            return 130
    results["wall_seconds"] = time.monotonic() - began
    say("\n" + summarize(results))
    if save_to is not None:
        say(f"saved {save_to(results).relative_to(ROOT)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    plan = parse_plan(argv)
    return run_bench(lambda stack: Bench(plan, stack).run(), summary, save if plan.save else None)


if __name__ == "__main__":
    sys.exit(main())
