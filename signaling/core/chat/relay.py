"""Where a message is relayed: facility, fragments, im_message, typing, application data (§4.6).

Theory of operation: a client's ``facility`` on its leg carries ``im_message`` items
(text, typing, ``more`` fragments, application data) and other facilities. A message
that passes the cheap refusals (a retry, the size, a reader that is not keeping up, the
hold limits) is sanitized once, numbered with the call's next ``seq``, kept in the
transcript, and then, by where the receiver is:

- connected: sent at once as text built from pieces (``frames.relay_text``), ``delivered``
  (``sent`` for a device on another switch, until its switch reports it, docs 12.39);
- away (detached, resuming): kept for the replay, ``held``;
- not answered yet: held until ``conn``, ``held``;
- an offline licensed user the hub answered for: ``pending`` until the Post is on disk.

What becomes of it is decided and told in ``delivery.py``; a group's messages go to
``group_calls.py``. Typing is relayed, never kept; the hub owns its expiry.

Hot path: ``facility`` on a connected call -> ``message`` -> one ``sanitize`` (free for
text without markup) -> one encode per receiving leg -> ``Acks.decided``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from config import SignalingConfig

from ..calls import Call, Fragments, HeldMessage, Leg, Line
from ..callstate import Event, LegState, Role
from ..clock import Clock
from ..delivery_state import Delivery
from ..errors import BadMime, MessageTooBig
from ..frames import HUB_FTY, facilities, relay_text, relayed_item, typing
from ..messages import ImMessage, Sig
from ..outbox import Outbox
from ..presence import Presence
from ..sanitize import is_opaque, sanitize
from ..support_chat import preview_of
from ..timers import TimerQueue
from ..wire import Wire
from .delivery import Acks
from .group_calls import GroupCalls
from .legs import Legs
from .text import utf8_len

__all__ = ["Relay", "listeners"]

JsonObject = dict[str, Any]

# The states as module constants: a global is cheaper to read than an enum's member on the
# hot path (PROTOCOL §4.6; the figures are in docs/benchmarks.md).
_DELIVERED, _HELD, _PENDING = Delivery.DELIVERED, Delivery.HELD, Delivery.PENDING
_RELEASED = LegState.RELEASED


class Relay:
    def __init__(
        self,
        *,
        wire: Wire,
        outbox: Outbox,
        legs: Legs,
        acks: Acks,
        groups: GroupCalls,
        presence: Presence,
        timers: TimerQueue,
        clock: Clock,
        config: SignalingConfig,
        max_message: int,
        congested: Callable[[int, int], bool],
        drop_slow: Callable[[int], None],
        first_words: Callable[[Call], None] = lambda call: None,
    ) -> None:
        self._wire = wire
        self._out = outbox
        self._legs = legs
        self._acks = acks
        self._groups = groups
        self._presence = presence
        self._timers = timers
        self._clock = clock
        self._config = config
        self._max_message = max_message
        self._congested = congested
        self._drop_slow = drop_slow
        self._first_words = first_words
        """Told when a support chat's visitor writes for the first time (its preview)."""
        self._keep = config.transcript_messages
        self._keep_bytes = config.transcript_bytes
        self._resumable = config.resume_grace > 0
        """Transcripts serve resumes and transfers: without resume, only support calls
        keep one."""
        self._keep_every = bool(self._keep) and self._resumable
        """Every call keeps a transcript (the default): one test a message."""
        self.messages = 0
        """Chat messages accepted (given a seq) since start, for ``/metrics``."""

    # -- a client's facility ------------------------------------------------------------------

    def facility(self, leg: Leg, sig: Sig) -> None:
        for message in sig.messages:
            self.write(leg, message)
            if leg.state is _RELEASED:
                return None  # e.g. the receiver was cut off: the rest has nowhere to go
        if sig.fty:
            self._other_facilities(leg, sig.fty)

    def _other_facilities(self, leg: Leg, fty: Iterable[JsonObject]) -> None:
        call = leg.call
        if call.caller_user.sip == call.callee_user.sip:  # §4.10: a call to oneself
            for item in fty:
                if item["type"] == "presence_publish":
                    self._presence.publish(leg.reg, item)
        peer = call.peer(leg)
        passed = [item for item in fty if item["type"] not in HUB_FTY]
        if peer is not None and passed and not peer.parked:  # unknown facilities travel
            self._wire.sig(peer, facilities(passed))  # untouched (never kept)

    def signal(self, leg: Leg, event: Event, sig: Sig) -> None:
        """``info``, ``user_info``, ``channels`` between connected legs, ``progress`` from
        a ringing device to the caller (docs/protocol.md 12.25): the documented fields as
        checked by the codec, nothing kept. Nobody to hear it (a group's offer, an offline
        callee answered by the hub, a device away) is no error."""
        call = leg.call
        out: JsonObject = {"type": sig.type, **(sig.fields or {})}
        if event is Event.PROGRESS:
            caller = call.caller
            if call.group is None and caller is not None and not caller.parked:
                self._legs.hub_event(caller, Event.PROGRESS, out)
            return None
        for receiver in listeners(leg):
            if not receiver.parked:
                self._wire.sig(receiver, out)

    def write(self, leg: Leg, message: ImMessage) -> None:
        """One ``im_message`` item of a client's (or of its ``setup``)."""
        data = message.data
        if data is None:
            if message.typing is not None:  # typing only (``ImMessage.is_typing_only``)
                return self.typing(leg, bool(message.typing))
            if message.attach is None and leg.fragments is None:
                return None  # neither text, typing nor attachment: nothing to relay
            data = ""  # an attachment alone, or the data-less last fragment
        if message.more or leg.fragments is not None:
            return self._fragment(leg, message, data)
        self.message(leg, data, message.mime, message.id, message)

    def _fragment(self, leg: Leg, message: ImMessage, data: str) -> None:
        """Join ``more`` fragments; the joined data obeys ``limits.max_message`` (§4.6)."""
        parts = leg.fragments
        if parts is None:
            parts = leg.fragments = Fragments([], 0, message.mime, message.id)
        if not message.more:
            leg.fragments = None
        if parts.discarding:
            return None  # the rest of a message already refused as too big
        parts.size += utf8_len(data)
        if parts.size > self._max_message:
            parts.discarding = message.more
            parts.parts.clear()
            raise MessageTooBig(f"message data above {self._max_message} bytes")
        parts.parts.append(data)
        if not message.more:
            joined = "".join(parts.parts)
            self.message(leg, joined, parts.mime, parts.id or message.id, message)

    # -- one whole message --------------------------------------------------------------------

    def message(
        self, leg: Leg, data: str, mime: str | None, message_id: str | None, raw: ImMessage
    ) -> None:
        if message_id is not None and self._acks.answered(leg, message_id):
            return None  # a retry (§4.6)
        size = utf8_len(data)
        if size > self._max_message:
            raise MessageTooBig(f"message data above {self._max_message} bytes")
        if is_opaque(mime):
            assert mime is not None
            return self._app_data(leg, data, mime, message_id, raw)
        call = leg.call
        if call.group is not None:
            return self._group_message(leg, data, mime, raw, message_id)
        peer = call.peer(leg)
        parked = peer is not None and peer.parked
        if peer is not None and not parked:  # a reader that is not keeping up is cut off
            if self._congested(conn := peer.reg.conn, self._out.pending(conn)):
                return self._cut_off(leg, conn, message_id)
        elif self._no_room(leg, peer, size, message_id):
            return None
        html = sanitize(data, mime)  # after the cheap refusals: bleach is the costly part
        wall = self._clock.wall()
        now, wall_ms = int(wall), int(wall * 1000)
        seq = call.next_seq()
        self.messages += 1
        kept = size if html is data else utf8_len(html)  # text without markup: the same
        self._keep_line(leg, seq, now, wall_ms, html, raw, message_id, kept)
        if peer is not None and not parked:  # the hot path: straight to the connected peer
            state = self._wire.relay(peer, relay_text(leg, peer, now, seq, html, raw))
        else:
            state = self._keep_for_later(leg, parked, seq, now, html, raw, message_id, size)
        posted = call.stored and (state != _HELD or parked)  # held: at conn
        if posted:
            pending = state == _PENDING
            self._acks.post(leg, seq, wall_ms, html, raw.attach, message_id, ack=pending)
        if message_id is not None:
            self._acks.decided(leg, message_id, seq, now, state, keyed=posted)
        if leg.typing is not None:
            self.stop_typing(leg)

    def _group_message(
        self, leg: Leg, data: str, mime: str | None, raw: ImMessage, message_id: str | None
    ) -> None:
        self.messages += 1
        self._groups.message(leg, sanitize(data, mime), raw, message_id)
        self.stop_typing(leg)

    def _cut_off(self, leg: Leg, conn: int, message_id: str | None) -> None:
        """The reader (``conn``) is not keeping up: say so now, then cut it off (4008),
        which releases this call. Acknowledging "delivered" here would be a lie."""
        if message_id is not None:
            self._acks.not_delivered(leg, message_id)
        self._drop_slow(conn)

    def _no_room(self, leg: Leg, peer: Leg | None, size: int, message_id: str | None) -> bool:
        """No connected reader: is there no room left to hold the message? Refused then."""
        call = leg.call
        if peer is not None or call.answered_by_hub:
            return False
        if (
            len(call.held) < self._config.hold_messages
            and call.held_bytes + size <= self._config.hold_bytes
        ):
            return False
        if message_id is not None:
            self._acks.not_delivered(leg, message_id)
        return True

    def _keep_line(
        self,
        leg: Leg,
        seq: int,
        now: int,
        wall_ms: int,
        html: str,
        raw: ImMessage,
        message_id: str | None,
        size: int,
    ) -> None:
        """Support activity, and the transcript line (for a resume or a transfer) of
        ``size`` bytes."""
        call = leg.call
        support = call.support
        if support is not None:
            support.touch(self._clock.monotonic(), wall_ms)
            if support.preview is None and leg.role is Role.CALLER:
                support.preview = preview_of(html)
                if support.preview is not None:
                    self._first_words(call)
        if self._keep_every or (self._keep and call.support is not None):
            user = leg.reg.user
            line = Line(seq, now, leg.role, user, html, raw.attach, raw.subject, message_id, size)
            call.record(line, self._keep, self._keep_bytes)

    def _keep_for_later(
        self,
        leg: Leg,
        parked: bool,
        seq: int,
        now: int,
        html: str,
        raw: ImMessage,
        message_id: str | None,
        size: int,
    ) -> Delivery:
        """No connected peer to send the message to: where it waits, and its state."""
        if parked:
            return _HELD  # in the transcript, replayed when the peer resumes (§4.9)
        call = leg.call
        if call.answered_by_hub:
            return _PENDING
        user = leg.reg.user
        item = relayed_item(user, now, seq, html, raw.attach, raw.subject)
        call.held.append(HeldMessage(item, message_id, size))
        call.held_bytes += size
        return _HELD

    def _app_data(
        self, leg: Leg, data: str, mime: str, message_id: str | None, raw: ImMessage
    ) -> None:
        """Data of another mime, as opaque application data (docs/protocol.md 12.25):
        relayed unchanged, with its mime, only to connected legs whose registration said
        ``APP_DATA`` (they never render it as HTML); never sanitized, so never held,
        kept for a replay, stored or handed to a webhook. It takes a seq like any
        message, so acknowledgements and retries work as usual."""
        call = leg.call
        receivers = [other for other in listeners(leg) if not other.parked and other.reg.app_data]
        if not receivers:
            raise BadMime(
                f"{mime[:40]!r} travels only as application data, to a connected device"
                " registered with APP_DATA"
            )
        wall = self._clock.wall()
        now = int(wall)
        seq = call.next_seq()
        if call.support is not None:  # application data is activity too (no idle close)
            call.support.touch(self._clock.monotonic(), int(wall * 1000))
        item = relayed_item(leg.reg.user, now, seq, data, None, raw.subject, mime=mime)
        if call.group is None:  # one receiver: the peer, delivered as a message is
            state = self._wire.relay_item(receivers[0], item)
        else:
            state = _DELIVERED
            for receiver in receivers:
                self._wire.fty(receiver, item)
        if message_id is not None:
            self._acks.decided(leg, message_id, seq, now, state, keyed=False)

    # -- typing -------------------------------------------------------------------------------

    def typing(self, leg: Leg, on: bool) -> None:
        """Typing is relayed, never held or stored; the hub owns its expiry (§4.6)."""
        if leg.call.group is not None:  # groups: relayed as sent, no expiry of the hub's
            item = typing(leg.reg.user, on)
            for other in leg.call.joined:
                if other is not leg:
                    self._wire.fty(other, item)
            return None
        peer = leg.call.peer(leg)
        if peer is None or peer.parked:
            return None
        if not on:
            return self.stop_typing(leg)
        if leg.typing is not None:
            leg.typing.cancel()
        deadline = self._clock.monotonic() + self._config.typing_ttl
        leg.typing = self._timers.arm(deadline, lambda: self.stop_typing(leg))
        self._wire.fty(peer, typing(leg.reg.user, True))

    def stop_typing(self, leg: Leg) -> None:
        timer, leg.typing = leg.typing, None
        if timer is None:
            return
        timer.cancel()
        peer = leg.call.peer(leg)
        if peer is not None and not peer.parked:
            self._wire.fty(peer, typing(leg.reg.user, False))


def listeners(leg: Leg) -> list[Leg]:
    """The legs that hear what ``leg`` sends: the other members' in a group call, else
    the connected peer's (none before ``conn``)."""
    call = leg.call
    if call.group is not None:
        return [other for other in call.joined if other is not leg]
    peer = call.peer(leg)
    return [] if peer is None else [peer]
