"""How long a visitor's account lives (PROTOCOL §9.1), on the hub's clock.

The visitors' route makes the account in the directory and tells the switch; from then
on the core owns its end: once it has gone ``support.visitor_ttl`` without a
registration it is removed, with the context its chats carried and when it was last
seen (presence, docs 12.37). While the visitor is
registered somewhere, another period starts instead.
"""

from __future__ import annotations

from typing import Protocol

from signaling.directory import Directory

from .clock import Clock
from .registry import Registry
from .timers import TimerQueue
from .visitor_seen import VisitorsSeen

__all__ = ["VisitorAccounts", "VisitorContexts"]


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
    ) -> None:
        self._directory = directory
        self._registry = registry
        self._support = support
        self._seen = seen
        self._timers = timers
        self._clock = clock
        self._ttl = ttl

    def made(self, domain: str, sip: str, context: object) -> None:
        """A visitor account was made: its chats carry ``context`` until it ends."""
        self._support.visitor_context(domain, sip, context)
        self._seen.made((domain, sip))
        self._expire_later(domain, sip)

    def _expire_later(self, domain: str, sip: str) -> None:
        self._timers.arm(self._clock.monotonic() + self._ttl, lambda: self._due(domain, sip))

    def _due(self, domain: str, sip: str) -> None:
        if self._registry.of(domain, sip):
            return self._expire_later(domain, sip)  # in use: another period
        tenant = self._directory.tenant(domain)
        if tenant is not None:
            tenant.remove(sip)
        self._support.visitor_context(domain, sip, None)
        self._seen.ended((domain, sip))
        return None
