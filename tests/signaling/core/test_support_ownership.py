"""Strict ownership of support chats and taking a chat by writing (docs/protocol.md
12.34): the queue option ``take_on_write`` and the agent role ``supervisor``."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from config import Config, QueueConfig
from tests.signaling.core.harness import Harness, sig_of
from tests.support import make_config

JsonObject = dict[str, Any]
AGENTS = ("alice", "bob", "dave")


def _config(*, take_on_write: bool = False, supervisor: str = "dave") -> Config:
    config = make_config(idle_timeout=3600.0)
    demo = config.tenants[0]
    users = tuple(
        replace(user, role="supervisor") if user.sip == supervisor else user for user in demo.users
    )
    queues = (
        QueueConfig("desk", "Help desk", AGENTS, take_on_write=take_on_write),
        QueueConfig("sales", "Sales", ("bob",)),
    )
    tenants = (replace(demo, users=users, queues=queues), *config.tenants[1:])
    return replace(config, tenants=tenants)


def _waiting(h: Harness) -> tuple[int, dict[str, int], dict[str, int], str]:
    """carol calls the desk; every agent rings. The visitor, the agents' connections,
    their offers' numbers and the chat's confId."""
    agents = {sip: h.phone(sip) for sip in AGENTS}
    visitor = h.phone("carol")
    h.setup(visitor, 1, "desk")
    conf_id = sig_of(h.one(visitor), 1, "call_proc")["confId"]
    numbers = {sip: h.offered(conn)[0] for sip, conn in agents.items()}
    return visitor, agents, numbers, conf_id


def _fty(h: Harness, conn: int, number: int) -> list[JsonObject]:
    return [item for m in h.take(conn) if m.get("call") == number for item in sig_of(m)["fty"]]


def test_without_take_on_write_writing_into_a_ringing_chat_is_bad_state() -> None:
    h = Harness(_config())
    visitor, agents, numbers, _ = _waiting(h)
    h.say(agents["alice"], numbers["alice"], "hello?", id="a1")
    error = h.one(agents["alice"])
    assert error["mt"] == "Error" and error["code"] == "bad_state"
    h.quiet(visitor)
    h.finish()


def test_with_take_on_write_the_first_agent_who_writes_takes_the_chat() -> None:
    h = Harness(_config(take_on_write=True))
    visitor, agents, numbers, conf_id = _waiting(h)
    h.say(agents["alice"], numbers["alice"], None, typing=True)  # typing alone takes nothing
    assert h.one(agents["alice"])["code"] == "bad_state"
    (chat,) = h.switch.chat.support.chats.values()
    assert chat.call.callee is None
    h.say(agents["bob"], numbers["bob"], "Bob here", id="b1")
    bob = [item for m in h.take(agents["bob"]) for item in sig_of(m).get("fty", [])]
    assert {"type": "im_ack", "id": "b1"}.items() <= next(
        item for item in bob if item.get("type") == "im_ack"
    ).items()
    assert chat.call.callee is not None and chat.call.callee.reg.user.sip == "bob"
    sigs = [sig_of(m, 1) for m in h.take(visitor)]
    assert sigs[0]["type"] == "conn"  # the visitor is answered first, then reads bob
    texts = [item["data"] for s in sigs for item in s.get("fty", []) if "data" in item]
    assert "Bob here" in texts
    for sip in ("alice", "dave"):  # the others stop ringing: cause 26, as after a Take
        rels = [sig_of(m) for m in h.take(agents[sip]) if sig_of(m)["type"] == "rel"]
        assert rels and rels[-1]["cau"]["num"] == 26
    h.say(agents["alice"], numbers["alice"], "me too", id="a1")  # too late
    assert h.one(agents["alice"])["code"] in ("already_taken", "bad_state")
    assert conf_id == chat.call.call_id
    h.finish()


def test_only_the_owner_or_a_supervisor_closes_or_transfers_a_taken_chat() -> None:
    h = Harness(_config())
    visitor, agents, _, conf_id = _waiting(h)
    h.send(agents["alice"], {"api": "Queue", "mt": "Take", "src": "t", "confId": conf_id})
    h.take(agents["alice"]), h.take(agents["bob"]), h.take(agents["dave"]), h.take(visitor)
    close = {"api": "Queue", "mt": "Close", "src": "c", "confId": conf_id}
    h.send(agents["bob"], close)
    assert h.one(agents["bob"])["code"] == "forbidden"  # bob is an agent, not the owner
    transfer = {"api": "Queue", "mt": "Transfer", "src": "x", "confId": conf_id, "to": "sales"}
    h.send(agents["bob"], transfer)
    assert h.one(agents["bob"])["code"] == "forbidden"
    (chat,) = h.switch.chat.support.chats.values()
    assert chat.call.callee is not None and chat.call.callee.reg.user.sip == "alice"
    # dave supervises the desk: he moves alice's chat to sales (bob rings there)
    h.send(agents["dave"], transfer)
    assert h.take(agents["dave"])[-1]["mt"] == "TransferResult"
    rel = [sig_of(m) for m in h.take(agents["alice"]) if sig_of(m)["type"] == "rel"]
    assert rel[-1]["cau"]["num"] == 16
    number, _ = h.offered(agents["bob"])
    h.signal(agents["bob"], number, {"type": "conn"})
    h.take(agents["bob"]), h.take(visitor)
    h.send(agents["alice"], close)  # alice no longer has it, and sales is not hers
    assert h.one(agents["alice"])["code"] == "forbidden"
    h.send(agents["bob"], close)  # the owner closes
    assert h.take(agents["bob"])[-1]["mt"] == "CloseResult"
    assert sig_of(h.take(visitor)[-1], 1, "rel")["cau"]["num"] == 16
    h.finish()


def test_a_supervisor_closes_a_taken_chat_and_any_agent_a_waiting_one() -> None:
    h = Harness(_config())
    visitor, agents, _, conf_id = _waiting(h)
    close = {"api": "Queue", "mt": "Close", "src": "c", "confId": conf_id}
    h.send(agents["bob"], close)  # still waiting: any agent of the queue may close it
    assert h.take(agents["bob"])[-1]["mt"] == "CloseResult"
    h.take(visitor), h.take(agents["alice"]), h.take(agents["dave"])
    h.setup(visitor, 2, "desk")
    conf_id = sig_of(h.one(visitor), 2, "call_proc")["confId"]
    numbers = {sip: h.offered(conn)[0] for sip, conn in agents.items()}
    h.signal(agents["alice"], numbers["alice"], {"type": "conn"})
    h.take(agents["alice"]), h.take(agents["bob"]), h.take(agents["dave"]), h.take(visitor)
    h.send(agents["dave"], {**close, "confId": conf_id})
    assert h.take(agents["dave"])[-1]["mt"] == "CloseResult"
    rel = [sig_of(m) for m in h.take(agents["alice"]) if sig_of(m)["type"] == "rel"]
    assert rel[-1]["cau"]["num"] == 16
    h.finish()
