"""Fuzzed wire input only ever yields documented answers (PROTOCOL §1, §3, §4, §5, §9, §11).

Whatever frames a client sends -- before or after login, registered or not, in or out of
a call, a visitor or an agent of a support queue -- every frame the server sends back is a
JSON object with a documented ``mt``, an ``Error`` carries a documented ``code`` and never
``internal``, a close uses a documented code the client earned, and afterwards a fresh
pair of users can still log in, call and chat.

Hypothesis tests are synchronous, so the real server (``tests.support.running_server``,
ManualClock included) runs on its own event loop in a background thread and the tests
talk to it with ``websockets.sync`` clients. Frames are built from the protocol's
vocabulary (envelopes, call numbers, Signal messages, facilities, the Queue API, resume
tokens) mixed with arbitrary JSON and arbitrary text, so they reach the chat state machine
and not only the decoder. Values only known once the example runs (the callIds the clients
were told, the resume tokens they got) are drawn as ``Live`` placeholders, filled in when
the frame is sent.

After each batch a client sends a *barrier*: a message of an unknown ``mt`` with a unique
``src``, which the server answers in order (``not_logged_in`` or ``unknown_mt``, §1.3,
§3.1), so every reply to the batch has been read and checked when it comes back; a
KeepAlive must then be the very next answer (§3.5). The server's own log is watched too:
an ``internal error`` or a reply that could not be sent fails the example at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import re
import reprlib
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.websockets import WebSocketDisconnect
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from config import Config
from signaling.appwebsocket.digest import login_digest
from tests.support import PASSWORDS, RunningServer, make_config, running_server

JsonObject = dict[str, Any]

# -- the documented contract ----------------------------------------------------------------

DOCUMENTED_MT: Final = frozenset(
    {
        "AppChallengeResult",
        "AppLoginResult",
        "KeepAlive",
        "PbxInfo",
        "RegisterResult",
        "UnregisterResult",
        "Signaling",
        "Error",
    }
)
PBX_MESSAGES_MT: Final = frozenset(
    {
        "SessionResult",
        "ReadChatsInd",
        "ReadChatsResult",
        "ReadChatInd",
        "ReadChatResult",
        "SetReadResult",
        "DeleteResult",
        "SearchInd",
        "SearchResult",
        "WriteGroupResult",
        "WriteMemberResult",
        "ReadGroupsInd",
        "ReadGroupsResult",
        "DeleteChatResult",
        "ChatDeleted",
        "ChatDeletedInd",
    }
)
"""Answers of the messages service a licensed session may get (PROTOCOL §6, §7.4, §7.6;
docs/protocol.md 12.32 for deleting a chat)."""
QUEUE_MT: Final = frozenset(
    {
        "SubscribeResult",
        "UnsubscribeResult",
        "TakeResult",
        "TransferResult",
        "CloseResult",
        "QueueInd",
        "ChatWaiting",
        "ChatTaken",
        "ChatTransferred",
        "ChatClosed",
        "ChatUpdated",
    }
)
"""Answers and board updates of the Queue API of live support (PROTOCOL §9.3, §9.4)."""
ERROR_CODES: Final = frozenset(
    {
        "bad_json",
        "unknown_mt",
        "not_logged_in",
        "bad_state",
        "bad_mime",
        "message_too_big",
        "rate_limited",
        "unlicensed",
        "forbidden",
        "not_found",
        "already_taken",
        "too_big",
        "expired",
        "unavailable",
    }
)
CLOSE_CODES: Final = frozenset({1000, 1009, 4001, 4002, 4003, 4004, 4005})
CONTEXT_LIMITS: Final = {"product": 200, "seller": 200, "url": 2000}
"""What a support chat's ``context`` may hold, and the longest value kept (notes 12.19)."""
CALL_ID: Final = re.compile("[0-9a-f]{32}")
"""A ``callId`` or ``confId`` (notes 12.4, 12.25)."""

REPLY_TIMEOUT: Final = 5.0
"""Seconds to wait for any expected frame; the loopback server answers in milliseconds."""
POLL: Final = 0.05
"""recv() slice, so a failure the server logged is reported without waiting it out."""

# Limits of the small server that exercises the rate limiter. Its clock never moves while
# a connection lives, so tokens never come back: the first RATE_BURST frames pass, the
# next RATE_CLOSE_AFTER - 1 are answered rate_limited and the one after closes 4004.
RATE_BURST: Final = 8
RATE_CLOSE_AFTER: Final = 4

_short = reprlib.Repr()
_short.maxlevel = 4
_short.maxstring = 160
_short.maxother = 160
_short.maxlist = _short.maxdict = 8


def short(value: object) -> str:
    return _short.repr(value)


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON (RFC 8259)")


def _loads(text: str) -> object:
    """Strict JSON; very deep replies are parsed on a fresh thread, whose stack is empty."""
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        pass
    result: list[object] = []
    errors: list[BaseException] = []

    def parse() -> None:
        try:
            result.append(json.loads(text, parse_constant=_refuse_constant))
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=parse)
    worker.start()
    worker.join()
    if errors:
        raise errors[0]
    return result[0]


def check_reply(frame: str | bytes, who: str) -> JsonObject:
    """One frame from the server, which must be a documented message (§1, §3, §4, §9, §11)."""
    assert isinstance(frame, str), f"{who}: binary frame from the server: {frame[:80]!r}"
    try:
        message = _loads(frame)
    except (ValueError, RecursionError) as exc:
        raise AssertionError(f"{who}: reply is not JSON ({exc}): {frame[:300]!r}") from None
    assert type(message) is dict, f"{who}: reply is not a JSON object: {frame[:300]!r}"
    mt = message.get("mt")
    if mt in PBX_MESSAGES_MT:
        assert message.get("api") == "PbxMessages", f"{who}: {short(message)}"
        return message
    if mt in QUEUE_MT:
        assert message.get("api") == "Queue", f"{who}: {short(message)}"
        _check_queue_message(message, f"{who}: {short(message)}")
        return message
    assert mt in DOCUMENTED_MT, f"{who}: undocumented mt: {short(message)}"
    if mt == "Error":
        code = message.get("code")
        assert code != "internal", f"{who}: the server crashed (internal): {short(message)}"
        assert code in ERROR_CODES, f"{who}: undocumented error code: {short(message)}"
        if code == "rate_limited":
            retry = message.get("retry_after_ms")
            assert type(retry) is int and retry > 0, f"{who}: {short(message)}"
        elif code == "already_taken":  # §9.2: a late frame on an offer, or a Take
            assert message.get("api") in ("PbxSignal", "Queue"), f"{who}: {short(message)}"
    elif mt == "Signaling":
        call, sig = message.get("call"), message.get("sig")
        assert type(call) is int and call != 0, f"{who}: bad call number: {short(message)}"
        assert type(sig) is dict and type(sig.get("type")) is str, f"{who}: {short(message)}"
        _check_sig(sig, f"{who}: {short(message)}")
    elif mt == "KeepAlive":
        assert set(message) <= {"mt", "src"}, f"{who}: {short(message)}"  # src echoed (§1.2)
    elif mt == "AppChallengeResult":
        challenge = message.get("challenge")
        assert type(challenge) is str and len(challenge) == 16 and challenge.isdigit(), who
    elif mt == "AppLoginResult":
        if message.get("ok") is True:
            assert type(message.get("domain")) is str, f"{who}: {short(message)}"
            assert type(message.get("dn")) is str, f"{who}: {short(message)}"  # docs 12.42
        else:
            assert "ok" not in message, f"{who}: {short(message)}"
            assert type(message.get("error")) is int, f"{who}: {short(message)}"
            assert type(message.get("errorText")) is str, f"{who}: {short(message)}"
    elif mt in ("RegisterResult", "UnregisterResult"):
        assert message.get("api") == "PbxSignal", f"{who}: {short(message)}"
        assert type(message.get("err", "")) is str, f"{who}: {short(message)}"
        if mt == "RegisterResult" and "err" not in message:  # §4.9, notes 12.18
            token = message.get("resume")
            assert type(token) is str and len(token) == 32, f"{who}: {short(message)}"
            assert type(message.get("resumed", False)) is bool, f"{who}: {short(message)}"
        elif mt == "RegisterResult":
            assert "resume" not in message and "resumed" not in message, f"{who}: {message}"
    return message


def _is_call_id(value: object) -> bool:
    return type(value) is str and CALL_ID.fullmatch(value) is not None


def _check_sig(sig: JsonObject, where: str) -> None:
    """A Signal message from the hub: causes are integers, facilities objects with a
    type, and a support chat's offer carries exactly what notes 12.19 list."""
    if sig["type"] == "rel":
        cau = sig.get("cau")
        assert type(cau) is dict and type(cau.get("loc")) is int and type(cau.get("num")) is int, (
            f"rel without an integer cause: {where}"
        )
    for key in ("callId", "confId"):
        if key in sig:
            assert _is_call_id(sig[key]), where
    if sig["type"] in ("setup", "call_proc"):  # a leg of its own in a conversation (12.25)
        assert _is_call_id(sig.get("callId")) and _is_call_id(sig.get("confId")), where
        assert sig["callId"] != sig["confId"], where
    fty = sig.get("fty", [])
    assert type(fty) is list, where
    assert all(type(item) is dict and type(item.get("type")) is str for item in fty), where
    if sig["type"] == "setup" and any(item["type"] == "queue" for item in fty):
        _check_support_offer(sig, fty, where)


def _check_support_offer(sig: JsonObject, fty: list[JsonObject], where: str) -> None:
    """An agent's offer of a support chat (§9.2, notes 12.19), or its re-offer after a
    resume (notes 12.18): no facility of the visitor's but a cleaned ``context``."""
    kinds = [item["type"] for item in fty]
    assert kinds[:3] == ["im_setup", "name_identification", "queue"], f"fty {kinds}: {where}"
    assert kinds[3:] in ([], ["context"], ["resumed"], ["context", "resumed"]), where
    queue = fty[2]
    assert set(queue) == {"type", "sip", "dn"}, f"queue item {queue}: {where}"
    assert type(queue["sip"]) is str and type(queue["dn"]) is str, where
    if "context" in kinds:
        context = {key: value for key, value in fty[3].items() if key != "type"}
        _check_context(context, where)
    if "resumed" not in kinds:
        assert sig.get("cd") == {"sip": queue["sip"]}, f"cd is not the queue: {where}"
        assert _is_call_id(sig.get("callId")), where


def _check_context(context: object, where: str) -> None:
    """What the hub keeps of a visitor's ``context``: known keys, non-empty strings cut to
    their limits (notes 12.19)."""
    assert type(context) is dict and context, f"context {short(context)}: {where}"
    for key, value in context.items():
        assert key in CONTEXT_LIMITS, f"context key {key!r}: {where}"
        assert type(value) is str and 0 < len(value) <= CONTEXT_LIMITS[key], where


def _check_chat(chat: object, where: str) -> JsonObject:
    """The ``chat`` object of the board (§9.3, notes 12.19)."""
    assert type(chat) is dict, where
    assert _is_call_id(chat.get("confId")) and chat.get("callId") == chat["confId"], where
    visitor = chat.get("visitor")
    assert type(visitor) is dict and set(visitor) == {"sip", "dn"}, where
    assert type(visitor["sip"]) is str and type(visitor["dn"]) is str, where
    assert type(chat.get("queue")) is str, where
    assert type(chat.get("since")) is int and chat["since"] >= 0, where
    if chat.get("context") is not None:
        _check_context(chat["context"], where)
    assert "context" in chat and "last_message_time" in chat, where
    assert chat["last_message_time"] is None or type(chat["last_message_time"]) is int, where
    if "agent" in chat:
        agent = chat["agent"]
        assert type(agent) is dict and set(agent) == {"sip", "dn"}, where
        assert type(agent["sip"]) is str and type(agent["dn"]) is str, where
    return chat


def _check_queue_message(message: JsonObject, where: str) -> None:
    """A result or a board update of the Queue API (§9.3, §9.4, notes 12.19)."""
    mt = message["mt"]
    if mt in ("SubscribeResult", "UnsubscribeResult"):
        assert type(message.get("queue")) is str, where
        if mt == "SubscribeResult":  # what the agent may do there (docs 12.34)
            assert message.get("role") in ("agent", "supervisor"), where
            assert type(message.get("take_on_write")) is bool, where
    elif mt in ("TakeResult", "TransferResult", "CloseResult"):
        assert _is_call_id(message.get("confId")), where
        assert message.get("callId") == message["confId"], where
        if mt == "TakeResult":  # a call number of the hub's on the taking registration
            assert type(message.get("call")) is int and message["call"] < 0, where
        elif mt == "TransferResult":
            assert type(message.get("to")) is str and message["to"], where
    else:
        chat = _check_chat(message.get("chat"), where)
        if mt == "ChatWaiting":
            assert "agent" not in chat, where
        elif mt == "ChatTaken":
            assert type(message.get("agent")) is str, where
            assert chat.get("agent", {}).get("sip") == message["agent"], where
        elif mt == "ChatTransferred":
            assert type(message.get("from")) is str and type(message.get("to")) is str, where
        elif mt == "ChatClosed":
            assert type(message.get("by")) is str and type(message.get("cause")) is int, where


# -- the server's log: crashes and replies that could not be sent ---------------------------

_BENIGN_SEND_FAILURES = (OSError, RuntimeError, WebSocketDisconnect, asyncio.CancelledError)
"""What sending to a client that has just gone away raises; anything else lost a reply."""


class ServerLog(logging.Handler):
    """What the server logs when it, not the client, failed: an error record (an
    ``internal error`` handling a message, a crashed timer, an ASGI exception) or a frame
    the hub could not send (its writer logs that at debug level and goes quiet).

    One instance serves every server of this module (they run one after another or
    nested); ``begin_example`` clears it.
    """

    WATCHED: Final = ("signaling", "uvicorn.error")

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.problems: list[str] = []
        self._depth = 0
        self._hub_level = logging.NOTSET

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += f": {record.exc_info[1]!r}"
        self.problems.append(f"{record.name}: {text}"[:400])

    def _hub_debug(self, record: logging.LogRecord) -> bool:
        """Filter on the hub's logger: read its debug records, then drop them (they are
        enabled only for this, and would flood pytest's log capture)."""
        if record.levelno >= logging.INFO:
            return True
        if str(record.msg).startswith("send failed"):
            args = record.args if isinstance(record.args, tuple) else ()
            exc = args[0] if args else None
            if isinstance(exc, BaseException) and not isinstance(exc, _BENIGN_SEND_FAILURES):
                self.problems.append(f"a frame could not be sent to a client: {exc!r}"[:400])
        return False

    def check(self) -> None:
        if self.problems:
            raise AssertionError("the server logged a failure: " + " | ".join(self.problems[:3]))

    @contextlib.contextmanager
    def attached(self) -> Iterator[ServerLog]:
        """Watch the loggers; call after the server started (uvicorn's logging config
        replaces the handlers of its loggers)."""
        hub = logging.getLogger("signaling.hub")
        if self._depth == 0:
            self._hub_level = hub.level
            hub.setLevel(logging.DEBUG)
            hub.addFilter(self._hub_debug)
        self._depth += 1
        for name in self.WATCHED:
            logging.getLogger(name).addHandler(self)
        try:
            yield self
        finally:
            self._depth -= 1
            if self._depth == 0:
                for name in self.WATCHED:
                    logging.getLogger(name).removeHandler(self)
                hub.removeFilter(self._hub_debug)
                hub.setLevel(self._hub_level)


SERVER_LOG: Final = ServerLog()


# -- a real server on a background event loop ----------------------------------------------


class ServerThread:
    """``running_server(config)`` on its own event loop in a daemon thread."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.log = SERVER_LOG
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._server: RunningServer | None = None
        self._thread = threading.Thread(target=self._run, name="fuzz-server", daemon=True)
        self._log_context: contextlib.AbstractContextManager[ServerLog] | None = None
        self.scene = Scene()

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:
            self._error = exc
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with running_server(self.config) as server:
            self._server = server
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> ServerThread:
        self._thread.start()
        if not self._ready.wait(15) or self._server is None:
            raise RuntimeError(f"the server did not start: {self._error!r}")
        # uvicorn's logging config replaces handlers on its loggers: attach after start
        self._log_context = self.log.attached()
        self._log_context.__enter__()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._log_context is not None:
            self._log_context.__exit__(None, None, None)
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(20)

    @property
    def server(self) -> RunningServer:
        assert self._server is not None
        return self._server

    @property
    def url(self) -> str:
        return self.server.url

    def advance(self, seconds: float) -> None:
        """Move the server's ManualClock (on its own loop) and let its timers run."""
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(self.server.advance(seconds), self._loop)
        future.result(REPLY_TIMEOUT)

    def begin_example(self) -> None:
        """A clean slate: forget old log records and let failed-login throttling expire
        (§3.6: fuzzed AppLogins fail from 127.0.0.1, and the clock only moves when told)."""
        self.log.problems.clear()
        self.scene = Scene()
        self.advance(self.config.login.throttle_window + 1)

    def settle(self) -> None:
        """Wait until the hub has handled every close so far (it learns of a close the
        client started a moment after the close handshake): it serves no connection."""
        deadline = time.monotonic() + REPLY_TIMEOUT
        while (count := self.server.hub.connection_count) > 0:
            assert time.monotonic() < deadline, f"the hub still serves {count} connections"
            time.sleep(0.002)

    def assert_support_serving(self) -> None:
        """Live support is as good as new (§9.2, §9.3): once every client is gone, the
        board of the queue lists nothing (no chat outlived its visitor and agents), and a
        fresh visitor's chat reaches an agent, who answers it and reads it."""
        self.scene.check()
        self.settle()
        with Wire(self, "bob") as bob, Wire(self, "dave") as dave:
            bob.login("bob")
            bob.register()
            bob.send_json(SUBSCRIBE)
            result = bob.next()
            expected = {
                **SUBSCRIBE,
                "mt": "SubscribeResult",
                "role": "agent",
                "take_on_write": False,
            }
            assert result == expected, f"a chat outlived: {result}"
            dave.login("dave")
            dave.register()
            setup = {"type": "setup", "channel": 0, "cd": {"sip": "support"}}
            dave.send_json(signaling(1, {**setup, "fty": [{"type": "im_setup"}]}))
            call_id = dave.expect_sig(1, "call_proc")["sig"]["confId"]
            assert bob.expect("ChatWaiting")["chat"]["confId"] == call_id
            number = bob.expect_sig(None, "setup")["call"]
            bob.send_json(signaling(number, {"type": "conn"}))
            dave.expect_sig(1, "conn")
            assert bob.expect("ChatTaken")["agent"] == "bob"
            dave.send_json(im_message(1, "still here", id="ok"))
            ack = dave.expect_sig(1, "facility")["sig"]["fty"][0]
            assert (ack.get("type"), ack.get("state")) == ("im_ack", "delivered"), ack
            got = bob.expect_sig(number, "facility")["sig"]["fty"][0]
            assert got.get("data") == "still here", got
        self.log.check()

    def assert_still_serving(self) -> None:
        """Other users notice nothing: a fresh pair logs in, calls and chats."""
        self.scene.check()
        with Wire(self, "carol") as carol, Wire(self, "dave") as dave:
            carol.login("carol")
            carol.register()
            dave.login("dave")
            dave.register()
            number = call_and_answer(carol, dave)
            carol.send_json(im_message(1, "still here", id="ok"))
            ack = carol.expect_sig(1, "facility")["sig"]["fty"][0]
            assert (ack.get("type"), ack.get("state")) == ("im_ack", "delivered"), ack
            got = dave.expect_sig(number, "facility")["sig"]["fty"][0]
            assert got.get("data") == "still here", got
        self.log.check()


# -- a scripted synchronous client ----------------------------------------------------------


@dataclass(frozen=True)
class Raw:
    """A text frame sent as is (everything else is serialised as JSON)."""

    text: str


@dataclass(frozen=True)
class Live:
    """A value known only once the example runs, filled in when its frame is sent: the
    ``index``-th callId or confId the clients were told (``kind="callId"``, §4.5, §9.3), or a resume
    token (``kind="token"``, §4.9), the sending user's own (newest first) before others'."""

    kind: str
    index: int


UNKNOWN_CALL_ID: Final = "0" * 32
UNKNOWN_TOKEN: Final = "A" * 32
"""Well-formed values that name nothing, for a ``Live`` drawn before anything is known."""


@dataclass(eq=False)
class Scene:
    """What the clients of one example were told, shared by their ``Wire``s."""

    call_ids: list[str] = field(default_factory=list)
    tokens: list[tuple[str | None, str]] = field(default_factory=list)
    """(user, resume token) from every RegisterResult."""
    resumes: list[tuple[Wire, str]] = field(default_factory=list)
    """(sender, token) of every Register sent with a ``resume``: who may take over whom."""
    cleared: dict[str | None, set[int]] = field(default_factory=dict)
    """Call numbers each user's devices got ``rel`` cause 26 on (§4.5, §9.2)."""
    taken: list[tuple[str | None, object, str]] = field(default_factory=list)
    """(user, call number, the frame) of each ``already_taken`` on a Signaling."""

    def check(self) -> None:
        """Once every client has read all it was sent: each ``already_taken`` came on a
        call number the user's registration had been told ``rel`` cause 26 on (notes
        12.19), perhaps on the connection it took over."""
        for user, call, where in self.taken:
            assert call in self.cleared.get(user, ()), f"already_taken, no rel 26 on it: {where}"

    def note_call_id(self, call_id: object) -> None:
        if isinstance(call_id, str) and call_id not in self.call_ids:
            self.call_ids.append(call_id)

    def fill(self, value: Any, user: str | None) -> Any:
        """``value`` with every ``Live`` in it (keys included) filled in."""
        if isinstance(value, Live):
            if value.kind == "callId":
                pool = self.call_ids or [UNKNOWN_CALL_ID]
            else:
                own = [token for who, token in reversed(self.tokens) if who == user]
                others = [token for who, token in self.tokens if who != user]
                pool = own + others or [UNKNOWN_TOKEN]
            return pool[value.index % len(pool)]
        if isinstance(value, dict):
            return {self.fill(key, user): self.fill(item, user) for key, item in value.items()}
        if isinstance(value, list):
            return [self.fill(item, user) for item in value]
        return value


Frame = Any
"""``Raw`` text, ``bytes`` (a binary frame) or any JSON value, which may hold ``Live``
placeholders."""


def serialise(frame: Frame) -> str | bytes:
    if isinstance(frame, Raw):
        return frame.text
    if isinstance(frame, bytes):
        return frame
    text = json.dumps(frame, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates travel as JSON escapes
        text = json.dumps(frame, ensure_ascii=True)
    return text


_QUICKACK: Final = getattr(socket, "TCP_QUICKACK", None)


class _QuickAckSocket(socket.socket):
    """A client socket that acknowledges every segment at once (Linux ``TCP_QUICKACK``).

    The hub's accepted sockets have Nagle's algorithm on, so when it writes two small
    frames in a row the second waits for our ACK, which Linux delays by 40 ms; with
    dozens of such pairs per example that would dominate the runtime.
    """

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        data = super().recv(bufsize, flags)
        if _QUICKACK is not None:
            with contextlib.suppress(OSError):
                self.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
        return data


def _open_socket(port: int) -> socket.socket:
    sock = _QuickAckSocket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.settimeout(REPLY_TIMEOUT)
    sock.connect(("127.0.0.1", port))
    return sock


class Wire:
    """One WebSocket to the hub; every frame it receives goes through ``check_reply``."""

    def __init__(self, live: ServerThread, name: str) -> None:
        self.live = live
        self.name = name
        self.user: str | None = None
        self.replies: list[JsonObject] = []
        self.close_code: int | None = None
        self.tokens: set[str] = set()
        """Resume tokens the hub gave this connection (§4.9)."""
        self.resumes_sent: set[str] = set()
        self.resumed = False
        self.offers: set[int] = set()
        """Call numbers the hub sent a ``setup`` on."""
        self._send_failed = False
        self._sent_oversize = False
        self._sent_binary = False
        self._barriers = itertools.count(1)
        self._stack = contextlib.ExitStack()
        self.ws: ClientConnection = self._stack.enter_context(
            connect(
                live.url,
                sock=_open_socket(live.server.port),
                max_size=None,
                compression=None,
                proxy=None,
                open_timeout=REPLY_TIMEOUT,
                close_timeout=2,
                ping_interval=None,
            )
        )

    def __enter__(self) -> Wire:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stack.close()

    @property
    def closed(self) -> bool:
        return self.close_code is not None

    # -- sending ----------------------------------------------------------------------------

    def send(self, frame: Frame) -> bool:
        """Send one frame; False once the server has closed the connection (what it sent
        before closing is still there for ``next``)."""
        if self.closed or self._send_failed:
            return False
        frame = self.live.scene.fill(frame, self.user)
        if type(frame) is dict and frame.get("mt") == "Register":
            token = frame.get("resume")
            if type(token) is str:  # this connection may take over the token's registration
                self.resumes_sent.add(token)
                self.live.scene.resumes.append((self, token))
        data = serialise(frame)
        size = len(data.encode("utf-8") if isinstance(data, str) else data)
        self._sent_oversize |= size > self.live.config.limits.max_frame
        self._sent_binary |= isinstance(data, bytes)
        try:
            self.ws.send(data)
        except ConnectionClosed:
            self._send_failed = True
            return False
        return True

    def send_json(self, message: JsonObject) -> None:
        assert self.send(message), f"{self.name}: closed ({self.close_code})"

    # -- receiving --------------------------------------------------------------------------

    def next(self, timeout: float = REPLY_TIMEOUT) -> JsonObject | None:
        """The next checked frame, or None when the server has closed the connection."""
        if self.closed:
            return None
        deadline = time.monotonic() + timeout
        while True:
            self.live.log.check()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"{self.name}: nothing received within {timeout} s; the connection is "
                    f"stuck. Last replies: {short(self.replies[-3:])}"
                )
            try:
                frame = self.ws.recv(timeout=min(POLL, remaining))
            except TimeoutError:
                continue
            except ConnectionClosed as exc:
                closed = exc
            else:
                message = check_reply(frame, self.name)
                self._observe(message)
                self.replies.append(message)
                return message
            self._on_close(closed)  # outside the except: no chained traceback
            return None

    def expect(self, mt: str) -> JsonObject:
        message = self.next()
        assert message is not None, f"{self.name}: closed {self.close_code}, expected {mt}"
        assert message.get("mt") == mt, f"{self.name}: expected {mt}, got {short(message)}"
        return message

    def expect_sig(self, call: int | None, kind: str) -> JsonObject:
        message = self.expect("Signaling")
        assert call is None or message["call"] == call, f"{self.name}: {short(message)}"
        assert message["sig"]["type"] == kind, f"{self.name}: {short(message)}"
        return message

    def wait_closed(self) -> int:
        while self.next() is not None:
            pass
        assert self.close_code is not None
        return self.close_code

    def _close_was_due(self) -> bool:
        """Has this client sent what makes the server close (PROTOCOL §1.4, §3.1, §4.11)?"""
        if self._sent_binary:
            return True
        codes = [m.get("code") for m in self.replies if m.get("mt") == "Error"]
        failed_login = any(m.get("mt") == "AppLoginResult" and "ok" not in m for m in self.replies)
        limits = self.live.config.limits
        return (
            failed_login
            or codes.count("bad_json") >= limits.max_bad_messages - 1
            or "rate_limited" in codes
            or self._taken_over()
        )

    def _taken_over(self) -> bool:
        """Has another connection registered with a resume token of this one (§4.9)?"""
        scene = self.live.scene
        return any(token in self.tokens for who, token in scene.resumes if who is not self)

    def _on_close(self, exc: ConnectionClosed) -> None:
        if self.closed:
            return
        frame = exc.rcvd
        if frame is None and self._sent_oversize:
            # The server closes 1009 while the rest of the big frame is still in flight;
            # the reset that data causes may overtake the close frame (a TCP race).
            self.close_code = 1009
            return
        if frame is None and self._close_was_due():
            # The same race for every close the client has earned (a binary frame, too
            # many bad frames, a failed login): frames it sent after the one that decided
            # the close reach a socket the server has shut, and the reset they cause may
            # overtake the close frame. Only an unexplained drop is a failure.
            self.close_code = 1006
            return
        assert frame is not None, (
            f"{self.name}: the server dropped the connection without a close frame "
            f"(abnormal closure); last replies: {short(self.replies[-3:])}"
        )
        code = frame.code
        self.close_code = code
        assert code in CLOSE_CODES, f"{self.name}: undocumented close code {code} {frame.reason!r}"
        codes = [m.get("code") for m in self.replies if m.get("mt") == "Error"]
        if code == 4001:  # §3.1: only after a failed AppLogin (the clock does not move)
            failed = [m for m in self.replies if m.get("mt") == "AppLoginResult" and "ok" not in m]
            assert failed, f"{self.name}: 4001 without a failed AppLogin"
        elif code == 4002:  # §1.4
            bad = codes.count("bad_json")
            assert bad >= self.live.config.limits.max_bad_messages, f"{self.name}: 4002 after {bad}"
        elif code == 4004:  # §4.11
            assert "rate_limited" in codes, f"{self.name}: 4004 without rate_limited first"
        elif code == 4005:  # §4.9, notes 12.18
            assert self._taken_over(), f"{self.name}: 4005 but nobody used its resume token"

    def _observe(self, message: JsonObject) -> None:
        """Note what later frames may name (callIds, tokens, offered call numbers) and
        check what only this connection's history can tell (§4.9, §9.2, §9.4)."""
        scene, mt, where = self.live.scene, message.get("mt"), f"{self.name}: {short(message)}"
        if mt == "Signaling":
            sig, call = message["sig"], message["call"]
            scene.note_call_id(sig.get("confId"))
            scene.note_call_id(sig.get("callId"))
            if sig["type"] == "setup":
                self.offers.add(call)
                if any(item["type"] == "resumed" for item in sig.get("fty", [])):
                    assert self.resumed, f"a resumed call without a resumed Register: {where}"
            elif sig["type"] == "rel" and sig["cau"]["num"] == 26:
                scene.cleared.setdefault(self.user, set()).add(call)
        elif mt == "RegisterResult" and "resume" in message:
            token = message["resume"]
            if "resumed" in message:
                assert self.resumes_sent, f"resumed, but no resume token was sent: {where}"
            if message.get("resumed") is True:  # a live token of this user, each used once
                own = {known for user, known in scene.tokens if user == self.user}
                assert self.resumes_sent & own, f"resumed with no token of its own: {where}"
                assert token not in {known for _, known in scene.tokens}, f"old token: {where}"
                self.resumed = True
            self.tokens.add(token)
            scene.tokens.append((self.user, token))
        elif mt == "Error" and message.get("code") == "already_taken":
            if message.get("api") == "PbxSignal":
                scene.taken.append((self.user, message.get("call"), where))
        elif mt == "TakeResult":  # connected on a call this device was offered (notes 12.19)
            assert message["call"] in self.offers, f"no setup on that call: {where}"
        elif isinstance(message.get("chat"), dict):
            scene.note_call_id(message["chat"].get("confId"))

    # -- synchronising ----------------------------------------------------------------------

    def barrier(self) -> None:
        """Read and check every answer to what was sent so far (PROTOCOL §1.3, §3.1, §3.5)."""
        if self.closed:
            return
        token = f"fuzz-barrier-{next(self._barriers)}-{secrets.token_hex(4)}"
        if not self.send({"mt": "FuzzBarrier", "src": token}):
            self.wait_closed()
            return
        while (message := self.next()) is not None:
            if message.get("src") == token:
                assert message.get("mt") == "Error", f"{self.name}: {short(message)}"
                assert message.get("code") in ("not_logged_in", "unknown_mt"), short(message)
                break
        else:
            return  # closed by something sent before the barrier
        if self.send({"mt": "KeepAlive"}):
            while (echo := self.next()) is not None and echo != {"mt": "KeepAlive"}:
                assert _asynchronous(echo), (
                    f"{self.name}: something arrived after the barrier: {short(echo)}"
                )

    # -- scripted steps ---------------------------------------------------------------------

    def login(self, sip: str) -> None:
        self.user = sip
        self.send_json({"mt": "AppChallenge"})
        challenge = self.expect("AppChallengeResult")["challenge"]
        fields = {"app": "", "domain": "", "sip": sip, "guid": "", "dn": ""}
        digest = login_digest(**fields, challenge=challenge, password=PASSWORDS[sip])
        self.send_json({"mt": "AppLogin", **fields, "digest": digest})
        result = self.expect("AppLoginResult")
        assert result.get("ok") is True, f"{self.name}: login failed: {result}"

    def register(self) -> None:
        self.send_json(
            {"api": "PbxSignal", "mt": "Register", "src": "reg", "flags": "NO_MEDIA_CALL"}
        )
        result = self.expect("RegisterResult")
        assert isinstance(result.pop("resume", None), str), result
        assert result == {"api": "PbxSignal", "mt": "RegisterResult", "src": "reg"}, result


def signaling(call: int, sig: JsonObject) -> JsonObject:
    return {"api": "PbxSignal", "mt": "Signaling", "call": call, "sig": sig}


SUBSCRIBE: Final = {"api": "Queue", "mt": "Subscribe", "src": "board", "queue": "support"}
"""An agent watches the board of the demo tenant's queue (§9.3)."""


def im_message(call: int, data: str, **fields: Any) -> JsonObject:
    item = {"type": "im_message", "mime": "text/plain", "data": data, **fields}
    return signaling(call, {"type": "facility", "fty": [item]})


def call_and_answer(caller: Wire, callee: Wire) -> int:
    """Caller (registered) calls callee on call 1, callee answers; callee's call number."""
    setup = {"type": "setup", "channel": 0, "cd": {"sip": callee.name}}
    caller.send_json(signaling(1, {**setup, "fty": [{"type": "im_setup"}]}))
    caller.expect_sig(1, "call_proc")
    number: int = callee.expect_sig(None, "setup")["call"]
    assert number < 0
    callee.send_json(signaling(number, {"type": "conn"}))
    caller.expect_sig(1, "conn")
    return number


# -- strategies -----------------------------------------------------------------------------
#
# Two grammars of the same messages: the clean one gives every property the type the
# protocol says, so its frames get past the codec into login, registration and the chat
# state machine, and varies what carries meaning (call numbers, Signal types,
# destinations, mimes, ids, sizes, order); the fuzzy one puts a junk value or arbitrary
# JSON in any place now and then. Arbitrary JSON values and arbitrary text come on top.

ABSENT: Final = object()
"""Drawn for a property the message leaves out."""


@st.composite
def mostly(
    draw: st.DrawFn,
    usual: st.SearchStrategy[Any],
    unusual: st.SearchStrategy[Any],
    tenths: int = 8,
) -> Any:
    """``usual`` in ``tenths``/10 of the draws; shrinks towards ``usual``."""
    return draw(usual if draw(st.integers(0, 9)) < tenths else unusual)


def required(strategy: st.SearchStrategy[Any], tenths: int = 9) -> st.SearchStrategy[Any]:
    """A property a message needs: there in ``tenths``/10 of the draws; shrinks to there."""
    return mostly(strategy, st.just(ABSENT), tenths)


def optional(strategy: st.SearchStrategy[Any], tenths: int = 3) -> st.SearchStrategy[Any]:
    """A property a message may have: there in ``tenths``/10 of the draws; shrinks to
    absent, so failing examples come out small."""
    return mostly(st.just(ABSENT), strategy, 10 - tenths)


FIELDS = ["mt", "api", "src", "call", "sig", "type", "fty", "cd", "cg", "cau", "data"]
FIELDS += ["mime", "id", "typing", "more", "flags", "hw", "sip", "num", "loc", "info"]
FIELDS += ["queue", "callId", "confId", "to", "resume", "seqs", "product", "seller", "url"]

texts = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", " ", "null", "KeepAlive", "Signaling", "<b>x</b>", "\x00", "😀"]),
    st.sampled_from(["\u2028", "a" * 65, "%41", "\\", '"', "setup", "rel", "im_message"]),
    # lone surrogates: legal in JSON text as escapes ("\ud800"), not encodable as UTF-8
    st.sampled_from(["\ud800", "a\udfffb", "\ud83d"]),
    st.text(st.characters() | st.characters(categories=["Cs"]), max_size=6),
)
keys = st.sampled_from(FIELDS) | st.text(max_size=6)
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    texts,
    st.sampled_from([0, -1, 2**53 - 1, 2**53, -(2**53), 2**64, 1.5, 1e300]),
)
json_values = st.recursive(
    leaves,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(keys, children, max_size=3),
    max_leaves=8,
)
src_values = mostly(st.sampled_from(["reg", "s", 0, 7, "", None]), json_values, 6)
unknown_properties = st.dictionaries(
    st.text(max_size=6).filter(lambda key: key not in FIELDS), json_values, max_size=2
)


@st.composite
def obj(draw: st.DrawFn, fields: Mapping[str, st.SearchStrategy[Any]]) -> JsonObject:
    """A JSON object of the drawn fields (``ABSENT`` leaves one out), now and then with
    unknown properties (which must be ignored, §1.3)."""
    # a fresh dict: Hypothesis would print one from st.builds(dict) as "dict()"
    out: JsonObject = dict(draw(mostly(st.just({}), unknown_properties, 9)))
    for key, strategy in fields.items():
        value = draw(strategy)
        if value is not ABSENT:
            out[key] = value
    return out


sips = mostly(
    st.sampled_from(["bob", "carol", "dave", "alice", "alice@other.org", "erin@other.org"])
    | st.sampled_from(["bob@example.com", "bob@EXAMPLE.com", "nobody", "", "@example.com"])
    | st.sampled_from(["bob@", "helpdesk-bot", "bob@example.com@x"])
    | st.sampled_from(["support", "support", "support@example.com", "support@other.org"]),
    texts,
    8,
)
nums = mostly(st.sampled_from(["101", "102", "103", "104", "201", "999", ""]), texts, 8)
mimes = mostly(
    st.sampled_from(["text/plain", "text/html", "image/png", "TEXT/HTML; charset=utf-8", ""]),
    st.sampled_from(["text/plain;x", "image/svg+xml", "junk", "application/json"]) | texts,
    7,
)
data_values = mostly(
    st.sampled_from(["hi", "<b>bold</b>", "<script>alert(1)</script>x", "a & b", "\x00<p>"])
    | st.sampled_from(["😀", "", "<img src=x onerror=alert(1)>", "<!-- c -->", "y" * 30_000])
    | st.sampled_from(["x" * 65_537, "é" * 32_769]),
    texts,
    6,
)
message_ids = mostly(
    st.sampled_from(["m1", "m1", "m2", "m3"]) | st.text(min_size=1, max_size=64),
    st.sampled_from(["", "x" * 65]),
    9,
)
SIG_TYPES = ["alert", "conn", "rel", "disc", "call_proc", "info", "setup", "facility"]
SIG_TYPES += ["progress", "user_info", "channels", "accept", "setup_ack", "media_info"]
"""Every type of innovaphone's Signal page (docs/protocol.md 12.25)."""
FACILITY_TYPES = ["im_setup", "name_identification", "presence_subscribe", "presence_publish"]
FACILITY_TYPES += ["im_ack", "im_seen", "resumed", "queue", "context", "x_vendor"]
live_call_ids = st.builds(Live, st.just("callId"), st.integers(0, 3))
call_ids = mostly(
    live_call_ids,
    st.sampled_from([UNKNOWN_CALL_ID, "", "0"])
    | st.text("0123456789abcdef", min_size=32, max_size=32)
    | texts,
    8,
)
queue_names = mostly(
    mostly(st.just("support"), st.sampled_from(["nope", "", "Support", "support@example.com"]), 6),
    st.sampled_from(["alice", "example.com"]) | texts,
    8,
)
targets = mostly(
    st.sampled_from(["support", "alice", "bob", "carol", "dave", "nope", ""]),
    st.sampled_from(["helpdesk-bot", "erin", "support@example.com"]) | texts,
    8,
)
"""Where a ``Transfer`` goes (a queue, an agent, the visitor, nobody), or a ``seller``."""
tokens = mostly(
    st.builds(Live, st.just("token"), st.integers(0, 3)),
    st.sampled_from([UNKNOWN_TOKEN, ""]) | texts,
    8,
)
seqs = st.dictionaries(
    mostly(live_call_ids, texts | st.just(UNKNOWN_CALL_ID), 7),
    st.integers(0, 40) | st.sampled_from([0, 2**53 - 1]),
    max_size=3,
)
bad_seqs = st.sampled_from([[], "1", 0, {"x": -1}, {"x": 2**53}, {"x": 1.5}, {"x": True}])
bad_seqs |= st.sampled_from([{"x": "3"}, {"x": None}, {"x": {}}, {"x": 2**64}])
"""Anything else is bad_json (notes 12.18)."""
context_values = mostly(
    st.sampled_from(["Widget 3000", "", "p" * 201, "https://shop.example.com/p?id=1"]),
    st.sampled_from(["u" * 2001, "\x00"]) | texts,
    6,
)


class Grammar:
    """The protocol's messages; ``fuzzy`` puts junk in any place now and then."""

    def __init__(self, *, fuzzy: bool) -> None:
        self.fuzzy = fuzzy
        endpoints = self.either(
            obj({"sip": required(self.either(sips, st.integers()), 8), "num": optional(nums)}),
            texts,
        )
        causes = self.either(
            obj(
                {
                    "loc": required(st.integers(0, 15) | st.integers(), 8),
                    "num": required(st.sampled_from([16, 17, 21, 26, 0, 127]) | st.integers(), 9),
                }
            ),
            st.just({"num": "16"}),
        )
        im_messages = obj(
            {
                "type": st.just("im_message"),
                "data": required(self.either(data_values, st.integers()), 7),
                "mime": optional(self.either(mimes, st.booleans())),
                "typing": optional(self.either(st.booleans(), st.just("yes"))),
                "more": optional(self.either(st.booleans() | st.none(), st.just(1))),
                "id": optional(self.either(message_ids, st.integers()), 5),
                "attach": optional(self.either(texts, st.lists(texts))),
                "subject": optional(texts),
                # set by the hub whatever the client says: any JSON will do
                "sender": optional(json_values, 1),
                "time": optional(json_values, 1),
                "seq": optional(json_values, 1),
            }
        )
        other_facilities = obj(
            {
                "type": st.sampled_from(FACILITY_TYPES) | texts,
                "name": optional(texts),
                "activity": optional(st.sampled_from(["available", "away", "busy", "x"]), 2),
                "payload": optional(json_values),
            }
        )
        # a visitor's context (§9.2, notes 12.19): strings are kept, cut to their limits
        self.contexts = obj(
            {
                "type": st.just("context"),
                "product": optional(self.either(context_values, st.integers()), 6),
                "seller": optional(self.either(targets, st.integers()), 3),
                "url": optional(self.either(context_values, st.booleans()), 5),
            }
        )
        items = self.either(st.one_of(im_messages, im_messages, other_facilities), st.just({}))
        facilities = self.either(st.lists(items, min_size=1, max_size=3), st.just({}))
        setup_items = st.one_of(items, items, self.contexts)
        setup_facilities = mostly(
            st.lists(setup_items, max_size=2).map(lambda rest: [{"type": "im_setup"}, *rest]),
            st.lists(setup_items, max_size=2),
            8,
        )
        self.signals = self.either(
            st.one_of(
                # the simplest (first) choice is a message on a call: the deepest path
                obj({"type": st.just("facility"), "fty": required(facilities, 9)}),
                obj({"type": st.just("facility"), "fty": required(facilities, 9)}),
                obj(
                    {
                        "type": st.just("setup"),
                        "channel": optional(self.either(st.just(0), st.just("0"))),
                        "cd": required(endpoints, 9),
                        "cg": optional(endpoints),
                        "fty": required(setup_facilities, 9),
                    }
                ),
                obj(
                    {
                        "type": st.sampled_from(SIG_TYPES) | texts,
                        "cau": optional(causes),
                        "cd": optional(endpoints),
                        "fty": optional(facilities),
                        # the fields passed on with info, progress, user_info, channels, disc
                        "dsp": optional(self.either(st.text(max_size=130), st.integers()), 2),
                        "uui": optional(self.either(st.text(max_size=130), st.booleans()), 2),
                        "complete": optional(self.either(st.booleans(), st.just(1)), 1),
                        "inband_info": optional(self.either(st.booleans(), st.just("x")), 1),
                        "pi": optional(self.either(st.lists(st.just("8188")), texts), 1),
                        "channels_cmd": optional(
                            self.either(st.sampled_from(["PROPOSAL", "NONE"]), texts), 1
                        ),
                        "channels": optional(self.either(st.just({"ch": []}), json_values), 1),
                    }
                ),
            ),
            obj({"type": json_values, "fty": optional(facilities)}),
        )

    def either(
        self, good: st.SearchStrategy[Any], junk: st.SearchStrategy[Any]
    ) -> st.SearchStrategy[Any]:
        """``good``; in the fuzzy grammar sometimes ``junk`` or any JSON instead."""
        return mostly(good, junk | json_values, 9) if self.fuzzy else good

    def api(self, name: str = "PbxSignal") -> st.SearchStrategy[Any]:
        others = st.sampled_from([ABSENT, "PbxMessages", "PbxSignal", "Queue", "", name.lower()])
        return self.either(st.just(name), others | texts)

    def calls(self, usual: int) -> st.SearchStrategy[Any]:
        """Mostly ``usual`` (this side's connected call), other small numbers, edges."""
        edges = [2**53 - 1, 2**53, -(2**53 - 1), -(2**53), 2**63, 0]
        return self.either(
            mostly(st.just(usual), st.sampled_from([1, -1, 2, -2, 3]) | st.integers(-4, 4), 6),
            st.sampled_from([*edges, 1.0, True, "1", None]),
        )

    def queue_requests(self) -> st.SearchStrategy[JsonObject]:
        """The Queue API (§9.3, §9.4): each request with the fields it needs, now and
        then one of another request's or none (unknown properties are ignored, §1.3)."""

        def request(mt: str, **fields: st.SearchStrategy[Any]) -> st.SearchStrategy[JsonObject]:
            common = {
                "api": self.api("Queue"),
                "mt": self.either(st.just(mt), texts),
                "src": optional(src_values, 6),
            }
            others = {key: optional(value, 1) for key, value in requests.items()}
            return obj({**common, **others, **{key: required(fields[key], 9) for key in fields}})

        queue = self.either(queue_names, st.integers())
        call_id = self.either(call_ids, st.integers())
        to = self.either(targets, st.integers())
        requests = {"queue": queue, "confId": call_id, "callId": call_id, "to": to}
        return st.one_of(
            request("Take", confId=call_id),
            request("Transfer", confId=call_id, to=to),
            request("Subscribe", queue=queue),
            request("Close", confId=call_id),
            request("Unsubscribe", queue=queue),
            request("Take", callId=call_id),  # the older name of the conversation id
            request("Close", callId=call_id),
        )

    def answers(self, usual_call: int) -> st.SearchStrategy[JsonObject]:
        """An offered device's answer (§4.5, §9.2): mostly ``conn``."""
        return obj(
            {
                "api": self.api(),
                "mt": self.either(st.just("Signaling"), texts),
                "call": required(self.calls(usual_call), 9),
                "sig": obj({"type": st.sampled_from(["conn", "conn", "alert", "rel"])}),
            }
        )

    def resume_registers(self) -> st.SearchStrategy[JsonObject]:
        """A device's Register with a resume token, mostly a live one (§4.9)."""
        return obj(
            {
                "api": self.api(),
                "mt": st.just("Register"),
                "src": required(src_values, 8),
                "flags": required(self.either(st.just("NO_MEDIA_CALL"), texts), 9),
                "resume": required(self.either(tokens, st.integers()), 9),
                "seqs": optional(self.either(seqs, bad_seqs), 5),
            }
        )

    def messages(self, usual_call: int) -> st.SearchStrategy[JsonObject]:
        """Messages of every kind the server knows, mostly ``Signaling``, a few it does not."""
        signaling_messages = obj(
            {
                "api": self.api(),
                "mt": self.either(st.just("Signaling"), texts),
                "src": optional(src_values),
                "call": required(self.calls(usual_call), 9),
                "sig": required(self.signals, 9),
            }
        )
        flags = self.either(
            st.sampled_from(
                [
                    "NO_MEDIA_CALL",
                    "",
                    "X|NO_MEDIA_CALL",
                    " NO_MEDIA_CALL |",
                    "M",
                    "NO_MEDIA_CALL|APP_DATA",
                ]
            ),
            texts,
        )
        others = st.one_of(
            obj(
                {
                    "api": self.api(),
                    "mt": st.just("Register"),
                    "src": required(src_values, 7),
                    "hw": optional(self.either(texts, st.integers())),
                    "flags": required(flags, 8),
                    "resume": optional(self.either(tokens, st.integers())),
                    "seqs": optional(self.either(seqs, bad_seqs)),
                }
            ),
            self.queue_requests(),
            obj({"api": self.api(), "mt": st.just("Unregister"), "src": optional(src_values)}),
            obj(
                {
                    "api": self.api("PbxMessages"),
                    "mt": st.sampled_from(
                        ["Session", "ReadChats", "ReadChat", "SetRead", "Delete", "Post"]
                    )
                    | texts,
                    "src": optional(src_values),
                    "user": optional(texts),
                }
            ),
            obj(
                {"mt": st.just("AppChallenge"), "api": optional(texts), "src": optional(src_values)}
            ),
            obj(
                {
                    "mt": st.just("AppLogin"),
                    "app": optional(st.sampled_from(["", "helpdesk-bot", "messages"]) | texts, 5),
                    "domain": optional(st.sampled_from(["", "example.com", "other.org"]) | texts),
                    "sip": optional(self.either(sips, st.integers()), 6),
                    "guid": optional(self.either(texts, st.integers())),
                    "dn": optional(self.either(texts, st.integers())),
                    "digest": required(
                        self.either(st.text("0123456789abcdef", min_size=64), texts)
                    ),
                    "info": optional(json_values),
                    "pbxObj": optional(texts),
                    "src": optional(src_values),
                }
            ),
            obj({"mt": st.just("KeepAlive"), "api": optional(texts), "src": optional(src_values)}),
            obj({"mt": texts, "api": optional(texts), "src": optional(src_values)}),
        )
        return mostly(signaling_messages, others, 7)


CLEAN = Grammar(fuzzy=False)
FUZZY = Grammar(fuzzy=True)

raw_texts = st.one_of(
    st.text(max_size=40),
    st.sampled_from(['{"mt":"KeepAlive"', '{"mt":"KeepAlive"} x', "\ufeff{}", "NaN", "[" * 5000])
    | st.sampled_from(['{"mt":"KeepAlive","mt":5}', '{"mt":"X","src":1e400}', " {} ", ""])
    | st.sampled_from(['{"mt":"X","n":' + "9" * 5000 + "}", '{"mt":"X","src":-Infinity}']),
    st.lists(
        st.sampled_from(["{", "}", "[", "]", '"mt"', ":", ",", '"KeepAlive"', "null", "1", '"'])
        | st.sampled_from(['"api"', '"PbxSignal"', '"call"', '"sig"', '"type"', '"setup"']),
        max_size=14,
    ).map("".join),
).map(Raw)


def frames(usual_call: int = 1) -> st.SearchStrategy[Frame]:
    """Mostly clean messages; else fuzzy ones, any JSON value or any text."""
    malformed = mostly(FUZZY.messages(usual_call), raw_texts | json_values, 7)
    return mostly(CLEAN.messages(usual_call), malformed, 6)


def support_frames(usual_call: int, tenths: int = 4) -> st.SearchStrategy[Frame]:
    """What the visitor or an agent of a support chat sends: any frame in ``tenths``/10
    of the draws, else a Queue request or an answer to the offer."""
    queue = mostly(CLEAN.queue_requests(), FUZZY.queue_requests(), 8)
    answers = mostly(CLEAN.answers(usual_call), FUZZY.answers(usual_call), 8)
    return mostly(frames(usual_call), queue | answers, tenths)


def takeover_frames(usual_call: int) -> st.SearchStrategy[Frame]:
    """What a second connection of a user sends: now and then a Register with a token."""
    resume = mostly(CLEAN.resume_registers(), FUZZY.resume_registers(), 8)
    return mostly(support_frames(usual_call), resume, 7)


visitor_setups = obj(
    {
        "type": st.just("setup"),
        "channel": st.just(0),
        "cd": st.sampled_from([{"sip": "support"}, {"sip": "support@example.com"}]),
        "fty": mostly(
            st.just([]), st.lists(mostly(CLEAN.contexts, FUZZY.contexts), min_size=1, max_size=2), 4
        ).map(lambda contexts: [{"type": "im_setup"}, *contexts]),
    }
)
"""A visitor's setup to the queue ``support``, with or without a ``context`` (§9.2)."""


def fuzz(max_examples: int) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Hypothesis settings for the fuzz tests.

    Passing, each takes a few seconds. Once one fails, Hypothesis shrinks the example
    (every attempt is a real exchange with the server), which can take a minute: the
    per-test timeout is raised so that pytest-timeout never cuts a shrink short; later
    runs replay the shrunk example from the Hypothesis database at once.
    """
    fuzz_settings = settings(
        max_examples=max_examples,
        deadline=None,
        report_multiple_bugs=False,  # one bug at a time: each costs a shrink
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )

    def decorate(test: Callable[..., None]) -> Callable[..., None]:
        marked: Callable[..., None] = pytest.mark.timeout(600)(fuzz_settings(test))
        return marked

    return decorate


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def live() -> Iterator[ServerThread]:
    """One server for the whole module; the rate limiter is out of the way."""
    with ServerThread(make_config(rate=1e6, burst=1_000_000)) as running:
        yield running


@pytest.fixture(scope="module")
def limited() -> Iterator[ServerThread]:
    """A server with a tiny rate limit (§4.11)."""
    config = make_config(rate=5.0, burst=RATE_BURST, rate_close_after=RATE_CLOSE_AFTER)
    with ServerThread(config) as running:
        yield running


def send_all(wire: Wire, batch: list[Frame]) -> None:
    for frame in batch:
        if not wire.send(frame):
            break


# -- the properties -------------------------------------------------------------------------


@fuzz(60)
@given(batch=st.lists(frames(), min_size=1, max_size=12))
def test_fuzz_before_login(live: ServerThread, batch: list[Frame]) -> None:
    live.begin_example()
    with Wire(live, "client") as client:
        send_all(client, batch)
        client.barrier()
    live.assert_still_serving()


@fuzz(60)
@given(register=st.booleans(), batch=st.lists(frames(), min_size=2, max_size=16))
def test_fuzz_logged_in(live: ServerThread, register: bool, batch: list[Frame]) -> None:
    live.begin_example()
    with Wire(live, "alice") as alice:
        alice.login("alice")
        if register:
            alice.register()
        send_all(alice, batch)
        alice.barrier()
    live.assert_still_serving()


@fuzz(100)
@given(
    script=st.lists(
        st.one_of(
            st.tuples(st.just("alice"), frames(1)),
            st.tuples(st.just("alice"), frames(1)),
            st.tuples(st.just("bob"), frames(-1)),
        ),
        min_size=3,
        max_size=24,
    )
)
def test_fuzz_in_a_connected_call(live: ServerThread, script: list[tuple[str, Frame]]) -> None:
    """Alice called bob (her call 1, his -1) and he answered; both send fuzz, both are read.

    Each run of frames from one side ends with a barrier on that side, so the order in which
    the server sees the two connections (and so every outcome) is deterministic.
    """
    live.begin_example()
    with Wire(live, "alice") as alice, Wire(live, "bob") as bob:
        alice.login("alice")
        alice.register()
        bob.login("bob")
        bob.register()
        assert call_and_answer(alice, bob) == -1
        wires = {"alice": alice, "bob": bob}
        for who, run in itertools.groupby(script, key=lambda step: step[0]):
            wire = wires[who]
            send_all(wire, [frame for _, frame in run])
            wire.barrier()
        for wire in (alice, bob):  # whatever one side caused on the other is read too
            wire.barrier()
    live.assert_still_serving()


@fuzz(50)
@given(
    setup=visitor_setups,
    board=st.booleans(),
    answered=st.sampled_from(["", "bob", "alice"]),
    twin=st.sampled_from(["alice", "carol"]),
    script=st.lists(
        st.one_of(
            st.tuples(st.just("carol"), support_frames(1, 7)),
            st.tuples(st.just("alice"), support_frames(-1)),
            st.tuples(st.just("bob"), support_frames(-1)),
            st.tuples(st.just("carol"), support_frames(1, 7)),
            st.tuples(st.just("alice"), support_frames(-1)),
            st.tuples(st.just("bob"), support_frames(-1)),
            st.tuples(st.just("twin"), takeover_frames(-1)),
        ),
        min_size=6,
        max_size=30,
    ),
)
def test_fuzz_live_support(
    live: ServerThread,
    setup: JsonObject,
    board: bool,
    answered: str,
    twin: str,
    script: list[tuple[str, Frame]],
) -> None:
    """Carol calls the queue ``support`` (her call 1); its agents alice and bob are
    offered the chat (each on call -1), alice may watch the board and one of them may
    answer at once (§9.2, §9.3; unless the context sent the chat elsewhere). The
    ``twin`` is another connection of alice or carol, logged in but not registered,
    which may take that user's registration over with its resume token (the first
    connection is then closed 4005, §4.9). All send fuzz: Queue requests on live
    callIds, answers to the offer, messages, Registers. Runs end with a barrier on their
    side, as in the connected call.
    """
    live.begin_example()
    users = {"carol": "carol", "alice": "alice", "bob": "bob"}
    if any(who == "twin" for who, _ in script):
        users["twin"] = twin
    with contextlib.ExitStack() as stack:
        wires = {
            who: stack.enter_context(Wire(live, user if who != "twin" else f"{user}2"))
            for who, user in users.items()
        }
        for who, user in users.items():
            wires[who].login(user)
            if who != "twin":
                wires[who].register()
        if board:
            wires["alice"].send_json(SUBSCRIBE)
            assert wires["alice"].expect("SubscribeResult")["queue"] == "support"
        wires["carol"].send_json(signaling(1, setup))
        wires["carol"].barrier()  # the offers are out before anyone answers
        if answered:
            wires[answered].send_json(signaling(-1, {"type": "conn"}))
            wires[answered].barrier()
        for wire in wires.values():
            wire.barrier()
        for who, run in itertools.groupby(script, key=lambda step: step[0]):
            wire = wires[who]
            send_all(wire, [frame for _, frame in run])
            wire.barrier()
        for wire in wires.values():
            wire.barrier()
    live.assert_support_serving()


@fuzz(30)
@given(logged_in=st.booleans(), batch=st.lists(frames(), max_size=10))
def test_fuzz_under_the_rate_limit(
    limited: ServerThread, logged_in: bool, batch: list[Frame]
) -> None:
    """With the clock standing still, a connection that keeps sending is closed 4004."""
    limited.begin_example()
    with Wire(limited, "alice") as alice:
        used = 0
        if logged_in:
            alice.login("alice")
            alice.register()
            used = 3
        budget = RATE_BURST + RATE_CLOSE_AFTER - used
        padding = [{"mt": "KeepAlive"}] * max(0, budget - len(batch))
        send_all(alice, (batch + padding)[:budget])
        code = alice.wait_closed()
        codes = [m.get("code") for m in alice.replies]
        if code == 4004:
            assert codes.count("rate_limited") == RATE_CLOSE_AFTER - 1, short(alice.replies)
        else:  # closed before the limit bit: a failed login, ten bad messages, a huge frame
            assert code in (4001, 4002, 1009), code
    limited.assert_still_serving()


# -- plain examples: frames the protocol refuses by closing ---------------------------------


@pytest.mark.parametrize("logged_in", [False, True])
def test_binary_frame_closes_4003(live: ServerThread, logged_in: bool) -> None:
    live.begin_example()
    with Wire(live, "alice") as alice:
        if logged_in:
            alice.login("alice")
            alice.register()
        alice.send(b"\x00\x01binary")
        assert alice.wait_closed() == 4003
    live.assert_still_serving()


def test_oversize_frame_closes_1009() -> None:
    with ServerThread(make_config(max_frame=4096)) as small:
        small.begin_example()
        with Wire(small, "alice") as alice:
            alice.login("alice")
            alice.register()
            alice.send({"mt": "KeepAlive", "pad": "x" * 5000})
            assert alice.wait_closed() == 1009
        small.assert_still_serving()


# -- plain examples: minimal inputs for what the fuzzer finds, and one it cannot reach ------


@pytest.mark.parametrize(
    ("scene", "frame"),
    [
        ("before_login", Raw('{"mt":"\\ud800"}')),
        ("registered", Raw('{"api":"PbxSignal","mt":"Register","src":"\\udc00"}')),
        ("in_call", im_message(1, "\ud83d")),
    ],
    ids=["mt-before-login", "src-of-register", "relayed-data"],
)
def test_lone_surrogate_escape_is_answered(live: ServerThread, scene: str, frame: Frame) -> None:
    """``"\\ud800"`` is a legal JSON escape; whatever the server answers, it must arrive."""
    live.begin_example()
    with Wire(live, "alice") as alice, Wire(live, "bob") as bob:
        if scene != "before_login":
            alice.login("alice")
            alice.register()
        if scene == "in_call":
            bob.login("bob")
            bob.register()
            call_and_answer(alice, bob)
        alice.send(frame)
        alice.barrier()
        bob.barrier()
    live.assert_still_serving()


def test_non_json_numbers_are_not_echoed(live: ServerThread) -> None:
    """``NaN`` is not JSON: refuse it (bad_json) or at least never send it back (§1.1)."""
    live.begin_example()
    with Wire(live, "client") as client:
        client.send(Raw('{"mt":"Hello","src":NaN}'))
        client.barrier()
    live.assert_still_serving()


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def deepest_accepted(probe: Callable[[int], bool], too_deep: int = 100_000) -> int:
    """Binary search for the deepest nesting ``probe`` finds accepted (not bad_json)."""
    low, high = 1, too_deep  # 2 * 100_000 bytes stay below limits.max_frame
    assert probe(low), "a flat value was refused"
    assert not probe(high), f"nesting {high} deep was accepted"
    while high - low > 1:
        middle = (low + high) // 2
        if probe(middle):
            low = middle
        else:
            high = middle
    return low


def test_deepest_accepted_src_is_echoed(live: ServerThread) -> None:
    """Deep JSON is refused with bad_json (§1.4). Whatever the decoder accepts must be
    answered normally, here echoed as ``src``; the search probes the deepest such value,
    where decoding (shallow on the stack) just succeeds and re-encoding the reply
    (deeper on the stack) could run out of recursion. The fuzzer cannot get there by
    chance."""
    live.begin_example()
    with Wire(live, "client") as client:

        def probe(depth: int) -> bool:
            client.send(Raw('{"mt":"Deep","src":' + nested(depth) + "}"))
            client.send_json({"mt": "KeepAlive"})  # also resets the bad count (§1.4)
            reply = client.next()
            assert reply is not None, f"closed {client.close_code} at depth {depth}"
            assert client.next() == {"mt": "KeepAlive"}
            if reply.get("code") == "bad_json":
                return False
            assert reply.get("code") == "not_logged_in", short(reply)
            return True

        deepest_accepted(probe)
        client.barrier()
    live.assert_still_serving()


def test_deepest_accepted_info_is_hashed(live: ServerThread) -> None:
    """As above for ``AppLogin.info``, which the digest serialises (§3.2)."""
    live.begin_example()

    def probe(depth: int) -> bool:
        live.advance(live.config.login.throttle_window + 1)  # each failed login counts
        with Wire(live, "client") as client:
            client.send_json({"mt": "AppChallenge"})
            client.expect("AppChallengeResult")
            client.send(Raw('{"mt":"AppLogin","sip":"alice","info":' + nested(depth) + "}"))
            reply = client.next()
            assert reply is not None, f"closed {client.close_code} at depth {depth}"
            if reply.get("code") == "bad_json":
                return False
            assert reply.get("mt") == "AppLoginResult" and "ok" not in reply, short(reply)
            assert client.wait_closed() == 4001
            return True

    deepest_accepted(probe)
    live.assert_still_serving()


def test_deepest_accepted_facility_is_relayed(live: ServerThread) -> None:
    """As above for an unknown facility, which travels to the peer untouched (§4.6)."""
    live.begin_example()
    with Wire(live, "alice") as alice, Wire(live, "bob") as bob:
        alice.login("alice")
        alice.register()
        bob.login("bob")
        bob.register()
        number = call_and_answer(alice, bob)

        def probe(depth: int) -> bool:
            item = '{"type":"x_deep","p":' + nested(depth) + "}"
            alice.send(
                Raw(
                    '{"api":"PbxSignal","mt":"Signaling","call":1,'
                    '"sig":{"type":"facility","fty":[' + item + "]}}"
                )
            )
            alice.send_json({"mt": "KeepAlive"})
            reply = alice.next()
            assert reply is not None, f"closed {alice.close_code} at depth {depth}"
            if reply.get("code") == "bad_json":
                assert alice.next() == {"mt": "KeepAlive"}
                return False
            assert reply == {"mt": "KeepAlive"}, short(reply)  # nothing to answer
            bob.expect_sig(number, "facility")
            return True

        deepest_accepted(probe)
        alice.barrier()
        bob.barrier()
    live.assert_still_serving()


def _asynchronous(message: JsonObject) -> bool:
    """Frames that may come after a barrier because the hub sends them once something
    outside the connection has happened: ``im_ack stored`` once the Post is on disk
    (§12.9), answers of the messages service, unread badges and read marks."""
    if message.get("api") == "PbxMessages":
        return True
    sig = message.get("sig")
    if (
        message.get("mt") != "Signaling"
        or not isinstance(sig, dict)
        or sig.get("type") != "facility"
    ):
        return False
    items = sig.get("fty") or []
    return bool(items) and all(
        (item.get("type") == "im_ack" and item.get("state") == "stored")
        or item.get("type") in ("presence_notify", "im_seen")
        for item in items
    )
