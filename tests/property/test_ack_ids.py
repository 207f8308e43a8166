"""A call's memory of client message ids (PROTOCOL §4.6, docs/protocol.md 12.21) and its
transcript (§4.9) answer exactly as the simple forms they replaced did.

``Call.remember`` keeps the ids in a plain dict and their order in a deque of keys; the
reference here is the ``OrderedDict`` it was before (set the record, and past ``max_ids``
drop the first key). ``Call.record`` drops the oldest line of a full transcript before
its loop; the reference is the loop alone. Any sequence of ids (new ones, repeated ones,
from either side and from several members of a side) leaves both with the same answers,
the same records and the same order, which is the order of every walk over
``Call.acks`` (a resume's replay, parked reports, ``stored`` acks, corrections).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from types import SimpleNamespace
from typing import cast

from hypothesis import given, settings
from hypothesis import strategies as st

from config import UserConfig
from signaling.core.calls import AckRecord, Call, Leg, Line
from signaling.core.callstate import Role
from signaling.core.delivery_state import Delivery

Key = tuple[Role, str, str]

WRITERS = [(role, sip) for role in (Role.CALLER, Role.CALLEE) for sip in ("alice", "bob")]
"""Both sides, each with two members (a group's side has several writers)."""


def _leg(role: Role, sip: str) -> Leg:
    """What ``remember`` and ``acked`` read of a leg: its role and its user's sip."""
    return cast(Leg, SimpleNamespace(role=role, reg=SimpleNamespace(user=SimpleNamespace(sip=sip))))


def _call(max_ids: int) -> Call:
    user = cast(UserConfig, SimpleNamespace(sip="alice"))
    return Call("c", "example.com", max_ids, user, user)


def _remembered_as_before(
    acks: OrderedDict[Key, AckRecord], max_ids: int, key: Key, record: AckRecord
) -> None:
    acks[key] = record
    if len(acks) > max_ids:
        acks.popitem(last=False)


writes = st.lists(
    st.tuples(st.sampled_from(WRITERS), st.sampled_from([f"m{n}" for n in range(12)])),
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(max_ids=st.integers(min_value=0, max_value=8), writes=writes)
def test_the_ids_a_call_remembers_are_the_ordered_dicts(
    max_ids: int, writes: list[tuple[tuple[Role, str], str]]
) -> None:
    call, before = _call(max_ids), OrderedDict[Key, AckRecord]()
    for seq, ((role, sip), message_id) in enumerate(writes, start=1):
        leg = _leg(role, sip)
        assert call.acked(leg, message_id) is before.get((role, sip, message_id))
        record = AckRecord(seq, seq, Delivery.DELIVERED)
        call.remember(leg, message_id, record)
        _remembered_as_before(before, max_ids, (role, sip, message_id), record)
        assert list(call.acks.items()) == list(before.items())
        assert list(call.ack_order) == list(call.acks)
    for (role, sip), message_id in writes:  # every id ever written: known or forgotten alike
        leg = _leg(role, sip)
        assert call.acked(leg, message_id) is before.get((role, sip, message_id))


def _recorded_as_before(
    transcript: deque[Line], kept: int, line: Line, max_lines: int, max_bytes: int
) -> int:
    transcript.append(line)
    kept += line.size
    while transcript and (len(transcript) > max_lines or kept > max_bytes):
        kept -= transcript.popleft().size
    return kept


@settings(max_examples=300, deadline=None)
@given(
    max_lines=st.integers(min_value=0, max_value=6),
    max_bytes=st.integers(min_value=0, max_value=60),
    sizes=st.lists(st.integers(min_value=0, max_value=30), max_size=40),
)
def test_a_transcript_keeps_the_lines_it_kept_before(
    max_lines: int, max_bytes: int, sizes: list[int]
) -> None:
    call, before, kept = _call(8), deque[Line](), 0
    user = cast(UserConfig, SimpleNamespace(sip="alice"))
    for seq, size in enumerate(sizes, start=1):
        line = Line(seq, seq, Role.CALLER, user, "x", None, None, None, size)
        call.record(line, max_lines, max_bytes)
        kept = _recorded_as_before(before, kept, line, max_lines, max_bytes)
        assert list(call.transcript) == list(before)
        assert call.transcript_bytes == kept
