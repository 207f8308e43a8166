"""Parsing the hub's requests (PROTOCOL §12.10): values, defaults, and bad_json."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from messages_service.errors import BadJson, Forbidden, NotFound
from messages_service.requests import (
    Caller,
    ReadChat,
    WriteMember,
    parse_post,
    parse_read_chat,
    parse_search,
    parse_write_group,
    parse_write_member,
    read_caller,
)
from messages_service.requests import _checked_post as checked_post
from messages_service.requests import _usual_post as usual_post

CALLER = {"domain": "example.com", "user": "bob", "session": "s1"}


def test_the_caller_is_what_the_hub_stamped() -> None:
    assert read_caller(CALLER) == Caller("example.com", "bob")
    assert read_caller({**CALLER, "topic": "bob"}) == Caller("example.com", "bob")
    with pytest.raises(Forbidden):
        read_caller({**CALLER, "topic": "alice"})
    with pytest.raises(BadJson, match="topic"):
        read_caller({**CALLER, "topic": ["bob"]})
    with pytest.raises(BadJson, match="user"):
        read_caller({"domain": "example.com"})


def test_read_chat_defaults_and_caps() -> None:
    assert parse_read_chat({"sip": "alice"}) == ReadChat("alice", None, 50, False)
    assert parse_read_chat({"sip": "alice", "count": 10_000}).count == 200
    assert parse_read_chat({"sip": "alice", "older": 7, "noind": True}) == ReadChat(
        "alice", 7, 50, True
    )
    assert parse_search({"text": ""}).text == ""


@pytest.mark.parametrize(
    "body",
    [
        {"sip": ""},
        {"sip": "alice", "count": -1},
        {"sip": "alice", "count": 1.5},
        {"sip": "alice", "older": "7"},
        {"sip": "alice", "older": 2**53},
        {"sip": "alice", "noind": 1},
        {"sip": "a\x00b"},
    ],
)
def test_read_chat_refuses_bad_fields(body: dict[str, Any]) -> None:
    with pytest.raises(BadJson):
        parse_read_chat(body)


def test_groups_by_id_or_sip() -> None:
    assert parse_write_member({"grp": 3, "member": "bob"}) == WriteMember(3, "bob", False, False)
    assert parse_write_member({"grp": "group-3", "member": "bob", "remove": True}).grp == 3
    with pytest.raises(NotFound):
        parse_write_member({"grp": "team", "member": "bob"})
    assert parse_write_group({"dn": "  Team  "}).dn == "Team"
    with pytest.raises(BadJson):
        parse_write_group({"dn": "   "})
    with pytest.raises(BadJson):
        parse_write_group({"dn": "x" * 201})


POST: dict[str, Any] = {
    "mt": "Post",
    "type": 1,
    "domain": "example.com",
    "author": "alice",
    "dn": "Alice",
    "topic": "alice",
    "peer": "bob",
    "peer_dn": "Bob",
    "grp": False,
    "sides": ["alice", "bob", "alice"],
    "text": "<p>hi</p>",
    "callId": "c1",
    "seq": 4,
    "id": "client-1",
    "time": 1234,
}


def test_a_post_parses_as_the_hub_writes_it() -> None:
    post = parse_post(POST, now_ms=99)
    assert (post.author, post.topic, post.peer, post.peer_dn) == ("alice", "alice", "bob", "Bob")
    assert post.sides == ("alice", "bob") and post.grp is False
    assert (post.call_id, post.seq, post.client_id, post.time_ms) == ("c1", 4, "client-1", 1234)
    assert post.attach is None
    bare = parse_post({k: v for k, v in POST.items() if k not in ("time", "id", "dn")}, 99)
    assert (bare.time_ms, bare.client_id, bare.author_dn) == (99, None, "")


def test_the_posts_the_hub_writes_are_read_in_line() -> None:
    group = {k: v for k, v in POST.items() if k not in ("peer", "peer_dn", "sides")}
    for body in (POST, {**POST, "attach": "https://h.test/f", "writer": "agent"}, group):
        body = {**body, "grp": True, "topic": "group-3"} if body is group else body
        assert usual_post(body, 99) == checked_post(body, 99) is not None


def test_a_group_post_needs_no_peer_or_sides() -> None:
    group = {k: v for k, v in POST.items() if k not in ("peer", "peer_dn", "sides")}
    post = parse_post({**group, "grp": True, "topic": "group-3"}, 0)
    assert (post.grp, post.topic, post.peer, post.sides) == (True, "group-3", "", ())


ABSENT = object()
post_values = st.sampled_from(
    [
        *(ABSENT, None, False, True, 0, -1, 4, 2**53, 1.0, [], {}, "", "alice", "bob"),
        *("ü 日本", "a\x00", "\ud800", ["alice", "bob"], ["bob", "bob"], ["carol"], [["alice"]]),
    ]
)
POST_FIELDS = (
    *("grp", "author", "topic", "peer", "peer_dn", "sides", "domain", "dn"),
    *("text", "attach", "callId", "seq", "id", "time", "writer"),
)
post_changes = st.dictionaries(st.sampled_from(POST_FIELDS), post_values, max_size=3)


def _post_outcome(parse: Callable[[dict[str, Any], int], object], body: dict[str, Any]) -> object:
    try:
        return parse(body, 99)
    except BadJson as exc:
        return f"BadJson: {exc}"


@settings(max_examples=1000)
@given(st.sampled_from([POST, {**POST, "grp": True, "topic": "group-3"}]), post_changes)
def test_a_post_reads_as_field_by_field(base: dict[str, Any], changes: dict[str, Any]) -> None:
    """The in-line reading of a Post is the field-by-field one's: the same Post, or the
    same refusal naming the same field first, whatever fields are changed or left out."""
    body = {key: value for key, value in {**base, **changes}.items() if value is not ABSENT}
    assert _post_outcome(parse_post, body) == _post_outcome(checked_post, body)
