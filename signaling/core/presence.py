"""Presence subscriptions and the unread badge (PROTOCOL §4.10).

A client subscribes with a no-media ``setup`` carrying ``presence_subscribe`` to a user of
its tenant; the hub answers ``conn`` at once and sends ``presence_notify`` now and on every
change: ``open`` while the user has a device online, ``closed`` otherwise, with the
activity and note last published. A device is online while connected, and while it waits
out the resume grace after a lost link (a network blink does not flicker); a device whose
connection closed cleanly (1000/1001: the page or app was closed) is offline at once,
though its calls still wait out the grace (docs 12.37). A visitor's notify also says
when it was last seen and whether that was recently (``visitor_seen``). A user's
subscription to itself also carries the unread badge of the messages service as
``note:"#badge:<n>"`` when the user holds the licence.

The subscription is a call like any other (it lives in the registration's call table, so
``rel`` and the end of the registration remove it), but it carries no messages.

In a cluster the user's devices on the other switches count too (``SharedPresence``):
subscribers are told the state over every switch, and only when it changed.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from config import UserConfig

from .actions import PresenceShares
from .calls import Call, Leg
from .callstate import Event, LegState, Role, hub_event, released
from .causes import Q931
from .clock import Clock
from .errors import BadState
from .frames import conn, facility, with_ids
from .messages import Sig
from .nodes.presence_shares import SharedPresence
from .outbox import Outbox
from .registry import Registration, Registry, UserKey
from .timers import TimerQueue
from .visitor_seen import VisitorsSeen
from .wire import Wire

__all__ = ["Presence", "present"]

JsonObject = dict[str, Any]

ACTIVITIES = frozenset({"available", "away", "busy", "dnd"})


@dataclass(slots=True)
class Published:
    activity: str = "available"
    note: str = ""


Visible = tuple[bool, str, str]
"""What a subscriber is told of a user: online, activity, note."""


class Presence:
    def __init__(
        self,
        *,
        outbox: Outbox,
        registry: Registry,
        licensed: Callable[[UserConfig], bool],
        ask_badge: Callable[[str, str], None],
        timers: TimerQueue,
        clock: Clock,
        recent_window: float,
        changed: Callable[[str, str], None] = lambda domain, sip: None,
        went: Callable[[str, str, bool], None] = lambda domain, sip, online: None,
        cluster_wait: float | None = None,
    ) -> None:
        """``changed`` is told after a user's devices or published activity changed (live
        support follows its agents through it, §9.2); ``went`` when a user goes offline or
        comes back (live support shows a visitor whose page closed, docs 12.38).
        ``cluster_wait``: in a cluster, how long a new subscription's first notify waits
        for the other switches' state (``cluster.answer_wait``); None alone."""
        self._wire = Wire(outbox)
        self._registry = registry
        self._licensed = licensed
        self._ask_badge = ask_badge
        self._watchers: dict[UserKey, list[Leg]] = {}
        self._published: dict[UserKey, Published] = {}
        self._badges: dict[UserKey, int] = {}
        self.visitors = VisitorsSeen(
            timers=timers, clock=clock, window=recent_window, window_over=self._notify_all
        )
        self._changed = changed
        self._went = went
        self._shares: SharedPresence | None = None
        """The user's devices on the other switches of a cluster (None alone)."""
        if cluster_wait is not None:
            self._shares = SharedPresence(
                outbox=outbox, timers=timers, clock=clock, wait=cluster_wait, ready=self._notify_all
            )

    # -- subscriptions -------------------------------------------------------------------

    def subscribe(self, reg: Registration, number: int, watched: UserConfig) -> None:
        call = Call(secrets.token_hex(16), reg.domain, 0, reg.user, watched)
        call.presence = True
        leg = Leg(call, reg, number, Role.CALLER, LegState.SETUP_SENT)
        call.caller = leg
        reg.legs[number] = leg
        key = (reg.domain, watched.sip)
        first = key not in self._watchers
        self._watchers.setdefault(key, []).append(leg)
        state = hub_event(Role.CALLER, leg.state, Event.CONN)
        assert state is not None
        leg.state = state
        self._wire.sig(leg, with_ids(conn(), leg))
        shares = self._shares
        if shares is None or shares.known(key):
            self._notify_leg(leg, key)
        elif first:  # the first answer from the other switches tells every subscriber
            shares.follow(key)
        if self._is_self(leg) and self._licensed(watched):
            self._ask_badge(reg.domain, watched.sip)

    def on_event(self, leg: Leg, event: Event, sig: Sig) -> None:
        """A client's event on its subscription: ``presence_publish`` or ``rel``."""
        if event is Event.REL:
            return self.ended(leg)
        if event is not Event.FACILITY:
            raise BadState(f"{event.value} not allowed on a presence subscription")
        for item in sig.fty:
            if item.get("type") == "presence_publish" and self._is_self(leg):
                self.publish(leg.reg, item)

    def resumed(self, leg: Leg) -> None:
        """The client answered its re-offered subscription (§4.9): the state as it is now."""
        key = (leg.call.domain, leg.call.callee_user.sip)
        if self._shares is None or self._shares.known(key):
            self._notify_leg(leg, key)

    def ended(self, leg: Leg) -> None:
        leg.state = released(leg.role, leg.state)
        if leg.reg.legs.get(leg.number) is leg:
            del leg.reg.legs[leg.number]
        key = (leg.call.domain, leg.call.callee_user.sip)
        watchers = self._watchers.get(key)
        if watchers and leg in watchers:
            watchers.remove(leg)
            if not watchers:
                del self._watchers[key]
                if self._shares is not None:
                    self._unfollow(key, self._shares)
        leg.call.unlink()

    def _unfollow(self, key: UserKey, shares: SharedPresence) -> None:
        """Nobody here watches the user any more: what was read of the others goes."""
        shares.unfollow(key)
        if not self._registry.of(*key):
            self._published.pop(key, None)

    # -- changes -------------------------------------------------------------------------

    def publish(self, reg: Registration, item: JsonObject) -> None:
        """The user's own activity and note (§4.10); unknown activities are ignored."""
        key = reg.key
        published = self._published.setdefault(key, Published())
        activity, note = item.get("activity"), item.get("note")
        if isinstance(activity, str) and activity in ACTIVITIES:
            published.activity = activity
        if isinstance(note, str):
            published.note = note[:200]
        if self._shares is not None:
            self._shares.publish(key, published.activity, published.note)
        self._notify_all(key)
        self._changed(*key)

    def online(self, domain: str, sip: str) -> bool:
        """Whether any device of the user counts as online (see ``present``), here or,
        for a user followed in a cluster, on another switch."""
        if self.here(domain, sip):
            return True
        return self._shares is not None and self._shares.online((domain, sip))

    def here(self, domain: str, sip: str) -> bool:
        """Whether a device of the user on this switch counts as online."""
        return any(present(reg) for reg in self._registry.of(domain, sip))

    def registrations_changed(self, domain: str, sip: str, was_here: bool) -> None:
        """A device of the user came, went, closed or came back; ``was_here`` is what
        ``here`` said before."""
        key = (domain, sip)
        devices = self._registry.of(domain, sip)
        here = any(present(reg) for reg in devices)
        shares = self._shares
        if shares is not None:
            shares.mine(key, here if devices else None)
        if not devices:
            self._badges.pop(key, None)  # asked again when the user subscribes
            if shares is None or not shares.registered(key):
                self._published.pop(key, None)  # a new login starts as available
        if here != was_here:
            if here:
                self.visitors.came(key)
            else:
                self.visitors.went(key)
            if shares is None or not shares.online(key):  # else nothing a subscriber sees
                self._notify_all(key)
            self._went(domain, sip, here)
        self._changed(domain, sip)  # also a device more or less: offers may follow

    # -- the other switches of a cluster ----------------------------------------------------

    def shares_read(self, answer: PresenceShares) -> None:
        """A followed user's presence on the other switches, as the bus read it: the
        subscribers hear of it if what they see changed (or it is the first answer)."""
        shares = self._shares
        key = (answer.domain, answer.sip)
        if shares is None:
            return
        before = self._visible(key)
        first = shares.answer(answer)
        if first is None:
            return  # no longer followed
        if answer.published is not None:  # the last publish on any switch
            self._published[key] = Published(*answer.published)
        else:
            self._published.pop(key, None)
        if first or self._visible(key) != before:
            self._notify_all(key)

    def node_down(self, node: str) -> None:
        """Switch ``node`` is gone: the users it held online are offline unless online
        elsewhere, and told so once."""
        shares = self._shares
        if shares is None:
            return
        for key in shares.on_node(node):
            before = self._visible(key)
            shares.drop(key, node)
            if self._visible(key) != before:
                self._notify_all(key)

    def activity(self, domain: str, sip: str) -> str:
        """The activity the user last published (``available`` until then)."""
        published = self._published.get((domain, sip))
        return published.activity if published is not None else "available"

    def badge(self, domain: str, sip: str, count: int) -> None:
        """The service says how many unread messages the user has."""
        key = (domain, sip)
        if self._badges.get(key) == count:
            return  # e.g. the answer to ReadBadge repeating what a subscriber was just shown
        if not self._registry.of(domain, sip):
            return  # nobody of theirs is here: asked again when the user subscribes
        self._badges[key] = count
        if self._shares is not None and not self._shares.known(key):
            return  # the first answer from the other switches brings it
        for leg in self._watchers.get(key, ()):
            if self._is_self(leg) and not leg.parked:
                self._notify_leg(leg, key)

    def held(self) -> int:
        """Users with watchers, a published activity or a badge kept, and in a cluster
        the shares written and read (``Switch.held``)."""
        shared = self._shares.held() if self._shares is not None else 0
        return len(self._watchers) + len(self._published) + len(self._badges) + shared

    def watched_badges(self) -> list[UserKey]:
        """Users whose badge someone shows (asked again when the link comes back)."""
        return [
            key
            for key, legs in self._watchers.items()
            if any(self._is_self(leg) and self._licensed(leg.reg.user) for leg in legs)
        ]

    # -- sending -------------------------------------------------------------------------

    def _notify_all(self, key: UserKey) -> None:
        if self._shares is not None and not self._shares.known(key):
            return  # the first answer from the other switches tells them
        for leg in self._watchers.get(key, ()):
            if not leg.parked:  # a resumed one is told the state when it answers
                self._notify_leg(leg, key)

    def _visible(self, key: UserKey) -> Visible:
        online = self.online(*key)
        published = self._published.get(key, _AVAILABLE)
        return online, published.activity if online else "", published.note

    def _notify_leg(self, leg: Leg, key: UserKey) -> None:
        online, activity, note = self._visible(key)
        notify: JsonObject = {
            "type": "presence_notify",
            "status": "open" if online else "closed",
            "activity": activity,
            "note": note,
        }
        if self._is_self(leg) and key in self._badges:
            notify["note"] = f"#badge:{self._badges[key]}"
        seen = self.visitors.fields(key, online)
        if seen is not None:
            notify.update(seen)
        self._wire.sig(leg, facility(notify))

    @staticmethod
    def _is_self(leg: Leg) -> bool:
        return leg.call.caller_user.sip == leg.call.callee_user.sip


_AVAILABLE = Published()
"""What a user who published nothing shows (never changed: ``publish`` makes its own)."""


def present(reg: Registration) -> bool:
    """A device counts as online while connected, and while it waits out the resume grace
    after a lost link or a close by the hub; not once its connection closed cleanly (the
    cause its calls would end with is then 16, normal clearing)."""
    return reg.attached or reg.drop_cause != Q931.NORMAL_CLEARING
