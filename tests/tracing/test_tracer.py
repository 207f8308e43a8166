"""The tracer: flags, filter, the ring of numbered records, the text and the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracing import SUBSYSTEMS, TraceFilter, Tracer
from tracing.redact import MAX_TEXT, redact
from tracing.tracer import RAW_MAX


def test_flags_start_from_config_and_switch_at_once() -> None:
    tracer = Tracer(flags=["app", "pbx"])
    assert tracer.flags() == {name: name in ("app", "pbx") for name in SUBSYSTEMS}
    tracer.set_flags({"pbx": False, "database": True})
    assert (tracer.pbx, tracer.database) == (False, True)
    with pytest.raises(ValueError, match="nope"):
        tracer.set_flags({"nope": True, "http": True})
    assert tracer.http is False  # nothing changed


def test_records_are_numbered_kept_to_the_buffer_and_read_incrementally() -> None:
    tracer = Tracer(buffer=3, clock=lambda: 1_800_000_000.25)
    for index in range(5):
        tracer.record("app", f"event {index}", conn=index, user="alice", domain="example.com")
    assert [r.seq for r in tracer.since(0)] == [3, 4, 5]  # the oldest two fell out
    assert [r.text for r in tracer.since(4)] == ["event 4"]
    assert tracer.records_json(5) == {"records": [], "last": 5, "first": 3, "boot": tracer.boot}
    assert tracer.records_json(1)["first"] == 3  # record 2, next after 1, was overwritten
    assert Tracer().boot != tracer.boot  # a restart shows
    first_line = tracer.text().splitlines()[0]
    assert first_line == "2027-01-15T08:00:00.250Z 3 app conn=2 alice@example.com event 2"


def test_the_filter_keeps_one_user_or_one_tenant() -> None:
    tracer = Tracer()
    tracer.filter = TraceFilter(domain="example.com")
    tracer.record("pbx", "kept", user="alice", domain="example.com")
    tracer.record("pbx", "other tenant", user="alice", domain="other.org")
    tracer.filter = TraceFilter(user="bob")
    tracer.record("pbx", "alice's", user="alice", domain="example.com")
    tracer.record("pbx", "bob's", user="bob", domain="example.com")
    assert [r.text for r in tracer.since(0)] == ["kept", "bob's"]


def test_records_go_to_a_rotating_file_too(tmp_path: Path) -> None:
    path = tmp_path / "trace" / "switchboard.trace"
    tracer = Tracer(file=path, file_max=300, file_count=2)
    for index in range(20):
        tracer.record("app", f"line {index} " + "x" * 40)
    files = sorted(p.name for p in path.parent.iterdir())
    assert files == ["switchboard.trace", "switchboard.trace.1", "switchboard.trace.2"]
    assert "line 19" in path.read_text()


def test_every_reader_sees_a_record_redacted_however_it_was_kept(tmp_path: Path) -> None:
    """Short texts are kept as they came and redacted when read; long ones are redacted
    and cut at once, so the ring holds at most ``RAW_MAX`` characters a record."""
    secret = '{"mt":"Login","password":"hunter2"}'
    long_secret = '{"mt":"Login","password":"hunter2","pad":"' + "x" * RAW_MAX + '"}'
    tracer = Tracer()
    tracer.record("appwebsocket", secret)
    tracer.record("appwebsocket", long_secret)
    read = [
        *(record.text for record in tracer.since(0)),
        tracer.text(),
        str(tracer.records_json(0)),
    ]
    assert all("hunter2" not in text and "***" in text for text in read)
    assert all(len(kept.text) <= RAW_MAX for kept in tracer._records)
    assert tracer.since(1)[0].text == redact(long_secret)  # cut once, not again when read
    assert len(redact(long_secret)) < MAX_TEXT + 10

    with_file = Tracer(file=tmp_path / "trace.log")
    with_file.record("appwebsocket", secret)
    written = (tmp_path / "trace.log").read_text()
    assert "hunter2" not in written and '"password":"***"' in written
    assert with_file.since(0)[0].text == '{"mt":"Login","password":"***"}'
