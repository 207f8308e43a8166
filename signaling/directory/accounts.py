"""Which password an ``AppLogin`` names, and who the session then acts as (PROTOCOL §3.3).

- ``app`` names an App object of the tenant: the object's password. With ``sip`` empty or
  equal to the object's name it acts as itself; any other ``sip`` must be a user the
  object may act for (``act_for``, ``"*"`` = every user of the tenant).
- otherwise ``sip`` names a user of the tenant: that user's password. ``app`` is then only
  the client's own name (it still takes part in the digest).
- ``domain`` empty means the default domain (the documented short form).
App object names and user sips share one namespace per tenant (config enforces it).
"""

from __future__ import annotations

from signaling.appwebsocket.login import Account, LoginRequest, Principal

from .directory import Directory

__all__ = ["HubAccounts"]


class HubAccounts:
    def __init__(self, directory: Directory) -> None:
        self._directory = directory

    def throttle_key(self, request: LoginRequest) -> str:
        domain = request.domain or self._directory.default_domain
        tenant = self._directory.tenant(domain)
        name = request.app if tenant and request.app in tenant.apps else request.sip
        return f"{domain}/{name}"

    def find(self, request: LoginRequest) -> Account | None:
        tenant = self._directory.tenant(request.domain)
        if tenant is None:
            return None
        app = tenant.apps.get(request.app) if request.app else None
        if app is None:
            user = tenant.user(request.sip)
            if user is None:
                return None
            return Account(user.password, Principal(tenant.domain, user.sip, user.dn))
        if request.sip in ("", app.name):
            return Account(
                app.password, Principal(tenant.domain, "", app.dn or app.name, app.name, app.apis)
            )
        user = tenant.user(request.sip)
        if user is None or not ("*" in app.act_for or user.sip in app.act_for):
            return None
        return Account(
            app.password, Principal(tenant.domain, user.sip, user.dn, app.name, app.apis)
        )
