"""Every frame the core sends to a client, one builder per kind (PROTOCOL §4-§9).

Theory of operation: the parts of the core decide *what* to say; the builders here say it
in the wire's words, so that a kind of frame has exactly one shape (a setup offer looks
the same whether a caller, a group, a queue or a resume made it). They are plain
functions of plain values, returning fresh dicts (``Signaling`` bodies, facility items,
``Post`` messages) that ``wire.Wire`` or the outbox encodes.

The one exception to "a dict, encoded later" is the hot path: ``relay_text`` builds the
relayed ``im_message`` frame of a connected one-to-one call as text, from a head cached
on the receiving leg (§4.6); ``relayed_item`` is the same message as a dict for every
other route (held until ``conn``, groups, replays, application data), and a test holds
the two to the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from config import UserConfig

from .calls import Leg, Line
from .codec import encode, encode_string
from .delivery_state import Delivery
from .messages import Cause, ImMessage, Sig

__all__ = [
    "HUB_FTY",
    "ack_text",
    "board",
    "call_proc",
    "conn",
    "disc_of",
    "endpoint",
    "facilities",
    "facility",
    "im_ack",
    "im_seen",
    "leg_ack_text",
    "line_item",
    "name_identification",
    "post_from",
    "post_head",
    "rel",
    "relay_text",
    "relayed_item",
    "resumed_presence_setup",
    "setup_offer",
    "signaling",
    "system_message",
    "typing",
    "with_ids",
]

JsonObject = dict[str, Any]

HUB_FTY = frozenset(
    {
        "im_setup",
        "name_identification",
        "im_ack",
        "im_seen",
        "resumed",
        "presence_notify",
        "presence_publish",
        "queue",
    }
)
"""Facility types only the hub writes: a client's copies are dropped, never passed on,
so no peer can fake a name, an acknowledgement or a presence state."""

RESUMED: JsonObject = {"type": "resumed"}


# -- envelopes ------------------------------------------------------------------------------


def signaling(src: object, number: int, sig: JsonObject) -> JsonObject:
    """The ``PbxSignal`` ``Signaling`` envelope of ``sig`` for call ``number``."""
    message: JsonObject = {"api": "PbxSignal", "mt": "Signaling"}
    if src is not None:
        message["src"] = src
    message["call"] = number
    message["sig"] = sig
    return message


def facility(item: JsonObject) -> JsonObject:
    return {"type": "facility", "fty": [item]}


def facilities(items: list[JsonObject]) -> JsonObject:
    """Several facility items in one frame (a client's own, passed on untouched)."""
    return {"type": "facility", "fty": items}


def board(src: object, mt: str, body: JsonObject) -> JsonObject:
    """An ``api:"Queue"`` update of a support board (§9.3)."""
    message: JsonObject = {"api": "Queue", "mt": mt}
    if src is not None:
        message["src"] = src
    message.update(body)
    return message


def with_ids(sig: JsonObject, leg: Leg) -> JsonObject:
    """``sig`` addressed to one leg: its ``callId`` and the conversation's ``confId``."""
    return {**sig, **leg.ids()}


# -- call control ---------------------------------------------------------------------------


def endpoint(sip: str, num: str) -> JsonObject:
    return {"sip": sip, "num": num} if num else {"sip": sip}


def name_identification(name: str) -> JsonObject:
    return {"type": "name_identification", "name": name}


def setup_offer(
    cg: JsonObject | None, cd: JsonObject, name: str, extra: Iterable[JsonObject] = ()
) -> JsonObject:
    """A chat ``setup`` the hub sends a device: a caller's offer, a group's, a queue's, or
    one offered again after a resume (``extra`` ends with ``resumed`` then)."""
    setup: JsonObject = {"type": "setup", "channel": 0}
    if cg is not None:
        setup["cg"] = cg
    setup["cd"] = cd
    setup["fty"] = [{"type": "im_setup"}, name_identification(name), *extra]
    return setup


def resumed_presence_setup(watched: UserConfig) -> JsonObject:
    """A presence subscription offered again after a resume (§4.9, §4.10)."""
    return {
        "type": "setup",
        "channel": 0,
        "cd": endpoint(watched.sip, watched.num),
        "fty": [{"type": "presence_subscribe"}, RESUMED],
    }


def call_proc(leg: Leg) -> JsonObject:
    """The hub's answer to a caller's ``setup`` it takes on: the call is being placed."""
    return with_ids({"type": "call_proc"}, leg)


def conn(name: str | None = None) -> JsonObject:
    """``conn`` to a caller, naming who answered (none for a presence subscription)."""
    if name is None:
        return {"type": "conn"}
    return {"type": "conn", "fty": [name_identification(name)]}


def rel(cause: Cause) -> JsonObject:
    return {"type": "rel", "cau": cause.to_json()}


def disc_of(sig: Sig) -> JsonObject:
    """What the other side hears of a client's ``disc`` (or ``progress`` with a cause)
    before its ``rel``: the same type and documented fields, and the facilities a peer
    may see; the cause is set where it is sent."""
    disc: JsonObject = {"type": sig.type, **(sig.fields or {})}
    passed = [item for item in sig.fty if item["type"] not in HUB_FTY]
    if passed:
        disc["fty"] = passed
    return disc


# -- messages -------------------------------------------------------------------------------


def im_ack(
    message_id: str | None,
    state: str,
    *,
    seq: int | None = None,
    time: int | None = None,
) -> JsonObject:
    """What became of a client's message (§4.6): ``state``, and ``seq``/``time`` once it
    has them (an ``id`` unless the message had none)."""
    ack: JsonObject = {"type": "im_ack"}
    if message_id is not None:
        ack["id"] = message_id
    if seq is not None:
        ack["seq"] = seq
    if time is not None:
        ack["time"] = time
    ack["state"] = state
    return ack


def ack_text(src: object, number: int, ids: list[str], seq: int, time: int, state: str) -> str:
    """The frame of a run of acks (docs/protocol.md 12.31): one id in the single form of
    §4.6, byte for byte; several as ``ids``, oldest first, whose seqs run up by one to
    ``seq``, all with the same ``time`` and ``state``.

    Built from pieces, as ``relay_text`` is: an acked message costs this frame besides
    its relay, and ``encode`` of the nested dicts was the largest single cost of an acked
    message in the core (docs/benchmarks.md). Byte for byte what ``encode`` makes of
    ``signaling(src, number, facility(...))`` of the ack item (a test holds it to that).
    """
    if len(ids) == 1:
        named = '"id":' + encode_string(ids[0])
    else:
        named = '"ids":[' + ",".join([encode_string(one) for one in ids]) + "]"
    return (
        f"{_ack_head(src, number)}{named},"
        f'"seq":{seq},"time":{time},"state":{encode_string(state)}}}]}}}}'
    )


def leg_ack_text(leg: Leg, message_id: str, seq: int, time: int, state: str) -> str:
    """``ack_text`` of one id for ``leg``: every acked message costs this frame, and all
    of it up to the id depends on the leg alone, so that part is built once and kept on
    the leg (``ack_head``) while its ``src`` and call number stay (a test holds the two
    to the same bytes)."""
    src, number, head = leg.reg.src, leg.number, leg.ack_head
    if head is None or head[0] is not src or head[1] != number:
        head = leg.ack_head = (src, number, _ack_head(src, number))
    tail = _STATE_TAILS.get(state)
    if tail is None:
        tail = _state_tail(state)
    return f'{head[2]}"id":{encode_string(message_id)},"seq":{seq},"time":{time}{tail}'


def _state_tail(state: str) -> str:
    """An ``im_ack`` frame from its state to its end."""
    return f',"state":{encode_string(state)}}}]}}}}'


_STATE_TAILS = {state.value: _state_tail(state.value) for state in Delivery}
"""The end of an ``im_ack`` frame for each state, built once (a state is one of few)."""


def _ack_head(src: object, number: int) -> str:
    """An ``im_ack`` frame up to its id(s): the envelope, the facility, the item's type."""
    if src is None:
        origin = ""
    else:  # nearly always a string: its encoding without the encoder's dispatch
        origin = '"src":' + (encode_string(src) if type(src) is str else encode(src)) + ","
    return (
        f'{{"api":"PbxSignal","mt":"Signaling",{origin}"call":{number},'
        '"sig":{"type":"facility","fty":[{"type":"im_ack",'
    )


def im_seen(seq: int) -> JsonObject:
    return {"type": "im_seen", "seq": seq}


def typing(user: UserConfig, on: bool) -> JsonObject:
    return {"type": "im_message", "typing": on, "sender": user.sip, "sender_dn": user.dn}


def relayed_item(
    user: UserConfig,
    time: int,
    seq: int,
    data: str,
    attach: str | None,
    subject: str | None,
    mime: str = "text/html",
) -> JsonObject:
    """The ``im_message`` as receivers get it (PROTOCOL §12.5), as a dict."""
    item: JsonObject = {
        "type": "im_message",
        "sender": user.sip,
        "sender_dn": user.dn,
        "time": time,
        "seq": seq,
        "mime": mime,
        "data": data,
    }
    if attach is not None:
        item["attach"] = attach
    if subject is not None:
        item["subject"] = subject
    return item


def line_item(line: Line) -> JsonObject:
    """A transcript line as it was relayed (replays, transfers, late group devices)."""
    return relayed_item(line.user, line.time, line.seq, line.html, line.attach, line.subject)


def system_message(sender: UserConfig, time: int, html: str) -> JsonObject:
    """A message of the hub's own (§9.5): no ``seq``, marked ``system``."""
    return {
        "type": "im_message",
        "sender": sender.sip,
        "sender_dn": sender.dn,
        "time": time,
        "mime": "text/html",
        "data": html,
        "system": True,
    }


def relay_text(sender: Leg, receiver: Leg, time: int, seq: int, html: str, raw: ImMessage) -> str:
    """The relayed ``Signaling`` frame, built from pieces (the hot path, §4.6).

    Byte for byte what ``encode`` makes of ``relayed_item`` in its envelope (a test holds
    it to that): everything up to ``"time":`` is fixed for the receiving leg, so it is
    encoded once and kept on the leg until its ``src`` or the sender's name changes.
    """
    head = receiver.relay_head
    src = receiver.reg.src
    if head is None or head[0] is not src:
        envelope: JsonObject = {"api": "PbxSignal", "mt": "Signaling"}
        if src is not None:
            envelope["src"] = src
        envelope["call"] = receiver.number
        user = sender.reg.user
        head = receiver.relay_head = (
            src,
            encode(envelope)[:-1]
            + ',"sig":{"type":"facility","fty":[{"type":"im_message","sender":'
            + encode_string(user.sip)
            + ',"sender_dn":'
            + encode_string(user.dn)
            + ',"time":',
        )
    text = f'{head[1]}{time},"seq":{seq},"mime":"text/html","data":{encode_string(html)}'
    if raw.attach is not None:
        text += ',"attach":' + encode_string(raw.attach)
    if raw.subject is not None:
        text += ',"subject":' + encode_string(raw.subject)
    return text + "}]}}"


def fanout_text(receiver: Leg, body: str) -> str:
    """A group's relayed frame for one member device: the leg's envelope around ``body``,
    the ``im_message`` item encoded once for every member (§7.6, the hot path of a group).

    Byte for byte what ``encode`` makes of ``signaling(src, number, facility(item))``.
    Everything before the item depends only on the receiving leg, so it is encoded once
    and kept in the leg's ``relay_head`` until its ``src`` changes: a group's leg never
    carries a one-to-one relay's head (that one names the only sender, a group has many).
    """
    head = receiver.relay_head
    src = receiver.reg.src
    if head is None or head[0] is not src:
        envelope: JsonObject = {"api": "PbxSignal", "mt": "Signaling"}
        if src is not None:
            envelope["src"] = src
        envelope["call"] = receiver.number
        head = receiver.relay_head = (
            src,
            encode(envelope)[:-1] + ',"sig":{"type":"facility","fty":[',
        )
    return f"{head[1]}{body}]}}}}"


def post_head(
    *,
    domain: str,
    author: UserConfig,
    topic: str,
    peer: str | None,
    peer_dn: str,
    sides: list[str] | None,
) -> JsonObject:
    """The fields a Post (PROTOCOL §7.3) starts with, the same for every message its
    writer sends on one call: a leg keeps them (``Leg.post_head``) and ``post_from`` adds
    the message's own. ``peer`` is the other side of a one-to-one chat, None for a
    group's (whose sip is then the ``topic``)."""
    head: JsonObject = {"mt": "Post", "type": 1, "domain": domain}
    head.update({"author": author.sip, "dn": author.dn, "topic": topic})
    if peer is not None:
        head["peer"] = peer
    head.update({"peer_dn": peer_dn, "grp": peer is None})
    if sides is not None:
        head["sides"] = sides
    return head


def post_from(
    head: JsonObject,
    text: str,
    call_id: str,
    seq: int,
    time_ms: int,
    attach: str | None,
    message_id: str | None,
    writer: str | None,
) -> JsonObject:
    """A Post: ``head`` (``post_head``; neither it nor its ``sides`` list is changed, as
    every Post of the leg shares them) and one message's fields, in the order the
    service and the journal have always seen them; a ``writer`` is named when an agent
    wrote as its queue (its id is the agent's, 12.21)."""
    message = {**head, "text": text, "callId": call_id, "seq": seq, "time": time_ms}
    if attach is not None:
        message["attach"] = attach
    if message_id is not None:
        message["id"] = message_id
        if writer is not None:
            message["writer"] = writer
    return message
