"""``switchboard chat`` in a pseudo-terminal against a real server (README "Try a chat").

The other side of each chat is a scripted ``Phone``; the client under test is the real
command in a child process whose controlling terminal is the pty the test types into.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from tests.integration.terminal import ChatTerminal
from tests.support import PASSWORDS, RunningServer, drained

Start = Callable[..., ChatTerminal]


@pytest.fixture
async def chat_cli(server: RunningServer) -> AsyncIterator[Start]:
    started: list[ChatTerminal] = []

    def start(sip: str, *more: str) -> ChatTerminal:
        terminal = ChatTerminal(
            "--url", server.url, "--sip", sip, "--password", PASSWORDS[sip], *more
        )
        started.append(terminal)
        return terminal

    yield start
    for terminal in started:
        terminal.close()


def assert_clean(terminal: ChatTerminal) -> None:
    assert "Traceback" not in terminal.text, terminal.text
    assert "Error" not in terminal.text, terminal.text


async def test_ctrl_c_ends_a_connected_chat_at_once(server: RunningServer, chat_cli: Start) -> None:
    alice = await server.phone("alice")
    bob = chat_cli("bob")
    await bob.expect("waiting for a chat")
    await alice.setup(1, "bob")
    await alice.sig(1, "call_proc")
    await alice.sig(1, "conn")
    await bob.expect("chat from Alice")
    bob.type("\x03")
    assert await bob.exited() == 130  # as README says: an interrupted command
    assert (await alice.sig(1, "rel"))["sig"]["type"] == "rel"
    assert_clean(bob)


async def test_ctrl_c_while_waiting_exits_without_a_traceback(
    server: RunningServer, chat_cli: Start
) -> None:
    dave = chat_cli("dave")
    await dave.expect("waiting for a chat")
    dave.type("half a line\x03")
    assert await dave.exited() == 130
    assert_clean(dave)


async def test_messages_both_ways_then_the_peer_ends_and_the_shell_is_back(
    server: RunningServer, chat_cli: Start
) -> None:
    alice = await server.phone("alice")
    bob = chat_cli("bob")
    await bob.expect("waiting for a chat")
    await alice.setup(1, "bob")
    await alice.sig(1, "call_proc")
    await alice.sig(1, "conn")
    await alice.say(1, "hello <b>bob</b>", mime="text/html")
    await bob.expect("] hello bob")
    bob.type("hi alice & all\r")
    received = await alice.fty(1)
    assert (received["type"], received["data"]) == ("im_message", "hi alice &amp; all")
    await alice.signal(1, {"type": "rel", "cau": {"loc": 1, "num": 16}})
    await bob.expect("* chat ended: 16 normal clearing")
    # Nothing typed after the end: the client returns by itself, reading no more lines.
    assert await bob.exited() == 0
    assert_clean(bob)


async def test_a_chat_to_an_offline_unlicensed_user_names_cause_18(
    server: RunningServer, chat_cli: Start
) -> None:
    carol = chat_cli("carol", "--to", "dave")
    await carol.expect("* chat ended: 18 no user responding")
    assert await carol.exited() == 1
    assert_clean(carol)


async def test_a_licensed_user_sees_unread_messages_at_start(
    server: RunningServer, chat_cli: Start
) -> None:
    alice = await server.phone("alice")
    await alice.setup(1, "bob")  # bob is offline: the hub answers and stores (§7.5)
    await alice.sig(1, "call_proc")
    await alice.sig(1, "conn")
    for n, text in enumerate(("while you were away", "call me back")):
        await alice.say(1, text, id=f"away-{n}")
        assert (await alice.fty(1))["state"] == "stored"
    await drained(server)
    bob = chat_cli("bob")
    shown = await bob.expect("call me back")
    assert "2 unread messages from Alice" in shown, shown
    assert shown.index("while you were away") < shown.index("call me back"), shown
    await bob.expect("waiting for a chat")
    bob.type("\x04")  # Ctrl-D: done
    assert await bob.exited() == 0
    again = chat_cli("bob")
    await again.expect("waiting for a chat")
    again.type("\x04")
    assert await again.exited() == 0
    assert "unread" not in again.text, again.text  # read once shown
    assert_clean(bob)


async def test_with_to_the_last_messages_with_that_user_come_first(
    server: RunningServer, chat_cli: Start
) -> None:
    alice = await server.phone("alice")
    await alice.setup(1, "bob")
    await alice.sig(1, "call_proc")
    await alice.sig(1, "conn")
    await alice.say(1, "stored for later", id="later-1")
    assert (await alice.fty(1))["state"] == "stored"
    await alice.signal(1, {"type": "rel"})
    await drained(server)
    bob = chat_cli("bob", "--to", "alice")
    earlier = await bob.expect("stored for later")
    assert "* earlier with alice:" in earlier, earlier
    number, _ = await alice.offered()
    await alice.signal(number, {"type": "conn"})
    await bob.expect("* connected")
    bob.type("\x04")
    assert await bob.exited() == 0
    assert (await alice.sig(number, "rel"))["sig"]["type"] == "rel"
    assert_clean(bob)


async def test_a_refused_login_says_what_to_check(server: RunningServer) -> None:
    wrong = ChatTerminal("--url", server.url, "--sip", "bob", "--password", "not-bobs")
    try:
        assert await wrong.exited() == 1
        assert "check --sip, --password and --domain" in wrong.text, wrong.text
        assert_clean(wrong)
    finally:
        wrong.close()
