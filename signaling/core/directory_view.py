"""What the core needs from the directory: a tenant by domain (kept as a Protocol so
the sans-I/O core does not depend on where the directory lives)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from config import QueueConfig, UserConfig

__all__ = ["TenantLookup", "TenantView"]


class TenantView(Protocol):
    def user(self, sip: str) -> UserConfig | None: ...

    def resolve(self, sip: str | None, num: str | None) -> UserConfig | None: ...

    def queue(self, sip: str) -> QueueConfig | None: ...

    def all_queues(self) -> Iterable[QueueConfig]: ...


class TenantLookup(Protocol):
    def tenant(self, domain: str) -> TenantView | None: ...
