"""The core leaves nothing for the cycle collector: reference counting alone frees a call,
its legs, its transcript and acks, a registration and a connection once they are over.

Why it matters: the hub freezes whatever survives a generation-1 pass of the collector
(``signaling.gc_pauses``), so a call's objects soon sit in the permanent generation, which
no pass looks at; were they a cycle, they would stay there after the call ended, until
the next complete collection (every ten minutes, a pause as long as the hub is big).

The check, precisely: with the collector off and ``DEBUG_SAVEALL``, the lifecycles below
run to their end (``Harness.finish``: every connection closed, every grace passed) while
their switches stay alive; then one collection runs, and what it found unreachable (all of
``gc.garbage``) is split into the objects of Switchboard's own types (a type defined in
``signaling``, ``config`` or ``tracing``) and everything reachable from those within the
garbage (the lists, dicts, deques, tuples and records they held). Both must be empty.
What a dependency leaves by itself (the HTML sanitizer's parse trees) is not counted.
"""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from config import Config, QueueConfig
from signaling.core.calls import Call, Leg
from signaling.core.callstate import LegState, Role
from tests.signaling.core.harness import Harness, im, sig_of, with_signaling
from tests.signaling.core.test_licensed import TEAM, subscribe, up
from tests.support import make_config

OWN = ("signaling", "config", "tracing")
GRACE = 60.0


def _own(thing: object) -> bool:
    return (type(thing).__module__ or "").partition(".")[0] in OWN


def left_for_collector(garbage: list[Any]) -> Counter[str]:
    """Of what the collector found: the objects of our own types and everything reachable
    from them within the garbage, counted by type."""
    found = {id(thing): thing for thing in garbage}
    left: dict[int, Any] = {}
    stack = [thing for thing in garbage if _own(thing)]
    while stack:
        thing = stack.pop()
        if id(thing) not in left:
            left[id(thing)] = thing
            stack.extend(ref for ref in gc.get_referents(thing) if id(ref) in found)
    return Counter(type(thing).__qualname__ for thing in left.values())


@contextmanager
def collector_off() -> Iterator[list[Any]]:
    """Run the block with the collector off; yields the list that holds, afterwards,
    everything one collection found unreachable."""
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    found: list[Any] = []
    try:
        yield found
        gc.collect()
        found.extend(gc.garbage)
    finally:
        gc.garbage.clear()
        gc.set_debug(0)
        if was_enabled:
            gc.enable()


# -- the lifecycles ------------------------------------------------------------------------


def _offered(h: Harness, conn: int) -> int:
    """The call number of the latest setup offered to ``conn`` (its other frames read)."""
    setups = [m for m in h.take(conn) if m.get("sig", {}).get("type") == "setup"]
    return int(setups[-1]["call"])


def _volatile() -> Harness:
    config = make_config(messages=False, rate=1e9, burst=10**9)
    h = Harness(config)
    alice, bob = h.phone("alice"), h.phone("bob")
    number = h.call(alice, bob)
    h.say(alice, 1, "with an id", id="a1")
    h.say(alice, 1, "without one")
    h.say(bob, number, "<b>marked up</b>", id="b1", mime="text/html")
    h.say(bob, number, typing=True)
    h.signal(alice, 1, {"type": "rel"})
    h.setup(alice, 2, "bob", im("early", id="e1"))  # declined: the call is rejected
    rejected = _offered(h, bob)
    h.signal(bob, rejected, {"type": "rel", "cau": {"num": 21}})
    h.setup(alice, 3, "bob")  # nobody answers: cause 19 on the ring timeout
    h.advance(h.config.signaling.ring_timeout)
    h.setup(alice, 4, "nobody")  # refused at once: no such user
    h.setup(alice, 5, "bob")
    offered = _offered(h, bob)
    h.signal(bob, offered, {"type": "conn"})
    h.close(bob)  # the connection closes mid-call (no grace)
    return h


def _licensed() -> Harness:
    h = Harness()
    alice, bob, carol = h.phone("alice"), h.phone("bob"), h.phone("carol")
    number = h.call(alice, bob)
    h.say(alice, 1, "kept", id="k1")
    h.say(bob, number, "kept too")
    h.record(h.switch.stored([store.ack for store in h.stores if store.ack is not None]))
    h.signal(bob, number, {"type": "rel"})
    h.close(bob)
    h.setup(carol, 1, "bob", im("are you there?", id="q1"))  # answered by the hub (§7.5)
    h.record(h.switch.stored([store.ack for store in h.stores if store.ack is not None]))
    h.signal(carol, 1, {"type": "rel"})
    return h


def _group() -> Harness:
    h = up(Harness(), TEAM)
    alice, bob = h.phone("alice"), h.phone("bob")
    h.setup(alice, 1, "group-1")
    h.say(alice, 1, "hello team", id="g1")
    number = _offered(h, bob)
    h.signal(bob, number, {"type": "conn"})
    h.say(bob, number, "hi", id="g2")
    h.signal(bob, number, {"type": "rel"})
    h.say(alice, 1, "still here")
    h.signal(alice, 1, {"type": "rel"})
    return h


def _support_config() -> Config:
    config = make_config(idle_timeout=3600.0)
    demo = config.tenants[0]
    queues = (QueueConfig("desk", "Help desk", ("alice", "bob")),)
    return replace(config, tenants=(replace(demo, queues=queues), *config.tenants[1:]))


def _support() -> Harness:
    h = Harness(_support_config())
    alice, bob = h.phone("alice"), h.phone("bob")
    h.send(alice, {"api": "Queue", "mt": "Subscribe", "src": "board", "queue": "desk"})
    visitor = h.phone("carol")
    h.setup(visitor, 1, "desk", im("help?", id="v1"))
    conf_id = sig_of(h.take(visitor)[0], 1, "call_proc")["confId"]
    h.take(bob)
    h.send(alice, {"api": "Queue", "mt": "Take", "src": "t", "confId": conf_id})
    registration = h.switch.connections[alice].registration
    assert registration is not None
    (leg,) = registration.legs.values()  # alice took the chat
    h.say(alice, leg.number, "Alice here", id="r1")
    h.say(visitor, 1, "thanks")
    h.send(alice, {"api": "Queue", "mt": "Close", "src": "c", "confId": conf_id})
    h.setup(visitor, 2, "desk")  # a second chat, never picked: the visitor leaves
    h.close(visitor)
    return h


def _presence() -> Harness:
    h = Harness()
    carol = h.phone("carol")
    subscribe(h, carol, 7, "dave")
    dave = h.phone("dave")
    subscribe(h, dave, 3, "dave")
    h.signal(dave, 3, {"type": "facility", "fty": [{"type": "presence_publish", "note": "x"}]})
    h.close(dave)  # its own subscription ends with the connection
    h.signal(carol, 7, {"type": "rel"})
    return h


def _resumes() -> Harness:
    h = Harness(with_signaling(make_config(messages=False), resume_grace=GRACE))
    alice, bob = h.phone("alice"), h.phone("bob")
    h.call(alice, bob)
    token = h.tokens[bob]
    h.close(bob, clean=False)
    h.say(alice, 1, "while you were away", id="w1")
    again = h.login("bob")
    register = {"api": "PbxSignal", "mt": "Register", "flags": "NO_MEDIA_CALL", "resume": token}
    h.send(again, register)
    (setup,) = [m for m in h.take(again) if m.get("mt") == "Signaling"]
    h.signal(again, setup["call"], {"type": "conn"})
    h.say(again, setup["call"], "back", id="b1")
    h.close(again, clean=False)  # this time nobody comes back: the grace ends the call
    h.advance(GRACE)
    return h


LIFECYCLES: tuple[Callable[[], Harness], ...] = (
    _volatile,
    _licensed,
    _group,
    _support,
    _presence,
    _resumes,
)


def test_lifecycles_leave_nothing_for_the_cycle_collector() -> None:
    kept: list[Harness] = []  # a switch lives as long as the hub: not garbage here
    with collector_off() as garbage:
        for lifecycle in LIFECYCLES:
            h = lifecycle()
            h.finish()
            kept.append(h)
    left = left_for_collector(garbage)
    assert not left, f"left for the cycle collector, by type: {dict(left)}"
    assert len(kept) == len(LIFECYCLES)


def test_the_check_sees_a_call_that_keeps_its_legs() -> None:
    """The check above can fail: a call and its leg that refer to each other, dropped
    without being taken apart, are found with what they hold."""
    h = Harness()
    alice = h.phone("alice")
    registration = h.switch.connections[alice].registration
    assert registration is not None
    with collector_off() as garbage:
        call = Call("c", "example.com", 8, registration.user, registration.user)
        call.caller = Leg(call, registration, 1, Role.CALLER, LegState.SETUP_SENT)
        del call
    left = left_for_collector(garbage)
    assert Counter({"Call": 1, "Leg": 1, "deque": 2}) <= left
    h.finish()
