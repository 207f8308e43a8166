"""Resume after reconnect (PROTOCOL §4.9) and presence (§4.10, notes 12.4 and 12.11) end to
end over a real server: dropped links, resumed calls, replayed messages, presence churn."""

from __future__ import annotations

import asyncio
import itertools
import random
from typing import Any, NamedTuple

import pytest

from signaling.appwebsocket.errors import ConnectionClosed
from tests.support import (
    PASSWORDS,
    Phone,
    RunningServer,
    make_config,
    resume_phone,
    running_server,
)

JsonObject = dict[str, Any]

GRACE = 60.0


# -- helpers ---------------------------------------------------------------------------------


class Ids(NamedTuple):
    """How a call is named on the wire (§4.5 revised): the conversation, and bob's leg."""

    conf: str
    leg: str


async def _pair(server: RunningServer) -> tuple[Phone, Phone, int, Ids]:
    """Alice calls bob, bob answers: both phones, bob's call number and the ids."""
    alice, bob = await server.phone("alice"), await server.phone("bob")
    await alice.setup(1, "bob")
    proc = (await alice.sig(1, "call_proc"))["sig"]
    number, setup = await bob.offered()
    assert setup["confId"] == proc["confId"] and setup["callId"] != proc["callId"]
    await bob.signal(number, {"type": "conn"})
    await alice.sig(1, "conn")
    return alice, bob, number, Ids(str(setup["confId"]), str(setup["callId"]))


def _abort(phone: Phone) -> None:
    """Cut the TCP connection under the WebSocket: no close frame, a lost link."""
    phone.client._ws.transport.abort()


async def _drop(alice: Phone, bob: Phone, number: int, *, clean: bool = False) -> None:
    """Bob's link goes while he types; alice's ``typing:false`` proves the hub saw it go
    (a dropped device's typing ends, notes 12.4), so what follows meets a detached bob."""
    await bob.say(number, None, typing=True)
    assert (await alice.fty(1))["typing"] is True
    if clean:
        await bob.client.close()
    else:
        _abort(bob)
    stop = await alice.fty(1)
    assert (stop["typing"], stop["sender"]) == (False, "bob")


async def _register_resume(
    server: RunningServer, old: Phone, seqs: JsonObject | None = None
) -> tuple[Phone, JsonObject]:
    """A new connection of ``old``'s user registers with ``old``'s resume token."""
    return await resume_phone(server, old, PASSWORDS[old.sip], seqs)


async def _resume(
    server: RunningServer, old: Phone, ids: Ids, seen: int, *, by_leg: bool = False
) -> tuple[Phone, int]:
    """Resume ``old``'s registration, having seen up to ``seen`` (``seqs`` keyed by the
    confId, or by the leg's callId); answer the re-offered call. Returns the new phone and
    its new call number."""
    phone, result = await _register_resume(server, old, {ids.leg if by_leg else ids.conf: seen})
    assert result["resumed"] is True
    number, setup = await phone.offered()
    assert (setup["confId"], setup["callId"]) == ids  # the leg keeps its callId
    assert {"type": "resumed"} in setup["fty"] and {"type": "im_setup"} in setup["fty"]
    assert setup["cg"]["sip"] == "alice"
    await phone.signal(number, {"type": "conn"})
    return phone, number


async def _settle(server: RunningServer, connections: int) -> None:
    """Wait until the hub has handled every close so far: it serves ``connections``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10.0
    while len(server.hub.switch.connections) != connections:
        assert loop.time() < deadline, len(server.hub.switch.connections)
        await asyncio.sleep(0.005)


async def _subscribe(phone: Phone, number: int, to: str) -> JsonObject:
    """A presence subscription (§4.10): ``conn`` with a callId and a confId, then the
    first notify."""
    await phone.signal(
        number,
        {"type": "setup", "channel": 0, "cd": {"sip": to}, "fty": [{"type": "presence_subscribe"}]},
    )
    conn = await phone.sig(number, "conn")
    assert len(conn["sig"]["callId"]) == len(conn["sig"]["confId"]) == 32
    notify = await phone.fty(number)
    assert notify["type"] == "presence_notify"
    return notify


async def _notifies(phone: Phone, number: int) -> list[JsonObject]:
    """Every presence notify queued for ``phone`` before the echo of a KeepAlive sent now:
    what the hub said within one round trip."""
    await phone.client.send({"mt": "KeepAlive"})
    got: list[JsonObject] = []
    while (message := await phone.next()) != {"mt": "KeepAlive"}:
        assert message.get("mt") == "Signaling" and message["call"] == number, message
        (item,) = message["sig"]["fty"]
        assert item["type"] == "presence_notify", item
        got.append(dict(item))
    return got


async def _unregister(phone: Phone) -> None:
    await phone.client.send({"api": "PbxSignal", "mt": "Unregister"})
    assert (await phone.next())["mt"] == "UnregisterResult"


def _status(notify: JsonObject) -> tuple[str, str]:
    return notify["status"], notify["activity"]


# -- resume (§4.9) ---------------------------------------------------------------------------


@pytest.mark.parametrize("messages", [False, True], ids=["volatile", "stored"])
async def test_repeated_drops_and_resumes_lose_and_repeat_nothing(messages: bool) -> None:
    async with running_server(make_config(messages=messages, grace=GRACE)) as server:
        alice, bob, number, ids = await _pair(server)
        seen: list[tuple[int, str]] = []
        sent = 0

        async def say(text: str, state: str) -> None:
            nonlocal sent
            sent += 1
            await alice.say(1, text, id=f"m{sent}")
            ack = await alice.fty(1)
            assert (ack["type"], ack["id"], ack["seq"], ack["state"]) == (
                "im_ack",
                f"m{sent}",
                sent,
                state,
            )

        async def receive(phone: Phone, call: int) -> None:
            got = await phone.fty(call)
            assert got["sender"] == "alice" and "id" not in got, got
            seen.append((got["seq"], got["data"]))

        for cycle in range(5):
            # live: bob reads the first message; the second is still in flight when the
            # link goes, so bob never sees it on this connection
            await say(f"live {cycle}", "delivered")
            await receive(bob, number)
            await say(f"in flight {cycle}", "delivered")
            last_seen = seen[-1][0]
            await _drop(alice, bob, number)
            # the call lives on: alice's messages wait for bob
            parked = [sent + 1, sent + 2, sent + 3]
            for n in range(3):
                await say(f"while away {cycle}.{n}", "held")
            await alice.sync()
            bob, number = await _resume(server, bob, ids, last_seen, by_leg=cycle % 2 == 1)
            for _ in range(4):  # the one in flight, then the three held
                await receive(bob, number)
            await bob.sync()  # nothing twice
            delivered = [await alice.fty(1) for _ in parked]
            assert [(a["id"], a["seq"], a["state"]) for a in delivered] == [
                (f"m{n}", n, "delivered") for n in parked
            ]
            await alice.sync()

        assert [seq for seq, _ in seen] == list(range(1, sent + 1))
        assert len(seen) == sent == 25
        assert seen[-1][1] == "while away 4.2"
        # the resumed call goes on both ways
        await bob.say(number, "back for good", id="b")
        assert (await bob.fty(number))["seq"] == sent + 1
        got = await alice.fty(1)
        assert (got["data"], got["sender"], got["seq"]) == ("back for good", "bob", sent + 1)
        await alice.say(1, "welcome")
        assert (await bob.fty(number))["data"] == "welcome"


async def test_resuming_while_the_old_connection_is_open_closes_it_4005() -> None:
    async with running_server(make_config(messages=False, grace=GRACE)) as server:
        alice, bob, number, ids = await _pair(server)
        await alice.say(1, "before", id="a1")
        await alice.fty(1)
        assert (await bob.fty(number))["seq"] == 1
        again, resumed_number = await _resume(server, bob, ids, 1, by_leg=True)
        with pytest.raises(ConnectionClosed) as closed:
            await bob.next()
        assert closed.value.code == 4005
        await _settle(server, 2)  # the old socket is gone for the hub too
        await again.sync()  # nothing replayed: bob had seen everything
        await alice.sync()  # and alice's call never ended
        await alice.say(1, "after", id="a2")
        ack = await alice.fty(1)
        assert (ack["seq"], ack["state"]) == (2, "delivered")
        got = await again.fty(resumed_number)
        assert (got["data"], got["seq"]) == ("after", 2)


@pytest.mark.parametrize(("clean", "cause"), [(False, 41), (True, 16)], ids=["lost", "closed"])
async def test_when_the_grace_runs_out_the_call_ends(clean: bool, cause: int) -> None:
    async with running_server(make_config(messages=False, grace=GRACE)) as server:
        alice, bob, number, _ = await _pair(server)
        await _drop(alice, bob, number, clean=clean)
        await alice.say(1, "anyone?", id="x")
        held = await alice.fty(1)
        assert (held["id"], held["seq"], held["state"]) == ("x", 1, "held")
        await server.advance(GRACE - 1)
        await alice.sync()
        await server.advance(2)
        ack = await alice.fty(1)
        assert (ack["type"], ack["id"], ack["seq"], ack["state"]) == (
            "im_ack",
            "x",
            1,
            "not_delivered",
        )
        rel = await alice.sig(1, "rel")
        assert rel["sig"]["cau"] == {"loc": 1, "num": cause}
        await alice.sync()
        # the token died with the registration: a late resume starts afresh
        late, result = await _register_resume(server, bob)
        assert result["resumed"] is False
        await late.sync()


# -- presence (§4.10) ------------------------------------------------------------------------


async def test_presence_follows_register_unregister_and_close(server: RunningServer) -> None:
    alice = await server.phone("alice")
    first = await _subscribe(alice, 5, "carol")
    assert first == {"type": "presence_notify", "status": "closed", "activity": "", "note": ""}
    carol = await server.phone("carol")  # login and Register: RegisterResult seen
    assert [_status(n) for n in await _notifies(alice, 5)] == [("open", "available")]
    await _unregister(carol)
    assert [_status(n) for n in await _notifies(alice, 5)] == [("closed", "")]
    assert (await carol.register())["mt"] == "RegisterResult"
    assert [_status(n) for n in await _notifies(alice, 5)] == [("open", "available")]
    # with no resume grace a closed connection ends the registration at once
    await carol.client.close()
    assert _status(await alice.fty(5)) == ("closed", "")
    await alice.sync()
    tab = await server.phone("carol")
    assert [_status(n) for n in await _notifies(alice, 5)] == [("open", "available")]
    _abort(tab)
    assert _status(await alice.fty(5)) == ("closed", "")
    await alice.sync()


async def test_presence_under_churn_of_many_tabs() -> None:
    """Carol opens 20 tabs in five rounds; in each round opens and closes interleave (a
    random order, every tab opened before it is closed), closes are lost links (online
    for the grace), clean closes or Unregisters (offline at once, docs 12.37), and time
    passes in between. A round ends with every tab closed
    and either more time than the grace (carol goes offline) or less (the next round
    finds her still online). The subscriber sees exactly the changes, alternating."""
    grace = 30.5  # never a whole number of seconds: no timer is due exactly at an advance
    rounds, per_round = 5, 4
    async with running_server(make_config(messages=False, grace=grace)) as server:
        alice = await server.phone("alice")
        notifies = [(await _subscribe(alice, 9, "carol"))["status"]]
        rng = random.Random(4_9_410)
        tabs: dict[int, Phone] = {}
        now = 0.0
        detached: list[float] = []  # when each dropped tab's grace runs out
        hows = ["lost", "clean", "unregister"]

        def online() -> bool:
            return bool(tabs or detached)

        async def check(change: str | None) -> None:
            got = [n["status"] for n in await _notifies(alice, 9)]
            assert got == ([change] if change else []), (got, sorted(tabs), detached)
            notifies.extend(got)
            assert notifies[-1] == ("open" if online() else "closed")

        async def advance(step: float) -> None:
            nonlocal now, detached
            was = online()
            for tab in tabs.values():  # open tabs stay active (idle timeout, §3.5)
                await tab.sync()
            now += step
            await server.advance(step)
            detached = [due for due in detached if due > now]
            await check("closed" if was and not online() else None)

        for round_ in range(rounds):
            ids = range(round_ * per_round, (round_ + 1) * per_round)
            events = [(kind, i) for i in ids for kind in ("open", "close")]
            rng.shuffle(events)
            opened: set[int] = set()
            for index, (kind, i) in enumerate(events):
                if kind == "close" and i not in opened:  # not open yet: open it instead
                    later = events.index(("open", i), index)
                    events[index], events[later] = events[later], events[index]
                    kind = "open"
                if kind == "open":
                    was = online()
                    tabs[i] = await server.phone("carol", hw=f"tab-{i}")
                    opened.add(i)
                    await check(None if was else "open")
                else:
                    tab = tabs.pop(i)
                    how = hows[i % len(hows)]
                    if how == "unregister":  # ends the registration at once, no grace
                        await _unregister(tab)
                        await tab.client.close()
                    elif how == "clean":  # offline at once; only its calls wait (12.37)
                        await tab.client.close()
                    else:  # a lost link keeps carol online for the grace
                        _abort(tab)
                        detached.append(now + grace)
                    await _settle(server, 1 + len(tabs))
                    await check(None if online() else "closed")
                if rng.random() < 0.3:
                    await advance(float(rng.choice([5, 10, 20])))
            assert not tabs
            await advance(grace + 10 if round_ % 2 == 0 else 10.0)

        await advance(grace + 1)
        assert not online() and notifies[-1] == "closed"
        assert all(a != b for a, b in itertools.pairwise(notifies)), notifies
        assert notifies.count("open") >= 3, notifies  # several offline/online cycles


async def test_published_activity_is_seen_by_others_and_resets(server: RunningServer) -> None:
    carol = await server.phone("carol", hw="desk")
    mine = await _subscribe(carol, 1, "carol")
    assert _status(mine) == ("open", "available")
    alice, dave = await server.phone("alice"), await server.phone("dave")
    assert _status(await _subscribe(alice, 3, "carol")) == ("open", "available")
    assert _status(await _subscribe(dave, 4, "carol")) == ("open", "available")
    publish = {"type": "presence_publish", "status": "open", "activity": "away", "note": "lunch"}
    await carol.signal(1, {"type": "facility", "fty": [publish]})
    expected = {"type": "presence_notify", "status": "open", "activity": "away", "note": "lunch"}
    assert await carol.fty(1) == expected
    assert await alice.fty(3) == expected
    assert await dave.fty(4) == expected
    # a subscriber cannot publish for the user it watches
    await alice.signal(3, {"type": "facility", "fty": [{**publish, "activity": "dnd"}]})
    await alice.sync()
    await dave.sync()
    # another device comes and the desk goes: carol is still online, still away
    mobile = await server.phone("carol", hw="mobile")
    await _unregister(carol)
    assert await _notifies(alice, 3) == []
    assert await _notifies(dave, 4) == []
    # the last registration ends: closed, and the activity is forgotten
    await _unregister(mobile)
    closed = {"type": "presence_notify", "status": "closed", "activity": "", "note": ""}
    assert await _notifies(alice, 3) == [closed]
    assert await _notifies(dave, 4) == [closed]
    assert (await mobile.register())["mt"] == "RegisterResult"
    fresh = {"type": "presence_notify", "status": "open", "activity": "available", "note": ""}
    assert await _notifies(alice, 3) == [fresh]
    assert await _notifies(dave, 4) == [fresh]
