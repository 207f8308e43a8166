"""Client message ids per sender, across calls (PROTOCOL §4.6 revised, docs 12.21).

Why: a client that lost the acknowledgement of a message resends it with the same id,
and after a reconnect or a hub restart necessarily on a *new* call. The per-call memory
(``Call.acks``) cannot recognise it there; this one can. It holds, for each stored
(licensed) message with an id, the ``AckRecord`` its writer was answered with, keyed by
tenant, sender and id, so that a resend from any call or device of that user is
answered with the original ``seq``, ``time`` and state and relayed to nobody.

The records are the very objects the calls keep, so a state that moves on (``pending``
to ``stored``) is seen here too. Memory is bounded twice: entries older than the
messages service's key lifetime are dropped, and past ``capacity`` the oldest go first.
What this memory has forgotten the messages service still catches: it stores nothing
twice and answers such a Post with the original (``PostResult.original``), and the hub
then corrects the writer's ack (``Acks.duplicate`` in ``chat/delivery.py``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from .calls import AckRecord
from .clock import Clock
from .delivery_state import Delivery

__all__ = ["SenderIds", "SenderKey", "sender_key", "stored_record"]

SenderKey = tuple[str, str, str]
"""(tenant, sender sip, client message id)."""

_SWEEP = 256
"""Expired records dropped by one put at most: a day's ids expiring in the same second
are dropped over the next puts, never in one long stall of the loop."""


class SenderIds:
    """An ``OrderedDict``, oldest first. Under load it sits at its cap and every put
    evicts the oldest, so a put is on the stored path of every message: it evicts with
    one ``popitem``, and looks for expired records at the head only once a second (a
    record's time is in whole seconds), however many puts come in between."""

    __slots__ = ("_capacity", "_clock", "_entries", "_next_sweep", "_ttl")

    def __init__(self, capacity: int, ttl: float, clock: Clock) -> None:
        self._capacity = capacity
        self._ttl = ttl
        self._clock = clock
        self._entries: OrderedDict[SenderKey, AckRecord] = OrderedDict()
        self._next_sweep = float("-inf")

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[SenderKey]:
        return iter(self._entries)

    def get(self, domain: str, sip: str, message_id: str) -> AckRecord | None:
        """The live record of this id, if any. A message reported ``not_delivered`` was
        neither relayed nor stored: its id is free for the resend."""
        record = self._entries.get((domain, sip, message_id))
        if record is None or record.state == Delivery.NOT_DELIVERED or self._expired(record):
            return None
        return record

    def put(self, domain: str, sip: str, message_id: str, record: AckRecord) -> None:
        if not self._capacity:
            return
        born = self._clock.wall() - self._ttl  # records older than this are expired
        if record.time < born:
            return  # a journal's Post older than the key lifetime
        entries = self._entries
        key = (domain, sip, message_id)
        if key in entries:  # put again (a correction): it is the newest now
            entries.move_to_end(key)
        entries[key] = record
        if len(entries) > self._capacity:
            entries.popitem(last=False)
        if born >= self._next_sweep:
            done = self._sweep(born)  # else the next put goes on with it
            self._next_sweep = born + 1.0 if done else born

    def _sweep(self, born: float) -> bool:
        """Drop expired records, oldest first, ``_SWEEP`` at most; True when none is left."""
        entries = self._entries
        for _ in range(_SWEEP):
            if not entries or next(iter(entries.values())).time >= born:
                return True
            entries.popitem(last=False)
        return not entries or next(iter(entries.values())).time >= born

    def _expired(self, record: AckRecord) -> bool:
        return record.time < self._clock.wall() - self._ttl


def sender_key(message: dict[str, Any]) -> SenderKey | None:
    """Whose client id a Post carries: (tenant, writer, id); the writer is the author
    unless an agent wrote as its queue (``writer``, docs 12.21)."""
    message_id, domain = message.get("id"), message.get("domain")
    writer = message.get("writer", message.get("author"))
    if isinstance(message_id, str) and isinstance(domain, str) and isinstance(writer, str):
        return (domain, writer, message_id)
    return None


def stored_record(fields: dict[str, Any]) -> AckRecord | None:
    """``stored`` with the ``seq`` and ``time`` (ms) of a Post or of a PostResult's
    ``original``."""
    seq, time_ms = fields.get("seq"), fields.get("time")
    if type(seq) is int and type(time_ms) is int:
        return AckRecord(seq, time_ms // 1000, Delivery.STORED)
    return None
