"""Bad input and limits: each gets its documented answer and the server stays healthy
(PROTOCOL §1.1, §1.3, §1.4, §1.6, §3.5, §4.6, §4.11, §5)."""

from __future__ import annotations

import asyncio
import json

from websockets.asyncio.client import connect

from signaling.appwebsocket import closecodes
from tests.support import RunningServer, connected_pair, make_config, running_server


async def _still_serving(server: RunningServer) -> None:
    """Other users notice nothing: a fresh pair still chats."""
    alice, bob, call = await connected_pair(server, "carol", "dave")
    await alice.say(1, "still here", id="ok")
    assert (await alice.fty(1))["state"] == "delivered"
    assert (await bob.fty(call))["data"] == "still here"


async def test_malformed_json_is_answered_and_ten_in_a_row_close_4002(
    server: RunningServer,
) -> None:
    phone = await server.phone("alice")
    bad = ["{", "[]", "42", '"mt"', "{}", '{"mt": 5}', '{"mt": ""}', "nul\x00", "{'a':1}"]
    for text in bad[:-1]:
        await phone.client.send_text(text)
        reply = await phone.next()
        assert (reply["mt"], reply["code"]) == ("Error", "bad_json"), text
    await phone.sync()  # a good message resets the count
    for _ in range(server.config.limits.max_bad_messages):
        await phone.client.send_text("not json")
    replies = [await phone.next() for _ in range(server.config.limits.max_bad_messages)]
    assert all(reply["code"] == "bad_json" for reply in replies)
    assert (await phone.client.wait_closed())[0] == 4002
    await _still_serving(server)


async def test_unknown_mt_and_api_keep_the_connection(server: RunningServer) -> None:
    phone = await server.phone("alice")
    await phone.client.send({"api": "PbxSignal", "mt": "Dance", "src": 7})
    reply = await phone.next()
    assert (reply["code"], reply["api"], reply["src"]) == ("unknown_mt", "PbxSignal", 7)
    await phone.client.send({"mt": "Whatever"})
    assert (await phone.next())["code"] == "unknown_mt"
    await phone.client.send({"api": "NoSuchApi", "mt": "X"})
    assert (await phone.next())["code"] == "unknown_mt"
    await phone.sync()


async def test_wrong_state_is_bad_state_and_changes_nothing(server: RunningServer) -> None:
    alice, bob = await server.phone("alice"), await server.phone("bob")
    await alice.setup(1, "bob")
    await alice.sig(1, "call_proc")
    number, _ = await bob.offered()
    # the caller cannot answer its own call, the callee cannot write before conn
    await alice.signal(1, {"type": "conn"})
    error = await alice.next()
    assert (error["code"], error["call"]) == ("bad_state", 1)
    assert "conn" in error["text"] and "proceeding" in error["text"]
    await bob.say(number, "too early")
    assert (await bob.next())["code"] == "bad_state"
    await alice.setup(1, "bob")  # setup on a call number in use
    assert (await alice.next())["code"] == "bad_state"
    await alice.signal(5, {"type": "facility", "fty": []})  # no such call
    assert (await alice.next())["code"] == "bad_state"
    await alice.signal(-3, {"type": "setup", "cd": {"sip": "bob"}, "fty": [{"type": "im_setup"}]})
    assert (await alice.next())["code"] == "bad_state"
    # the call was left as it was
    await bob.signal(number, {"type": "conn"})
    await alice.sig(1, "conn")


async def test_signaling_before_register_is_bad_state(server: RunningServer) -> None:
    client = await server.connect()
    await client.login(password="alice-demo", sip="alice")
    await client.send(
        {
            "api": "PbxSignal",
            "mt": "Signaling",
            "call": 1,
            "sig": {"type": "setup", "cd": {"sip": "bob"}},
        }
    )
    assert (await client.recv())["code"] == "bad_state"
    await client.close()


async def test_binary_frame_closes_4003(server: RunningServer) -> None:
    phone = await server.phone("alice")
    await phone.client.send_text(b"\x00\x01binary")
    assert (await phone.client.wait_closed())[0] == 4003
    await _still_serving(server)


async def test_a_text_frame_that_is_not_utf8_closes_1007(server: RunningServer) -> None:
    phone = await server.phone("alice")
    await phone.client._ws.send(b'{"mt":"KeepAlive","x":"\xff\xfe"}', text=True)
    assert (await phone.client.wait_closed())[0] == closecodes.WS_1007_INVALID_UTF8
    await _still_serving(server)


async def test_a_frame_that_breaks_the_websocket_protocol_closes_1002(
    server: RunningServer,
) -> None:
    """A client frame must be masked (RFC 6455 5.1); this one is not."""
    phone = await server.phone("alice")
    phone.client._ws.transport.write(b"\x81\x02{}")
    code, reason = await phone.client.wait_closed()
    assert (code, reason) == (closecodes.WS_1002_PROTOCOL_ERROR, "incorrect masking")
    await _still_serving(server)


async def test_oversize_frame_closes_1009() -> None:
    async with running_server(make_config(max_frame=4096)) as server:
        phone = await server.phone("alice")
        frame = json.dumps({"mt": "KeepAlive", "pad": "x" * 5000})
        await phone.client.send_text(frame)
        assert (await phone.client.wait_closed())[0] == 1009
        await _still_serving(server)


async def test_message_too_big_is_refused_and_nothing_is_relayed() -> None:
    async with running_server(make_config(max_message=1000)) as server:
        alice, bob, call = await connected_pair(server)
        await alice.say(1, "x" * 1001, id="big")
        error = await alice.next()
        assert (error["code"], error["call"]) == ("message_too_big", 1)
        # fragments that add up to too much: refused once, the rest of that message dropped
        for _ in range(3):
            await alice.say(1, "y" * 400, more=True)
        assert (await alice.next())["code"] == "message_too_big"
        await alice.say(1, "tail", more=False)
        await alice.say(1, "é" * 501)  # 1002 bytes of UTF-8
        assert (await alice.next())["code"] == "message_too_big"
        await alice.say(1, "fits", id="small")
        assert (await alice.fty(1))["seq"] == 1
        assert (await bob.fty(call))["data"] == "fits"


async def test_bad_mime_is_refused(server: RunningServer) -> None:
    alice, bob, _ = await connected_pair(server)
    await alice.say(1, "<svg/>", mime="image/svg+xml")
    assert (await alice.next())["code"] == "bad_mime"
    await bob.sync()


async def test_rate_limit_answers_retry_after_and_abuse_closes_4004() -> None:
    async with running_server(make_config(rate=5.0, burst=5, rate_close_after=5)) as server:
        phone = await server.phone("alice")  # login and Register used 3 tokens
        await phone.sync()
        await phone.sync()
        await phone.client.send({"mt": "KeepAlive"})
        limited = await phone.next()
        assert (limited["code"], limited["retry_after_ms"]) == ("rate_limited", 200)
        server.clock.advance(1.0)
        await phone.sync()  # tokens come back with time
        for _ in range(4):
            await phone.sync()
        for _ in range(5):
            await phone.client.send({"mt": "KeepAlive"})
        for _ in range(4):
            assert (await phone.next())["code"] == "rate_limited"
        assert (await phone.client.wait_closed())[0] == 4004
        await _still_serving(server)


async def test_only_a_peer_that_stops_answering_pings_is_closed_4006() -> None:
    """Liveness is the transport's (PROTOCOL §3.5 revised, docs 12.26): a client that
    only listens stays, however long it sends nothing; one whose WebSocket stack stops
    answering the server's pings is closed 4006 once silent for ``limits.idle_timeout``
    (give or take a ping interval)."""
    async with running_server(make_config(idle_timeout=1.0)) as server:
        listener, alice = await server.phone("bob"), await server.phone("alice")
        await server.advance(3600)  # an hour of the hub's time without a client frame
        alice.client._ws.transport.pause_reading()  # pings pile up unread, unanswered
        await asyncio.sleep(2.5)  # real time: pings every 0.25 s, closed after 1 s of silence
        alice.client._ws.transport.resume_reading()
        assert (await alice.client.wait_closed())[0] == closecodes.WS_4006_IDLE
        await listener.sync()  # its stack answered every ping: still here
        await _still_serving(server)


async def test_frames_prove_a_peer_alive_even_without_pongs() -> None:
    """A peer that keeps sending but does not answer pings is there (docs 12.26): only
    silence of every kind for ``limits.idle_timeout`` closes it."""
    async with running_server(make_config(idle_timeout=1.0)) as server:
        alice = await server.phone("alice")
        alice.client._ws.transport.pause_reading()  # no pong will be sent
        for _ in range(10):  # 2.5 s, two and a half idle timeouts, of frames only
            await alice.client.send({"mt": "KeepAlive"})
            await asyncio.sleep(0.25)
        assert alice.client._ws.state.name == "OPEN"
        await asyncio.sleep(2.0)  # now silent too
        alice.client._ws.transport.resume_reading()
        assert (await alice.client.wait_closed())[0] == closecodes.WS_4006_IDLE


async def test_pbx_messages_without_the_service() -> None:
    async with running_server(make_config(messages=False)) as server:
        await _pbx_messages_refused(server)


async def _pbx_messages_refused(server: RunningServer) -> None:
    carol = await server.phone("carol")
    await carol.client.send({"api": "PbxMessages", "mt": "Session", "src": "m"})
    assert await carol.next() == {
        "api": "PbxMessages",
        "mt": "Error",
        "code": "unlicensed",
        "text": "no messages licence",
        "src": "m",
    }
    alice = await server.phone("alice")
    await alice.client.send({"api": "PbxMessages", "mt": "Session", "src": "m"})
    assert (await alice.next())["code"] == "unavailable"


async def test_healthz(server: RunningServer) -> None:
    import httpx

    await server.service_ready()
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{server.http}/healthz")
        ready = await http.get(f"{server.http}/healthz?ready=1")
    assert response.status_code == 200 and ready.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"messages_link": "up", "database": "up"},
    }


async def test_compression_is_declined_unless_configured() -> None:
    """permessage-deflate keeps about 40 KiB per connection: only when the operator says
    so (limits.compression) is a client's offer accepted (docs/benchmarks.md)."""
    for compression in (False, True):
        config = make_config(compression=compression)
        async with running_server(config) as server, connect(server.url) as ws:
            # the client offers permessage-deflate, as websockets (and browsers) do
            accepted = ws.response.headers.get("Sec-WebSocket-Extensions") or ""
            assert accepted.startswith("permessage-deflate") is compression, accepted
            await ws.send('{"mt":"KeepAlive"}')
            assert json.loads(await ws.recv()) == {"mt": "KeepAlive"}
