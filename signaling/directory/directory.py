"""Tenants, users, App objects and support queues, as the hub looks them up (in memory,
from config, with the changes the admin API made since, PROTOCOL §10.2).

Every lookup is scoped to one tenant: there is no call that finds a user across
tenants, so nothing can cross a tenant boundary by accident (PROTOCOL §3.3). Lookups
happen at the moment they are needed (login, setup, a PbxMessages session), so a
change is seen by the next one without a restart.

An App object with PbxSignal enabled is a device of its own name (PROTOCOL §4.1, docs
12.24). The core knows devices as ``UserConfig``; rather than teach every part of it a
second kind, the tenant keeps each App object also as a ``UserConfig`` made from its
config (``app_as_user``: its name as sip, its dn, number and licences, no password, no
support chats). ``user()`` still finds people only (login, agents, ``act_for``);
``resolve()`` and ``device()`` find App objects too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from config import AppConfig, QueueConfig, TenantConfig, UserConfig

__all__ = ["Directory", "Tenant", "app_as_user"]

SIGNAL_API = "PbxSignal"
"""The API an App object needs enabled to register and be called (PROTOCOL §4.1)."""


def app_as_user(app: AppConfig) -> UserConfig:
    """The App object as the core's registrations, calls and presence see it. The empty
    password is never checked: logins look App objects up in ``Tenant.apps``."""
    return UserConfig(
        sip=app.name,
        dn=app.dn or app.name,
        num=app.num,
        password="",
        licences=app.licences,
        max_chats=0,
        app=True,
    )


@dataclass(frozen=True, slots=True)
class Tenant:
    domain: str
    users: dict[str, UserConfig]
    numbers: dict[str, UserConfig]
    apps: dict[str, AppConfig]
    queues: dict[str, QueueConfig] = field(default_factory=dict)
    app_users: dict[str, UserConfig] = field(default_factory=dict)
    """Every App object as ``app_as_user`` makes it, by name."""

    @classmethod
    def from_config(cls, tenant: TenantConfig) -> Tenant:
        app_users = [app_as_user(app) for app in tenant.apps]
        return cls(
            domain=tenant.domain,
            users={user.sip: user for user in tenant.users},
            numbers={entry.num: entry for entry in (*tenant.users, *app_users) if entry.num},
            apps={app.name: app for app in tenant.apps},
            queues={queue.sip: queue for queue in tenant.queues},
            app_users={entry.sip: entry for entry in app_users},
        )

    def user(self, sip: str) -> UserConfig | None:
        """A person of the tenant (never an App object)."""
        return self.users.get(sip)

    def device(self, name: str) -> UserConfig | None:
        """The App object ``name`` as a device, if it has PbxSignal enabled (docs 12.24)."""
        app = self.apps.get(name)
        return self.app_users.get(name) if app is not None and SIGNAL_API in app.apis else None

    def queue(self, sip: str) -> QueueConfig | None:
        return self.queues.get(sip)

    def all_queues(self) -> list[QueueConfig]:
        return list(self.queues.values())

    def _check_name_free(self, name: str, own: Mapping[str, object]) -> None:
        """Users, App objects and queues share one namespace: ValueError when ``name``
        belongs to an entry of another kind than ``own``'s."""
        kinds: tuple[tuple[str, Mapping[str, object]], ...] = (
            ("a user", self.users),
            ("an App object", self.apps),
            ("a queue", self.queues),
        )
        for kind, entries in kinds:
            if entries is not own and name in entries:
                raise ValueError(f"{name!r} is the name of {kind} of this tenant")

    def check_put(self, user: UserConfig) -> None:
        """ValueError when ``put(user)`` would clash: its sip is an App object's name or
        its number belongs to another user or App object."""
        self._check_name_free(user.sip, self.users)
        self._check_number_free(user.num, user.sip)

    def _check_number_free(self, num: str, owner_name: str) -> None:
        owner = self.numbers.get(num) if num else None
        if owner is not None and owner.sip != owner_name:
            raise ValueError(f"number {num} belongs to {owner.sip!r}")

    def check_remove(self, sip: str) -> None:
        """ValueError while an App object acts for the user by name: removing the user
        would let a later user of that sip be acted for without anyone deciding so."""
        acting = sorted(name for name, app in self.apps.items() if sip in app.act_for)
        if acting:
            raise ValueError(f"App object(s) {', '.join(acting)} act for {sip!r}")
        queues = sorted(name for name, queue in self.queues.items() if sip in queue.agents)
        if queues:
            raise ValueError(f"{sip!r} is an agent of queue(s) {', '.join(queues)}")

    def put(self, user: UserConfig) -> None:
        """Add or replace a user (``check_put`` first)."""
        self.check_put(user)
        old = self.users.get(user.sip)
        if old is not None and old.num:
            self.numbers.pop(old.num, None)
        self.users[user.sip] = user
        if user.num:
            self.numbers[user.num] = user

    def check_put_app(self, app: AppConfig) -> None:
        """ValueError when ``put_app(app)`` would clash: its name is a user's or a queue's,
        or its number belongs to someone else."""
        self._check_name_free(app.name, self.apps)
        self._check_number_free(app.num, app.name)

    def put_app(self, app: AppConfig) -> None:
        """Add or replace an App object (``check_put_app`` first)."""
        self.check_put_app(app)
        self.remove_app(app.name)
        self.apps[app.name] = app
        entry = self.app_users[app.name] = app_as_user(app)
        if entry.num:
            self.numbers[entry.num] = entry

    def remove_app(self, name: str) -> AppConfig | None:
        entry = self.app_users.pop(name, None)
        if entry is not None and entry.num:
            self.numbers.pop(entry.num, None)
        return self.apps.pop(name, None)

    def check_put_queue(self, queue: QueueConfig) -> None:
        """ValueError when ``put_queue(queue)`` would clash: its sip is a user's or an App
        object's name, or an agent is not a user of this tenant."""
        self._check_name_free(queue.sip, self.queues)
        missing = [agent for agent in queue.agents if agent not in self.users]
        if missing:
            raise ValueError(f"no user {missing[0]!r} in this tenant")

    def put_queue(self, queue: QueueConfig) -> None:
        """Add or replace a queue (``check_put_queue`` first)."""
        self.check_put_queue(queue)
        self.queues[queue.sip] = queue

    def remove_queue(self, sip: str) -> QueueConfig | None:
        return self.queues.pop(sip, None)

    def remove(self, sip: str) -> UserConfig | None:
        user = self.users.pop(sip, None)
        if user is not None and user.num:
            self.numbers.pop(user.num, None)
        return user

    def resolve(self, sip: str | None, num: str | None) -> UserConfig | None:
        """The user or App-object device a Signal ``cd`` names, by sip (user part) first,
        else by number. An App object without PbxSignal is nobody's to call."""
        if sip:
            return self.users.get(sip) or self.device(sip)
        entry = self.numbers.get(num) if num else None
        if entry is None or entry.sip in self.users:
            return entry
        return self.device(entry.sip)


class Directory:
    def __init__(self, tenants: Iterable[TenantConfig], default_domain: str) -> None:
        self._tenants = {tenant.domain: Tenant.from_config(tenant) for tenant in tenants}
        self.default_domain = default_domain

    def tenant(self, domain: str) -> Tenant | None:
        return self._tenants.get(domain or self.default_domain)

    def user(self, domain: str, sip: str) -> UserConfig | None:
        tenant = self.tenant(domain)
        return tenant.user(sip) if tenant else None

    def queue(self, domain: str, sip: str) -> QueueConfig | None:
        tenant = self.tenant(domain)
        return tenant.queue(sip) if tenant else None

    def queues(self, domain: str) -> list[QueueConfig]:
        tenant = self.tenant(domain)
        return tenant.all_queues() if tenant else []

    def domains(self) -> list[str]:
        return sorted(self._tenants)

    def add_tenant(self, domain: str) -> Tenant:
        """A new, empty tenant (or the existing one)."""
        tenant = self._tenants.get(domain)
        if tenant is None:
            tenant = Tenant(domain, {}, {}, {})
            self._tenants[domain] = tenant
        return tenant

    def remove_tenant(self, domain: str) -> Tenant | None:
        """Forget a tenant; the default tenant cannot go (ValueError)."""
        if domain == self.default_domain:
            raise ValueError("the default tenant (login.default_domain) cannot be removed")
        return self._tenants.pop(domain, None)
