"""The admin API's changes to tenants, users, App objects and support queues as data, and
how they are made over the configured directory (PROTOCOL §10.2).

The configuration stays the starting point; the changes say what the admin API changed
since, in one shape wherever they are kept (a file for one process, ``changes``; the
cluster's database, ``shared``)::

    {"<domain>": {"state": "config" | "added" | "removed",
                  "users": {"<sip>": {…} | null},
                  "apps": {"<name>": {…} | null},
                  "queues": {"<sip>": {…} | null}}}

``null`` marks a user, App object or queue deleted; a tenant without ``queues`` (a file
written before queues could be changed) has none changed, and a user without
``max_chats`` or ``role``, or a queue without ``take_on_write``, has the default.
``"added"`` and ``"removed"`` tenants start out empty (or are gone): what was recorded
for them before is moot.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from config import (
    AppConfig,
    ConfigError,
    QueueConfig,
    UserConfig,
    app_from_table,
    queue_from_table,
    user_from_table,
)

from .directory import Directory, Tenant

__all__ = [
    "ENTRY_KINDS",
    "Change",
    "ChangeLog",
    "Kind",
    "TenantChanges",
    "app_table",
    "apply_changes",
    "queue_table",
    "user_table",
    "with_change",
]

log = logging.getLogger(__name__)

Table = dict[str, Any]
TenantChanges = dict[str, dict[str, Any]]
"""The changes by domain, in the shape above."""
Kind = Literal["tenant", "users", "apps", "queues"]
ENTRY_KINDS: tuple[Kind, ...] = ("users", "apps", "queues")
Put = Callable[[str, Table, str], None]
"""Adds one saved entry (name, its table, where it was for messages) to a tenant."""


@dataclass(frozen=True, slots=True)
class Change:
    """One change the admin API makes: an entry as it is to be (``table`` None: deleted),
    or a tenant added or removed (``kind`` "tenant", ``table`` {"state": …})."""

    domain: str
    kind: Kind
    name: str = ""
    table: Table | None = None

    @classmethod
    def tenant(cls, domain: str, *, added: bool) -> Change:
        return cls(domain, "tenant", "", {"state": "added" if added else "removed"})


class ChangeLog(Protocol):
    """Where the changes are kept, and the commit point of each: the admin API answers
    only once ``keep`` has returned."""

    async def keep(self, change: Change, make: Callable[[], object]) -> None:
        """Keep ``change``, then make it in this node's directory: ``make`` makes it as
        the admin API checked it; a log other nodes write too may make it from what it
        holds instead, with whatever else changed meanwhile. Raises (``OSError``,
        ``ChangesUnavailable``) when it could not be kept: then nothing changed."""
        ...


def user_table(user: UserConfig) -> dict[str, Any]:
    """The fields of a user as the config and the changes write them."""
    return {
        "dn": user.dn,
        "num": user.num,
        "password": user.password,
        "licences": sorted(user.licences),
        "max_chats": user.max_chats,
        "role": user.role,
    }


def app_table(app: AppConfig) -> dict[str, Any]:
    return {
        "dn": app.dn,
        "password": app.password,
        "act_for": sorted(app.act_for),
        "apis": list(app.apis),
        "num": app.num,
        "licences": sorted(app.licences),
    }


def queue_table(queue: QueueConfig) -> dict[str, Any]:
    return {"dn": queue.dn, "agents": list(queue.agents), "take_on_write": queue.take_on_write}


def with_change(tenants: TenantChanges, change: Change) -> None:
    """Record ``change`` in ``tenants`` (in place)."""
    if change.kind == "tenant":
        state = (change.table or {}).get("state", "config")
        tenants[change.domain] = {"state": state, "users": {}, "apps": {}, "queues": {}}
        return
    entry = tenants.setdefault(change.domain, {"state": "config"})
    for kind in ENTRY_KINDS:
        entry.setdefault(kind, {})
    entry[change.kind][change.name] = change.table


def apply_changes(directory: Directory, tenants: TenantChanges) -> None:
    """Make the changes over ``directory``; entries that no longer fit (a number now
    taken, an App acting for a user gone, a queue agent gone) are skipped with a
    warning."""
    for domain, change in tenants.items():
        _apply(directory, domain, change)


def _apply(directory: Directory, domain: str, change: dict[str, Any]) -> None:
    tenant = _tenant_for(directory, domain, change.get("state", "config"))
    if tenant is None:
        return

    def put_user(sip: str, table: Table, where: str) -> None:
        tenant.put(user_from_table(sip, table, where))

    def put_app(name: str, table: Table, where: str) -> None:
        tenant.put_app(app_from_table(name, table, where, set(tenant.users)))

    def put_queue(sip: str, table: Table, where: str) -> None:
        tenant.put_queue(queue_from_table(sip, table, where, set(tenant.users)))

    # Users first, then App objects and queues (which may name those users); all
    # deletions before, the other way round: a name freed by one may be taken by another.
    kinds: list[tuple[str, dict[str, Table | None], Callable[[str], object], Put]] = [
        ("user", change.get("users", {}), tenant.remove, put_user),
        ("app", change.get("apps", {}), tenant.remove_app, put_app),
        ("queue", change.get("queues", {}), tenant.remove_queue, put_queue),
    ]
    for _kind, entries, remove, _put in reversed(kinds):
        for name, table in entries.items():
            if table is None:
                remove(name)
    _put_all(
        domain,
        [
            (kind, name, table, put)
            for kind, entries, _remove, put in kinds
            for name, table in entries.items()
            if table is not None
        ],
    )


def _tenant_for(directory: Directory, domain: str, state: str) -> Tenant | None:
    """The tenant a saved change applies to: the configured one, or a new empty one for
    ``"added"`` (after a removal it starts out empty); None when there is none to
    change (``"removed"``, or a tenant no longer configured)."""
    if state in ("removed", "added"):
        existing = directory.tenant(domain)
        if existing is not None and existing.domain == domain:
            try:
                directory.remove_tenant(domain)
            except ValueError as exc:
                log.warning("directory changes: %s not removed: %s", domain, exc)
        if state == "removed":
            return None
    tenant = directory.add_tenant(domain) if state == "added" else directory.tenant(domain)
    if tenant is None or tenant.domain != domain:
        log.warning("directory changes: no tenant %r; its changes are kept aside", domain)
        return None
    return tenant


_Waiting = tuple[str, str, Table, Put]
"""An entry to put: its kind, its name, its saved table and how to put it."""


def _put_all(domain: str, waiting: list[_Waiting]) -> None:
    """Put every entry, until nothing moves: an entry may need a number or name that a
    later one frees (an App object moved off the number a new user now has), whatever
    the order. What still does not fit is skipped with a warning."""
    while waiting:
        refused: list[tuple[_Waiting, Exception]] = []
        for entry in waiting:
            kind, name, table, put = entry
            try:
                put(name, table, f"{domain}/{name}")
            except (ConfigError, ValueError) as error:
                refused.append((entry, error))
        if len(refused) == len(waiting):
            for (kind, name, _table, _put), why in refused:
                log.warning("directory changes: %s %s/%s skipped: %s", kind, domain, name, why)
            return
        waiting = [entry for entry, _ in refused]
