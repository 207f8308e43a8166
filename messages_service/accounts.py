"""Who may log in to the service (PROTOCOL §7.1, §12.10): only the App object
``messages``, acting as itself, with the shared secret. The hub is that App object; it
logs in under its own default domain but acts for every tenant, so any domain is
accepted. App objects with their own granted topics come in a later release.
"""

from __future__ import annotations

from signaling.appwebsocket.login import Account, LoginRequest, Principal

__all__ = ["APP_NAME", "ServiceAccounts"]

APP_NAME = "messages"


class ServiceAccounts:
    """The ``Accounts`` provider of ``LoginServer`` for the messages service."""

    def __init__(self, password: str) -> None:
        self._password = password

    def throttle_key(self, request: LoginRequest) -> str:
        # One account whatever the domain: varying it must not dodge the throttle.
        return request.app if request.app == APP_NAME else f"{request.app}/{request.sip}"

    def find(self, request: LoginRequest) -> Account | None:
        # PROTOCOL §3.3: a sip that is empty or the App's own name acts as the App itself.
        if request.app != APP_NAME or request.sip not in ("", APP_NAME):
            return None
        principal = Principal(domain=request.domain, sip="", dn=request.dn, app=APP_NAME)
        return Account(self._password, principal)
