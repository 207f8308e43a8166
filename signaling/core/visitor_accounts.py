"""How long a visitor's account lives (PROTOCOL §9.1), on the hub's clock.

The visitors' route makes the account in the directory and tells the switch; from then
on the core owns its end: once it has gone ``support.visitor_ttl`` without a
registration it is removed, with the context its chats carried and when it was last
seen (presence, docs 12.37). While the visitor is
registered somewhere, another period starts instead.

In a cluster (docs 12.44) the account lives in Redis too, with an expiry, so that the
visitor may log in on any node: a node that does not know it reads it there at login
(``learned``) and from then on holds it as the node that made it does. Each node that
holds it keeps it in Redis for another period whenever it is used there (made, logged
in, still registered when a period ends: ``KeepVisitor``) and lets go of it when a period
ends unused there (``VisitorReleased``); Redis ends it once no node kept it for a period.
"""

from __future__ import annotations

from typing import Protocol

from config import UserConfig
from signaling.directory import Directory

from .actions import KeepVisitor, VisitorRecord, VisitorReleased
from .clock import Clock
from .outbox import Outbox
from .registry import Registry, UserKey
from .support_chat import context_of
from .timers import TimerQueue
from .visitor_seen import VisitorsSeen

__all__ = ["VISITOR_PREFIX", "VisitorAccounts", "VisitorContexts", "is_visitor"]

VISITOR_PREFIX = "visitor-"
"""Every visitor's sip starts so; the admin API gives no user such a name."""


def is_visitor(sip: str) -> bool:
    return sip.startswith(VISITOR_PREFIX)


class VisitorContexts(Protocol):
    """Where a visitor's context is kept for its chats (live support's queues)."""

    def visitor_context(self, domain: str, sip: str, context: object) -> None: ...


class VisitorAccounts:
    def __init__(
        self,
        *,
        directory: Directory,
        registry: Registry,
        support: VisitorContexts,
        seen: VisitorsSeen,
        timers: TimerQueue,
        clock: Clock,
        ttl: float,
        shared: Outbox | None = None,
    ) -> None:
        """``shared``: where a switch in a cluster says which accounts it keeps."""
        self._directory = directory
        self._registry = registry
        self._support = support
        self._seen = seen
        self._timers = timers
        self._clock = clock
        self._ttl = ttl
        self._shared = shared
        self._contexts: dict[UserKey, object] = {}
        """In a cluster, each held account's context as it was made (for ``KeepVisitor``)."""

    def made(self, domain: str, sip: str, context: object) -> None:
        """A visitor account was made: its chats carry ``context`` until it ends."""
        self._support.visitor_context(domain, sip, context)
        self._seen.made((domain, sip))
        self._expire_later(domain, sip)
        if self._shared is not None:  # what the chats carry: strings only, each cut
            self._contexts[domain, sip] = context_of(context) if isinstance(context, dict) else None
            self._keep(domain, sip)

    def learned(self, record: VisitorRecord) -> None:
        """A visitor account another node made, read from the cluster at login: held
        here from now on, as if made here (unless it already is)."""
        tenant = self._directory.tenant(record.domain)
        if tenant is None or tenant.user(record.sip) is not None:
            return
        try:
            tenant.put(UserConfig(sip=record.sip, dn=record.dn, num="", password=record.password))
        except ValueError:  # the name is something else's here: the login fails as unknown
            return
        self.made(record.domain, record.sip, record.context)

    def logged_in(self, domain: str, sip: str) -> None:
        """A login as ``sip`` succeeded: a visitor's account is kept for another period."""
        if self._shared is not None and (domain, sip) in self._contexts:
            self._keep(domain, sip)

    def _keep(self, domain: str, sip: str) -> None:
        user = self._directory.user(domain, sip)
        if self._shared is not None and user is not None:
            context = self._contexts.get((domain, sip))
            record = VisitorRecord(domain, sip, user.dn, user.password, context)
            self._shared.shared(KeepVisitor(record))

    def _expire_later(self, domain: str, sip: str) -> None:
        self._timers.arm(self._clock.monotonic() + self._ttl, lambda: self._due(domain, sip))

    def _due(self, domain: str, sip: str) -> None:
        if self._registry.of(domain, sip):
            self._keep(domain, sip)
            return self._expire_later(domain, sip)  # in use: another period
        tenant = self._directory.tenant(domain)
        if tenant is not None:
            tenant.remove(sip)
        self._support.visitor_context(domain, sip, None)
        self._seen.ended((domain, sip))
        if self._shared is not None and (domain, sip) in self._contexts:
            del self._contexts[domain, sip]
            self._shared.shared(VisitorReleased(domain, sip))
        return None
