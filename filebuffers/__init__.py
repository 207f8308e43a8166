"""Temporary and permanent file buffers for attachments (PROTOCOL §8): a local store with
streamed, hashed, size-checked uploads (by a key apart from the read key) and
content-addressed bytes, safe names, content sniffing and signed download urls. Imports
nothing else of Switchboard."""

from .errors import AlreadyUploaded, Expired, FileBufferError, Forbidden, NotFound, TooBig
from .interface import BufferStore
from .model import Buffer, Keys, Owner, Usage
from .names import content_disposition, safe_name
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
    "TooBig",
    "Usage",
    "content_disposition",
    "safe_name",
    "sign",
    "sniff",
    "verify",
]
