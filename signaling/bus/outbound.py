"""What one node writes to Redis in one pipeline, and the answers it reads back.

An entry for a node whose inbox does not exist is not written (``nomkstream``): after
Redis lost its data the target makes its inbox again at its next heartbeat, so the entry
is written again with the next pipelines, in order, until it is placed or the target has
had no inbox for ``give_up`` seconds (then the target counts as gone).

A ``Batch`` collects, between two turns of the writer, the registrations (and their
snapshots) written or withdrawn, the presence shares written, the frames for each other
node, the lookups, recalls and claims, the users whose presence to read (``presence``),
and who waits for all of it to be in Redis (``waiters``). ``Outbound`` numbers the frames
into stream entries (at most ``ENTRY_FRAMES`` frames each; delivery reports next to each
other, made by several entries read in one turn, as one: they are cumulative), fills the
pipeline, runs it until Redis has taken it, and turns the replies into the switch's
``LookedUp``, ``Recalled`` and ``Claimed`` (the presence reads' into ``PresenceShares``,
in ``presence``). A command Redis refuses (a key of the wrong type, out of memory) costs
that command only: it is logged and counted, a lookup it belonged to finds nothing, a
recall no snapshot, and a claim is refused; only a broken connection makes the batch go
again, whole, with the same entry numbers (and the same questions: a recall that ran
before the connection broke finds its own mark on the snapshot, and gets it again).

It also keeps the claims this run holds, so that they can be written again after Redis
lost them (``reassert``). An entry for a run whose reset this run heard (``fence``)
carries that run's epoch (``e``); ``restart`` numbers a target's entries from 1 again,
after this run fenced itself (its reset goes first). While the run is fenced, a batch
waits (``open``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import orjson
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from signaling.core.actions import Claim, Claimed, LookedUp, Lookup, Recall, Recalled
from signaling.core.nodes.frames import DeviceRecord, NodeFrame, Reached, Snapshot
from signaling.core.registry import UserKey

from . import keys
from .codec import decode_record, decode_snapshot, encode_frames
from .errors import BadFrame
from .redis_book import RECALL, Op, taken_mark
from .stats import BusStats

__all__ = ["ENTRY_FRAMES", "Batch", "Outbound", "join_reports"]

log = logging.getLogger(__name__)

ENTRY_FRAMES = 1000
"""Frames in one stream entry at most: after a long wait for Redis, a node's backlog
reaches another as several entries, never as one that stalls its loop."""

_CLAIM = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1
   or redis.call('SCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('SADD', KEYS[1], ARGV[1])
  redis.call('SADD', KEYS[2], KEYS[1])
  return {1, redis.call('SMEMBERS', KEYS[1])}
end
return {0, redis.call('SMEMBERS', KEYS[1])}
"""
"""Add the member if the set holds fewer than the limit: one atomic step."""

Question = Lookup | Recall | Claim

_BROKEN = (RedisConnectionError, RedisTimeoutError, OSError)
"""What makes a batch go again: the connection, not a command."""


class Batch:
    """What one pipeline carries; kept whole until Redis took it."""

    __slots__ = (
        "cut",
        "entries",
        "frames",
        "ops",
        "questions",
        "reads",
        "reports",
        "shares",
        "waiters",
    )

    def __init__(self) -> None:
        self.ops: list[Op] = []
        self.frames: dict[str, list[NodeFrame]] = {}
        self.entries: list[tuple[str, dict[str, Any]]] = []
        self.questions: list[Question] = []
        self.shares: list[UserKey] = []
        """Users whose presence share this batch writes (among ``ops``)."""
        self.reads: dict[UserKey, None] = {}
        """Users whose presence to read after the writes, each once, in order."""
        self.waiters: list[asyncio.Future[None]] = []
        """Done once Redis has taken this batch."""
        self.cut = False
        """The run fenced itself since the batch was filled: its next try leaves out the
        entries with frames (``drop_frames``)."""
        self.reports = 0
        """Delivery reports among ``frames`` (``report_pace``)."""

    def __bool__(self) -> bool:
        return bool(
            self.frames or self.ops or self.questions or self.entries or self.reads or self.waiters
        )

    def frame_count(self) -> int:
        return sum(len(frames) for frames in self.frames.values())

    def drop_frames(self) -> None:
        """Leave out the entries carrying frames; resets (``fence``) stay."""
        self.entries[:] = [(target, entry) for target, entry in self.entries if "r" in entry]
        self.cut = False


class Outbound:
    def __init__(
        self,
        redis: Any,
        address: str,
        inbox_max: int,
        stats: BusStats,
        give_up: float,
        *,
        read_presence: Callable[[Any, Batch], None],
        heard: dict[str, int] | None = None,
        open_: asyncio.Event | None = None,
    ) -> None:
        """``read_presence`` queues a batch's presence reads after its questions
        (``presence``); ``heard``: the epoch of each run's last reset (``Inbound.heard``);
        ``open_``: set while the run may write (``Fence.open``)."""
        self._redis = redis
        self._heard = heard if heard is not None else {}
        self._open = open_
        self.give_up = give_up
        """Seconds an entry waits for its target's inbox to exist again before the
        target counts as gone."""
        self._unplaced_since: dict[str, float] = {}
        self._address = address
        self._inbox_max = inbox_max
        self._stats = stats
        self._claim = redis.register_script(_CLAIM)
        self._numbers: dict[str, int] = {}
        """The last entry number written per target."""
        self.held: dict[str, set[str]] = {}
        """Claims this run holds: the core's key -> members."""
        self._read_presence = read_presence

    def forget(self, target: str) -> None:
        self._numbers.pop(target, None)
        self._unplaced_since.pop(target, None)

    def targets(self) -> set[str]:
        """The runs this run has written entries to."""
        return set(self._numbers)

    def restart(self, target: str) -> None:
        """The next entry for ``target`` is number 1 (it hears this run's reset first)."""
        self._numbers.pop(target, None)

    def unclaimed(self, key: str, member: str) -> None:
        members = self.held.get(key)
        if members is not None:
            members.discard(member)
            if not members:
                del self.held[key]

    def reassert(self) -> list[Op]:
        """Writes that hold this run's claims again (Redis lost them)."""
        index = keys.node_claims(self._address)
        return [
            _hold(keys.claim_set(key), member, index)
            for key, members in self.held.items()
            for member in members
        ]

    def number(self, batch: Batch) -> None:
        """Encode each target's frames as numbered entries (after those written again)."""
        before = len(batch.entries)
        for target, given in batch.frames.items():
            frames = join_reports(given)
            for start in range(0, len(frames), ENTRY_FRAMES):
                number = self._numbers.get(target, 0) + 1
                self._numbers[target] = number
                chunk = frames[start : start + ENTRY_FRAMES]
                entry = {"n": self._address, "s": number, "f": encode_frames(chunk)}
                epoch = self._heard.get(target)
                if epoch:
                    entry["e"] = epoch
                batch.entries.append((target, entry))
        stats = self._stats
        count = batch.frame_count()
        stats.frames_out += count
        stats.entries_out += len(batch.entries) - before
        stats.pipelines += 1
        stats.largest_pipeline = max(stats.largest_pipeline, count)

    async def execute(self, batch: Batch) -> tuple[list[Any], list[Any]]:
        """Run the batch's pipeline until Redis took it: the replies to its entries
        (``None`` where the target's inbox does not exist) and to its questions."""
        delay = 0.05
        while True:
            if self._open is not None:
                await self._open.wait()  # the batch goes once the run is back
            if batch.cut:
                batch.drop_frames()
            pipe = self._redis.pipeline(transaction=False)
            first = self._fill(pipe, batch)
            try:
                results: list[Any] = await pipe.execute(raise_on_error=False)
            except _BROKEN as exc:
                log.warning("cluster: Redis write failed (%s); retrying in %.2f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            for result in results[:first]:
                if isinstance(result, Exception):
                    self._stats.refused += 1
                    log.error("cluster: Redis refused a write: %s", result)
            placed = first - len(batch.entries)
            return results[placed:first], results[first:]

    def unplaced(
        self, batch: Batch, replies: list[Any], now: float, dead: set[str]
    ) -> tuple[list[tuple[str, dict[str, Any]]], set[str]]:
        """Entries whose target's inbox did not exist, to be written again (from the
        first such entry of each target on, in order: copies are dropped by number), and
        the targets that have had no inbox for longer than ``give_up`` seconds."""
        again: list[tuple[str, dict[str, Any]]] = []
        missing: set[str] = set()
        for (target, entry), reply in zip(batch.entries, replies, strict=True):
            if target in dead:
                continue
            if reply is None or target in missing:
                missing.add(target)
                again.append((target, entry))
        for target in list(self._unplaced_since):
            if target not in missing:
                del self._unplaced_since[target]
        lost = set()
        for target in missing:
            since = self._unplaced_since.setdefault(target, now)
            if now - since > self.give_up:
                lost.add(target)
        return [(t, e) for t, e in again if t not in lost], lost

    @staticmethod
    def asked(batch: Batch) -> int:
        """How many replies the batch's questions have (the presence reads follow them)."""
        return sum(len(q.sips) if type(q) is Lookup else 1 for q in batch.questions)

    def _fill(self, pipe: Any, batch: Batch) -> int:
        for op in batch.ops:
            op(pipe)
        for target, entry in batch.entries:
            # never make the stream: a run's inbox exists while it lives (its own start
            # makes it, and again after Redis lost it); a dead run's, once the janitor
            # deleted it, stays gone
            inbox = keys.inbox(target)
            pipe.xadd(inbox, entry, maxlen=self._inbox_max, approximate=True, nomkstream=True)
        first = len(pipe)
        index = keys.node_claims(self._address)
        for question in batch.questions:
            if type(question) is Lookup:
                for sip in question.sips:
                    pipe.hgetall(keys.registrations(question.domain, sip))
            elif type(question) is Recall:  # EVAL: no SCRIPT EXISTS round trip first
                token, mark = keys.token(question.key), taken_mark(self._address, question.request)
                pipe.eval(RECALL, 1, token, question.domain, question.sip, mark)
            else:
                assert type(question) is Claim
                pipe.scripts.add(self._claim)
                claim = keys.claim_set(question.key)
                pipe.evalsha(self._claim.sha, 2, claim, index, question.member, question.limit)
        if batch.reads:
            self._read_presence(pipe, batch)
        return first

    def answers(
        self, batch: Batch, results: list[Any], dead: set[str]
    ) -> list[LookedUp | Recalled | Claimed]:
        answers: list[LookedUp | Recalled | Claimed] = []
        index = 0
        for question in batch.questions:
            if type(question) is Lookup:
                replies = results[index : index + len(question.sips)]
                index += len(question.sips)
                answers.append(LookedUp(question.request, self._records(replies, dead)))
                continue
            reply = results[index]
            index += 1
            if type(question) is Recall:
                answers.append(Recalled(question.request, self._snapshot(reply)))
            else:
                assert type(question) is Claim
                answers.append(self._claimed(question, reply))
        return answers

    def _snapshot(self, reply: Any) -> Snapshot | None:
        """A recalled snapshot (None: no such token, or another user's)."""
        if isinstance(reply, Exception):
            self._stats.refused += 1
            log.error("cluster: Redis refused a recall: %s", reply)
            return None
        if reply is None:
            return None
        try:
            return decode_snapshot(reply)
        except BadFrame as exc:
            log.error("cluster: a malformed snapshot in Redis: %s", exc)
            return None

    def _claimed(self, question: Claim, reply: Any) -> Claimed:
        if isinstance(reply, Exception):
            self._stats.refused += 1
            log.error("cluster: Redis refused a claim of %s: %s", question.key, reply)
            return Claimed(question.request, False, ())
        granted, members = reply
        holders = tuple(sorted(_text(member) for member in members))
        if granted:
            self.held.setdefault(question.key, set()).add(question.member)
        return Claimed(question.request, bool(granted), holders)

    def _records(self, replies: list[Any], dead: set[str]) -> tuple[DeviceRecord, ...]:
        """The registrations in ``replies``, but for those of runs known dead (the
        janitor may not have removed them yet)."""
        found: list[DeviceRecord] = []
        for reply in replies:
            if isinstance(reply, Exception):
                self._stats.refused += 1
                log.error("cluster: Redis refused a lookup: %s", reply)
                continue
            for value in reply.values():
                try:
                    record = decode_record(orjson.loads(value))
                except (ValueError, TypeError, BadFrame) as exc:
                    log.error("cluster: a malformed registration in Redis: %s", exc)
                    continue
                if record.node not in dead:
                    found.append(record)
        return tuple(found)


def join_reports(frames: list[NodeFrame]) -> list[NodeFrame]:
    """``frames`` with each run of delivery reports made one, the highest seq per leg (a
    node reading several entries in one turn reports each; docs 12.39)."""
    if not any(type(frame) is Reached for frame in frames):
        return frames
    joined: list[NodeFrame] = []
    for frame in frames:
        last = joined[-1] if joined else None
        if type(frame) is Reached and type(last) is Reached:
            legs = {(device, leg): seq for device, leg, seq in last.legs}
            for device, leg, seq in frame.legs:
                legs[device, leg] = max(seq, legs.get((device, leg), 0))
            frame = Reached(tuple((device, leg, seq) for (device, leg), seq in legs.items()))
            joined[-1] = frame
        else:
            joined.append(frame)
    return joined


def _hold(claim: str, member: str, index: str) -> Op:
    def write(pipe: Any) -> None:
        pipe.sadd(claim, member)
        pipe.sadd(index, claim)

    return write


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
