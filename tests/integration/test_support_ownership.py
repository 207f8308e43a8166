"""Taking a chat by writing and strict ownership of taken chats over real WebSockets
(docs/protocol.md 12.34): the queue option ``take_on_write`` and the user role
``supervisor``, on a real server with real clients."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from config import Config, QueueConfig
from tests.integration.test_support import new_visitor, queue_request, update, visit, watch
from tests.support import Phone, RunningServer, make_config, running_server

JsonObject = dict[str, Any]

AGENTS = ("alice", "bob", "dave")


def desk_config(*, take_on_write: bool = False, supervisor: str = "dave") -> Config:
    """The demo tenant with the queue ``desk`` (alice, bob, dave) and ``sales`` (bob);
    ``supervisor`` has the role ``supervisor``."""
    config = make_config(messages=False, idle_timeout=3600.0)
    demo, *others = config.tenants
    users = tuple(
        replace(user, role="supervisor") if user.sip == supervisor else user for user in demo.users
    )
    queues = (
        *demo.queues,
        QueueConfig("desk", "Help desk", AGENTS, take_on_write=take_on_write),
        QueueConfig("sales", "Sales", ("bob",)),
    )
    return replace(config, tenants=(replace(demo, users=users, queues=queues), *others))


async def ringing(server: RunningServer) -> tuple[Phone, dict[str, Phone], dict[str, int], str]:
    """Every desk agent registered, a visitor calling the desk: the visitor, the agents,
    their offers' call numbers and the chat's confId."""
    agents = {sip: await server.phone(sip) for sip in AGENTS}
    visitor = await new_visitor(server, "Ann Buyer")
    conf_id, _ = await visit(visitor, 1)
    numbers: dict[str, int] = {}
    for sip, agent in agents.items():
        number, sig = await agent.offered()
        assert sig["confId"] == conf_id
        numbers[sip] = number
    return visitor, agents, numbers, conf_id


async def error_of(phone: Phone) -> JsonObject:
    message = await phone.next()
    assert message.get("mt") == "Error", message
    return message


async def test_without_take_on_write_an_agent_writing_into_a_ringing_chat_is_bad_state() -> None:
    async with running_server(desk_config()) as server:
        visitor, agents, numbers, _ = await ringing(server)
        await agents["alice"].say(numbers["alice"], "Hello, can I help?", id="a1")
        error = await error_of(agents["alice"])
        assert (error["code"], error["call"]) == ("bad_state", numbers["alice"]), error
        for phone in (visitor, *agents.values()):
            await phone.sync()  # nobody took it, nobody was told anything


async def test_with_take_on_write_the_agent_who_writes_takes_the_chat() -> None:
    async with running_server(desk_config(take_on_write=True)) as server:
        board = await watch(server, "alice", take_on_write=True)
        visitor, agents, numbers, conf_id = await ringing(server)
        assert (await update(board, "ChatWaiting"))["chat"]["confId"] == conf_id

        # Typing alone takes nothing.
        await agents["bob"].say(numbers["bob"], None, typing=True)
        assert (await error_of(agents["bob"]))["code"] == "bad_state"

        await agents["bob"].say(numbers["bob"], "Bob here, how can I help?", id="b1")
        # The visitor is answered by bob, then reads his message.
        conn = await visitor.sig(1, "conn")
        assert {"type": "name_identification", "name": "Bob Example"} in conn["sig"]["fty"]
        message = await visitor.fty(1)
        assert (message["type"], message["sender"], message["data"]) == (
            "im_message",
            "bob",
            "Bob here, how can I help?",
        )
        ack = await agents["bob"].fty(numbers["bob"])
        assert (ack["type"], ack["id"]) == ("im_ack", "b1"), ack
        # The others' offers end as after a Take; the board shows bob has it.
        for sip in ("alice", "dave"):
            rel = await agents[sip].sig(numbers[sip], "rel")
            assert rel["sig"]["cau"] == {"loc": 1, "num": 26}
        taken = await update(board, "ChatTaken")
        assert taken["agent"] == "bob" and taken["chat"]["confId"] == conf_id
        assert taken["chat"]["agent"] == {"sip": "bob", "dn": "Bob Example"}

        # A later writer whose offer ended gets the answer for a call it no longer has.
        await agents["alice"].say(numbers["alice"], "Me too", id="a1")
        assert (await error_of(agents["alice"]))["call"] == numbers["alice"]

        # The chat goes on as a connected one.
        await visitor.say(1, "My kettle leaks", id="v1")
        ack = await visitor.fty(1)
        assert (ack["id"], ack["state"]) == ("v1", "delivered")
        assert (await agents["bob"].fty(numbers["bob"]))["data"] == "My kettle leaks"
        for phone in (visitor, *agents.values(), board):
            await phone.sync()


async def test_only_the_owner_or_a_supervisor_closes_or_transfers_a_taken_chat() -> None:
    async with running_server(desk_config()) as server:
        board = await watch(server, "alice")
        visitor, agents, numbers, conf_id = await ringing(server)
        await update(board, "ChatWaiting")
        await agents["alice"].signal(numbers["alice"], {"type": "conn"})
        await visitor.sig(1, "conn")
        for sip in ("bob", "dave"):
            await agents[sip].sig(numbers[sip], "rel")
        assert (await update(board, "ChatTaken"))["agent"] == "alice"

        # bob is an agent of the desk but neither the owner nor a supervisor.
        await queue_request(agents["bob"], "Close", "c", confId=conf_id)
        assert (await error_of(agents["bob"]))["code"] == "forbidden"
        await queue_request(agents["bob"], "Transfer", "x", confId=conf_id, to="sales")
        assert (await error_of(agents["bob"]))["code"] == "forbidden"
        for phone in (visitor, agents["alice"], board):
            await phone.sync()  # the chat is still alice's, untouched

        # The owner may transfer it: to bob, who answers.
        await queue_request(agents["alice"], "Transfer", "x", confId=conf_id, to="bob")
        rel = await agents["alice"].sig(numbers["alice"], "rel")
        assert rel["sig"]["cau"] == {"loc": 1, "num": 16}
        result = await agents["alice"].next()
        assert (result["mt"], result["to"]) == ("TransferResult", "bob"), result
        moved = await update(board, "ChatTransferred")
        assert (moved["from"], moved["to"]) == ("alice", "bob")
        number, sig = await agents["bob"].offered()
        assert sig["confId"] == conf_id
        await agents["bob"].signal(number, {"type": "conn"})
        await visitor.fty(1)  # the new agent's name
        await update(board, "ChatWaiting")
        assert (await update(board, "ChatTaken"))["agent"] == "bob"

        # Now alice is the non-owner: forbidden.
        await queue_request(agents["alice"], "Close", "c", confId=conf_id)
        assert (await error_of(agents["alice"]))["code"] == "forbidden"

        # dave supervises the desk: he closes bob's chat.
        await queue_request(agents["dave"], "Close", "c", confId=conf_id)
        result = await agents["dave"].next()
        assert (result["mt"], result["confId"]) == ("CloseResult", conf_id), result
        assert (await agents["bob"].sig(number, "rel"))["sig"]["cau"] == {"loc": 1, "num": 16}
        assert (await visitor.sig(1, "rel"))["sig"]["cau"] == {"loc": 1, "num": 16}
        closed = await update(board, "ChatClosed")
        assert (closed["by"], closed["cause"]) == ("dave", 16)
        for phone in (visitor, *agents.values(), board):
            await phone.sync()


async def test_the_board_tells_each_agent_its_role_and_whether_writing_takes() -> None:
    """``SubscribeResult`` carries the agent's ``role`` and the queue's ``take_on_write``
    (12.34), so that a console offers Close, Transfer and writing only where they work."""
    async with running_server(desk_config(take_on_write=True)) as server:
        await watch(server, "dave", role="supervisor", take_on_write=True)
        await watch(server, "alice", take_on_write=True)
        await watch(server, "bob", "sales")  # a queue without the option
