"""Who exists: the tenants' users and their licences, read from the configuration.

The service trusts the hub for *who is asking* (it stamps ``user`` and ``domain``), but
checks group members itself (PROTOCOL §12.10): a member must be a user of the tenant
holding the ``messages`` licence.
"""

from __future__ import annotations

from collections.abc import Callable

from config import TenantConfig, UserConfig

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

    def user(self, domain: str, sip: str) -> UserConfig | None:
        if self._lookup is not None:
            return self._lookup(domain, sip)
        return self._users.get((domain, sip))

    @staticmethod
    def licensed(user: UserConfig) -> bool:
        return LICENCE in user.licences
