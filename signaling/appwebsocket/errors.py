"""Errors of the asyncio AppWebsocket client; websockets' exceptions are translated here.

AppWebsocketError
├── LoginFailed         AppLoginResult without ok (error, errorText)
├── ConnectionClosed    the socket closed (code, reason)
└── ReplyTimeout        nothing arrived in time
"""

from __future__ import annotations

__all__ = ["AppWebsocketError", "ConnectionClosed", "LoginFailed", "ReplyTimeout"]


class AppWebsocketError(Exception):
    pass


class LoginFailed(AppWebsocketError):
    def __init__(self, error: object, text: object) -> None:
        super().__init__(f"login failed: {text} ({error})")
        self.error = error
        self.text = text


class ConnectionClosed(AppWebsocketError):
    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"connection closed: {code} {reason}".rstrip())
        self.code = code
        self.reason = reason


class ReplyTimeout(AppWebsocketError):
    pass
