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
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from config import UserConfig

from .calls import Call, Leg
from .callstate import Event, LegState, Role, hub_event, released
from .causes import Q931
from .clock import Clock
from .errors import BadState
from .frames import conn, facility, with_ids
from .messages import Sig
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
    ) -> None:
        """``changed`` is told after a user's devices or published activity changed (live
        support follows its agents through it, §9.2); ``went`` when a user goes offline or
        comes back (live support shows a visitor whose page closed, docs 12.38)."""
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

    # -- subscriptions -------------------------------------------------------------------

    def subscribe(self, reg: Registration, number: int, watched: UserConfig) -> None:
        call = Call(secrets.token_hex(16), reg.domain, 0, reg.user, watched)
        call.presence = True
        leg = Leg(call, reg, number, Role.CALLER, LegState.SETUP_SENT)
        call.caller = leg
        reg.legs[number] = leg
        key = (reg.domain, watched.sip)
        self._watchers.setdefault(key, []).append(leg)
        state = hub_event(Role.CALLER, leg.state, Event.CONN)
        assert state is not None
        leg.state = state
        self._wire.sig(leg, with_ids(conn(), leg))
        self._notify_leg(leg, key)
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
        self._notify_leg(leg, (leg.call.domain, leg.call.callee_user.sip))

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
        self._notify_all(key)
        self._changed(*key)

    def online(self, domain: str, sip: str) -> bool:
        """Whether any device of the user counts as online (see ``present``)."""
        return any(present(reg) for reg in self._registry.of(domain, sip))

    def registrations_changed(self, domain: str, sip: str, was_online: bool) -> None:
        """A device of the user came, went, closed or came back; ``was_online`` is what
        ``online`` said before."""
        key = (domain, sip)
        online = self.online(domain, sip)
        if not self._registry.of(domain, sip):
            self._published.pop(key, None)  # a new login starts as available
            self._badges.pop(key, None)  # asked again when the user subscribes
        if online != was_online:
            if online:
                self.visitors.came(key)
            else:
                self.visitors.went(key)
            self._notify_all(key)
            self._went(domain, sip, online)
        self._changed(domain, sip)  # also a device more or less: offers may follow

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
        for leg in self._watchers.get(key, ()):
            if self._is_self(leg) and not leg.parked:
                self._notify_leg(leg, key)

    def held(self) -> int:
        """Users with watchers, a published activity or a badge kept (``Switch.held``)."""
        return len(self._watchers) + len(self._published) + len(self._badges)

    def watched_badges(self) -> list[UserKey]:
        """Users whose badge someone shows (asked again when the link comes back)."""
        return [
            key
            for key, legs in self._watchers.items()
            if any(self._is_self(leg) and self._licensed(leg.reg.user) for leg in legs)
        ]

    # -- sending -------------------------------------------------------------------------

    def _notify_all(self, key: UserKey) -> None:
        for leg in self._watchers.get(key, ()):
            if not leg.parked:  # a resumed one is told the state when it answers
                self._notify_leg(leg, key)

    def _notify_leg(self, leg: Leg, key: UserKey) -> None:
        online = self.online(*key)
        published = self._published.get(key, Published())
        notify: JsonObject = {
            "type": "presence_notify",
            "status": "open" if online else "closed",
            "activity": published.activity if online else "",
            "note": published.note,
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


def present(reg: Registration) -> bool:
    """A device counts as online while connected, and while it waits out the resume grace
    after a lost link or a close by the hub; not once its connection closed cleanly (the
    cause its calls would end with is then 16, normal clearing)."""
    return reg.attached or reg.drop_cause != Q931.NORMAL_CLEARING
