"""Temporary and permanent file buffers for attachments (PROTOCOL §8): a local store for
one process and a shared one for several (metadata and quotas in PostgreSQL), both with
streamed, hashed, size-checked uploads (by a key apart from the read key) and
content-addressed bytes, safe names, content sniffing and signed download urls. Imports
nothing else of Switchboard."""

from .errors import (
    AlreadyUploaded,
    Expired,
    FileBufferError,
    Forbidden,
    NotFound,
    TooBig,
    Unavailable,
)
from .interface import BufferStore
from .model import Buffer, Keys, Owner, Usage
from .names import content_disposition, safe_name
from .shared import SharedStore
from .signing import sign, verify
from .sniff import INLINE_IMAGES, sniff
from .store import LocalStore

__all__ = [
    "INLINE_IMAGES",
    "AlreadyUploaded",
    "Buffer",
    "BufferStore",
    "Expired",
    "FileBufferError",
    "Forbidden",
    "Keys",
    "LocalStore",
    "NotFound",
    "Owner",
    "SharedStore",
    "TooBig",
    "Unavailable",
    "Usage",
    "content_disposition",
    "safe_name",
    "sign",
    "sniff",
    "verify",
]
