"""A sans-I/O ``Switch`` with the frames each connection received: the core's test bench.

``Harness`` drives one ``Switch`` with a ``ManualClock`` and a fixed challenge; tests read
the actions per connection and end with ``finish()``, which proves nothing leaked.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from config import Config
from signaling.appwebsocket.digest import login_digest
from signaling.core.actions import Action, Close, Notify, Send, Store, ToService
from signaling.core.clock import ManualClock
from signaling.core.switch import Switch
from tests.support import PASSWORDS, make_config

JsonObject = dict[str, Any]

CHALLENGE = "0123456789abcdef"
ADDRESS = "192.0.2.10"
T0 = 1_800_000_000  # ManualClock's default wall clock, whole seconds


# -- helpers -----------------------------------------------------------------------------------


def decode_sends(actions: list[Action]) -> dict[int, list[JsonObject]]:
    """The JSON objects of the ``Send`` actions, per connection, in order."""
    out: dict[int, list[JsonObject]] = defaultdict(list)
    for action in actions:
        if isinstance(action, Send):
            out[action.conn].append(json.loads(action.text))
    return dict(out)


def closes(actions: list[Action]) -> list[Close]:
    return [action for action in actions if isinstance(action, Close)]


def im(data: str | None = None, **fields: Any) -> JsonObject:
    """An ``im_message`` facility item; text defaults to ``text/plain``."""
    item: JsonObject = {"type": "im_message", **fields}
    if data is not None:
        item.setdefault("mime", "text/plain")
        item["data"] = data
    return item


def sig_of(message: JsonObject, call: int | None = None, kind: str | None = None) -> JsonObject:
    """The ``sig`` of an unsolicited Signaling (which echoes the Register ``src``)."""
    assert message["api"] == "PbxSignal" and message["mt"] == "Signaling", message
    assert message.get("src") == "reg", message
    if call is not None:
        assert message["call"] == call, message
    if kind is not None:
        assert message["sig"]["type"] == kind, message
    sig: JsonObject = message["sig"]
    return sig


def fty_of(message: JsonObject, call: int | None = None) -> JsonObject:
    """The single facility item of a Signaling facility."""
    (item,) = sig_of(message, call, "facility")["fty"]
    return dict(item)


class Harness:
    """One Switch plus the frames each connection has received and not yet looked at."""

    def __init__(self, config: Config | None = None) -> None:
        self.config = config or make_config()
        self.clock = ManualClock()
        self.congested: Callable[[int, int], bool] = lambda conn, pending: False
        """How full the I/O layer's send queues are, as a test sets it: would ``conn``'s
        overflow with ``pending`` more frames and one? The switch asks through this."""
        self.switch = Switch(
            self.config,
            self.clock,
            make_challenge=lambda: CHALLENGE,
            congested=lambda conn, pending: self.congested(conn, pending),
        )
        self.inbox: dict[int, list[JsonObject]] = defaultdict(list)
        self.closed_with: dict[int, Close] = {}
        self.stores: list[Store] = []
        """Posts handed to the durable outbox, in order."""
        self.to_service: list[JsonObject] = []
        """Messages for the messages service, in order."""
        self.notified: list[Notify] = []
        """Events for webhooks (PROTOCOL §9.6)."""
        self.tokens: dict[int, str] = {}
        """The resume token each registered connection was given (PROTOCOL §4.9)."""

    # -- feeding events ------------------------------------------------------------------

    def record(self, actions: list[Action]) -> list[Action]:
        for action in actions:
            if isinstance(action, Store):
                self.stores.append(action)
                continue
            if isinstance(action, ToService):
                self.to_service.append(action.message)
                continue
            if isinstance(action, Notify):
                self.notified.append(action)
                continue
            assert action.conn not in self.closed_with, f"action after Close: {action}"
            if isinstance(action, Send):
                self.inbox[action.conn].append(json.loads(action.text))
            else:
                self.closed_with[action.conn] = action
        return actions

    def open(self, address: str = ADDRESS) -> int:
        conn, actions = self.switch.open(address)
        assert actions == []
        return conn

    def text(self, conn: int, text: str) -> list[Action]:
        return self.record(self.switch.receive(conn, text))

    def send(self, conn: int, message: JsonObject) -> list[Action]:
        return self.text(conn, json.dumps(message))

    def advance(self, seconds: float) -> list[Action]:
        self.clock.advance(seconds)
        return self.record(self.switch.fire_timers())

    def close(self, conn: int, clean: bool = True) -> list[Action]:
        return self.record(self.switch.closed(conn, clean))

    # -- reading what was sent -------------------------------------------------------------

    def take(self, conn: int) -> list[JsonObject]:
        """Everything sent to ``conn`` since the last take."""
        messages, self.inbox[conn] = self.inbox[conn], []
        return messages

    def one(self, conn: int) -> JsonObject:
        """The single frame sent to ``conn`` since the last take."""
        messages = self.take(conn)
        assert len(messages) == 1, messages
        return messages[0]

    def quiet(self, *conns: int) -> None:
        for conn in conns:
            assert self.take(conn) == [], conn

    # -- login and registration ------------------------------------------------------------

    def login(
        self,
        sip: str = "",
        *,
        password: str | None = None,
        domain: str = "",
        app: str = "",
        address: str = ADDRESS,
    ) -> int:
        conn = self.open(address)
        self.send(conn, {"mt": "AppChallenge"})
        assert self.one(conn) == {"mt": "AppChallengeResult", "challenge": CHALLENGE}
        self.send(conn, login_message(sip, password or PASSWORDS[sip], domain=domain, app=app))
        result = self.take(conn)[0]
        assert result["mt"] == "AppLoginResult" and result["ok"] is True, result
        return conn

    def phone(self, sip: str, *, src: object = "reg", hw: str | None = None, **login: Any) -> int:
        """A logged-in connection of ``sip`` registered with NO_MEDIA_CALL."""
        conn = self.login(sip, **login)
        register: JsonObject = {
            "api": "PbxSignal",
            "mt": "Register",
            "src": src,
            "flags": "NO_MEDIA_CALL",
        }
        if hw is not None:
            register["hw"] = hw
        self.send(conn, register)
        result = self.one(conn)
        token = result.pop("resume", None)
        assert isinstance(token, str), result
        self.tokens[conn] = token
        assert result == {"api": "PbxSignal", "mt": "RegisterResult", "src": src}
        return conn

    # -- PbxSignal ---------------------------------------------------------------------------

    def signal(self, conn: int, call: int, sig: JsonObject, **envelope: Any) -> list[Action]:
        message = {"api": "PbxSignal", "mt": "Signaling", **envelope, "call": call, "sig": sig}
        return self.send(conn, message)

    def setup(self, conn: int, call: int, to: str, *messages: JsonObject) -> list[Action]:
        fty = [{"type": "im_setup"}, *messages]
        return self.signal(
            conn, call, {"type": "setup", "channel": 0, "cd": {"sip": to}, "fty": fty}
        )

    def say(self, conn: int, call: int, data: str | None = None, **fields: Any) -> list[Action]:
        return self.signal(conn, call, {"type": "facility", "fty": [im(data, **fields)]})

    def offered(self, conn: int) -> tuple[int, JsonObject]:
        """The call number and ``sig`` of the single setup just offered to ``conn``."""
        message = self.one(conn)
        sig = sig_of(message, kind="setup")
        assert message["call"] < 0
        return message["call"], sig

    def call(self, caller: int, callee: int, to: str = "bob") -> int:
        """``caller`` calls (number 1), ``callee`` answers; returns the callee's number."""
        self.setup(caller, 1, to)
        sig_of(self.one(caller), 1, "call_proc")
        number, _ = self.offered(callee)
        self.signal(callee, number, {"type": "conn"})
        sig_of(self.one(caller), 1, "conn")
        self.quiet(callee)
        return number

    # -- the invariants ----------------------------------------------------------------------

    def finish(self) -> None:
        """Close every connection; nothing may leak (calls, registrations, timers, the
        login throttle's entries)."""
        for conn in list(self.switch.connections):
            self.close(conn)
        if self.config.signaling.resume_grace:  # detached registrations end after the grace
            self.advance(self.config.signaling.resume_grace)
        if self.switch.throttle.next_expiry() is not None:  # failed logins are forgotten
            self.advance(self.config.login.throttle_window)
            assert set(self.switch.throttle.tracked(self.clock.monotonic()).values()) == {0}
        assert self.switch.connections == {}
        assert self.switch.chat.calls == {}
        assert len(self.switch.registry) == 0
        assert self.switch.next_deadline() is None


def login_message(
    sip: str, password: str, *, domain: str = "", app: str = "", src: object = None
) -> JsonObject:
    digest = login_digest(
        app=app, domain=domain, sip=sip, guid="", dn="", challenge=CHALLENGE, password=password
    )
    message: JsonObject = {
        "mt": "AppLogin",
        "app": app,
        "domain": domain,
        "sip": sip,
        "guid": "",
        "dn": "",
        "digest": digest,
    }
    if src is not None:
        message["src"] = src
    return message


def with_signaling(config: Config, **changes: Any) -> Config:
    return replace(config, signaling=replace(config.signaling, **changes))
