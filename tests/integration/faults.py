"""Fault runs: licensed messages with ids while the hub or the messages service is
killed with SIGKILL and started again (PROTOCOL §4.6: a licensed message's ``id`` is an
idempotency key per sender; §7.7: nothing acknowledged ``stored`` is lost).

Theory of operation. Hub and service run as two processes (``processes.SplitServers``)
on SQLite or PostgreSQL. alice calls bob, who is licensed and never registers, so the
hub answers for him and every message is stored for both sides (§7.5). The ``Writer``
sends ``message 0`` .. ``message 499`` with ids ``m0`` .. ``m499`` in order, keeping up
to 64 unacknowledged, and records every ``im_ack``. When the writer has sent the
seeded ``kill_at``-th message, the run kills one process and starts it again at once:

- ``hub``: alice's connection drops. Like any client she logs in again (a new process
  knows no resume token), registers, places a new call to bob and resends every id she
  has no ack for, in the original order, then goes on with the rest. The ids whose Post
  reached the killed hub's journal but whose ack never reached alice are in flight twice:
  the journal replays them and alice resends them.
- ``service``: the hub stays up and alice stays connected; the hub keeps the Posts in
  its journal and sends them when the service is back.
- ``replica`` (PostgreSQL only): two replicas of the service, A and B, behind a balancer
  (docs/protocol.md 12.41); A, which the hub's link went to, is killed for good. The
  hub's link lands on B and resends its journal there: the Posts A stored before it
  died are answered as stored, the rest are stored by B.

Once every id is acknowledged and the hub's outbox is empty (``/metrics``), both sides'
histories are read from the database and through the protocol (``ReadChat``, paged).
Then alice resends two ids acknowledged before the fault (``m0`` and the last one), the
probe: a resend of a stored id must be answered with the original ``seq``, ``time`` and
state and store nothing. ``Outcome.defects`` lists everything that breaks the contract:
each side holds exactly the 500 texts, once each, in order; every ack of an id says
``stored`` with the same ``seq`` and ``time``, which are those of the row stored first.

Used by ``tests/integration/test_faults.py`` (one run per case) and ``bench/faults.py``
(several seeds, a table of figures).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from websockets.exceptions import WebSocketException

from signaling.appwebsocket.client import AppWebsocketClient
from signaling.appwebsocket.errors import ConnectionClosed, ReplyTimeout
from tests.integration.processes import DOMAIN, Account, SplitServers, stopping
from tests.integration.test_messages import ask, session
from tests.support import Phone

__all__ = ["FAULTS", "Outcome", "run_fault"]

JsonObject = dict[str, Any]

FAULTS = ("hub", "service")
"""The faults of both backends (``replica`` needs PostgreSQL)."""
MESSAGES = 500
WINDOW = 64
ACK_TIMEOUT = 15.0
"""Seconds without any ack before the run is called stalled (acks need only the hub's
journal, never the service)."""
RECONNECT_TIMEOUT = 30.0
DRAIN_TIMEOUT = 60.0
SIDES = ("alice", "bob")


def text_of(message_id: str) -> str:
    return f"message {message_id.removeprefix('m')}"


@dataclass(frozen=True)
class Ack:
    seq: int | None
    time: int | None
    state: str
    connection: int
    """Which of alice's connections it came on (1: the first)."""


class Writer:
    """alice's device: writes every id, resends what was not acknowledged after a drop."""

    def __init__(
        self,
        url: str,
        account: Account,
        *,
        count: int,
        window: int,
        after_send: Callable[[int], None],
    ) -> None:
        self.url = url
        self.account = account
        self.ids = [f"m{n}" for n in range(count)]
        self.window = window
        self.after_send = after_send
        """Called with the number of ids sent so far after each first send."""
        self.acks: dict[str, list[Ack]] = {}
        self.sent = 0
        """Ids sent at least once (always the first ``sent`` of ``ids``)."""
        self.resent: list[str] = []
        self.connections = 0
        self.acked_at_drop: set[str] | None = None

    async def write_all(self) -> tuple[Phone, int]:
        """Until every id has an ack; returns the phone and call number in use then."""
        backlog: list[str] = []
        while True:
            phone, call = await self._call_bob()
            try:
                await self._send(phone, call, deque(backlog))
            except ConnectionClosed:
                with contextlib.suppress(Exception):
                    await phone.client.close()
                if self.acked_at_drop is None:
                    self.acked_at_drop = set(self.acks)
                backlog = [i for i in self.ids[: self.sent] if i not in self.acks]
                continue
            return phone, call

    async def probe(self, phone: Phone, call: int, ids: list[str]) -> None:
        """Resend ``ids`` (already acknowledged) on ``call`` and wait for their acks."""
        for message_id in ids:
            await phone.say(call, text_of(message_id), id=message_id)
        waiting = set(ids)
        while waiting:
            for message_id in self._acks_in(await phone.next(ACK_TIMEOUT), call):
                waiting.discard(message_id)

    async def _call_bob(self) -> tuple[Phone, int]:
        """Log in, register and call bob, retrying while the hub is down."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RECONNECT_TIMEOUT
        while True:
            try:
                client = await AppWebsocketClient.connect(self.url, max_size=None)
            except (OSError, TimeoutError, WebSocketException) as exc:
                assert loop.time() < deadline, f"the hub did not come back: {exc!r}"
                await asyncio.sleep(0.05)
                continue
            phone = Phone(client, self.account.sip)
            try:
                await client.login(
                    password=self.account.password, sip=self.account.sip, domain=DOMAIN
                )
                result = await phone.register()
                assert result.get("mt") == "RegisterResult" and "err" not in result, result
                self.connections += 1
                call = self.connections  # a new call on every connection
                await phone.setup(call, "bob")
                await phone.sig(call, "call_proc")
                await phone.sig(call, "conn")
            except ConnectionClosed:
                with contextlib.suppress(Exception):
                    await client.close()
                assert loop.time() < deadline, "the hub kept closing the connection"
                continue
            return phone, call

    async def _send(self, phone: Phone, call: int, backlog: deque[str]) -> None:
        in_flight: set[str] = set()
        count = len(self.ids)
        while len(self.acks) < count:
            while len(in_flight) < self.window and (backlog or self.sent < count):
                first = not backlog
                if first:
                    message_id = self.ids[self.sent]
                    self.sent += 1
                else:
                    message_id = backlog.popleft()
                    self.resent.append(message_id)
                in_flight.add(message_id)
                await phone.say(call, text_of(message_id), id=message_id)
                if first:
                    self.after_send(self.sent)
            try:
                message = await phone.next(ACK_TIMEOUT)
            except ReplyTimeout as exc:
                raise AssertionError(
                    f"no ack within {ACK_TIMEOUT} s; {len(in_flight)} in flight, "
                    f"{len(self.acks)} of {count} ids acknowledged"
                ) from exc
            in_flight.difference_update(self._acks_in(message, call))

    def _acks_in(self, message: JsonObject, call: int) -> list[str]:
        """Record the ``im_ack``s of a frame, which must be a facility of ``call``."""
        sig = message.get("sig") or {}
        items = sig.get("fty") or []
        if (
            message.get("mt") != "Signaling"
            or message.get("call") != call
            or sig.get("type") != "facility"
            or not items
            or any(item.get("type") != "im_ack" for item in items)
        ):
            raise AssertionError(f"expected im_ack on call {call}, got {message}")
        ids = []
        for item in items:
            ack = Ack(item.get("seq"), item.get("time"), str(item.get("state")), self.connections)
            self.acks.setdefault(str(item["id"]), []).append(ack)
            ids.append(str(item["id"]))
        return ids


# -- reading what was stored ----------------------------------------------------------------


async def stored_texts(database: str) -> dict[str, list[str]]:
    """The texts of every side's rows in row order, straight from the database."""
    query = "SELECT topic, text FROM messages ORDER BY id"
    if database.startswith("sqlite://"):
        path = database.removeprefix("sqlite://")
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            rows = [(str(topic), str(text)) for topic, text in db.execute(query)]
    else:
        connection = await asyncpg.connect(database)
        try:
            rows = [(str(r["topic"]), str(r["text"])) for r in await connection.fetch(query)]
        finally:
            await connection.close()
    texts: dict[str, list[str]] = {side: [] for side in SIDES}
    for topic, text in rows:
        texts.setdefault(topic, []).append(text)
    return texts


async def history(phone: Phone, peer: str) -> list[JsonObject]:
    """Every message of the chat with ``peer`` through ``ReadChat``, oldest first."""
    await session(phone)
    messages: list[JsonObject] = []
    older: int | None = None
    while True:
        fields: JsonObject = {"count": 200}
        if older is not None:
            fields["older"] = older
        *inds, result = await ask(phone, "ReadChat", sip=peer, **fields)
        assert result["mt"] == "ReadChatResult", result
        page = [ind["msg"] for ind in inds]
        messages += page
        if not result.get("more") or not page:
            return messages[::-1]
        older = int(page[-1]["id"])


async def drained(servers: SplitServers) -> None:
    """Until the hub's link is up and its outbox is empty: the service has every Post."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DRAIN_TIMEOUT
    async with httpx.AsyncClient(base_url=servers.hub_http, timeout=5) as http:
        while True:
            health = (await http.get("/healthz")).json()
            depth = _gauge((await http.get("/metrics")).text, "switchboard_outbox_depth")
            if health["checks"].get("messages_link") == "up" and depth == 0:
                return
            assert loop.time() < deadline, f"outbox not drained: depth {depth}, {health}"
            await asyncio.sleep(0.05)


def _gauge(metrics: str, name: str) -> float:
    for line in metrics.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} missing from /metrics")


# -- the run and its outcome ----------------------------------------------------------------


@dataclass(frozen=True)
class SideTally:
    rows: int
    missing: int
    twice: int
    """Rows beyond the first of a text (a message stored twice counts once)."""
    unexpected: int
    in_order: bool
    """The first copies of the texts are in the order sent."""


@dataclass(frozen=True)
class Outcome:
    fault: str
    seed: int
    count: int
    kill_at: int
    """Ids sent when the process was killed."""
    acked_at_fault: int
    """Ids alice held an ack for when she lost the hub, or when the service was killed."""
    resent: int
    connections: int
    kills: int
    rows: dict[str, list[str]]
    """Texts per side, from the database, in row order."""
    histories: dict[str, list[JsonObject]]
    """``ReadChat`` messages per side, oldest first."""
    acks: dict[str, list[Ack]]
    probe: tuple[str, ...]
    probe_rows: dict[str, int] = field(default_factory=dict)
    """Rows the probe added per side (the contract says none)."""
    replicas_used: int = 1
    """Replicas of the service the hub's link went to (``replica``: both)."""

    @property
    def expected(self) -> list[str]:
        return [f"message {n}" for n in range(self.count)]

    def tally(self, side: str) -> SideTally:
        texts = self.rows.get(side, [])
        expected = self.expected
        known = set(expected)
        counts = Counter(texts)
        first = list(dict.fromkeys(text for text in texts if text in known))
        return SideTally(
            rows=len(texts),
            missing=len(known - counts.keys()),
            twice=sum(n - 1 for text, n in counts.items() if text in known),
            unexpected=sum(n for text, n in counts.items() if text not in known),
            in_order=first == [text for text in expected if text in counts],
        )

    def bad_acks(self) -> dict[str, str]:
        """Ids whose acks break the contract, with why."""
        original: dict[str, tuple[int, int]] = {}
        for message in self.histories.get("alice", []):
            original.setdefault(message["text"], (message["seq"], message["timestamp"] // 1000))
        bad: dict[str, str] = {}
        for number in range(self.count):
            message_id = f"m{number}"
            acks = self.acks.get(message_id, [])
            answers = {(ack.seq, ack.time) for ack in acks}
            row = original.get(text_of(message_id))
            if not acks:
                bad[message_id] = "never acknowledged"
            elif any(ack.state != "stored" for ack in acks):
                bad[message_id] = f"states {[ack.state for ack in acks]}"
            elif len(answers) > 1:
                bad[message_id] = f"acks disagree: (seq, time) {sorted(answers)}"
            elif row is not None and answers != {row}:
                bad[message_id] = f"ack (seq, time) {answers.pop()}, first row {row}"
        return bad

    def defects(self) -> list[str]:
        found: list[str] = []
        if self.kills != 1:
            found.append(f"the {self.fault} was killed {self.kills} times, not once")
        if self.fault == "hub" and self.connections != 2:
            found.append(f"alice connected {self.connections} times, not twice")
        if self.fault == "replica" and self.replicas_used != 2:
            found.append(f"the hub's link went to {self.replicas_used} replica(s), not both")
        for side in SIDES:
            tally = self.tally(side)
            texts = [message["text"] for message in self.histories.get(side, [])]
            if tally.rows != self.count:
                found.append(f"{side}: {tally.rows} rows, not {self.count}")
            if tally.missing:
                found.append(f"{side}: {tally.missing} messages missing")
            if tally.twice:
                found.append(f"{side}: {tally.twice} rows of messages stored twice")
            if tally.unexpected:
                found.append(f"{side}: {tally.unexpected} rows of unknown texts")
            if not tally.in_order:
                found.append(f"{side}: not in the order sent")
            if texts != self.rows.get(side, []):
                found.append(f"{side}: ReadChat shows other rows than the database holds")
            if self.probe_rows.get(side):
                found.append(
                    f"{side}: resending {list(self.probe)} stored {self.probe_rows[side]} more"
                )
        bad = self.bad_acks()
        if bad:
            examples = "; ".join(f"{i}: {why}" for i, why in list(bad.items())[:5])
            found.append(f"{len(bad)} ids acknowledged against the contract, e.g. {examples}")
        return found

    def report(self) -> str:
        lines = [
            f"fault {self.fault}, seed {self.seed}: killed after {self.kill_at} sent, "
            f"{self.acked_at_fault} acknowledged then, {self.resent} resent",
            *self.defects(),
        ]
        return "\n".join(lines)


async def run_fault(
    fault: str,
    database: str,
    directory: Path,
    seed: int,
    *,
    count: int = MESSAGES,
    window: int = WINDOW,
) -> Outcome:
    """One run of ``fault`` (``hub``, ``service`` or ``replica``) on ``database``; see
    the module."""
    assert fault in (*FAULTS, "replica"), fault
    kill_at = random.Random(seed).randint(count // 20, count - count // 20)
    servers = SplitServers(directory, database, replicas=2 if fault == "replica" else 1)
    victim = servers.hub if fault == "hub" else servers.service
    restarts: list[asyncio.Task[None]] = []
    acked_at_kill: set[str] = set()

    def after_send(sent: int) -> None:
        if sent == kill_at and not victim.kills:
            victim.kill()
            acked_at_kill.update(writer.acks)
            if fault != "replica":  # a replica's hubs go to the others instead
                restarts.append(asyncio.get_running_loop().create_task(victim.start()))

    writer = Writer(
        servers.hub_url, servers.alice, count=count, window=window, after_send=after_send
    )
    with stopping(servers):
        try:
            await servers.start()
            await drained(servers)  # the link is up before the first message
            phone, call = await writer.write_all()
            await asyncio.gather(*restarts)
            await drained(servers)
            rows = await stored_texts(database)
            histories = {"alice": await history(phone, "bob"), "bob": await _bobs_history(servers)}
            # What alice knew when the fault reached her: the drop of her connection, or
            # (the service) the kill itself.
            acked = writer.acked_at_drop if fault == "hub" else acked_at_kill
            acked = acked or set()
            probe = tuple(dict.fromkeys(["m0", *[i for i in writer.ids if i in acked][-1:]]))
            await writer.probe(phone, call, list(probe))
            await drained(servers)
            after = await stored_texts(database)
            await phone.client.close()
        except BaseException as exc:
            for task in restarts:
                task.cancel()
            exc.add_note(f"fault {fault}, seed {seed}, kill after {kill_at} sent")
            exc.add_note(servers.logs())
            raise
    return Outcome(
        fault=fault,
        seed=seed,
        count=count,
        kill_at=kill_at,
        acked_at_fault=len(acked),
        resent=len(writer.resent),
        connections=writer.connections,
        kills=victim.kills,
        rows=rows,
        histories=histories,
        acks=writer.acks,
        probe=probe,
        probe_rows={side: len(after.get(side, [])) - len(rows.get(side, [])) for side in SIDES},
        replicas_used=len(set(servers.balancer.routed)) if servers.balancer else 1,
    )


async def _bobs_history(servers: SplitServers) -> list[JsonObject]:
    """bob's side through the protocol; he logs in to read, never registers."""
    client = await AppWebsocketClient.connect(servers.hub_url, max_size=None)
    try:
        await client.login(password=servers.bob.password, sip="bob", domain=DOMAIN)
        return await history(Phone(client, "bob"), "alice")
    finally:
        await client.close()
