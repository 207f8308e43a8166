"""Several sans-I/O ``Switch`` objects wired by the in-memory bus: the cluster's test bench.

A ``Cluster`` is the ``Harness`` of several switches: clients are (switch, connection)
pairs, frames each client received wait in its inbox, and nothing travels between
switches unless the test lets it (``settle=False`` leaves it in ``bus.pending``).
``finish()`` closes everything and proves that no switch kept anything: no call, leg,
stand-in, waiting lookup or claim, no message waiting for its delivery report, and
nothing in the shared book (but the snapshots of switches lost, taken or not, which
Redis would let expire).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from config import Config
from signaling.bus.memory import MemoryBus
from signaling.core.actions import Ack, Action, Close, Notify, Recall, Send, Store
from signaling.core.clock import ManualClock
from signaling.core.switch import Switch
from tests.signaling.core.harness import ADDRESS, CHALLENGE, im, login_message
from tests.support import PASSWORDS, make_config

JsonObject = dict[str, Any]
Client = tuple[str, int]


class Cluster:
    def __init__(self, nodes: tuple[str, ...] = ("a", "b"), config: Config | None = None):
        self.config = config or make_config()
        self.clock = ManualClock()
        self.bus = MemoryBus(self.record, self.clock.monotonic)
        self.inbox: dict[Client, list[JsonObject]] = defaultdict(list)
        self.closed_with: dict[Client, Close] = {}
        self.stores: list[Store] = []
        self.on_disk: list[tuple[str, Store]] = []
        """Stores not yet reported written (``disk``), with the switch that made each."""
        self.notified: list[Notify] = []
        self.joinable: dict[Client, list[Ack]] = defaultdict(list)
        """Acks for registrations that asked for cumulative acks (docs 12.31): the I/O
        layer joins them, so they are kept as the core made them."""
        self.tokens: dict[Client, str] = {}
        """Each registered client's resume token (§4.9)."""
        self.eager_disk = False
        """Whether every store is on disk before the bus delivers the next frames (as
        when the disk is faster than the network), so every writer still in its call
        hears ``stored``."""
        self.congested: dict[str, Callable[[int, int], bool]] = {}
        """What each switch's I/O layer says of its send queues (``Switch(congested=)``):
        none is full unless a test says so for a switch."""
        for node in nodes:
            switch = Switch(
                self.config,
                self.clock,
                make_challenge=lambda: CHALLENGE,
                node=node,
                book=self.bus.book,
                congested=lambda conn, pending, node=node: self._congested(node, conn, pending),
            )
            self.bus.join(node, switch)

    def switch(self, node: str) -> Switch:
        return self.bus.switches[node]

    def _congested(self, node: str, conn: int, pending: int) -> bool:
        full = self.congested.get(node)
        return full is not None and full(conn, pending)

    # -- feeding events ------------------------------------------------------------------

    def record(self, node: str, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Store):
                self.stores.append(action)
                self.on_disk.append((node, action))
            elif isinstance(action, Notify):
                self.notified.append(action)
            elif isinstance(action, Send):
                assert (node, action.conn) not in self.closed_with, action
                self.inbox[node, action.conn].append(json.loads(action.text))
            elif isinstance(action, Close):
                self.closed_with[node, action.conn] = action
            elif isinstance(action, Ack):
                self.joinable[node, action.conn].append(action)

    def feed(self, node: str, actions: list[Action], settle: bool) -> None:
        self.bus.feed(node, actions)
        if settle and not self.eager_disk:
            self.bus.run()
        elif settle:
            self.disk()
            while self.bus.pending:
                self.bus.step()
                self.disk()

    def send(self, client: Client, message: JsonObject, *, settle: bool = True) -> None:
        node, conn = client
        self.feed(node, self.switch(node).receive(conn, json.dumps(message)), settle)

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        for node, switch in list(self.bus.switches.items()):
            self.feed(node, switch.fire_timers(), settle=False)
        self.bus.run()

    def close(self, client: Client, clean: bool = True) -> None:
        node, conn = client
        self.feed(node, self.switch(node).closed(conn, clean), settle=True)

    def disk(self) -> None:
        """Every store made so far is on disk: each writer waiting hears ``stored``."""
        while self.on_disk:
            node, store = self.on_disk.pop(0)
            switch = self.bus.switches.get(node)
            if store.ack is not None and switch is not None:
                self.feed(node, switch.stored([store.ack]), settle=False)

    # -- reading what was sent -------------------------------------------------------------

    def take(self, client: Client) -> list[JsonObject]:
        messages, self.inbox[client] = self.inbox[client], []
        return messages

    def one(self, client: Client) -> JsonObject:
        messages = self.take(client)
        assert len(messages) == 1, messages
        return messages[0]

    def quiet(self, *clients: Client) -> None:
        for client in clients:
            assert self.take(client) == [], client

    # -- login and registration ------------------------------------------------------------

    def login(
        self, node: str, sip: str, *, settle: bool = True, password: str | None = None
    ) -> Client:
        conn, actions = self.switch(node).open(ADDRESS)
        assert actions == []
        client = (node, conn)
        self.send(client, {"mt": "AppChallenge"}, settle=settle)
        self.send(client, login_message(sip, password or PASSWORDS[sip]), settle=settle)
        self.bus.answer_logins()  # the cluster's throttle answers (docs 12.44), nothing else
        assert self.take(client)[-1]["ok"] is True
        return client

    def phone(
        self, node: str, sip: str, *, src: object = "reg", password: str | None = None
    ) -> Client:
        client = self.login(node, sip, password=password)
        register = {"api": "PbxSignal", "mt": "Register", "src": src, "flags": "NO_MEDIA_CALL"}
        self.send(client, register)
        result, *later = self.take(client)  # later: a support chat offered to a new agent
        assert result["mt"] == "RegisterResult"
        self.tokens[client] = result["resume"]
        self.inbox[client] = later
        return client

    def resume(
        self, old: Client, node: str, sip: str, seqs: JsonObject, *, settle: bool = True
    ) -> Client:
        """A new connection of ``sip`` on ``node`` takes ``old``'s registration over
        (``settle=False``: what it sends other switches waits on the bus; on another
        switch than ``old``'s, the book's answer about the token is delivered, and only
        that)."""
        client = self.login(node, sip, settle=settle)
        register = {
            "api": "PbxSignal",
            "mt": "Register",
            "src": "reg",
            "flags": "NO_MEDIA_CALL",
            "resume": self.tokens.pop(old),
            "seqs": seqs,
        }
        self.send(client, register, settle=settle)
        recalls = [i for i, d in enumerate(self.bus.pending) if isinstance(d.question, Recall)]
        if recalls:
            self.bus.step(recalls[-1])
        result = self.take(client)
        assert result[0]["mt"] == "RegisterResult" and result[0]["resumed"] is True, result
        self.tokens[client] = result[0]["resume"]
        self.inbox[client] = result[1:] + self.inbox[client]
        return client

    def groups(self, *groups: JsonObject) -> None:
        """Every switch hears of ``groups`` from the messages service (as each hub does)."""
        for node, switch in self.bus.switches.items():
            for group in groups:
                self.feed(node, switch.from_service({"mt": "GroupInd", **group}), True)

    # -- PbxSignal ---------------------------------------------------------------------------

    def signal(self, client: Client, call: int, sig: JsonObject, *, settle: bool = True) -> None:
        message = {"api": "PbxSignal", "mt": "Signaling", "call": call, "sig": sig}
        self.send(client, message, settle=settle)

    def setup(self, client: Client, call: int, to: str, *messages: JsonObject) -> None:
        fty = [{"type": "im_setup"}, *messages]
        self.signal(client, call, {"type": "setup", "channel": 0, "cd": {"sip": to}, "fty": fty})

    def say(
        self, client: Client, call: int, data: str, *, settle: bool = True, **fields: Any
    ) -> None:
        sig = {"type": "facility", "fty": [im(data, **fields)]}
        self.signal(client, call, sig, settle=settle)

    def offered(self, client: Client) -> int:
        message = self.one(client)
        assert message["sig"]["type"] == "setup" and message["call"] < 0, message
        number: int = message["call"]
        return number

    # -- the invariants ----------------------------------------------------------------------

    def finish(self) -> None:
        """Close every connection everywhere; no switch may keep anything."""
        for node, switch in list(self.bus.switches.items()):
            for conn in list(switch.connections):
                self.close((node, conn))
        if self.config.signaling.resume_grace:
            self.advance(self.config.signaling.resume_grace)
        self.bus.run()
        for node, switch in self.bus.switches.items():
            assert switch.chat.calls == {}, node
            assert len(switch.registry) == 0, node
            assert switch.next_deadline() is None, node
            held = switch.held()
            assert held["proxy_legs"] == held["lookups_waiting"] == 0, (node, held)
            assert held["remote_devices"] == held["claims"] == 0, (node, held)
            assert held["unreported"] == 0, (node, held)  # every message's report settled
            assert held["board_chats"] == held["queue_asks"] == 0, (node, held)
        assert len(self.bus.book) == 0
        book = self.bus.book
        kept = [snapshot for snapshot, _ in [*book.snapshots.values(), *book.taken.values()]]
        assert [s for s in kept if s.node in self.bus.switches] == []
        assert self.bus.book.claims == {}
        assert self.bus.book.presence == {} and self.bus.book.published == {}
        assert self.bus.following == {}
        for node, switch in self.bus.switches.items():
            assert switch.presence.held() == 0, node


def without_ids(
    frames: list[list[JsonObject]], *, dropped: tuple[str, ...] = ()
) -> list[list[JsonObject]]:
    """Each client's frames with leg and conversation ids replaced by their order of
    first appearance, and the fields named in ``dropped`` left out (``time`` where two
    runs of one script did not share a clock), so that two runs compare equal."""
    seen: dict[str, str] = {}

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                key: seen.setdefault(item, f"id{len(seen)}")
                if key in ("callId", "confId")
                else walk(item)
                for key, item in value.items()
                if key not in dropped
            }
        if isinstance(value, list):
            return [walk(item) for item in value]
        return value

    return [walk(client) for client in frames]


def support_config(max_chats: int = 1) -> Config:
    """The demo tenant's queue ``support``, whose agents alice and bob each take at
    most ``max_chats`` chats."""
    config = make_config(messages=False)
    demo = config.tenants[0]
    users = tuple(
        replace(user, max_chats=max_chats) if user.sip in ("alice", "bob") else user
        for user in demo.users
    )
    return replace(config, tenants=(replace(demo, users=users), *config.tenants[1:]))


def kinds(frames: list[JsonObject]) -> list[str]:
    """The ``sig`` type of each frame."""
    return [frame["sig"]["type"] for frame in frames]


def claims(cluster: Cluster) -> dict[str, int]:
    """How many chats each agent's shared set holds."""
    book = cluster.bus.book.claims
    return {key.rsplit(":", 1)[1]: len(members) for key, members in book.items()}
