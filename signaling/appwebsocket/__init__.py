"""The AppWebsocket layer every side shares (PROTOCOL §3): digest, sans-I/O login,
close codes, and an asyncio client."""

from .digest import NO_INFO, login_digest, new_challenge, session_key
from .login import LoginServer, Principal

__all__ = ["NO_INFO", "LoginServer", "Principal", "login_digest", "new_challenge", "session_key"]
