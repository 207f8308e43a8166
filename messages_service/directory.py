"""Who exists: the tenants' users and their licences, read from the configuration.

The service trusts the hub for *who is asking* (it stamps ``user`` and ``domain``), but
checks group members itself (PROTOCOL §12.10): a member must be a user of the tenant
holding the ``messages`` licence.
"""

from __future__ import annotations

from collections.abc import Callable

from config import QueueConfig, TenantConfig, UserConfig

__all__ = ["LICENCE", "TenantDirectory"]

LICENCE = "messages"


class TenantDirectory:
    """From the configuration, or from ``lookup`` (the hub's live directory, when both
    run in one process, so that the admin API's changes reach the service too)."""

    def __init__(
        self,
        tenants: tuple[TenantConfig, ...],
        lookup: Callable[[str, str], UserConfig | None] | None = None,
    ) -> None:
        self._users = {
            (tenant.domain, user.sip): user for tenant in tenants for user in tenant.users
        }
        self._lookup = lookup
        self._queues = {
            (tenant.domain, queue.sip): queue for tenant in tenants for queue in tenant.queues
        }
        self._delete_chat = {tenant.domain: tenant.delete_chat for tenant in tenants}

    def queue(self, domain: str, sip: str) -> QueueConfig | None:
        """A support queue: its chats with licensed customers are kept under its sip."""
        return self._queues.get((domain, sip))

    def queues_of(self, domain: str, agent: str) -> list[QueueConfig]:
        """The queues ``agent`` answers for, in the order configured."""
        return [
            queue
            for (queue_domain, _), queue in self._queues.items()
            if queue_domain == domain and agent in queue.agents
        ]

    def delete_chat(self, domain: str) -> str:
        """``[tenants."<d>"] delete_chat``: "own" or "both" (docs/protocol.md 12.32)."""
        return self._delete_chat.get(domain, "own")

    def user(self, domain: str, sip: str) -> UserConfig | None:
        if self._lookup is not None:
            return self._lookup(domain, sip)
        return self._users.get((domain, sip))

    @staticmethod
    def licensed(user: UserConfig) -> bool:
        return LICENCE in user.licences
