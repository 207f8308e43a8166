"""The admin API's changes to users, kept across restarts (PROTOCOL §10.2).

The configuration stays the starting point; this file in ``server.data_dir`` holds what
the admin API changed since: per tenant, per user, the user's fields, or ``null`` for a
user deleted. At start it is applied over the configured tenants; after each change it
is rewritten whole (small: one entry per changed user), atomically, readable by the
server's user only because it holds passwords, as the config file does: the
AppWebsocket login digest is computed from the password itself, so the server must
know it (PROTOCOL §3).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from config import ConfigError, UserConfig, user_from_table

from .directory import Directory

__all__ = ["DirectoryChanges", "user_table"]

log = logging.getLogger(__name__)


def user_table(user: UserConfig) -> dict[str, Any]:
    """The fields of a user as the config and this file write them."""
    return {
        "dn": user.dn,
        "num": user.num,
        "password": user.password,
        "licences": sorted(user.licences),
    }


class DirectoryChanges:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._changes: dict[str, dict[str, dict[str, Any] | None]] = {}

    def load_into(self, directory: Directory) -> None:
        """Apply the saved changes; entries that no longer fit (a tenant gone from the
        config, a number now taken) are skipped with a warning."""
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return
        if not isinstance(data, dict):
            raise ConfigError(str(self.path.name), "expected an object of tenants")
        self._changes = data
        for domain, users in data.items():
            tenant = directory.tenant(domain)
            if tenant is None or tenant.domain != domain or not isinstance(users, dict):
                log.warning("directory changes: no tenant %r; its changes are kept aside", domain)
                continue
            for sip, table in users.items():
                try:
                    if table is None:
                        tenant.remove(sip)
                    else:
                        tenant.put(user_from_table(sip, table, f"{domain}/{sip}"))
                except (ConfigError, ValueError) as exc:
                    log.warning("directory changes: %s/%s skipped: %s", domain, sip, exc)

    def record(self, domain: str, sip: str, user: UserConfig | None) -> None:
        """Remember a user as it is now (None: deleted) and rewrite the file."""
        self._changes.setdefault(domain, {})[sip] = None if user is None else user_table(user)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            json.dump(self._changes, file, indent=1, sort_keys=True)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, self.path)
