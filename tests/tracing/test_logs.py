"""Log lines name their connection, as text or as JSON lines (STYLE 7)."""

from __future__ import annotations

import asyncio
import json
import logging

from tracing.logs import JsonFormatter, install_record_factory, name_connection


async def test_each_task_stamps_its_own_connection_on_its_records(
    caplog: logging.LogCaptureFixture,
) -> None:
    install_record_factory()
    log = logging.getLogger("switchboard.test")
    caplog.set_level(logging.INFO)

    async def serve(conn: int) -> None:
        name_connection(conn)
        await asyncio.sleep(0)
        log.info("handling a frame")

    await asyncio.gather(serve(7), serve(8))
    log.info("outside")
    assert sorted(getattr(r, "conn", None) for r in caplog.records) == ["-", "7", "8"]


def test_records_outside_an_event_loop_name_no_connection(
    caplog: logging.LogCaptureFixture,
) -> None:
    install_record_factory()
    caplog.set_level(logging.INFO)
    logging.getLogger("switchboard.test").info("no loop here")
    assert [getattr(r, "conn", None) for r in caplog.records] == ["-"]


def test_json_lines_carry_time_level_logger_conn_and_message() -> None:
    install_record_factory()
    record = logging.getLogger("switchboard.x").makeRecord(
        "switchboard.x", logging.WARNING, __file__, 1, "closing %d", (4008,), None
    )
    record.conn = "12"
    line = json.loads(JsonFormatter().format(record))
    assert {key: line[key] for key in ("level", "logger", "conn", "message")} == {
        "level": "WARNING",
        "logger": "switchboard.x",
        "conn": "12",
        "message": "closing 4008",
    }
    assert line["time"].endswith("Z")
