"""The admin API's changes to tenants, users, App objects and support queues, kept across
restarts (PROTOCOL §10.2).

The configuration stays the starting point; this file in ``server.data_dir`` holds what
the admin API changed since::

    {"tenants": {"<domain>": {"state": "config" | "added" | "removed",
                              "users": {"<sip>": {…} | null},
                              "apps": {"<name>": {…} | null},
                              "queues": {"<sip>": {…} | null}}}}

``null`` marks a user, App object or queue deleted; a tenant without ``queues`` (a file
written before queues could be changed) has none changed, and a user without
``max_chats`` or ``role``, or a queue without ``take_on_write``, has the default. At
start the file is applied over the configured tenants; after each change it is rewritten
whole (small: one entry per thing changed), atomically, readable by the server's user
only because it holds passwords, as the config file does: the AppWebsocket login digest
is computed from the password itself, so the server must know it (PROTOCOL §3).
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

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

__all__ = ["DirectoryChanges", "app_table", "queue_table", "user_table"]

log = logging.getLogger(__name__)

Table = dict[str, Any]
Put = Callable[[str, Table, str], None]
"""Adds one saved entry (name, its table, where it was for messages) to a tenant."""


def user_table(user: UserConfig) -> dict[str, Any]:
    """The fields of a user as the config and this file write them."""
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


class DirectoryChanges:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._tenants: dict[str, dict[str, Any]] = {}

    def load_into(self, directory: Directory) -> None:
        """Apply the saved changes; entries that no longer fit (a number now taken, an
        App acting for a user gone, a queue agent gone) are skipped with a warning."""
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            raise ConfigError(self.path.name, f"cannot be read: {exc}") from exc
        tenants = data.get("tenants") if isinstance(data, dict) else None
        if not isinstance(tenants, dict) or not all(
            isinstance(change, dict)
            and isinstance(change.get("users", {}), dict)
            and isinstance(change.get("apps", {}), dict)
            and isinstance(change.get("queues", {}), dict)
            for change in tenants.values()
        ):
            raise ConfigError(
                self.path.name, 'expected {"tenants": {<domain>: {users, apps, queues}}}'
            )
        self._tenants = tenants
        for domain, change in tenants.items():
            self._apply(directory, domain, change)

    def _apply(self, directory: Directory, domain: str, change: dict[str, Any]) -> None:
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

    # Each record writes the whole new state first and keeps it only once it is on disk:
    # the caller applies a change after recording it, so a change that could not be
    # saved is not made at all (OSError reaches the caller).

    def record_user(self, domain: str, sip: str, user: UserConfig | None) -> None:
        """Save a user as it is to be (None: deleted)."""
        tenants = copy.deepcopy(self._tenants)
        _entry(tenants, domain)["users"][sip] = None if user is None else user_table(user)
        self._write(tenants)

    def record_app(self, domain: str, name: str, app: AppConfig | None) -> None:
        tenants = copy.deepcopy(self._tenants)
        _entry(tenants, domain)["apps"][name] = None if app is None else app_table(app)
        self._write(tenants)

    def record_queue(self, domain: str, sip: str, queue: QueueConfig | None) -> None:
        tenants = copy.deepcopy(self._tenants)
        _entry(tenants, domain)["queues"][sip] = None if queue is None else queue_table(queue)
        self._write(tenants)

    def record_tenant(self, domain: str, *, added: bool) -> None:
        """A tenant added (empty) or removed: what was recorded for it before is moot."""
        tenants = copy.deepcopy(self._tenants)
        state = "added" if added else "removed"
        tenants[domain] = {"state": state, "users": {}, "apps": {}, "queues": {}}
        self._write(tenants)

    def _write(self, tenants: dict[str, dict[str, Any]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # A fresh name, created here and now with the owner's rights only: never a file
        # (or a link) something else left behind.
        temporary = self.path.with_name(f".{self.path.name}.{secrets.token_hex(6)}")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        descriptor = os.open(temporary, flags, 0o600)
        try:
            with os.fdopen(descriptor, "w") as file:
                json.dump({"tenants": tenants}, file, indent=1, sort_keys=True)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path)
            self._tenants = tenants
        finally:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()


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


def _entry(tenants: dict[str, dict[str, Any]], domain: str) -> dict[str, Any]:
    change = tenants.setdefault(domain, {"state": "config"})
    change.setdefault("users", {})
    change.setdefault("apps", {})
    change.setdefault("queues", {})
    return change
