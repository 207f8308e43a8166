"""A user's presence over every switch of a cluster (SCALE.md "Shared state": ``pres``
and ``pc``; docs/protocol.md 12.39).

Theory of operation: each switch knows its own devices only. The cluster's shared record
holds each switch's *share* of a user: whether a device of the user there counts as
online, or the user only has a registration there (its connection closed cleanly and
the resume grace runs); and the activity and note last published on any switch. A
switch writes its share only when it changes (``PresenceShare``): the user's first
registration here or the last, none of its devices here online any more or one again,
a publish. Device churn behind an unchanged share writes nothing, and messages never do.

A switch reads the others' shares only for users it has subscribers for:
``PresenceWatch`` asks the bus to follow a user, and the bus answers with
``PresenceShares`` at once and again after every change. A new subscription's first
``presence_notify`` waits for that first answer, so that it never says ``closed`` for a
user online elsewhere; when no answer comes within ``cluster.answer_wait`` (Redis does
not answer) the switch goes on with what it knows. A switch declared gone
(``node_down``) leaves every view at once; its shares in Redis are removed by a survivor.

Nothing of this exists on a standalone switch: ``Presence`` has no ``SharedPresence``
there and makes none of these actions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..actions import PresenceShares
from ..clock import Clock
from ..outbox import Outbox
from ..registry import UserKey
from ..timers import Timer, TimerQueue

__all__ = ["SharedPresence"]


@dataclass(slots=True)
class _View:
    """What this switch knows of a followed user's presence elsewhere."""

    shares: dict[str, bool] = field(default_factory=dict)
    """Each other switch where the user has a registration: whether it is online there."""
    read: bool = False
    """The first answer came (or the wait for it ran out)."""
    timer: Timer | None = None


class SharedPresence:
    def __init__(
        self,
        *,
        outbox: Outbox,
        timers: TimerQueue,
        clock: Clock,
        wait: float,
        ready: Callable[[UserKey], None],
    ) -> None:
        self._out = outbox
        self._timers = timers
        self._clock = clock
        self._wait = wait
        self._ready = ready
        """Told when a followed user's first answer is overdue: its subscribers are told
        what this switch knows."""
        self._mine: dict[UserKey, bool] = {}
        """This switch's share of each user registered here: online here or not."""
        self._views: dict[UserKey, _View] = {}

    # -- this switch's shares -----------------------------------------------------------

    def mine(self, key: UserKey, online: bool | None) -> None:
        """The user's devices here: ``online`` if one counts as online, None if the user
        has no registration here. Written only when it changed."""
        if self._mine.get(key) == online:
            return
        if online is None:
            del self._mine[key]
        else:
            self._mine[key] = online
        self._out.presence_share(key[0], key[1], online, None)

    def publish(self, key: UserKey, activity: str, note: str) -> None:
        """A device of the user here published its activity and note."""
        self._out.presence_share(key[0], key[1], self._mine.get(key, True), (activity, note))

    # -- the others' shares ----------------------------------------------------------------

    def follow(self, key: UserKey) -> None:
        """The user's first subscriber here: the bus follows the user from now on."""
        view = self._views[key] = _View()
        deadline = self._clock.monotonic() + self._wait
        view.timer = self._timers.arm(deadline, lambda: self._overdue(key, view))
        self._out.presence_watch(key[0], key[1], True)

    def unfollow(self, key: UserKey) -> None:
        """The user's last subscriber here is gone."""
        view = self._views.pop(key, None)
        if view is None:
            return
        if view.timer is not None:
            view.timer.cancel()
        self._out.presence_watch(key[0], key[1], False)

    def known(self, key: UserKey) -> bool:
        """Whether the subscribers of ``key`` may be told its presence: followed, and
        the first answer came."""
        view = self._views.get(key)
        return view is not None and view.read

    def answer(self, answer: PresenceShares) -> bool | None:
        """A followed user's shares elsewhere, as the bus read them: True if this is the
        first answer, False for a later one, None if the user is not followed now."""
        view = self._views.get((answer.domain, answer.sip))
        if view is None:
            return None
        first = not view.read
        view.read = True
        if view.timer is not None:
            view.timer.cancel()
            view.timer = None
        view.shares = dict(answer.shares)
        return first

    def online(self, key: UserKey) -> bool:
        """Whether a device of the user counts as online on another switch."""
        view = self._views.get(key)
        return view is not None and any(view.shares.values())

    def registered(self, key: UserKey) -> bool:
        """Whether the user has a registration on another switch."""
        view = self._views.get(key)
        return view is not None and bool(view.shares)

    def on_node(self, node: str) -> list[UserKey]:
        """The followed users with a share on switch ``node``."""
        return [key for key, view in self._views.items() if node in view.shares]

    def drop(self, key: UserKey, node: str) -> None:
        """Switch ``node`` is gone: its share of the user with it."""
        view = self._views.get(key)
        if view is not None:
            view.shares.pop(node, None)

    def held(self) -> int:
        return len(self._mine) + len(self._views)

    def _overdue(self, key: UserKey, view: _View) -> None:
        if self._views.get(key) is view and not view.read:
            view.read = True
            view.timer = None
            self._ready(key)
