"""The Signal message types beyond a chat's setup, answer, facility and rel, and content
of other mimes (PROTOCOL §4.6, §4.7, §5; docs/protocol.md 12.25), sans I/O."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from signaling.core.callstate import CLIENT, CLIENT_EVENTS, Event, LegState, Role
from tests.signaling.core.harness import Harness, fty_of, sig_of
from tests.signaling.core.test_licensed import TEAM, join, up
from tests.support import make_config

JsonObject = dict[str, Any]

SIGNAL_TYPES = [
    "setup",
    "setup_ack",
    "accept",
    "info",
    "progress",
    "call_proc",
    "alert",
    "conn",
    "disc",
    "rel",
    "channels",
    "facility",
    "user_info",
    "media_info",
]
"""Every message type of innovaphone's Signal page (``setup_ack`` is referenced there)."""


def _caller_proceeding(h: Harness) -> tuple[int, int]:
    alice, bob = h.phone("alice"), h.phone("bob")
    h.setup(alice, 1, "bob")
    h.take(alice), h.take(bob)
    return alice, 1


def _caller_alerting(h: Harness) -> tuple[int, int]:
    alice, bob = h.phone("alice"), h.phone("bob")
    h.setup(alice, 1, "bob")
    h.take(alice)
    number, _ = h.offered(bob)
    h.signal(bob, number, {"type": "alert"})
    h.take(alice)
    return alice, 1


def _caller_connected(h: Harness) -> tuple[int, int]:
    alice, bob = h.phone("alice"), h.phone("bob")
    h.call(alice, bob)
    return alice, 1


def _callee_offered(h: Harness) -> tuple[int, int]:
    alice, bob = h.phone("alice"), h.phone("bob")
    h.setup(alice, 1, "bob")
    h.take(alice)
    number, _ = h.offered(bob)
    return bob, number


def _callee_alerting(h: Harness) -> tuple[int, int]:
    bob, number = _callee_offered(h)
    h.signal(bob, number, {"type": "alert"})
    h.take(bob)
    return bob, number


def _callee_connected(h: Harness) -> tuple[int, int]:
    alice, bob = h.phone("alice"), h.phone("bob")
    return bob, h.call(alice, bob)


SCENES: dict[tuple[Role, LegState], Callable[[Harness], tuple[int, int]]] = {
    (Role.CALLER, LegState.PROCEEDING): _caller_proceeding,
    (Role.CALLER, LegState.ALERTING): _caller_alerting,
    (Role.CALLER, LegState.CONNECTED): _caller_connected,
    (Role.CALLEE, LegState.OFFERED): _callee_offered,
    (Role.CALLEE, LegState.ALERTING): _callee_alerting,
    (Role.CALLEE, LegState.CONNECTED): _callee_connected,
}
"""Every state a leg of a one-to-one chat can be seen in (``setup_sent`` lasts no longer
than the hub takes to answer ``call_proc``)."""


@pytest.mark.parametrize("kind", SIGNAL_TYPES)
@pytest.mark.parametrize(("role", "state"), list(SCENES))
def test_every_signal_type_in_every_state_follows_the_table(
    kind: str, role: Role, state: LegState
) -> None:
    h = Harness()
    conn, number = SCENES[role, state](h)
    h.signal(conn, number, {"type": kind})
    errors = [frame for frame in h.take(conn) if frame.get("mt") == "Error"]
    event = CLIENT_EVENTS.get(kind)
    allowed = event is not None and event is not Event.SETUP and (role, state, event) in CLIENT
    if allowed:
        assert errors == [], errors
    else:
        (error,) = errors
        assert (error["code"], error["call"]) == ("bad_state", number), error
        assert kind in error["text"] and state.value in error["text"], error
    h.finish()


@pytest.mark.parametrize("kind", SIGNAL_TYPES)
def test_every_signal_type_on_an_unknown_call(kind: str) -> None:
    """Idle: ``setup`` starts a call, a late ``rel`` or ``disc`` is ignored, the rest is
    ``bad_state``."""
    h = Harness()
    alice = h.phone("alice")
    h.signal(alice, 7, {"type": kind})
    frames = h.take(alice)
    if kind == "setup":  # without im_setup: not a chat, refused with 111
        assert sig_of(frames[0], 7, "rel")["cau"]["num"] == 111
    elif kind in ("rel", "disc"):
        assert frames == []
    else:
        (error,) = frames
        assert (error["code"], error["call"]) == ("bad_state", 7)
        assert "idle" in error["text"]
    h.finish()


def test_info_user_info_and_channels_pass_between_connected_legs() -> None:
    h = Harness()
    alice, bob = h.phone("alice"), h.phone("bob")
    number = h.call(alice, bob)
    info = {"type": "info", "dsp": "0,12 EUR", "complete": True, "cg": {"sip": "mallory"}}
    h.signal(alice, 1, {**info, "cd": {"sip": "x"}, "unknown": 1})
    # the documented fields; identities are the hub's (cg/cd are never passed on)
    assert sig_of(h.one(bob), number) == {"type": "info", "dsp": "0,12 EUR", "complete": True}
    h.signal(bob, number, {"type": "user_info", "uui": "ticket 42"})
    assert sig_of(h.one(alice), 1) == {"type": "user_info", "uui": "ticket 42"}
    channels = {"source": "REMOTE", "ch": [{"coder": "JRFB", "addr": "192.0.2.1", "port": 2}]}
    sent = {"type": "channels", "channel": -1, "channels_cmd": "PROPOSAL", "channels": channels}
    h.signal(alice, 1, sent)
    assert sig_of(h.one(bob), number) == sent
    h.quiet(alice, bob)
    assert h.stores == []  # signalling is never a message: nothing stored
    h.finish()


@pytest.mark.parametrize(
    "sig",
    [
        {"type": "user_info", "uui": "é" * 65},  # 130 bytes: above the documented 128
        {"type": "user_info", "uui": 5},
        {"type": "info", "dsp": "d" * 129},
        {"type": "info", "complete": "yes"},
        {"type": "channels", "channels_cmd": "OFFER"},
        {"type": "channels", "channels": []},
        {"type": "progress", "pi": ["8x"]},
    ],
)
def test_bad_fields_are_bad_json_and_nothing_is_relayed(sig: JsonObject) -> None:
    h = Harness()
    alice, bob = h.phone("alice"), h.phone("bob")
    h.call(alice, bob)
    h.signal(alice, 1, sig)
    assert h.one(alice)["code"] == "bad_json"
    h.quiet(bob)
    h.finish()


def test_progress_of_a_ringing_device_reaches_the_caller() -> None:
    h = Harness()
    alice, bob = h.phone("alice"), h.phone("bob")
    h.setup(alice, 1, "bob")
    h.take(alice)
    number, _ = h.offered(bob)
    h.signal(bob, number, {"type": "progress", "inband_info": True, "pi": ["8188"]})
    assert sig_of(h.one(alice), 1) == {"type": "progress", "inband_info": True, "pi": ["8188"]}
    h.signal(bob, number, {"type": "conn"})
    h.take(alice)
    h.signal(bob, number, {"type": "progress"})  # connected: progress is over
    assert h.one(bob)["code"] == "bad_state"
    h.finish()


def test_progress_with_a_cause_is_that_device_disconnecting() -> None:
    h = Harness()
    alice, desk, mobile = h.phone("alice"), h.phone("bob"), h.phone("bob")
    h.setup(alice, 1, "bob")
    h.take(alice)
    desk_call, _ = h.offered(desk)
    mobile_call, _ = h.offered(mobile)
    h.signal(desk, desk_call, {"type": "progress", "cau": {"loc": 0, "num": 17}})
    progress, rel = h.take(alice)
    assert sig_of(progress, 1) == {"type": "progress", "cau": {"loc": 0, "num": 17}}
    assert sig_of(rel, 1, "rel")["cau"] == {"loc": 0, "num": 17}
    assert sig_of(h.one(desk), desk_call, "rel")["cau"] == {"loc": 0, "num": 17}
    assert sig_of(h.one(mobile), mobile_call, "rel")["cau"]["num"] == 26
    assert h.switch.chat.calls == {}
    h.finish()


def test_progress_with_a_cause_obeys_the_table_like_any_progress() -> None:
    """Only a ringing callee device may send progress, with a cause or without."""
    h = Harness()
    alice, bob = h.phone("alice"), h.phone("bob")
    h.setup(alice, 1, "bob")
    h.take(alice)
    h.signal(alice, 1, {"type": "progress", "cau": {"loc": 0, "num": 17}})  # the caller
    assert h.one(alice)["code"] == "bad_state"
    number, _ = h.offered(bob)
    h.signal(bob, number, {"type": "conn"})
    h.take(alice)
    h.signal(bob, number, {"type": "progress", "cau": {"loc": 0, "num": 17}})  # after conn
    assert h.one(bob)["code"] == "bad_state"
    assert len(h.switch.chat.calls) == 1  # nothing ended
    h.quiet(alice)
    h.finish()


def test_disc_on_a_connected_call_is_relayed_as_disc_then_rel() -> None:
    h = Harness()
    alice, bob = h.phone("alice"), h.phone("bob")
    number = h.call(alice, bob)
    disc = {"type": "disc", "cau": {"loc": 0, "num": 16}, "dsp": "bye", "uui": "u"}
    h.signal(bob, number, {**disc, "fty": [{"type": "x_vendor"}, {"type": "im_ack"}]})
    got_disc, got_rel = h.take(alice)
    # the facilities a peer may see travel along; the hub's own (im_ack) never
    assert sig_of(got_disc, 1) == {**disc, "fty": [{"type": "x_vendor"}]}
    assert sig_of(got_rel, 1) == {"type": "rel", "cau": {"loc": 0, "num": 16}}
    assert sig_of(h.one(bob), number) == {"type": "rel", "cau": {"loc": 0, "num": 16}}
    assert h.switch.chat.calls == {}
    assert h.signal(bob, number, {"type": "disc"}) == []  # the call is gone: ignored
    h.finish()


def test_disc_of_a_group_member_ends_only_its_own_leg() -> None:
    h = up(Harness(), TEAM)
    alice, bob = h.phone("alice"), h.phone("bob")
    join(h, alice, 1)
    join(h, bob, 1)
    h.signal(alice, 1, {"type": "user_info", "uui": "to the group"})
    assert sig_of(h.one(bob), 1) == {"type": "user_info", "uui": "to the group"}
    h.signal(bob, 1, {"type": "disc"})
    assert sig_of(h.one(bob), 1, "rel")["cau"]["num"] == 16
    h.quiet(alice)
    h.finish()


def test_disc_on_a_presence_subscription_is_answered_rel() -> None:
    h = Harness()
    alice = h.phone("alice")
    h.phone("bob")
    h.signal(
        alice,
        3,
        {
            "type": "setup",
            "channel": 0,
            "cd": {"sip": "bob"},
            "fty": [{"type": "presence_subscribe"}],
        },
    )
    h.take(alice)
    h.signal(alice, 3, {"type": "info", "dsp": "x"})
    assert h.one(alice)["code"] == "bad_state"
    h.signal(alice, 3, {"type": "disc"})
    assert sig_of(h.one(alice), 3, "rel")["cau"]["num"] == 16
    h.finish()


# -- other mimes (§4.6 revised) ----------------------------------------------------------------


def _app_phone(h: Harness, sip: str) -> int:
    conn = h.login(sip)
    flags = "NO_MEDIA_CALL|APP_DATA"
    h.send(conn, {"api": "PbxSignal", "mt": "Register", "src": "reg", "flags": flags})
    assert h.one(conn)["mt"] == "RegisterResult"
    return conn


def test_other_mimes_reach_only_devices_that_take_application_data_and_are_never_stored() -> None:
    h = Harness()
    alice, bob = h.phone("alice"), _app_phone(h, "bob")
    number = h.call(alice, bob)
    data = '{"card": "<img src=x onerror=alert(1)>"}'
    h.say(alice, 1, data, mime="application/vnd.example+json", id="a1")
    item = fty_of(h.one(bob), number)
    assert (item["mime"], item["data"], item["sender"]) == (
        "application/vnd.example+json",
        data,  # unchanged: the receiver promised never to render it
        "alice",
    )
    ack = fty_of(h.one(alice), 1)
    assert (ack["type"], ack["id"], ack["state"], ack["seq"]) == ("im_ack", "a1", "delivered", 1)
    h.say(alice, 1, data, mime="application/vnd.example+json", id="a1")  # a retry
    assert fty_of(h.one(alice), 1)["seq"] == 1
    h.quiet(bob)
    assert h.stores == []  # alice and bob are licensed: ordinary messages would be posted
    # the other way, to a device that renders: refused, nothing relayed
    h.say(bob, number, data, mime="application/json")
    assert h.one(bob)["code"] == "bad_mime"
    h.quiet(alice)
    h.finish()


@pytest.mark.parametrize("mime", ["junk", "text/html<script>", "a/" + "b" * 130, "image/png\n"])
def test_what_is_no_mime_at_all_is_bad_mime_even_for_application_data(mime: str) -> None:
    h = Harness()
    alice, bob = h.phone("alice"), _app_phone(h, "bob")
    h.call(alice, bob)
    h.say(alice, 1, "x", mime=mime)
    assert h.one(alice)["code"] == "bad_mime"
    h.quiet(bob)
    h.finish()


def test_participants_are_the_groups_members_in_a_group_and_dropped_elsewhere() -> None:
    h = up(Harness(), TEAM)
    alice, bob = h.phone("alice"), h.phone("bob")
    join(h, alice, 1)
    join(h, bob, 1)
    h.say(alice, 1, "hi", participants="alice,mallory")
    assert fty_of(h.one(bob), 1)["participants"] == "alice,bob"
    h.say(alice, 1, "hi again")
    assert "participants" not in fty_of(h.one(bob), 1)
    h.finish()
    h = Harness(make_config())
    alice, bob = h.phone("alice"), h.phone("bob")
    number = h.call(alice, bob)
    h.say(alice, 1, "hi", participants="alice,bob")
    assert "participants" not in fty_of(h.one(bob), number)
    h.finish()


def test_the_harness_uses_every_message_type_in_the_table() -> None:
    """The lists above cover the table: a new event needs a scene here."""
    assert {event.value for event in Event} <= set(SIGNAL_TYPES)
