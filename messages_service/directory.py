"""Who exists: the tenants' users and their licences, read from the configuration.

The service trusts the hub for *who is asking* (it stamps ``user`` and ``domain``), but
checks group members itself (PROTOCOL §12.10): a member must be a user of the tenant
holding the ``messages`` licence.
"""

from __future__ import annotations

from typing import Protocol

from config import QueueConfig, TenantConfig, UserConfig

__all__ = ["LICENCE", "LiveDirectory", "TenantDirectory"]

LICENCE = "messages"


class LiveDirectory(Protocol):
    """A directory that changes while the service runs: the hub's, when both run in one
    process, or one that follows the cluster's database (``--role messages`` of a
    cluster), so that users, licences and queues the admin API changes reach the
    service too."""

    def user(self, domain: str, sip: str) -> UserConfig | None: ...

    def queue(self, domain: str, sip: str) -> QueueConfig | None: ...

    def queues(self, domain: str) -> list[QueueConfig]: ...


class TenantDirectory:
    """From the configuration, or from a ``live`` directory when there is one."""

    def __init__(
        self, tenants: tuple[TenantConfig, ...], live: LiveDirectory | None = None
    ) -> None:
        self._users = {
            (tenant.domain, user.sip): user for tenant in tenants for user in tenant.users
        }
        self._live = live
        self._queues = {
            (tenant.domain, queue.sip): queue for tenant in tenants for queue in tenant.queues
        }
        self._delete_chat = {tenant.domain: tenant.delete_chat for tenant in tenants}

    def queue(self, domain: str, sip: str) -> QueueConfig | None:
        """A support queue: its chats with licensed customers are kept under its sip."""
        if self._live is not None:
            return self._live.queue(domain, sip)
        return self._queues.get((domain, sip))

    def queues_of(self, domain: str, agent: str) -> list[QueueConfig]:
        """The queues ``agent`` answers for, in the order configured."""
        if self._live is not None:
            queues = self._live.queues(domain)
        else:
            queues = [queue for (of, _), queue in self._queues.items() if of == domain]
        return [queue for queue in queues if agent in queue.agents]

    def delete_chat(self, domain: str) -> str:
        """``[tenants."<d>"] delete_chat``: "own" or "both" (docs/protocol.md 12.32)."""
        return self._delete_chat.get(domain, "own")

    def user(self, domain: str, sip: str) -> UserConfig | None:
        if self._live is not None:
            return self._live.user(domain, sip)
        return self._users.get((domain, sip))

    @staticmethod
    def licensed(user: UserConfig) -> bool:
        return LICENCE in user.licences
