"""One slow client never slows the others: its queue overflows and it is closed 4008
(DESIGN "Principles", PROTOCOL §1.6)."""

from __future__ import annotations

from websockets.asyncio.client import connect

from signaling.appwebsocket.client import AppWebsocketClient
from tests.support import Phone, RunningServer, make_config, running_server


async def test_a_client_that_stops_reading_is_closed_4008_and_the_sender_goes_on() -> None:
    config = make_config(send_queue=8, rate=1e6, burst=1_000_000)
    async with running_server(config) as server:
        alice = await server.phone("alice")
        # bob reads nothing: the client's own buffers fill, then TCP's, then the server's
        raw = await connect(server.url, max_queue=1, max_size=None, compression=None)
        bob = Phone(AppWebsocketClient(raw), "bob")
        await bob.client.login(password="bob-demo", sip="bob")
        await bob.register()
        await alice.setup(1, "bob")
        await alice.sig(1, "call_proc")
        number, _ = await bob.offered()
        await bob.signal(number, {"type": "conn"})
        await alice.sig(1, "conn")

        chunk = "x" * 60_000
        refused = None
        for n in range(2000):  # bounded: about 120 MB at most
            await alice.say(1, chunk, id=f"m{n}")
            ack = await alice.fty(1)
            if ack["state"] != "delivered":
                refused = ack
                break
        assert refused is not None, "the slow consumer was never cut off"
        # the message that found the queue full is reported, never acknowledged as delivered
        assert refused == {"type": "im_ack", "id": f"m{n}", "state": "not_delivered"}
        assert (await alice.sig(1, "rel"))["sig"]["cau"] == {"loc": 1, "num": 41}
        await alice.sync()  # the sender's own connection is fine

        code, _ = await bob.client.wait_closed(timeout=30)
        assert code == 4008
        await _still_chatting(server)


async def _still_chatting(server: RunningServer) -> None:
    carol, dave = await server.phone("carol"), await server.phone("dave")
    await carol.setup(1, "dave")
    await carol.sig(1, "call_proc")
    number, _ = await dave.offered()
    await dave.signal(number, {"type": "conn"})
    await carol.sig(1, "conn")
