"""Nothing acknowledged ``stored`` is lost when the messages service is killed (PROTOCOL
§7.7): the service runs in its own process (``serve --role messages``), is killed with
SIGKILL in the middle of 500 messages and started again; afterwards every message is in
its database exactly once per side."""

from __future__ import annotations

import contextlib
import sqlite3
from collections import Counter
from dataclasses import replace
from pathlib import Path

import asyncpg

from tests.integration.processes import ServerProcess, free_port, stopping
from tests.integration.test_messages import call_offline, drained
from tests.support import make_config, running_server

SECRET = "link-secret-for-tests"
MESSAGES = 500


async def stored_rows(database_url: str, call_id: str) -> list[tuple[str, int]]:
    """(topic, seq) of every row of the call, read straight from the database."""
    query = "SELECT topic, seq FROM messages WHERE call_id = {} ORDER BY id"
    if database_url.startswith("sqlite://"):
        path = database_url.removeprefix("sqlite://")
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            return [(str(t), int(s)) for t, s in db.execute(query.format("?"), (call_id,))]
    connection = await asyncpg.connect(database_url)
    try:
        records = await connection.fetch(query.format("$1"), call_id)
    finally:
        await connection.close()
    return [(str(record["topic"]), int(record["seq"])) for record in records]


async def test_kill_9_of_the_service_loses_no_message_acknowledged_stored(
    tmp_path: Path, database_url: str
) -> None:
    config_file = tmp_path / "service.toml"
    config_file.write_text(f'[messages]\npassword = "{SECRET}"\ndatabase = "{database_url}"\n')
    port = free_port()
    base = make_config(rate=100_000.0, burst=100_000)
    hub_config = replace(
        base,
        messages=replace(
            base.messages,
            url=f"ws://127.0.0.1:{port}/messages/websocket",
            password=SECRET,
            reconnect_min=0.05,
            reconnect_max=0.2,
        ),
    )
    service = ServerProcess(
        "messages", config_file, tmp_path / "service", port, tmp_path / "service.log"
    )
    with stopping(service):
        await service.start()
        async with running_server(hub_config, data_dir=tmp_path / "hub") as server:
            await server.service_ready()
            alice = await server.phone("alice")
            call_id = await call_offline(alice, "bob")
            acked: dict[str, int] = {}
            for n in range(MESSAGES):
                await alice.say(1, f"message {n}", id=f"m{n}")
                if n == MESSAGES // 3:
                    service.kill()
                if n == 2 * MESSAGES // 3:
                    await service.start()
            while len(acked) < MESSAGES:
                ack = await alice.fty(1)
                assert ack["type"] == "im_ack" and ack["state"] == "stored", ack
                acked[ack["id"]] = ack["seq"]
            await drained(server)
            assert server.hub.link is not None and server.hub.link.connects >= 2
    rows = await stored_rows(database_url, call_id)
    per_side = Counter(topic for topic, _ in rows)
    assert per_side == {"alice": MESSAGES, "bob": MESSAGES}, per_side
    assert sorted({seq for _, seq in rows}) == sorted(acked.values())
    for side in ("alice", "bob"):  # stored in the order sent (§7.7), resends included
        seqs = [seq for topic, seq in rows if topic == side]
        assert seqs == sorted(seqs), side
