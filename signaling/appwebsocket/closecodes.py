"""WebSocket close codes Switchboard sends (PROTOCOL §1.6); 4000-4999 are our own reasons.

Every code docs/protocol.md §1.6 lists is named here, also those that the WebSocket layer
(uvicorn over websockets) sends by itself rather than our code: 1002, 1007, 1009 and
1011 on a ping timeout. A test keeps this module and that list in agreement.
"""

from __future__ import annotations

__all__ = [
    "WS_1000_NORMAL",
    "WS_1002_PROTOCOL_ERROR",
    "WS_1007_INVALID_UTF8",
    "WS_1009_TOO_BIG",
    "WS_1011_INTERNAL_ERROR",
    "WS_1012_SERVICE_RESTART",
    "WS_4001_LOGIN_FAILED",
    "WS_4002_TOO_MANY_BAD_MESSAGES",
    "WS_4003_BINARY_FRAME",
    "WS_4004_RATE_LIMIT",
    "WS_4005_REPLACED",
    "WS_4006_IDLE",
    "WS_4008_SLOW_CONSUMER",
]

WS_1000_NORMAL = 1000
WS_1002_PROTOCOL_ERROR = 1002  # a frame that breaks RFC 6455 (unmasked, bad opcode, ...)
WS_1007_INVALID_UTF8 = 1007  # a text frame that is not UTF-8 (PROTOCOL §1.1)
WS_1009_TOO_BIG = 1009
WS_1011_INTERNAL_ERROR = 1011
WS_1012_SERVICE_RESTART = 1012
WS_4001_LOGIN_FAILED = 4001
WS_4002_TOO_MANY_BAD_MESSAGES = 4002
WS_4003_BINARY_FRAME = 4003
WS_4004_RATE_LIMIT = 4004
WS_4005_REPLACED = 4005
WS_4006_IDLE = 4006
WS_4008_SLOW_CONSUMER = 4008

ABUSE = frozenset({WS_4002_TOO_MANY_BAD_MESSAGES, WS_4003_BINARY_FRAME, WS_4004_RATE_LIMIT})
"""Closes the hub makes for abuse: the registration ends at once, no resume (§4.9)."""
