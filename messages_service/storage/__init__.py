"""The message store: the only package that talks to the database (and imports Tortoise).

``MessageStore.open(url)`` opens SQLite (``sqlite:///path``) or PostgreSQL
(``postgres://…``), runs the versioned migrations and hands out named queries that take
and return the plain values of ``rows``.
"""

from .rows import (
    Badge,
    ChatDeleted,
    ChatPage,
    ChatRemoval,
    ChatSummary,
    Duplicate,
    FileGrant,
    GroupInfo,
    MemberInfo,
    NewPost,
    Original,
    PostBatch,
    ReadMark,
    Removal,
    StoredMessage,
    group_id_of,
    group_sip,
)
from .store import MessageStore

__all__ = [
    "Badge",
    "ChatDeleted",
    "ChatPage",
    "ChatRemoval",
    "ChatSummary",
    "Duplicate",
    "FileGrant",
    "GroupInfo",
    "MemberInfo",
    "MessageStore",
    "NewPost",
    "Original",
    "PostBatch",
    "ReadMark",
    "Removal",
    "StoredMessage",
    "group_id_of",
    "group_sip",
]
