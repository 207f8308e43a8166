"""The admin API's changes to tenants, users, App objects and support queues, kept across
restarts in a file when the hub runs as one process (PROTOCOL §10.2; a cluster keeps
them in its database, ``shared``).

The configuration stays the starting point; this file in ``server.data_dir`` holds what
the admin API changed since, as ``{"tenants": …}`` in the shape ``change_set``
describes. At start the file is applied over the configured tenants; after each change
it is rewritten whole (small: one entry per thing changed), atomically, readable by the
server's user only because it holds passwords, as the config file does: the
AppWebsocket login digest is computed from the password itself, so the server must know
it (PROTOCOL §3).
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from config import AppConfig, ConfigError, QueueConfig, UserConfig

from .change_set import (
    Change,
    TenantChanges,
    app_table,
    apply_changes,
    queue_table,
    user_table,
    with_change,
)
from .directory import Directory

__all__ = ["DirectoryChanges"]


class DirectoryChanges:
    """The file of one process's changes (a ``ChangeLog``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tenants: TenantChanges = {}

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
        apply_changes(directory, tenants)

    async def keep(self, change: Change, make: Callable[[], object]) -> None:
        """Saved first, then made: a change that could not be saved (OSError) is not
        made at all."""
        self.record(change)
        make()

    def record(self, change: Change) -> None:
        """Write the whole new state, and keep it only once it is on disk."""
        tenants = copy.deepcopy(self._tenants)
        with_change(tenants, change)
        self._write(tenants)

    def record_user(self, domain: str, sip: str, user: UserConfig | None) -> None:
        """Save a user as it is to be (None: deleted)."""
        self.record(Change(domain, "users", sip, None if user is None else user_table(user)))

    def record_app(self, domain: str, name: str, app: AppConfig | None) -> None:
        self.record(Change(domain, "apps", name, None if app is None else app_table(app)))

    def record_queue(self, domain: str, sip: str, queue: QueueConfig | None) -> None:
        table = None if queue is None else queue_table(queue)
        self.record(Change(domain, "queues", sip, table))

    def record_tenant(self, domain: str, *, added: bool) -> None:
        """A tenant added (empty) or removed: what was recorded for it before is moot."""
        self.record(Change.tenant(domain, added=added))

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
