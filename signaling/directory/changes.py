"""The admin API's changes to tenants, users and App objects, kept across restarts
(PROTOCOL §10.2).

The configuration stays the starting point; this file in ``server.data_dir`` holds what
the admin API changed since::

    {"tenants": {"<domain>": {"state": "config" | "added" | "removed",
                              "users": {"<sip>": {…} | null},
                              "apps": {"<name>": {…} | null}}}}

``null`` marks a user or App object deleted. At start the file is applied over the
configured tenants; after each change it is rewritten whole (small: one entry per thing
changed), atomically, readable by the server's user only because it holds passwords, as
the config file does: the AppWebsocket login digest is computed from the password
itself, so the server must know it (PROTOCOL §3).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from config import AppConfig, ConfigError, UserConfig, app_from_table, user_from_table

from .directory import Directory

__all__ = ["DirectoryChanges", "app_table", "user_table"]

log = logging.getLogger(__name__)


def user_table(user: UserConfig) -> dict[str, Any]:
    """The fields of a user as the config and this file write them."""
    return {
        "dn": user.dn,
        "num": user.num,
        "password": user.password,
        "licences": sorted(user.licences),
    }


def app_table(app: AppConfig) -> dict[str, Any]:
    return {
        "dn": app.dn,
        "password": app.password,
        "act_for": sorted(app.act_for),
        "apis": list(app.apis),
    }


class DirectoryChanges:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._tenants: dict[str, dict[str, Any]] = {}

    def load_into(self, directory: Directory) -> None:
        """Apply the saved changes; entries that no longer fit (a number now taken, an
        App acting for a user gone) are skipped with a warning."""
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return
        tenants = data.get("tenants") if isinstance(data, dict) else None
        if not isinstance(tenants, dict):
            raise ConfigError(self.path.name, 'expected {"tenants": {…}}')
        self._tenants = tenants
        for domain, change in tenants.items():
            state = change.get("state", "config")
            if state == "removed":
                try:
                    directory.remove_tenant(domain)
                except ValueError as exc:
                    log.warning("directory changes: %s not removed: %s", domain, exc)
                continue
            tenant = directory.add_tenant(domain) if state == "added" else directory.tenant(domain)
            if tenant is None or tenant.domain != domain:
                log.warning("directory changes: no tenant %r; its changes are kept aside", domain)
                continue
            for sip, table in change.get("users", {}).items():
                try:
                    if table is None:
                        tenant.remove(sip)
                    else:
                        tenant.put(user_from_table(sip, table, f"{domain}/{sip}"))
                except (ConfigError, ValueError) as exc:
                    log.warning("directory changes: user %s/%s skipped: %s", domain, sip, exc)
            for name, table in change.get("apps", {}).items():
                try:
                    if table is None:
                        tenant.remove_app(name)
                    else:
                        where = f"{domain}/{name}"
                        tenant.put_app(app_from_table(name, table, where, set(tenant.users)))
                except (ConfigError, ValueError) as exc:
                    log.warning("directory changes: app %s/%s skipped: %s", domain, name, exc)

    def record_user(self, domain: str, sip: str, user: UserConfig | None) -> None:
        """Remember a user as it is now (None: deleted)."""
        self._tenant(domain)["users"][sip] = None if user is None else user_table(user)
        self._write()

    def record_app(self, domain: str, name: str, app: AppConfig | None) -> None:
        self._tenant(domain)["apps"][name] = None if app is None else app_table(app)
        self._write()

    def record_tenant(self, domain: str, *, added: bool) -> None:
        """A tenant added (empty) or removed: what was recorded for it before is moot."""
        self._tenants[domain] = {"state": "added" if added else "removed", "users": {}, "apps": {}}
        self._write()

    def _tenant(self, domain: str) -> dict[str, Any]:
        change = self._tenants.setdefault(domain, {"state": "config"})
        change.setdefault("users", {})
        change.setdefault("apps", {})
        return change

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            json.dump({"tenants": self._tenants}, file, indent=1, sort_keys=True)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, self.path)
