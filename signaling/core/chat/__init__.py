"""The chat core: calls without media (PROTOCOL §4.4-§4.10, §7); see ``chat_calls.py``."""

from .chat_calls import ChatCalls

__all__ = ["ChatCalls"]
