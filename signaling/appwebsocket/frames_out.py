"""Client text frames built without ``websockets``' frame objects (RFC 6455 §5.2, §5.3).

Why: the hub's link to the messages service writes every stored message as one masked
text frame. ``websockets`` builds each from a ``Frame`` object, checks it, writes its
header through a ``BytesIO`` and draws its four-byte mask with a system call of its own:
2.5-2.7 µs a Post of 400 bytes. A batch of frames here is its headers from a table, one
``os.urandom`` call for all the masks, and the mask applied in C: 0.6-0.8 µs a Post
(docs/benchmarks.md, "The storage half of a stored message").

``masked_texts`` is pure but for the entropy: it takes payloads and returns bytes.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence

from .frames_in import FINAL_TEXT, MASKED, apply_mask

__all__ = ["MEDIUM_TEXT_HEADER", "masked_texts", "text_header"]

_SHORT = tuple(bytes((FINAL_TEXT, size)) for size in range(126))
_SHORT_MASKED = tuple(bytes((FINAL_TEXT, MASKED | size)) for size in range(126))
MEDIUM_TEXT_HEADER = struct.Struct(">BBH").pack
"""``(FINAL_TEXT, mask | 126, size)``: the header of a frame of 126 bytes to 64 KiB,
which a hot path may pack in line."""
_LONG = struct.Struct(">BBQ").pack


def text_header(size: int, masked: int = 0) -> bytes:
    """The header of one final text frame of ``size`` bytes (§5.2), unmasked as a server
    sends it, or with ``masked`` (``MASKED``) as a client does, its key to follow: the
    shortest length encoding, from a table for the short sizes."""
    if size < 126:
        return _SHORT_MASKED[size] if masked else _SHORT[size]
    if size < 65536:
        return MEDIUM_TEXT_HEADER(FINAL_TEXT, masked | 126, size)
    return _LONG(FINAL_TEXT, masked | 127, size)


def masked_texts(payloads: Sequence[bytes]) -> bytes:
    """Whole text frames from a client, one for each UTF-8 ``payload``, in order.

    Each frame has a mask key of its own, and all of them come from the operating
    system's cryptographic source in one call: §5.3 wants a key that the application
    cannot predict, and a proxy cannot either, which a counter or a fast generator
    would not give."""
    keys = os.urandom(4 * len(payloads))
    parts: list[bytes] = []
    for number, payload in enumerate(payloads):
        key = keys[4 * number : 4 * number + 4]
        parts += (text_header(len(payload), MASKED), key, apply_mask(payload, key))
    return b"".join(parts)
